"""The paper's two evaluation mask protocols, on any clip (Sec. 5, "Experimental settings").

- fixed: a centred rectangle, 1/4 of the width by 1/4 of the height, on every frame;
- object: object masks borrowed from another video, resized to the clip, optionally shifted,
  looped or truncated to the clip's length. Since the truth behind a borrowed mask is the clip
  itself, the fill can be scored.

Masks are uint8 [N, H, W, 1] with 1 in the hole.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfinpaint.io.video import dilate_masks


def fixed_masks(num_frames: int, height: int, width: int) -> np.ndarray:
    """A centred rectangle of width // 4 by height // 4 on every frame."""
    hole_height, hole_width = max(1, height // 4), max(1, width // 4)
    top, left = (height - hole_height) // 2, (width - hole_width) // 2
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    masks[:, top:top + hole_height, left:left + hole_width] = 1
    return masks


def object_masks(source: np.ndarray, num_frames: int, height: int, width: int,
                 shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Borrow another video's object masks for a clip of `num_frames` frames of height x width.

    Args:
      source: the other video's masks, [M, h, w, 1] or [M, h, w], non-zero in the object.
      num_frames, height, width: the clip's length and size.
      shift: (dx, dy) in pixels of the clip, applied after resizing; what leaves the frame is
        dropped (no wrap-around, so the hole never splits across the border).

    The source is resized with nearest neighbour (masks stay binary) and looped forwards when it
    is shorter than the clip, truncated when longer.
    """
    source = np.asarray(source)
    if source.ndim == 4:
        source = source[..., 0]
    if source.ndim != 3 or len(source) == 0:
        raise ValueError(f"source masks must be [M, h, w(, 1)] with M >= 1, got {source.shape}")
    dx, dy = int(shift[0]), int(shift[1])
    translation = np.float32([[1, 0, dx], [0, 1, dy]])
    masks = np.empty((num_frames, height, width, 1), np.uint8)
    for t in range(num_frames):
        resized = cv2.resize((source[t % len(source)] != 0).astype(np.uint8), (width, height),
                             interpolation=cv2.INTER_NEAREST)
        if dx or dy:
            resized = cv2.warpAffine(resized, translation, (width, height),
                                     flags=cv2.INTER_NEAREST, borderValue=0)
        masks[t, ..., 0] = resized
    return masks


def dilate(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Grow each frame's hole by `pixels` (a disc), as the paper does to cover object borders."""
    return dilate_masks(masks, pixels)
