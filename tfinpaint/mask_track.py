"""Tracking one annotated object mask by the object's own motion: a prior for mask propagation.

The dense flow of `tfinpaint.mask_warp` fails where the camera follows a small object across a
fast background: DIS' coarse-to-fine pyramid gives the object the background's motion, and where
a near tree passes in front of the object, the occluder's motion. Here the object is tracked as a
whole, hop by hop:

- points on a grid inside the previous frame's mask are followed into the next frame by
  pyramidal Lucas-Kanade (a small window each: the background's motion enters only at the edge)
  and back again; points that do not come back within `max_error` px are dropped;
- the hop's translation is the mode of the points' displacements (a kernel density of width
  `bandwidth` px, weighted towards the previous hop's translation: the object moves smoothly,
  an occluder crossing it does not), refined as the median over the points near that mode; its
  scale is the median ratio of distances between pairs of those points, within
  `1 +- max_scale_change`;
- where fewer than `min_support` of the points agree (the object hidden or blurred), the
  previous hop's motion is kept (coasting through the occlusion).

Each frame's mask is the annotated mask moved by the accumulated similarity: its shape does not
change, which is what a learned corrector (`propagate.method: track_network`) is for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class MaskTrack:
    """Attributes:
        masks: uint8 [N, H, W, 1] 0/1, the tracked masks (the annotated frame's is the annotation).
        support: float32 [N], each hop's fraction of points agreeing on the motion (0 where the
            tracker coasted; 1 on the annotated frame).
        seconds: the time taken.
    """

    masks: np.ndarray
    support: np.ndarray
    seconds: float


def _similarity(scale: float, centre: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """2x3 float32: scaling by `scale` about `centre`, then moving by `shift` (x, y)."""
    offset = centre + shift - scale * centre
    return np.float32([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])


def object_motion(previous: np.ndarray, current: np.ndarray, mask: np.ndarray,
                  velocity: np.ndarray | None, *, step: int = 3, window: int = 15,
                  max_error: float = 1.0, bandwidth: float = 1.5, max_points: int = 600,
                  max_scale_change: float = 0.02) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The similarity (2x3 float32, previous -> current pixel coordinates) that moves the object
    under `mask` (uint8 [H, W]) of the grey frame `previous` into `current` (uint8 [H, W]), its
    translation (x, y) and its support (the fraction of points agreeing); None where too few
    points are followed.
    `velocity`: the previous hop's translation (x, y), preferred among the displacements' modes.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) > max_points * step * step:  # a large object: a coarser grid, the same cost
        step = int(np.ceil(np.sqrt(len(ys) / max_points)))
    on_grid = (ys % step == 0) & (xs % step == 0)
    start = np.stack([xs[on_grid], ys[on_grid]], axis=1).astype(np.float32).reshape(-1, 1, 2)
    if len(start) < 6:
        return None
    lucas_kanade = dict(winSize=(window, window), maxLevel=3,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    end, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, **lucas_kanade)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, end, None, **lucas_kanade)
    error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    followed = (found[:, 0] > 0) & (found_back[:, 0] > 0) & (error < max_error)
    start, end = start.reshape(-1, 2)[followed], end.reshape(-1, 2)[followed]
    if len(start) < 6:
        return None
    displacement = end - start
    # the mode of the displacements, preferring the previous hop's
    expected = np.median(displacement, axis=0) if velocity is None else velocity
    squared = np.sum((displacement[:, None] - displacement[None]) ** 2, axis=-1)
    density = np.exp(-squared / (2 * bandwidth ** 2)).sum(axis=1)
    density *= np.exp(-np.sum((displacement - expected) ** 2, axis=1) / (2 * (4 * bandwidth) ** 2)) + 0.1
    mode = displacement[np.argmax(density)]
    agree = np.sum((displacement - mode) ** 2, axis=1) < (2 * bandwidth) ** 2
    start, end = start[agree], end[agree]
    shift = np.median(end - start, axis=0)
    pairs = np.random.default_rng(0).integers(0, len(start), (2, 400))
    before = np.linalg.norm(start[pairs[0]] - start[pairs[1]], axis=1)
    after = np.linalg.norm(end[pairs[0]] - end[pairs[1]], axis=1)
    apart = before > 5
    scale = (float(np.clip(np.median(after[apart] / before[apart]), 1 - max_scale_change,
                           1 + max_scale_change)) if apart.sum() > 10 else 1.0)
    support = float(agree.mean() * followed.mean())
    return _similarity(scale, np.median(start, axis=0), shift), shift, support


def track_masks(frames: np.ndarray, frame: int, mask: np.ndarray, *, step: int = 3,
                window: int = 15, bandwidth: float = 1.5, min_support: float = 0.15,
                max_scale_change: float = 0.02) -> MaskTrack:
    """Tracks `mask` (uint8 [H, W, 1] or [H, W], non-zero = object) of `frames[frame]` (uint8
    [N, H, W, 3]) forwards to the last frame and backwards to the first; see the module's
    docstring."""
    began = time.perf_counter()
    frames = np.asarray(frames)
    num_frames, height, width = frames.shape[:3]
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in frames]
    annotated = (np.asarray(mask).reshape(height, width) > 0).astype(np.float32)
    masks = np.zeros((num_frames, height, width), np.uint8)
    support = np.ones(num_frames, np.float32)
    masks[frame] = annotated > 0
    for order in (range(frame + 1, num_frames), range(frame - 1, -1, -1)):
        moved = np.eye(3, dtype=np.float32)  # annotated frame -> this frame
        hop = np.eye(2, 3, dtype=np.float32)
        velocity = None
        for t in order:
            previous = t - 1 if t > frame else t + 1
            motion = object_motion(grey[previous], grey[t], masks[previous], velocity, step=step,
                                   window=window, bandwidth=bandwidth,
                                   max_scale_change=max_scale_change)
            if motion is None or motion[2] < min_support:
                support[t] = 0.0  # coast: the object is hidden or blurred
            else:
                hop, velocity, support[t] = motion
            moved = np.vstack([hop, [0.0, 0.0, 1.0]]) @ moved
            masks[t] = cv2.warpAffine(annotated, moved[:2], (width, height),
                                      flags=cv2.INTER_LINEAR) > 0.5
    return MaskTrack(masks=masks[..., None], support=support, seconds=time.perf_counter() - began)
