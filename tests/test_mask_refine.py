"""Redrawing a coarse object mask by colour at the frame's resolution (tfinpaint.mask_refine)."""

import cv2
import numpy as np

from tfinpaint.mask_refine import refine_mask, refine_masks


def _scene(seed=0):
    """A reddish figure (a body and a thin arm) on green and grey noise, its true mask, and the
    mask a small blobby map gives for it: brought up 4x, smoothed, grown by 4 px."""
    rng = np.random.default_rng(seed)
    frame = np.empty((120, 160, 3), np.uint8)
    frame[...] = rng.integers(0, 60, frame.shape)
    frame[..., 1] += rng.integers(60, 140, frame.shape[:2]).astype(np.uint8)
    truth = np.zeros(frame.shape[:2], np.uint8)
    cv2.ellipse(truth, (70, 60), (14, 30), 0, 0, 360, 1, -1)
    cv2.line(truth, (70, 50), (100, 40), 1, 3)
    frame[truth > 0] = (200, 60, 50) + rng.integers(-20, 20, (int(truth.sum()), 3))
    small = cv2.resize(truth.astype(np.float32), (40, 30), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(cv2.GaussianBlur(small, (3, 3), 1.0), (160, 120)) > 0.3
    coarse = cv2.dilate(coarse.astype(np.uint8), np.ones((9, 9), np.uint8))
    return frame, truth, coarse


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_refine_snaps_a_coarse_mask_to_the_object():
    frame, truth, coarse = _scene()
    before = _iou(coarse > 0, truth > 0)
    assert before < 0.6
    # the defaults: a thin certain core, so that what the coarse mask missed can still join
    refined = refine_mask(frame, coarse, core=0.05, band=0.15, iterations=3)
    assert refined.dtype == np.uint8 and refined.shape == truth.shape
    assert _iou(refined > 0, truth > 0) >= before + 0.1
    assert (refined & truth).sum() >= 0.95 * truth.sum()  # the thin arm too
    # a thicker certain core pins the object's colours down: the outline snaps to it
    snapped = refine_mask(frame, coarse, core=0.1, band=0.15, iterations=3)
    assert _iou(snapped > 0, truth > 0) >= 0.95


def test_refine_masks_keeps_the_annotated_frame_and_empty_masks():
    frame, truth, coarse = _scene()
    frames = np.stack([frame, frame, frame])
    masks = np.stack([coarse, coarse, np.zeros_like(coarse)])
    done = []
    refined = refine_masks(frames, masks, keep=0, core=0.05, band=0.15, iterations=3,
                           progress=done.append)
    np.testing.assert_array_equal(refined[0], coarse)  # the annotated frame's mask is the user's
    np.testing.assert_array_equal(
        refined[1], refine_mask(frame, coarse, core=0.05, band=0.15, iterations=3))
    assert not refined[2].any()
    assert done == [1, 2, 3]
    # a mask too small to learn the colours from is left as it is
    dot = np.zeros_like(coarse)
    dot[60, 70] = 1
    np.testing.assert_array_equal(refine_mask(frame, dot, core=0.05, band=0.15, iterations=3), dot)
