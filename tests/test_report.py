"""The report PNG's layout, and reading scalars back from TensorBoard event files."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.evaluation import report

NUM_FRAMES, HEIGHT, WIDTH = 6, 30, 40


def _write_events(logdir):
    with tf.summary.create_file_writer(str(logdir)).as_default():
        for step in range(0, 50, 10):
            tf.summary.scalar("loss/total", 1.0 / (step + 1), step=step)
            tf.summary.scalar("loss/reconstruction", 0.5 / (step + 1), step=step)
            tf.summary.scalar("selfcheck/psnr", 15.0 + step / 10, step=step)
        tf.summary.image("grid", tf.zeros((1, 8, 8, 3)), step=0)  # not a scalar: ignored
        # a TF 1 style scalar (simple_value), as older writers and some callbacks log them
        legacy = tf.compat.v1.Summary(
            value=[tf.compat.v1.Summary.Value(tag="lr", simple_value=2e-4)])
        tf.summary.experimental.write_raw_pb(legacy.SerializeToString(), step=7)
    with tf.summary.create_file_writer(str(logdir / "eval")).as_default():
        tf.summary.scalar("selfcheck/psnr", 20.0, step=40)


def _clip():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 255, (NUM_FRAMES, HEIGHT, WIDTH, 3)).astype(np.uint8)
    masks = np.zeros((NUM_FRAMES, HEIGHT, WIDTH, 1), np.uint8)
    masks[:, 10:21, 15:25] = 1
    frames = np.where(masks == 1, 0, truth).astype(np.uint8)
    filled = np.where(masks == 1, 128, truth).astype(np.uint8)
    return frames, masks, filled, truth


def test_read_scalars_reads_tensors_and_simple_values(tmp_path):
    _write_events(tmp_path)
    scalars = report.read_scalars(tmp_path)
    assert set(scalars) == {"loss/total", "loss/reconstruction", "selfcheck/psnr", "lr",
                            "eval/selfcheck/psnr"}
    assert [s for s, _ in scalars["loss/total"]] == [0, 10, 20, 30, 40]
    assert scalars["selfcheck/psnr"][-1] == (40, pytest.approx(19.0))
    assert scalars["lr"] == [(7, pytest.approx(2e-4))]


def test_report_layout_with_truth_and_curves(tmp_path):
    _write_events(tmp_path / "logs")
    frames, masks, filled, truth = _clip()
    path = tmp_path / "out" / "report.png"
    boxes = report.write_report(path, frames=frames, masks=masks, filled=filled, truth=truth,
                                logdir=tmp_path / "logs", frame_indices=[0, 5])
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert set(boxes) == {"input/0", "input/5", "ours/0", "ours/5", "truth/0", "truth/5",
                          "profile/input", "profile/ours", "profile/truth",
                          "curves/psnr", "curves/loss"}
    scale = report.TILE_WIDTH / WIDTH
    for name, (top, left, bottom, right) in boxes.items():
        assert 0 <= top < bottom <= image.shape[0] and 0 <= left < right <= image.shape[1]
        if name.split("/")[0] in ("input", "ours", "truth"):
            assert (bottom - top, right - left) == (HEIGHT * scale, report.TILE_WIDTH)
    # rows of the grid go input, ours, truth; frames left to right
    assert boxes["input/0"][0] < boxes["ours/0"][0] < boxes["truth/0"][0] < boxes["profile/ours"][0]
    assert boxes["input/0"][1] < boxes["input/5"][1]
    assert boxes["profile/ours"][2] < boxes["curves/psnr"][0]

    def tile(name):
        top, left, bottom, right = boxes[name]
        return image[top:bottom, left:right]

    # the hole (rows 10-20, columns 15-24 of the frame) is tinted red in the input tile
    hole_centre = tile("input/0")[int(15 * scale), int(20 * scale)]
    assert hole_centre[0] > 100 and hole_centre[1] < 10 and hole_centre[2] < 10
    np.testing.assert_array_equal(tile("ours/5")[int(15 * scale), int(20 * scale)], [128] * 3)
    np.testing.assert_array_equal(tile("truth/5")[::int(scale), ::int(scale)], truth[5])
    # the profile is row 15 (the hole's centre row) of every frame, top to bottom
    profile = tile("profile/truth")
    repeat = profile.shape[0] // NUM_FRAMES
    np.testing.assert_array_equal(profile[::repeat, ::int(scale)], truth[:, 15])
    # the curve panels hold drawn (coloured) lines
    for name in ("curves/psnr", "curves/loss"):
        panel = tile(name).astype(int)
        assert (np.ptp(panel, axis=-1) > 60).sum() > 50


def test_report_without_truth_or_logs(tmp_path):
    frames, masks, filled, _ = _clip()
    boxes = report.write_report(tmp_path / "r.png", frames=frames, masks=masks, filled=filled)
    assert sorted(boxes) == sorted([f"{k}/{t}" for k in ("input", "ours") for t in (0, 2, 3, 5)]
                                   + ["profile/input", "profile/ours"])
    assert (tmp_path / "r.png").stat().st_size > 0


def test_report_rejects_mismatched_shapes(tmp_path):
    frames, masks, filled, _ = _clip()
    with pytest.raises(ValueError, match="filled"):
        report.write_report(tmp_path / "r.png", frames=frames, masks=masks, filled=filled[:3])
    assert not (tmp_path / "r.png").exists()


def test_read_scalars_tolerates_a_file_still_being_written(tmp_path):
    _write_events(tmp_path)
    event_file = next(p for p in tmp_path.glob("*tfevents*"))
    event_file.write_bytes(event_file.read_bytes()[:-7])  # cut the last record short
    scalars = report.read_scalars(tmp_path)
    assert [s for s, _ in scalars["loss/total"]] == [0, 10, 20, 30, 40]
