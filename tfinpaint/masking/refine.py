"""Refining propagated object masks by colour at the frames' own resolution (`propagate.refine`).

`refine_mask` redraws a mask with GrabCut (`cv2.grabCut`) in a crop around it: the mask eroded
by `core` times the object's size is certain object, the rest of the mask probable object, a
band of `band` times the object's size around it probable background, beyond it background.

With `motion` (`propagate.refine_motion`), `motion_labels` seeds the cut from the frame's flow
towards the annotated frame (`masking.motion.flows_towards`): the background's motion is the median
in a ring around the mask, the object's the median of the mask's pixels moving unlike it; mask
pixels moving like the background become probable background, interior pixels moving like the
object certain object. Where the two motions are within `2 * MOTION_SEPARATION` px, the cut is
by colour alone. What it was measured to give: docs/mask_propagation.md.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from tfinpaint.masking.motion import MOTION_SIDE, flows_towards, motion_size
from tfinpaint.io.video import hole_disc
from tfinpaint.masking.shapes import shrink_mask


# cv2.grabCut fits a Gaussian mixture of this many components to each side's colours.
GMM_COMPONENTS = 5
# The motion cue: the object's motion estimated from the mask's pixels moving more than this
# many px (at motion.MOTION_SIDE) differently from the background, when they are at least
# this share of the mask ...
MOTION_SEPARATION = 1.5
MOTION_SHARE = 0.15
# ... and a pixel moving like one side where its flow is this many times nearer that side's.
MOTION_RATIO = 0.5
# The background's motion: the median over a ring this many times the object's size wide.
MOTION_RING = 0.3


def motion_labels(mask: np.ndarray, flow: np.ndarray) -> np.ndarray | None:
    """Which pixels move like the object and which like the background around it: int8 [H, W],
    1 (object), -1 (background) or 0 (neither, or outside the mask's reach), for `mask` (uint8
    [H, W] 0/1) and the frame's `flow` ([H, W, 2] into its neighbour, px) at the same size; None
    where the object's motion cannot be told from the background's (see the module's
    docstring)."""
    inside = mask > 0
    if not inside.any():
        return None
    ys, xs = np.nonzero(inside)
    size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    ring = (cv2.dilate(mask, hole_disc(max(2, round(MOTION_RING * size)))) > 0) & ~(
        cv2.dilate(mask, hole_disc(2)) > 0)
    if ring.sum() < GMM_COMPONENTS:
        return None
    background = np.median(flow[ring], axis=0)
    from_background = np.linalg.norm(flow - background, axis=-1)
    moving = inside & (from_background > MOTION_SEPARATION)
    if moving.sum() < MOTION_SHARE * inside.sum():
        return None
    motion = np.median(flow[moving], axis=0)
    if np.linalg.norm(motion - background) < 2 * MOTION_SEPARATION:
        return None
    from_object = np.linalg.norm(flow - motion, axis=-1)
    labels = np.zeros(mask.shape, np.int8)
    labels[from_object < MOTION_RATIO * from_background] = 1
    labels[from_background < MOTION_RATIO * from_object] = -1
    return labels


def video_motion(frames: np.ndarray, masks: np.ndarray, keep: int,
                 flows: dict[int, np.ndarray] | None = None) -> list[np.ndarray | None]:
    """`motion_labels` of every frame's mask (uint8 [N, H, W] 0/1) at the frames' (uint8
    [N, H, W, 3]) own size, each from its flow towards the annotated frame `keep`
    (`motion.flows_towards`, measured here unless given; None for `keep` and where the
    motion says nothing)."""
    num_frames, height, width = masks.shape
    size = motion_size(height, width)
    if flows is None:
        flows = flows_towards(frames, keep, which=[i for i, mask in enumerate(masks)
                                                   if i != keep and mask.any()])
    found: list[np.ndarray | None] = []
    for index, mask in enumerate(masks):
        if index == keep or not mask.any():
            found.append(None)
            continue
        flow = flows[index]
        shrunk = shrink_mask(mask, size)
        labels = motion_labels(shrunk, flow * (MOTION_SIDE / max(size)))  # px at MOTION_SIDE
        found.append(None if labels is None else cv2.resize(
            labels, (width, height), interpolation=cv2.INTER_NEAREST))
    return found


def refine_mask(frame: np.ndarray, mask: np.ndarray, *, core: float, band: float,
                iterations: int, motion: np.ndarray | None = None) -> np.ndarray:
    """`mask` (uint8 [H, W] 0/1) redrawn on `frame` (uint8 [H, W, 3] RGB) by GrabCut; see the
    module's docstring. `motion`: the frame's `motion_labels` at its size, or None. An empty
    mask stays empty."""
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
    labels[cv2.dilate(inside, hole_disc(margin)) > 0] = cv2.GC_PR_BGD
    labels[inside > 0] = cv2.GC_PR_FGD
    certain = cv2.erode(inside, hole_disc(max(1, round(core * size)))) if core > 0 else inside * 0
    if motion is not None:
        moves = motion[top:bottom, left:right]
        labels[(inside > 0) & (moves < 0)] = cv2.GC_PR_BGD
        certain = ((certain > 0) & (moves >= 0)) | ((cv2.erode(inside, hole_disc(2)) > 0) & (moves > 0))
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
                 iterations: int, motion: bool = False,
                 flows: dict[int, np.ndarray] | None = None,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Every frame's mask (uint8 [N, H, W] 0/1) refined on its frame (uint8 [N, H, W, 3]) but
    frame `keep`'s (the annotated one), with the motion cue where `motion` (from `flows`, the
    `motion.flows_towards` of the frames, if already measured); `progress(frames done)`
    after each."""
    refined = masks.copy()
    labels = video_motion(frames, masks, keep, flows) if motion else [None] * len(masks)
    for index, (frame, mask) in enumerate(zip(frames, masks)):
        if index != keep:
            refined[index] = refine_mask(frame, mask, core=core, band=band, iterations=iterations,
                                         motion=labels[index])
        if progress:
            progress(index + 1)
    return refined
