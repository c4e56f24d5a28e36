"""Redrawing propagated object masks as what differs from the background the other frames show
(`propagate.background_passes`).

A propagated mask is a blob: where the object is, give or take a halo of background around it
(the flow's smoothing gives the background next to a moving object its motion) and a missed
thin part. The video itself says which pixels are object: the background behind a moving object
is seen in other frames, where the object has moved on, and the flow propagation that fills
inpainting holes (`tfinpaint.fill.flow`) brings it here. So each frame's mask, grown by `reach` of the
frame's longer side (room for what the blob missed), becomes a hole, the hole is filled from the
other frames with the `flow` settings, and the object is where the frame differs from that fill:
the Euclidean distance of the two colours in OpenCV's 8-bit Lab (each image blurred by
`BLUR_SIGMA` px first, so that a fill half a pixel off on a fine texture does not count) above
`threshold`. What no frame shows (the push-pull fallback of the fill) keeps its mask as it was.
The result is closed (a disc of `CLOSE_RADIUS`: a wheel's spokes, a shirt's creases) and opened
(`OPEN_RADIUS`: specks). Each pass starts from the last one's masks; a second pass fills the background from a
hole that no longer misses parts of the object (which the first fill may have copied in from a
neighbour). Everything runs at `motion.motion_size` (the longer side at most 432 px), the
masks then brought up to the frames' size; with `fine_side` the last pass runs at the frames'
own size (its longer side at most `fine_side`). The annotated frame keeps the user's mask, and its
hole is filled too, so that its object is not copied into the others' fills.

Measured with `python -m tfinpaint.propagate` (scored by `tools/score_masks.py` against the
annotations, undilated, recall / precision / IoU over all frames; 2 CPU cores):
- DAVIS bmx-trees from annotations/00000.png, 80 frames, the `motion` masks (tracked,
  unrefined): 0.81 / 0.32 / 0.31; one pass (threshold 12, reach 0.03) 0.93 / 0.64 / 0.61; two
  0.94 / 0.66 / 0.63; three (the default) 0.94 / 0.66 / 0.63, the missed wheels found further
  out (frame 20: recall 0.79 with two, 0.88 with three); four 0.94 / 0.66 / 0.63. 37 s in all
  with three passes (about 13 s a pass). Reach 0.05: 0.95 / 0.60 / 0.58 (two passes), 0.95 /
  0.54 / 0.52 (three): the hole takes in more of the trunk and branches the fill gets wrong.
  Threshold 15 (two passes) 0.90 / 0.71 / 0.66, 20: 0.84 / 0.77 / 0.67: IoU for recall, which
  a removal cannot spare. One pass at threshold 15 from the masks refined by GrabCut
  (`propagate.refine`, the earlier default) 0.90 / 0.70 / 0.65, from the unrefined ones
  0.89 / 0.70 / 0.64: the refinement before it buys nothing, and after it costs much (0.75 /
  0.71 / 0.56: it cuts the wheels again). The last of three passes at the frames' own 854x480
  (`fine_side` 1280): 0.96 / 0.66 / 0.64 undilated, but 0.99 / 0.49 / 0.49 as written with the
  3 px dilation (against 0.97 / 0.53 / 0.52: the finer outline gains more from the dilation),
  in 76 s in all; on crossing 0.75 / 0.74 / 0.59 (against 0.76 / 0.74 / 0.59). Off by default.
- DAVIS crossing from annotations/00000.png (three walkers, a still camera), 52 frames: the
  `motion` masks refined by GrabCut 0.64 / 0.83 / 0.55; the default's passes, two 0.72 / 0.79 /
  0.59, three 0.76 / 0.74 / 0.59, four 0.80 / 0.71 / 0.59 (they regain parts of the walkers the
  motion maps missed). Deciding the pixels no frame shows by the difference too (against the
  push-pull guess) instead of keeping their mask: 0.76 / 0.66 / 0.55 against 0.73 / 0.77 /
  0.59 (two passes at threshold 15, refined start).
- The `track` masks of two 4-minute fits (bmx-trees): 0.69 / 0.31 / 0.28 and 0.40 / 0.26 /
  0.22 as tracked; two passes 0.94 / 0.48 / 0.47 and 0.77 / 0.39 / 0.37.
What it cannot do: find an object the blob missed entirely (it looks only within `reach` of it),
or tell an object from a background the other frames never show behind it (an object that stays
put: there the fill is the push-pull guess and the mask stays as it was). A shadow the object
casts within reach of its mask differs from the background as well, and so should be taken with
it (what a removal wants; not measured: neither clip has one).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from tfinpaint.config import FlowConfig
from tfinpaint.fill.flow import fill_clip
from tfinpaint.io.clip import resize_frames
from tfinpaint.masking.motion import motion_size
from tfinpaint.masking.shapes import disk, shrink_mask

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
    closed = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_CLOSE, disk(CLOSE_RADIUS))
    return cv2.morphologyEx(closed, cv2.MORPH_OPEN, disk(OPEN_RADIUS))


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
        grow = disk(max(1, round(reach * max(size))))
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
