"""Translated masks (eq. 1-2) and boundary-aware translation sampling (Appendix A.4).

Every op here is a TensorFlow op driven by a stateless seed, so it runs inside `tf.data` or a
compiled step with no Python per sample, and the same seed always gives the same mask.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf


def boundary_band(masks: np.ndarray, band_y: int, band_x: int) -> np.ndarray:
    """Per frame, the pixels within (band_y, band_x) of the mask's boundary, inside or outside.

    Args:
        masks: uint8 [N, H, W, 1], 1 = hole.
        band_y, band_x: half-sizes of the band in pixels at the masks' resolution.

    Returns:
        uint8 [N, H, W], 1 where a translated mask's centre counts as "near the boundary".
        A frame without a hole has an empty band (its translations stay uniform).
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_x + 1, 2 * band_y + 1))
    bands = []
    for mask in masks[..., 0]:
        grown = cv2.dilate(mask, kernel)
        shrunk = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=1)
        bands.append((grown - shrunk).astype(np.uint8))
    return np.stack(bands)


def mask_centres(masks: np.ndarray) -> np.ndarray:
    """float32 [N, 2] (y, x) centre of each mask's bounding box; the frame centre if empty."""
    n, h, w, _ = masks.shape
    centres = np.empty((n, 2), np.float32)
    for index, mask in enumerate(masks[..., 0]):
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            centres[index] = (h / 2, w / 2)
        else:
            centres[index] = ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2)
    return centres


def largest_extent(masks: np.ndarray) -> tuple[int, int]:
    """(height, width) of the largest bounding box of any frame's mask (uint8 [N, H, W, 1]), each
    taken over all frames; (0, 0) where no frame has a hole."""
    rows = masks[..., 0].any(axis=2)  # [N, H]
    cols = masks[..., 0].any(axis=1)  # [N, W]
    return _longest_span(rows), _longest_span(cols)


def _longest_span(present: np.ndarray) -> int:
    spans = [np.flatnonzero(row) for row in present]
    return max((int(s[-1] - s[0] + 1) for s in spans if len(s)), default=0)


def beside(masks: np.ndarray, max_overlap: float = 0.1, step: int = 4,
           gap: int = 8) -> np.ndarray | None:
    """A held-out tube: the clip's holes moved, all by one offset, to lie beside themselves.

    The shortest sideways move (else vertical; in `step`-px steps, circular as `translate`) after
    which at most `max_overlap` of the moved holes' area lies within `gap` px of a hole (so that
    known pixels part the two, as they surround the hole), or the move that overlaps least where
    none does. The tube hides, in every frame, what lies next to the hole
    there, moving as the hole moves: the kind of content the hole hides, not shown by the frames
    where the hole's neighbours would not show it either. Known pixels a fit never learns are
    what tell it how it fills pixels it has never seen (`tfinpaint.fitting.blend`).

    Args:
        masks: uint8 [N, H, W, 1], non-zero in the hole.

    Returns:
        uint8 [N, H, W, 1], 1 in the tube, never inside a hole; None where the masks are empty
        or the tube would be under half the holes' area.
    """
    hole = np.asarray(masks)[..., 0] != 0
    area = int(hole.sum())
    if area == 0:
        return None
    height, width = hole.shape[1:]
    coarse = hole[:, ::step, ::step]  # the search at 1/step of the size: only overlaps count
    reach = -(-gap // step)
    near = coarse.copy()
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            near |= np.roll(coarse, (dy, dx), axis=(1, 2))

    def overlap(dy: int, dx: int) -> float:
        moved = np.roll(coarse, (dy, dx), axis=(1, 2))
        return float((moved & near).sum()) / max(int(coarse.sum()), 1)

    # sideways first: what lies level with the hole is most like what it hides (the same
    # ground, the same walkers), where above and below are sky and road
    candidates = [(0, sign * d) for d in range(1, (width // step) // 2 + 1) for sign in (1, -1)]
    candidates += [(sign * d, 0) for d in range(1, (height // step) // 2 + 1) for sign in (1, -1)]
    scores = [overlap(dy, dx) for dy, dx in candidates]
    fits = [k for k, score in enumerate(scores) if score <= max_overlap]
    dy, dx = candidates[fits[0] if fits else int(np.argmin(scores))]
    tube = np.roll(hole, (dy * step, dx * step), axis=(1, 2)) & ~hole
    if tube.sum() < area / 2:
        return None
    return tube[..., None].astype(np.uint8)


def uniform_offset(seed: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """A translation (dy, dx) drawn uniformly over the whole frame (the reference's sampler)."""
    limits = tf.stack([height, width])
    return tf.random.stateless_uniform([2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32) % limits


def boundary_offset(seed: tf.Tensor, band: tf.Tensor, centre: tf.Tensor, weight: float) -> tf.Tensor:
    """A translation that puts the moved mask's centre on a pixel drawn with probability
    `weight` times higher inside `band` (uint8 [H, W]) than elsewhere.

    `centre` is the (y, x) centre of the mask being moved; the result is (dy, dx) modulo the frame.
    """
    height, width = tf.shape(band)[0], tf.shape(band)[1]
    logits = tf.math.log(1.0 + (weight - 1.0) * tf.cast(tf.reshape(band, [1, -1]), tf.float32))
    flat = tf.random.stateless_categorical(logits, 1, seed, dtype=tf.int32)[0, 0]
    target = tf.stack([flat // width, flat % width])
    offset = target - tf.cast(tf.round(centre), tf.int32)
    return offset % tf.stack([height, width])


def translate(mask: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Moves an [H, W, C] mask by (dy, dx), circularly (as `tf.roll` in the reference)."""
    return tf.roll(mask, shift=offset, axis=[0, 1])
