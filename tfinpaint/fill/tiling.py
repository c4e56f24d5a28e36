"""Grid inference for frames larger than the network's working resolution (Sec. 4.1, App. A.4).

A frame is cut into overlapping tiles of the working size; only tiles that contain a hole pixel
go through the network; the outputs are blended with smooth weights and pasted into the hole
only, so the known pixels of the frame are never touched:

    tiles = plan_tiles(height, width, tile_h, tile_w, overlap)
    frame_tiles, mask_tiles, kept = tile(frame, mask, tiles)
    filled = stitch(frame, mask, [tiles[i] for i in kept], predict(frame_tiles, mask_tiles))

As in the paper's grid inference, `plan_tiles` adds tiles centred on the grid's interior seams,
so that every seam of the grid lies in the middle of some tile, where the network sees context
on both sides. Pure numpy; frames are uint8 [H, W, C], masks [H, W, 1] or [H, W] with any
non-zero value in the hole.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tile:
    """A window `frame[top:top + height, left:left + width]` of the frame."""

    top: int
    left: int
    height: int
    width: int

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def _grid_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread starts along one axis: first at 0, last at size - tile, overlaps >= overlap."""
    if size <= tile:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def _seam_starts(starts: list[int], size: int, tile: int) -> list[int]:
    """Starts of tiles centred on the seams between consecutive grid tiles, clamped to the frame.

    A seam sits in the middle of the overlap of two neighbours: between `starts[i] + tile` (the
    end of one) and `starts[i + 1]` (the start of the next).
    """
    seams = [(start + tile + following) / 2 for start, following in zip(starts, starts[1:])]
    return [min(max(round(seam - tile / 2), 0), size - tile) for seam in seams]


def plan_tiles(height: int, width: int, tile_h: int, tile_w: int, overlap: int, *,
               seams: bool = True) -> list[Tile]:
    """The tiles that cover a height x width frame exactly.

    Args:
      height, width: the frame's size.
      tile_h, tile_w: the tile size (the network's working size); a frame smaller than a tile
        along an axis gives tiles of the frame's size along it, so tiles never leave the frame.
      overlap: the least overlap, in pixels, between neighbouring grid tiles (clamped per axis
        to less than the tile size).
      seams: also place tiles centred on the grid's interior seams (between grid columns, grid
        rows, and on their crossings), as the paper's grid inference does.

    Returns:
      Distinct tiles, all of the same size: the grid first (row by row; the last row and column
      are aligned to the bottom and right border), then the seam tiles.
    """
    if min(height, width, tile_h, tile_w) < 1 or overlap < 0:
        raise ValueError(f"bad tiling: frame {height}x{width}, tile {tile_h}x{tile_w}, "
                         f"overlap {overlap}")
    tile_h, tile_w = min(tile_h, height), min(tile_w, width)
    rows = _grid_starts(height, tile_h, min(overlap, tile_h - 1))
    cols = _grid_starts(width, tile_w, min(overlap, tile_w - 1))
    positions = [(top, left) for top in rows for left in cols]
    if seams:
        seam_rows, seam_cols = _seam_starts(rows, height, tile_h), _seam_starts(cols, width, tile_w)
        positions += [(top, left) for top in rows for left in seam_cols]
        positions += [(top, left) for top in seam_rows for left in cols]
        positions += [(top, left) for top in seam_rows for left in seam_cols]
    return [Tile(top, left, tile_h, tile_w) for top, left in dict.fromkeys(positions)]


def _hole(mask: np.ndarray) -> np.ndarray:
    """Boolean [H, W] hole from a mask [H, W] or [H, W, 1]."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    return mask != 0


def tile(frame: np.ndarray, mask: np.ndarray, tiles: Sequence[Tile],
         ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Cut a frame and its mask into the tiles that contain at least one hole pixel.

    Returns:
      frame_tiles [K, th, tw, C] and mask_tiles [K, th, tw, 1] (copies, dtypes kept), and the
      indices into `tiles` of those K tiles. Tiles without a hole pixel are skipped: the network
      would change nothing there.
    """
    frame = np.asarray(frame)
    mask = np.asarray(mask)
    hole = _hole(mask)
    if frame.shape[:2] != hole.shape:
        raise ValueError(f"frame {frame.shape} and mask {mask.shape} differ in size")
    kept = [i for i, t in enumerate(tiles) if hole[t.window].any()]
    mask = mask if mask.ndim == 3 else mask[..., None]
    if not kept:
        height, width = (tiles[0].height, tiles[0].width) if tiles else (0, 0)
        return (np.zeros((0, height, width, frame.shape[-1]), frame.dtype),
                np.zeros((0, height, width, 1), mask.dtype), [])
    frame_tiles = np.stack([frame[tiles[i].window] for i in kept])
    mask_tiles = np.stack([mask[tiles[i].window] for i in kept])
    return frame_tiles, mask_tiles, kept


def blend_weights(height: int, width: int) -> np.ndarray:
    """A separable raised-cosine window [height, width, 1], > 0 everywhere, 1 near the centre.

    Sampling the cosine at pixel centres keeps the border weight small but never zero, so a
    pixel covered by one tile alone still gets that tile's value.
    """
    def ramp(size: int) -> np.ndarray:
        return (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(size) + 0.5) / size)).astype(np.float32)
    return (ramp(height)[:, None] * ramp(width)[None, :])[..., None]


def stitch(base_frame: np.ndarray, mask: np.ndarray, tiles: Sequence[Tile],
           results: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Blend tile outputs into the hole of `base_frame`.

    Args:
      base_frame: the frame, uint8 [H, W, C]; its known pixels are kept bit-exactly.
      mask: [H, W, 1] or [H, W], non-zero in the hole.
      tiles: the tiles the results belong to, one per result (`[tiles[i] for i in kept]` after
        `tile`); together they must cover every hole pixel.
      results: the network's outputs for those tiles, [K, th, tw, C] (uint8 or float in the
        uint8 range).

    Returns:
      uint8 [H, W, C]: in the hole, the weighted mean of the overlapping results (raised-cosine
      weights, accumulated in float32 and rounded); elsewhere, `base_frame`.
    """
    base_frame = np.asarray(base_frame)
    hole = _hole(mask)
    if len(tiles) != len(results):
        raise ValueError(f"{len(tiles)} tiles but {len(results)} results")
    height, width, channels = base_frame.shape
    total = np.zeros((height, width, channels), np.float32)
    weight = np.zeros((height, width, 1), np.float32)
    windows: dict[tuple[int, int], np.ndarray] = {}
    for t, result in zip(tiles, results):
        result = np.asarray(result)
        if result.shape != (t.height, t.width, channels):
            raise ValueError(f"result {result.shape} does not fit tile {t}")
        if (t.height, t.width) not in windows:
            windows[t.height, t.width] = blend_weights(t.height, t.width)
        w = windows[t.height, t.width]
        total[t.window] += w * result.astype(np.float32)
        weight[t.window] += w
    if (weight[hole] == 0).any():
        raise ValueError("the tiles do not cover every hole pixel")
    filled = base_frame.copy()
    blended = total[hole] / weight[hole]
    filled[hole] = np.clip(np.rint(blended), 0, 255).astype(base_frame.dtype)
    return filled
