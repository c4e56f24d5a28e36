"""tools/fit_many.py: one job per video, done runs skipped, interrupted runs resumed on request."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "train.steps=2", "--set", "generator.arch=base", "--set", "generator.channels=8",
        "--set", "train.checkpoint_every=1", "--set", "train.selfcheck_every=1",
        "--set", "train.batch_size=1", "--set", "train.precision=float32",
        # the jobs, not the fill, are under test: a small working size and the push-pull prefill
        "--set", "data.working_height=32", "--set", "data.working_width=48",
        "--set", "data.prefill=pyramid", "--set", "generator.prefill_gate=false"]


def _fit_many(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "fit_many.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def _statuses(runs):
    return {entry["name"]: entry["status"] for entry in json.loads((runs / "fit_many.json").read_text())}


@pytest.mark.slow
def test_fits_each_video_then_skips_done_and_resumes_partial(tmp_path):
    videos = tmp_path / "videos.txt"
    videos.write_text("# two jobs\nsample - first\nsample - second  # the same clip again\n")
    runs = tmp_path / "runs"
    done = _fit_many(videos, "--runs", runs, *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _statuses(runs) == {"first": "done", "second": "done"}
    assert (runs / "first" / "result" / "video.mp4").exists()

    # An interrupted job: its folder and checkpoints are there, its result is not.
    shutil.rmtree(runs / "second" / "result")
    again = _fit_many(videos, "--runs", runs)
    assert _statuses(runs) == {"first": "skipped", "second": "partial"}
    assert again.returncode == 0
    resumed = _fit_many(videos, "--runs", runs, "--resume", "--set", "train.steps=3")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _statuses(runs) == {"first": "skipped", "second": "done"}
    summary = json.loads((runs / "second" / "result" / "summary.json").read_text())
    assert summary["steps"] == 3


def test_a_malformed_list_is_one_clear_error(tmp_path):
    videos = tmp_path / "videos.txt"
    videos.write_text("only_one_field\n")
    done = _fit_many(videos, "--runs", tmp_path / "runs")
    assert done.returncode == 2
    assert "videos.txt:1" in done.stderr and "Traceback" not in done.stderr
