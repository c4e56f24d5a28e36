"""Shape operations on binary object masks (uint8 [H, W] 0/1) shared by the mask modules."""

from __future__ import annotations

import cv2
import numpy as np

from tfinpaint.io.video import hole_disc


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`mask` (uint8 [H, W] 0/1) at `size` (height, width): the pixels mostly object there (area
    average above one half)."""
    if mask.shape == size:
        return mask
    return (cv2.resize(mask.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)
            > 0.5).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W] 0/1 with every background region not connected to the border set to 1."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((height + 4, width + 4), np.uint8), (0, 0), 1)
    return (padded | (1 - flood))[1:-1, 1:-1]


def keep_near(mask: np.ndarray, prior: np.ndarray, near: int) -> np.ndarray:
    """The connected components of `mask` (uint8 [H, W]) touching `prior` grown by `near` px."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    if near > 0:
        prior = cv2.dilate(prior, hole_disc(near))
    touching = np.unique(labels[prior > 0])
    keep = np.zeros(count, np.uint8)
    keep[touching] = 1
    keep[0] = 0
    return keep[labels]
