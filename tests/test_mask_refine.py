"""Redrawing a coarse object mask by colour at the frame's resolution (tfinpaint.masking.refine)."""

import cv2
import numpy as np

from tfinpaint.masking.refine import motion_labels, refine_mask, refine_masks, video_motion


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


def _panning_scene(shift=6):
    """Three frames of a camera following a red figure past a wall: the wall's texture and an
    orange patch painted on it (next to the figure in frame 1; a map that has only learnt "warm
    colours" joins them) move `shift` px left per frame, the figure stays. Returns the frames, the figure's mask, and frame 1's coarse
    mask covering figure and patch."""
    rng = np.random.default_rng(3)
    height, width = 120, 200
    wall = np.empty((height, width + 3 * shift, 3), np.uint8)
    wall[...] = rng.integers(0, 60, wall.shape)
    wall[..., 1] += rng.integers(60, 140, wall.shape[:2]).astype(np.uint8)
    wall = cv2.GaussianBlur(wall, (3, 3), 0.8)  # texture DIS can follow
    patch = (slice(45, 85), slice(106 + shift, 136 + shift))  # beside the figure in frame 1
    wall[patch] = np.clip(np.array([230, 140, 40]) + rng.integers(-30, 30, (40, 30, 3)), 0, 255)
    figure = np.zeros((height, width), np.uint8)
    cv2.ellipse(figure, (85, 65), (18, 30), 0, 0, 360, 1, -1)  # smaller, DIS smooths it away
    texture = cv2.GaussianBlur(rng.integers(-60, 60, (height, width)).astype(np.float32), (3, 3), 0.8)
    colours = np.clip(np.array([190, 40, 60]) + texture[..., None], 0, 255)
    frames = []
    for t in range(3):
        frame = wall[:, t * shift:t * shift + width].copy()
        frame[figure > 0] = colours[figure > 0]
        frames.append(frame)
    coarse = cv2.dilate(figure, np.ones((7, 7), np.uint8))
    coarse[45:85, 95:136] = 1  # the network's blob: figure and patch joined
    return np.stack(frames), figure, coarse


def test_motion_tells_the_figure_from_a_look_alike_on_the_panning_wall():
    frames, figure, coarse = _panning_scene()
    masks = np.stack([figure, coarse, coarse])
    labels = video_motion(frames, masks, keep=0)
    assert labels[0] is None  # the annotated frame's mask is the user's
    moves = labels[1]
    assert moves.shape == figure.shape and moves.dtype == np.int8
    assert (moves[figure > 0] == 1).mean() > 0.8
    look_alike = (coarse > 0) & (figure == 0) & (np.arange(200) >= 106)[None, :]
    assert (moves[look_alike] == -1).mean() > 0.6

    by_colour = refine_masks(frames, masks, keep=0, core=0.05, band=0.15, iterations=3)
    by_motion = refine_masks(frames, masks, keep=0, core=0.05, band=0.15, iterations=3,
                             motion=True)
    # frame 1: the patch beside the figure. Inside one mask, figure and patch both count as
    # object for the colour model: by colour alone the patch stays; the motion puts its colours
    # on the background's side
    assert by_colour[1][look_alike].mean() > 0.9
    assert by_motion[1][look_alike].mean() < 0.1
    assert _iou(by_motion[1] > 0, figure > 0) >= _iou(by_colour[1] > 0, figure > 0) + 0.2
    # frame 2: the patch has slid against the figure's edge; the seeds are only "probably
    # background", and GrabCut may give some of it back, never more than by colour alone
    assert by_motion[2][look_alike].mean() <= by_colour[2][look_alike].mean()
    for t in (1, 2):
        assert (by_motion[t] & figure).sum() >= 0.95 * figure.sum()


def test_motion_says_nothing_where_everything_moves_alike():
    frames, figure, coarse = _panning_scene(shift=0)  # a static camera on a static scene
    labels = video_motion(frames, np.stack([figure, coarse, coarse]), keep=2)
    assert labels == [None, None, None]
    assert motion_labels(np.zeros((20, 20), np.uint8), np.zeros((20, 20, 2), np.float32)) is None
