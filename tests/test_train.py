"""The train and infer commands end to end, on tiny networks: outputs and bad input. A fit of the
sample in a fresh process (its result, Telea's beside it) is test_progress's; a resume after
SIGKILL, test_faults's; a real 854x480 clip fitted at a reduced working size,
test_export_scale's."""

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_run, tiny_args
from tfinpaint import infer, train
from tfinpaint.io.sample import make_sample
from tfinpaint.io.video import read_video, write_frames


def _clip_folders(tmp_path, frames=6, height=56, width=88):
    sample = make_sample(num_frames=frames, height=height, width=width)
    names = [f"f{i}" for i in range(frames)]
    write_frames(tmp_path / "frames", sample.frames, names)
    write_frames(tmp_path / "masks", np.repeat(sample.masks * 255, 3, axis=-1), names)
    return sample


def _tree(path):
    return {p: p.stat().st_mtime_ns for p in Path(path).rglob("*")}


@pytest.mark.slow
def test_lossless_result_decodes_to_the_png_frames_and_infer_writes_one_too(finished_fit, tmp_path):
    # --lossless is a result option (infer.lossless_video), the same on a new fit and a resume:
    # resuming conftest's finished fit writes its result again, without a fit to trace.
    run = copy_run(finished_fit, tmp_path)
    assert not (run / "result" / "video.mkv").exists()
    assert train.main(["--run-dir", str(run), "--resume", "--quiet", "--lossless"]) == 0
    frames = read_video(run / "result" / "frames").frames
    np.testing.assert_array_equal(read_video(run / "result" / "video.mkv").frames, frames)
    assert infer.main(["--run", str(run), "--out", str(tmp_path / "again"), "--lossless"]) == 0
    again = read_video(tmp_path / "again" / "frames").frames
    np.testing.assert_array_equal(read_video(tmp_path / "again" / "video.mkv").frames, again)


def test_folder_clip_at_lower_working_resolution_keeps_known_pixels_exact(tmp_path):
    sample = _clip_folders(tmp_path)
    run = tmp_path / "run"
    code = train.main(["--video", str(tmp_path / "frames"), "--masks", str(tmp_path / "masks"),
                       "--run-dir", str(run), "--steps", "2", "--mask-dilation", "1",
                       "--set", "data.working_height=28", "--set", "data.working_width=44",
                       *tiny_args()])
    assert code == 0
    result = read_video(run / "result" / "frames")
    assert result.frames.shape == sample.frames.shape      # native resolution
    assert result.names == [f"f{i}" for i in range(6)]
    masks = read_video(tmp_path / "masks").frames[..., 0] > 0
    grown = np.stack([__import__("cv2").dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) for m in masks]) > 0
    np.testing.assert_array_equal(result.frames[~grown], sample.frames[~grown])
    assert (result.frames[grown] != sample.frames[grown]).any()

    # infer re-renders the same clip from the checkpoint, into another folder
    out = tmp_path / "again"
    assert infer.main(["--run", str(run), "--out", str(out)]) == 0
    again = read_video(out / "frames").frames
    np.testing.assert_array_equal(again[~grown], sample.frames[~grown])
    assert np.abs(again.astype(int) - result.frames.astype(int)).max() <= 2


def _fails_cleanly(argv, capsys, words):
    code = train.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) >= 1 and err[-1].startswith("error: ") and words in err[-1], err
    assert "Traceback" not in "\n".join(err)


def test_existing_run_folder_is_refused_and_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    before = _tree(run)
    _fails_cleanly(["--video", "sample", "--run-dir", str(run)], capsys, "--resume")
    assert _tree(run) == before


@pytest.mark.parametrize("case, words", [
    ("no_video", "--video is required"),
    ("missing", "no such file"),
    ("no_masks", "--masks is required"),
    ("count", "6"),
    ("empty_mask", "empty"),
    ("too_small", "too small"),
    ("nothing_to_resume", "nothing to resume"),
    ("bad_key", "unknown key"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, words):
    _clip_folders(tmp_path)
    frames, masks, run = str(tmp_path / "frames"), str(tmp_path / "masks"), tmp_path / "run"
    if case == "count":
        os.remove(tmp_path / "masks" / "f5.png")
    if case == "empty_mask":
        write_frames(tmp_path / "empty", np.zeros((6, 56, 88, 3), np.uint8), [f"f{i}" for i in range(6)])
        masks = str(tmp_path / "empty")
    argv = {
        "no_video": ["--run-dir", str(run)],
        "missing": ["--video", str(tmp_path / "nope"), "--masks", masks, "--run-dir", str(run)],
        "no_masks": ["--video", frames, "--run-dir", str(run)],
        "count": ["--video", frames, "--masks", masks, "--run-dir", str(run)],
        "empty_mask": ["--video", frames, "--masks", masks, "--run-dir", str(run)],
        "too_small": ["--video", frames, "--masks", masks, "--run-dir", str(run),
                      "--set", "data.working_height=8", "--set", "data.working_width=8"],
        "nothing_to_resume": ["--run-dir", str(run), "--resume"],
        "bad_key": ["--video", "sample", "--run-dir", str(run), "--set", "train.nope=1"],
    }[case]
    _fails_cleanly(argv, capsys, words)
    assert not run.exists()


def test_without_config_a_new_fit_uses_the_shipped_default(tmp_path):
    from tfinpaint import config as config_lib

    args = train.build_parser().parse_args(["--video", "clip.mp4", "--masks", "masks/"])
    expected = config_lib.load_config([config_lib.CONFIG_DIR / "default.yaml"])
    assert config_lib.to_dict(train.resolve_config(args)) == config_lib.to_dict(expected)
    sample = train.build_parser().parse_args(["--video", "sample"])
    assert config_lib.to_dict(train.resolve_config(sample)) == config_lib.to_dict(
        config_lib.load_config([config_lib.CONFIG_DIR / "quick.yaml"]))
