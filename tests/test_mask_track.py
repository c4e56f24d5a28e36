"""Tracking the annotated object as a whole (tfinpaint.mask_track): its motion estimate against a
background that moves otherwise, and the tracked masks on the generated clip."""

import cv2
import numpy as np

from test_propagate import make_clip
from tfinpaint.mask_track import object_motion, track_masks


def _textured(shape, seed):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 2.5 - 190, 0, 255).astype(np.uint8)


def test_object_motion_is_the_objects_not_the_backgrounds():
    # a textured square moves by (+2, -1) px while the whole background moves by (-6, 0) px:
    # dense pyramidal flow would hand the small object the background's motion
    height, width, size = 96, 128, 28
    scene = _textured((height, width + 12), seed=1)
    patch = _textured((size, size), seed=2)
    frames, masks = [], []
    for shift, (x, y) in ((0, (50, 40)), (6, (52, 39))):
        image = scene[:, shift:shift + width].copy()
        image[y:y + size, x:x + size] = patch
        mask = np.zeros((height, width), np.uint8)
        mask[y:y + size, x:x + size] = 1
        frames.append(image)
        masks.append(mask)
    motion, translation, support = object_motion(frames[0], frames[1], masks[0], None)
    np.testing.assert_allclose(translation, [2.0, -1.0], atol=0.25)
    np.testing.assert_allclose(motion[:, :2], np.eye(2), atol=0.03)
    assert support > 0.3  # points whose window straddles the edge see both motions
    moved = cv2.warpAffine(masks[0].astype(np.float32), motion, (width, height)) > 0.5
    assert (moved & (masks[1] > 0)).sum() / (moved | (masks[1] > 0)).sum() > 0.9


def test_object_motion_is_none_without_enough_points():
    frame = _textured((32, 32), seed=3)
    mask = np.zeros((32, 32), np.uint8)
    mask[10, 10] = 1
    assert object_motion(frame, frame, mask, None) is None


def test_track_follows_the_generated_object_and_goes_backwards():
    # 24 frames: the checkered ellipse crosses a panning background at about 2.5 px a frame; the
    # track keeps it whole for 16 frames, where the flow warp (mask_warp) loses it within 6
    frames, masks = make_clip(num_frames=24)
    track = track_masks(frames, 0, masks[0])
    assert track.masks.shape == masks.shape and track.masks.dtype == np.uint8
    np.testing.assert_array_equal(track.masks[0], masks[0])
    assert track.support[0] == 1.0 and ((0 <= track.support) & (track.support <= 1)).all()
    truth, found = masks[:16, ..., 0] > 0, track.masks[:16, ..., 0] > 0
    recall = (truth & found).sum(axis=(1, 2)) / truth.sum(axis=(1, 2))
    iou = (truth & found).sum(axis=(1, 2)) / (truth | found).sum(axis=(1, 2))
    assert recall.min() >= 0.9 and iou.min() >= 0.85, (recall.round(2), iou.round(2))
    # from a later frame, backwards to the first
    middle = track_masks(frames, 8, masks[8])
    truth, found = masks[:9, ..., 0] > 0, middle.masks[:9, ..., 0] > 0
    assert ((truth & found).sum(axis=(1, 2)) / (truth | found).sum(axis=(1, 2))).min() >= 0.8
