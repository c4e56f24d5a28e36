"""Redrawing propagated object masks as what differs from the background the other frames show
(`propagate.background_passes`).

Each pass grows every frame's mask by `reach` of the frame's longer side into a hole, fills the
holes from the other frames with the flow fill (`tfinpaint.fill.flow.fill_clip`, the `flow` settings),
and keeps as object the hole's pixels whose colour differs from that fill by more than
`threshold` (`colour_distance`: 8-bit Lab after a `BLUR_SIGMA` blur), closed by `CLOSE_RADIUS` and
opened by `OPEN_RADIUS`. Where no frame shows the background (the fill's push-pull fallback) the
mask stays as it was. Each pass starts from the last one's masks, at `masking.motion.motion_size`;
with `fine_side` the last runs at the frames' own size (longer side at most `fine_side`). The
annotated frame keeps its mask, and its hole is filled too, so its object is not copied into the
others' fills. It finds only what lies within `reach` of a mask, and keeps the mask of an object
no frame shows the background behind. Why and what was measured: docs/mask_propagation.md.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from tfinpaint.config import FlowConfig
from tfinpaint.fill.flow import fill_clip
from tfinpaint.io.clip import resize_frames
from tfinpaint.masking.motion import motion_size
from tfinpaint.io.video import hole_disc
from tfinpaint.masking.shapes import shrink_mask

# Both images are blurred by this Gaussian (px at the working size) before their colours are
# compared.
BLUR_SIGMA = 1.0
# The difference's object is closed with a disc of this radius, then opened with this one (px
# at the working size).
CLOSE_RADIUS = 2
OPEN_RADIUS = 1


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA),
                        cv2.COLOR_RGB2LAB).astype(np.float32)


def colour_distance(image: np.ndarray, other: np.ndarray) -> np.ndarray:
    """float32 [H, W]: the Euclidean distance of two uint8 RGB images' colours in OpenCV's 8-bit
    Lab, each blurred by `BLUR_SIGMA` px first."""
    return np.linalg.norm(_lab(image) - _lab(other), axis=-1)


def differs_from_fill(frame: np.ndarray, fill: np.ndarray, hole: np.ndarray, seen: np.ndarray,
                      mask: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 [H, W] 0/1: the pixels of `hole` where `frame` differs from its `fill` (uint8 RGB)
    by more than `threshold`, where `seen` (the fill came from another frame); elsewhere in the
    hole `mask` as it was; closed and opened."""
    hole, seen = hole > 0, seen > 0
    differs = colour_distance(frame, fill) > threshold
    found = np.where(seen, differs, mask > 0) & hole
    closed = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_CLOSE, hole_disc(CLOSE_RADIUS))
    return cv2.morphologyEx(closed, cv2.MORPH_OPEN, hole_disc(OPEN_RADIUS))


def fine_size(height: int, width: int, side: int) -> tuple[int, int]:
    """The size of the last pass: the frames' own, the longer side at most `side` px (0: the
    other passes' `motion.motion_size`)."""
    if side <= 0:
        return motion_size(height, width)
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def subtract_background(frames: np.ndarray, masks: np.ndarray, *, keep: int, settings: FlowConfig,
                        reach: float, threshold: float, passes: int, fine_side: int = 0,
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Every frame's mask (uint8 [N, H, W] 0/1) but frame `keep`'s (the annotated one) redrawn as
    what differs from the background the other frames (uint8 [N, H, W, 3]) show; see the
    module's docstring. The last of the `passes` runs at `fine_size(..., fine_side)`, the others
    at `motion.motion_size`. `settings`: the flow fill's; `progress(passes done)` after
    each pass."""
    masks = np.asarray(masks, np.uint8)
    height, width = masks.shape[1:3]
    resized: dict[tuple[int, int], np.ndarray] = {}  # the frames at each pass's size, once
    if progress:
        progress(0)
    for done in range(passes):
        last = done == passes - 1
        size = fine_size(height, width, fine_side) if last else motion_size(height, width)
        if size not in resized:
            resized[size] = resize_frames(frames, *size)
        small_frames = resized[size]
        # mostly object at the pass's size: a pass does not grow the masks it keeps
        small = np.stack([shrink_mask(mask, size) for mask in masks])
        grow = hole_disc(max(1, round(reach * max(size))))
        holes = np.stack([cv2.dilate(mask, grow) for mask in small])
        fill = fill_clip(small_frames, holes, settings)
        redrawn = masks.copy()
        for index in range(len(masks)):
            if index == keep or not holes[index].any():
                continue
            found = differs_from_fill(small_frames[index], fill.filled[index], holes[index],
                                      fill.found[index, ..., 0], small[index], threshold)
            redrawn[index] = found if size == (height, width) else cv2.resize(
                found.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
        masks = redrawn
        if progress:
            progress(done + 1)
    return masks
