"""The evaluation protocols (tools/make_masks.py) and the evaluate command, end to end."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfinpaint import evaluate
from tfinpaint.evaluation import protocols
from tfinpaint.io import video

ROOT = Path(__file__).resolve().parents[1]
NUM_FRAMES, HEIGHT, WIDTH = 4, 48, 64


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_masks = _load_tool("make_masks")


@pytest.fixture
def clip(tmp_path):
    """A tiny panning clip written as PNG frames: tmp/truth/f0.png ..."""
    noise = np.random.default_rng(0).uniform(0, 255, (HEIGHT, WIDTH + 8, 3)).astype(np.float32)
    scene = np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)
    frames = np.stack([scene[:, 2 * t:2 * t + WIDTH] for t in range(NUM_FRAMES)])
    video.write_frames(tmp_path / "truth", frames, [f"f{t}" for t in range(NUM_FRAMES)])
    return frames


def _read_mask_folder(folder):
    files = sorted(folder.glob("*.png"))
    return files, np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])


def test_fixed_protocol_is_a_centred_quarter_rectangle():
    masks = protocols.fixed_masks(3, 48, 64)
    assert masks.shape == (3, 48, 64, 1) and set(np.unique(masks)) == {0, 1}
    rows, cols = np.nonzero(masks[1, ..., 0])
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (18, 30, 24, 40)
    assert masks.sum() == 3 * 12 * 16


def test_object_protocol_resizes_shifts_and_loops():
    source = np.zeros((2, 10, 20), np.uint8)
    source[0, 0:5, 0:10] = 255  # top-left quarter
    source[1, 5:10, 10:20] = 1  # bottom-right quarter
    masks = protocols.object_masks(source, 5, 20, 40, shift=(4, 2))
    assert masks.shape == (5, 20, 40, 1)
    np.testing.assert_array_equal(masks[2], masks[0])  # looped
    np.testing.assert_array_equal(masks[3], masks[1])
    rows, cols = np.nonzero(masks[0, ..., 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 11, 4, 23)
    rows, cols = np.nonzero(masks[1, ..., 0])  # moved partly out of the frame: cut, not wrapped
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 19, 24, 39)
    assert protocols.object_masks(source, 1, 20, 40).shape == (1, 20, 40, 1)  # truncated


def test_make_masks_fixed_names_masks_like_the_clip(tmp_path, clip):
    assert make_masks.main(["--clip", str(tmp_path / "truth"), "--out", str(tmp_path / "m"),
                            "--protocol", "fixed", "--dilation", "1"]) == 0
    files, masks = _read_mask_folder(tmp_path / "m")
    assert [f.stem for f in files] == [f"f{t}" for t in range(NUM_FRAMES)]
    assert set(np.unique(masks)) == {0, 255}
    rows, cols = np.nonzero(masks[0])
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (17, 31, 23, 41)


def test_make_masks_object_borrows_another_videos_masks(tmp_path, clip):
    source = np.zeros((3, 24, 32, 3), np.uint8)
    source[:, 6:12, 8:16] = (128, 0, 0)  # a DAVIS-like palette colour
    video.write_frames(tmp_path / "other", source, ["a", "b", "c"])
    assert make_masks.main(["--clip", str(tmp_path / "truth"), "--out", str(tmp_path / "m"),
                            "--protocol", "object", "--source", str(tmp_path / "other"),
                            "--shift", "3", "0"]) == 0
    _, masks = _read_mask_folder(tmp_path / "m")
    assert masks.shape == (NUM_FRAMES, HEIGHT, WIDTH)
    rows, cols = np.nonzero(masks[3])
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (12, 24, 19, 35)


def test_make_masks_object_without_source_is_a_one_line_error(tmp_path, clip, capsys):
    assert make_masks.main(["--clip", str(tmp_path / "truth"), "--out", str(tmp_path / "m"),
                            "--protocol", "object"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_evaluate_writes_ours_and_telea_rows(tmp_path, clip):
    make_masks.main(["--clip", str(tmp_path / "truth"), "--out", str(tmp_path / "masks"),
                     "--protocol", "fixed"])
    masks = protocols.fixed_masks(NUM_FRAMES, HEIGHT, WIDTH)
    pred = np.where(masks == 1, clip // 2 + 60, clip).astype(np.uint8)
    video.write_frames(tmp_path / "pred", pred, [f"f{t}" for t in range(NUM_FRAMES)])
    code = evaluate.main(["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
                          "--masks", str(tmp_path / "masks"), "--baseline", "telea",
                          "--json", str(tmp_path / "scores.json"),
                          "--report", str(tmp_path / "report.png")])
    assert code == 0
    document = json.loads((tmp_path / "scores.json").read_text())
    assert set(document["rows"]) == {"ours", "telea"}
    for row in document["rows"].values():
        assert set(row) == set(evaluate.COLUMNS)
        assert row["psnr_hole"] < row["psnr"] < 100
        assert 0 < row["ssim_hole"] < 1 and row["warping_error"] >= 0
    assert document["num_frames"] == NUM_FRAMES and document["truth_warping_error"] < 2
    assert document["hole_fraction"] == pytest.approx(12 * 16 / (HEIGHT * WIDTH))
    assert cv2.imread(str(tmp_path / "report.png")) is not None


@pytest.mark.parametrize("problem", ["missing", "count", "size"])
def test_evaluate_bad_input_exits_2_with_one_line(tmp_path, clip, capsys, problem):
    names = [f"f{t}" for t in range(NUM_FRAMES)]
    video.write_frames(tmp_path / "masks", np.repeat(
        protocols.fixed_masks(NUM_FRAMES, HEIGHT, WIDTH) * 255, 3, axis=-1), names)
    pred = {"missing": None, "count": clip[:3], "size": clip[:, :40]}[problem]
    if pred is not None:
        video.write_frames(tmp_path / "pred", pred, names[:len(pred)])
    code = evaluate.main(["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
                          "--masks", str(tmp_path / "masks"),
                          "--json", str(tmp_path / "scores.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pred" in err
    assert not (tmp_path / "scores.json").exists()
