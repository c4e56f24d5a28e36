"""Progress on the console: one line redrawn in place on a terminal, plain lines in a log; the
fit's fraction and time left; rendering's callback; a quiet start-up (the sample fit that shows
it is also where the sample's result and the Telea comparison are checked)."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_args
from tfinpaint.config import load_config
from tfinpaint.console import without_noise
from tfinpaint.io.progress import Progress, clock

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_clock():
    assert clock(0) == "0:00" and clock(75.4) == "1:15" and clock(3725) == "1:02:05"


def test_on_a_terminal_one_line_is_redrawn_in_place_and_ends_with_a_newline():
    stream, time = Terminal(), FakeClock()
    progress = Progress("fitting", stream=stream, clock_fn=time, redraw_seconds=0.5)
    for step in range(1, 11):
        time.now += 0.25
        progress.update(step, step / 10, details=f"step {step}/10")
    out = stream.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1          # one line, finished once
    frames = out.rstrip("\n").split("\r")[1:]
    assert out.startswith("\r") and len(frames) == 6              # step 1, 3, 5, 7, 9 and the end
    assert "step 1/10" in frames[0] and "step 10/10" in frames[-1]
    assert "100%" in frames[-1] and "[" + "#" * 20 + "]" in frames[-1]
    assert "took 0:02" in frames[-1]                              # 2.5 s since it was created
    progress.finish()                                             # idempotent
    assert stream.getvalue() == out


def test_a_shorter_line_clears_what_the_longer_one_left():
    stream = Terminal()
    progress = Progress("fitting", stream=stream, clock_fn=FakeClock(), redraw_seconds=0)
    progress.update(1, 0.1, details="a long detail of many words")
    progress.update(2, 0.2, details="short")
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip().endswith("short")


def test_in_a_log_plain_lines_come_at_the_interval_and_at_the_end():
    stream, time = io.StringIO(), FakeClock()
    progress = Progress("propagating", total=60, every=25, stream=stream, clock_fn=time)
    for step in range(1, 56):
        time.now += 0.5
        progress.update(step, details=f"step {step}/60")
    progress.finish()                                             # stopped early, at 55
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in stream.getvalue()
    assert [re.search(r"step (\d+)/60", line).group(1) for line in lines[:-1]] == [
        "1", "25", "50", "55"]
    assert "2.00 steps/s" in lines[2] and lines[2].startswith("propagating  83%")


def test_the_time_left_follows_a_time_budget_and_the_rate_for_steps():
    time = FakeClock()
    budget = 120.0
    # A fit that ends on its budget: the fraction is the budget's, whatever the step rate does.
    progress = Progress("fitting", stream=io.StringIO(), clock_fn=time)
    fitted = 30.0                                                # a resumed fit: 30 s done before
    for step in range(1, 40):
        time.now += 1.0 if step % 2 else 2.0                     # uneven steps
        fitted += 1.0 if step % 2 else 2.0
        progress.update(step, fitted / budget)
    assert fitted == 88.0 and "0:32 left" in progress.text(time.now, bar=False)
    # One that ends on its steps: the steps left at the measured rate.
    progress = Progress("fitting", stream=io.StringIO(), clock_fn=time)
    for step in range(101, 201):
        time.now += 0.2
        progress.update(step, step / 1000)
    assert "2:40 left, 5.00 steps/s" in progress.text(time.now, bar=False)  # 800 steps at 5/s


class _Value:
    def __init__(self, value):
        self.value = value

    def numpy(self):
        return np.asarray(self.value)


def _fit_progress(overrides, step, seconds, history=()):
    from types import SimpleNamespace

    from tfinpaint.fitting.monitor import FitProgress

    stream = io.StringIO()
    callback = FitProgress(load_config([], overrides), SimpleNamespace(history=list(history)),
                           stream=stream)
    callback.set_model(SimpleNamespace(optimizer=SimpleNamespace(iterations=_Value(step)),
                                       fit_seconds=_Value(seconds)))
    callback.on_train_batch_end(0, {"reconstruction": 0.05, "total": 0.05})
    return stream.getvalue()


def test_the_fit_reports_the_fraction_it_will_end_on_its_loss_and_self_check():
    by_steps = _fit_progress(["train.steps=1000", "train.time_budget_minutes=0"], 400, 50.0,
                             history=[(300, 40.0, 27.5)])
    assert by_steps.startswith("fitting  40%") and "step 400/1000" in by_steps
    assert "loss 0.0500" in by_steps and "self-check 27.50 dB" in by_steps
    by_time = _fit_progress(["train.steps=20000", "train.time_budget_minutes=2"], 400, 90.0)
    assert by_time.startswith("fitting  75%") and "step 400, 1:30 of 2:00" in by_time
    assert "self-check" not in by_time


def test_render_reports_frames_done():
    from tfinpaint.fill.render import render

    frames = np.zeros((10, 16, 16, 3), np.uint8)
    masks = np.ones((10, 16, 16, 1), np.uint8)
    stream = io.StringIO()
    progress = Progress("rendering", total=10, unit="frame", stream=stream)
    render(lambda f, m: f, frames, masks, batch_size=4, progress=progress.update)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["40%", "80%", "100%"]   # every 3 frames


def test_start_up_noise_is_dropped_and_errors_are_kept():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796141861.116181   26410 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796141861.116486   26410 cudart_stub.cc:31] Could not find cuda drivers on "
        "your machine, GPU will not be used.",
        "W0000 00:00:1796141861.116486   26410 some.cc:1] a C++ warning below the log level",
    ]
    cuinit = ("E0000 00:00:1796141867.663755   26410 cuda_platform.cc:52] failed call to cuInit: "
              "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
    real = ["E0000 00:00:1796141867.663755   26410 op.cc:7] a real error",
            "/x/keras/trainer.py:74: UserWarning: a real warning", "Traceback (most recent call last):"]
    text = "\n".join(noise + [cuinit] + real) + "\n"
    assert without_noise(text) == "\n".join(real) + "\n"
    # with a driver present, a failed cuInit is a real error
    assert cuinit in without_noise(cuinit + "\n")


def _assert_the_sample_result(run: Path, stdout: str) -> None:
    """What a fit of the sample writes (a fresh process, as the README's first line runs it): the
    result beside OpenCV's Telea fill, its files, and the known pixels exactly as they were."""
    from tfinpaint.io.sample import make_sample
    from tfinpaint.io.video import read_video

    assert "OpenCV Telea" in stdout and "hole PSNR" in stdout
    for name in ("video.mp4", "preview.png", "report.png", "summary.json"):
        assert (run / "result" / name).is_file(), name
    assert (run / "config.yaml").is_file() and any((run / "logs").iterdir())
    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["steps"] == 2 and np.isfinite(summary["psnr_hole"])
    filled = read_video(run / "result" / "frames").frames
    sample = make_sample()
    known = sample.masks[..., 0] == 0
    np.testing.assert_array_equal(filled[known], sample.frames[known])
    assert len(read_video(run / "result" / "video.mp4").frames) == len(sample.frames)


def _stderr_is_quiet(stderr: str) -> None:
    for noise in ("I0000", "absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "shuffle=True"):
        assert noise not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_commands_start_quietly_and_bad_input_still_says_one_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tfinpaint.train", "--video", "sample", "--steps", "2",
               "--run-dir", str(run), *tiny_args()]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _stderr_is_quiet(done.stderr)
    assert "fitting 100%" in done.stderr and "rendering 100%" in done.stderr
    _assert_the_sample_result(run, done.stdout)

    bad = [sys.executable, "-m", "tfinpaint.train", "--video", str(tmp_path / "run" / "result" / "frames"),
           "--masks", str(tmp_path / "no_such_masks"), "--run-dir", str(tmp_path / "bad")]
    done = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 2
    _stderr_is_quiet(done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no_such_masks" in lines[0], lines
