import time

import cv2
import numpy as np
import pytest

from tfinpaint.io.sample import make_sample


@pytest.fixture(scope="module")
def clip():
    return make_sample()


def _in_frame_j(clip, i, j, ys, xs):
    """Where frame i's pixels (ys, xs) show up in frame j, by the known camera path."""
    dx, dy = clip.camera[i] - clip.camera[j]
    return np.round(ys + dy).astype(int), np.round(xs + dx).astype(int)


def test_shapes_and_types(clip):
    assert clip.frames.shape == clip.truth.shape == (24, 112, 192, 3)
    assert clip.masks.shape == (24, 112, 192, 1)
    assert clip.frames.dtype == clip.truth.dtype == clip.masks.dtype == np.uint8
    assert set(np.unique(clip.masks)) == {0, 1}
    assert clip.camera.shape == (24, 2)
    assert clip.fps == 25.0
    small = make_sample(num_frames=5, height=48, width=80, seed=3)
    assert small.frames.shape == (5, 48, 80, 3) and small.masks.shape == (5, 48, 80, 1)


def test_deterministic_per_seed(clip):
    again = make_sample()
    for name in ("frames", "masks", "truth", "camera"):
        np.testing.assert_array_equal(getattr(clip, name), getattr(again, name))
    assert not np.array_equal(make_sample(seed=1).truth, clip.truth)


def test_fast():
    start = time.perf_counter()
    make_sample()
    assert time.perf_counter() - start < 1.0


def test_object_is_inside_the_mask_with_a_margin(clip):
    hole = clip.masks[..., 0].astype(bool)
    changed = np.any(clip.frames != clip.truth, axis=-1)
    assert changed.any(axis=(1, 2)).all()  # the object is in every frame
    assert not changed[~hole].any()  # outside the hole the frames are the truth
    for i in range(len(hole)):
        near_object = cv2.dilate(changed[i].astype(np.uint8), np.ones((3, 3), np.uint8))
        assert hole[i][near_object > 0].all()
    # about a fifth of the frame high
    heights = [np.ptp(np.nonzero(hole[i].any(axis=1))[0]) + 1 for i in range(len(hole))]
    assert 0.15 * 112 < np.mean(heights) < 0.4 * 112


def test_background_is_textured_and_moves(clip):
    assert clip.truth.std(axis=(1, 2)).min() > 30
    assert np.abs(np.diff(clip.truth.astype(int), axis=0)).mean() > 5


def test_camera_path_matches_the_truth(clip):
    """Frame j warped by the camera offset reproduces frame i where both see the scene."""
    for i, j in [(0, 5), (10, 11), (23, 17)]:
        dx, dy = clip.camera[j] - clip.camera[i]
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        warped = cv2.warpAffine(clip.truth[j], shift, (192, 112), flags=cv2.INTER_LINEAR,
                                borderValue=(-1, -1, -1))
        seen = cv2.warpAffine(np.ones((112, 192), np.uint8), shift, (192, 112),
                              flags=cv2.INTER_NEAREST)
        seen = cv2.erode(seen, np.ones((5, 5), np.uint8)).astype(bool)
        error = np.abs(warped.astype(int) - clip.truth[i])[seen]
        assert seen.mean() > 0.3 and error.mean() < 4


def test_hidden_background_is_visible_in_another_frame(clip):
    hole = clip.masks[..., 0].astype(bool)
    # one pixel of slack around every hole, for the sub-pixel camera motion
    near_hole = np.stack([cv2.dilate(h.astype(np.uint8), np.ones((3, 3), np.uint8)) for h in hole])
    n, height, width = hole.shape
    for i in range(n):
        ys, xs = np.nonzero(hole[i])
        visible = np.zeros(len(ys), bool)
        for j in range(n):
            if j == i:
                continue
            yj, xj = _in_frame_j(clip, i, j, ys, xs)
            inside = (yj >= 0) & (yj < height) & (xj >= 0) & (xj < width)
            yj, xj = np.clip(yj, 0, height - 1), np.clip(xj, 0, width - 1)
            visible |= inside & (near_hole[j, yj, xj] == 0)
        assert visible.mean() > 0.99, f"frame {i}: only {visible.mean():.1%} seen elsewhere"


def test_per_frame_diffusion_fill_is_clearly_imperfect(clip):
    hole = clip.masks[..., 0].astype(bool)
    errors = []
    for frame, mask, truth, h in zip(clip.frames, clip.masks, clip.truth, hole):
        filled = cv2.inpaint(frame, mask, 3, cv2.INPAINT_TELEA)
        errors.append((filled.astype(float) - truth)[h] ** 2)
    psnr = 10 * np.log10(255 ** 2 / np.concatenate(errors).mean())
    assert psnr < 28
