"""Refining propagated object masks by colour at the frames' own resolution
(`propagate.refine`).

The propagation works at a small size (120x216 by default), and its network's maps are blobs:
a mask brought up to the frames' size has the object's rough outline, several pixels of
background around it, and misses thin parts. GrabCut (`cv2.grabCut`: colour models of object
and background, a graph cut) redraws the outline from the full-size frame: in a crop around the
mask, the mask eroded by `core` times the object's size is object for certain, the rest of the
mask probably object, a band of `band` times the object's size around it probably background,
and what lies beyond is background.

Measured on DAVIS bmx-trees (the `track` masks of four 4-minute fits, scored as
`tools/score_masks.py` does, 3 px dilation), mean recall / IoU over the 80 frames went from
0.85 / 0.32 to 0.91 / 0.35 (core 0.05, band 0.15, 3 iterations), in about a second per frame on
2 busy CPU cores; core 0.07 gave 0.87 / 0.38 (a larger certain core, less room to grow).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np


# cv2.grabCut fits a Gaussian mixture of this many components to each side's colours.
GMM_COMPONENTS = 5


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def refine_mask(frame: np.ndarray, mask: np.ndarray, *, core: float, band: float,
                iterations: int) -> np.ndarray:
    """`mask` (uint8 [H, W] 0/1) redrawn on `frame` (uint8 [H, W, 3] RGB) by GrabCut; see the
    module's docstring. An empty mask stays empty."""
    if not mask.any():
        return mask.copy()
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    margin = max(1, round(band * size))
    top, bottom = max(0, ys.min() - 2 * margin), min(height, ys.max() + 2 * margin + 1)
    left, right = max(0, xs.min() - 2 * margin), min(width, xs.max() + 2 * margin + 1)
    inside = mask[top:bottom, left:right]
    labels = np.full(inside.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(inside, _disk(margin)) > 0] = cv2.GC_PR_BGD
    labels[inside > 0] = cv2.GC_PR_FGD
    certain = cv2.erode(inside, _disk(max(1, round(core * size)))) if core > 0 else inside * 0
    labels[certain > 0] = cv2.GC_FGD
    object_like = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if min(object_like.sum(), (~object_like).sum()) < GMM_COMPONENTS:
        return mask.copy()  # too few pixels of one side to fit its colour model
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # its k-means starts from OpenCV's random state: the same input, the same mask
    # GrabCut reads 3-channel 8-bit images; the channel order does not matter to it
    cv2.grabCut(np.ascontiguousarray(frame[top:bottom, left:right]), labels, None, background,
                foreground, iterations, cv2.GC_INIT_WITH_MASK)
    refined = np.zeros_like(mask)
    refined[top:bottom, left:right] = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return refined


def refine_masks(frames: np.ndarray, masks: np.ndarray, *, keep: int, core: float, band: float,
                 iterations: int, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Every frame's mask (uint8 [N, H, W] 0/1) refined on its frame (uint8 [N, H, W, 3]) but
    frame `keep`'s (the annotated one); `progress(frames done)` after each."""
    refined = masks.copy()
    for index, (frame, mask) in enumerate(zip(frames, masks)):
        if index != keep:
            refined[index] = refine_mask(frame, mask, core=core, band=band, iterations=iterations)
        if progress:
            progress(index + 1)
    return refined
