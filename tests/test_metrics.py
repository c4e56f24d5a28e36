"""Known values of the scores and of the Telea baseline."""

import math

import cv2
import numpy as np
import pytest

from tfinpaint.evaluation import metrics


def _texture(height, width, seed=0):
    """A smooth random RGB texture (corners for optical flow, no aliasing)."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def _pan(num_frames=5, height=48, width=64, step=2):
    """A textured scene translated `step` px to the right per frame."""
    scene = _texture(height, width + step * num_frames)
    return np.stack([scene[:, step * (num_frames - t):step * (num_frames - t) + width]
                     for t in range(num_frames)])


def _box_masks(num_frames, height, width, top=16, left=24, size=16):
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    masks[:, top:top + size, left:left + size] = 1
    return masks


def test_identical_frames_score_perfectly():
    frames = np.repeat(_texture(40, 48)[None], 3, axis=0)  # a static scene
    masks = _box_masks(3, 40, 48, top=12, left=12)
    scores = metrics.score(frames, frames, masks)
    assert scores["psnr"] == scores["psnr_hole"] == metrics.PSNR_CAP
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ssim_hole"] == pytest.approx(1.0, abs=1e-6)
    assert scores["warping_error"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift", [1, 5, 20])
def test_constant_shift_gives_closed_form_psnr(shift):
    truth = np.random.default_rng(1).integers(0, 200, (2, 24, 32, 3)).astype(np.uint8)
    pred = truth + np.uint8(shift)
    expected = 20 * math.log10(255 / shift)
    assert metrics.psnr(pred, truth) == pytest.approx(expected, abs=1e-4)
    assert metrics.psnr(pred, truth, _box_masks(2, 24, 32, 4, 4, 8)) == pytest.approx(expected)


def test_masked_psnr_counts_only_hole_pixels():
    truth = np.full((2, 24, 32, 3), 100, np.uint8)
    masks = _box_masks(2, 24, 32, top=4, left=4, size=8)
    pred = truth.copy()
    pred[masks[..., 0] == 0] = 0   # ruin every known pixel
    pred[masks[..., 0] == 1] += 10  # hole off by 10 levels
    assert metrics.psnr(pred, truth, masks) == pytest.approx(20 * math.log10(255 / 10))
    assert metrics.psnr(pred, truth) < 12


def test_masked_ssim_sees_damage_only_inside_the_hole():
    truth = _texture(40, 48)[None]
    masks = _box_masks(1, 40, 48, top=12, left=12)
    pred = truth.copy()
    pred[0, :6] = 0  # damage far from the hole (top rows)
    assert metrics.ssim(pred, truth, masks) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ssim(pred, truth) < 0.95


def test_warping_error_small_for_a_consistent_fill_of_a_pan_large_for_flicker():
    truth = _pan()
    masks = _box_masks(*truth.shape[:3])
    assert metrics.warping_error(truth, truth, masks) < 1.0
    noise = np.random.default_rng(2).normal(0, 20, truth.shape)
    flicker = np.where(masks == 1, np.clip(truth + noise, 0, 255), truth).astype(np.uint8)
    assert metrics.warping_error(flicker, truth, masks) > 10.0


def test_telea_leaves_known_pixels_bit_exact_and_fills_the_hole():
    frames = _pan(num_frames=2)
    masks = _box_masks(*frames.shape[:3])
    blanked = np.where(masks == 1, 0, frames).astype(np.uint8)
    filled = metrics.telea_baseline(blanked, masks)
    known = masks[..., 0] == 0
    assert filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[known], blanked[known])
    assert filled[~known].mean() > 40  # no longer the black blank
