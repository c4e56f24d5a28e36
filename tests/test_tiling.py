"""Grid inference invariants: coverage, exact round trip, skipped tiles, seam tiles, smooth blend."""

import numpy as np
import pytest

from tfinpaint.fill.tiling import Tile, blend_weights, plan_tiles, stitch, tile


def _coverage(height, width, tiles):
    count = np.zeros((height, width), np.int32)
    for t in tiles:
        count[t.window] += 1
    return count


@pytest.mark.parametrize("height, width, tile_h, tile_w, overlap", [
    (241, 433, 120, 216, 32), (240, 432, 120, 216, 0), (100, 100, 120, 216, 16),
    (2160, 3840, 540, 960, 64), (37, 500, 37, 64, 63),
])
def test_plan_covers_frame_and_stays_inside(height, width, tile_h, tile_w, overlap):
    tiles = plan_tiles(height, width, tile_h, tile_w, overlap, seams=False)
    assert (_coverage(height, width, tiles) >= 1).all()
    assert len({(t.height, t.width) for t in tiles}) == 1
    for t in tiles:
        assert t.top >= 0 and t.left >= 0
        assert t.top + t.height <= height and t.left + t.width <= width
    assert max(t.top + t.height for t in tiles) == height
    assert max(t.left + t.width for t in tiles) == width
    assert len(set(tiles)) == len(tiles)


def test_grid_neighbours_overlap_by_at_least_overlap():
    tiles = plan_tiles(241, 433, 120, 216, 32, seams=False)
    tops = sorted({t.top for t in tiles})
    lefts = sorted({t.left for t in tiles})
    assert tops[0] == 0 and lefts[0] == 0
    assert all(b - a <= 120 - 32 for a, b in zip(tops, tops[1:]))
    assert all(b - a <= 216 - 32 for a, b in zip(lefts, lefts[1:]))


def test_seam_tiles_are_centred_on_interior_seams():
    grid = plan_tiles(240, 432, 120, 216, 0, seams=False)
    assert sorted((t.top, t.left) for t in grid) == [(0, 0), (0, 216), (120, 0), (120, 216)]
    with_seams = plan_tiles(240, 432, 120, 216, 0)
    extra = set(with_seams) - set(grid)
    # 2x2 grid: a tile across the vertical seam in each row, across the horizontal seam in each
    # column, and one on the crossing.
    assert extra == {Tile(0, 108, 120, 216), Tile(120, 108, 120, 216), Tile(60, 0, 120, 216),
                     Tile(60, 216, 120, 216), Tile(60, 108, 120, 216)}
    assert with_seams[:len(grid)] == grid


def test_single_tile_frame_has_no_seam_tiles():
    assert plan_tiles(50, 60, 120, 216, 16) == [Tile(0, 0, 50, 60)]


def test_tile_skips_tiles_without_hole():
    height, width = 241, 433
    tiles = plan_tiles(height, width, 120, 216, 32)
    mask = np.zeros((height, width, 1), np.uint8)
    mask[10:20, 10:30] = 255  # in the top-left corner only
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    frame_tiles, mask_tiles, kept = tile(frame, mask, tiles)
    assert 0 < len(kept) < len(tiles)
    assert frame_tiles.shape == (len(kept), 120, 216, 3)
    assert mask_tiles.shape == (len(kept), 120, 216, 1)
    for i, t in enumerate(tiles):
        assert (i in kept) == bool(mask[t.window].any())
    for k, i in enumerate(kept):
        np.testing.assert_array_equal(frame_tiles[k], frame[tiles[i].window])


def test_tile_without_hole_returns_nothing():
    tiles = plan_tiles(64, 64, 32, 32, 8)
    frame_tiles, mask_tiles, kept = tile(np.zeros((64, 64, 3), np.uint8),
                                         np.zeros((64, 64), np.uint8), tiles)
    assert kept == [] and frame_tiles.shape == (0, 32, 32, 3) and mask_tiles.shape[0] == 0


@pytest.mark.parametrize("seams", [True, False])
def test_identity_round_trip_is_exact_on_odd_sizes(seams):
    rng = np.random.default_rng(1)
    height, width = 241, 433
    frame = rng.integers(0, 256, (height, width, 3), np.uint8)
    mask = (rng.random((height, width, 1)) < 0.3).astype(np.uint8)
    tiles = plan_tiles(height, width, 120, 216, 32, seams=seams)
    frame_tiles, _, kept = tile(frame, mask, tiles)
    np.testing.assert_array_equal(stitch(frame, mask, [tiles[i] for i in kept], frame_tiles),
                                  frame)


def test_stitch_keeps_known_pixels_and_fills_hole():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (100, 150, 3), np.uint8)
    mask = np.zeros((100, 150, 1), np.uint8)
    mask[40:60, 20:130] = 1
    tiles = plan_tiles(100, 150, 64, 64, 16)
    frame_tiles, _, kept = tile(frame, mask, tiles)
    out = stitch(frame, mask, [tiles[i] for i in kept], np.full_like(frame_tiles, 7))
    hole = mask[..., 0] != 0
    np.testing.assert_array_equal(out[~hole], frame[~hole])
    assert (out[hole] == 7).all()


def test_blend_of_two_constant_tiles_is_smooth_across_the_seam():
    height, width, tile_w = 16, 200, 128
    tiles = plan_tiles(height, width, height, tile_w, 56, seams=False)
    assert [t.left for t in tiles] == [0, width - tile_w]
    frame = np.zeros((height, width, 3), np.uint8)
    mask = np.ones((height, width, 1), np.uint8)
    results = np.stack([np.full((height, tile_w, 3), 0, np.uint8),
                        np.full((height, tile_w, 3), 200, np.uint8)])
    row = stitch(frame, mask, tiles, results)[height // 2, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 200
    steps = np.diff(row)
    assert (steps >= 0).all()  # monotone from one tile's value to the other's
    overlap = 2 * tile_w - width
    # a hard seam would jump by 200 at once; the blend spreads it over the overlap
    assert steps.max() <= 4 * 200 / overlap


def test_blend_weights_positive_and_peak_in_centre():
    w = blend_weights(7, 10)
    assert w.shape == (7, 10, 1) and (w > 0).all()
    assert w[3, 4:6, 0].max() == w.max()
    assert blend_weights(1, 1)[0, 0, 0] == pytest.approx(1.0)


def test_stitch_rejects_uncovered_hole():
    frame = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64, 1), np.uint8)
    mask[60:, 60:] = 1
    with pytest.raises(ValueError, match="cover"):
        stitch(frame, mask, [Tile(0, 0, 32, 32)], np.zeros((1, 32, 32, 3), np.uint8))
