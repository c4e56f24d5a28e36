"""Known pixels held out of a fit (a tube beside the holes), for measuring the blend honestly."""

import copy

import numpy as np
import pytest
import tensorflow as tf

from test_flow_prefill import SETTINGS, _clip, _sampling
from tfinpaint.data.masks import beside
from tfinpaint.data.samplers import MaskSampler
from tfinpaint.fill import flow


def _moving_holes(num_frames=7, height=241, width=427):
    """An odd-sized clip's masks: a 37x61 blob crossing the frame, 9 px a frame."""
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    for t in range(num_frames):
        masks[t, 90:127, 40 + 9 * t:101 + 9 * t] = 1
    return masks


def _single_move(tube, hole):
    """The one (dy, dx) with tube == roll(hole, (dy, dx)) minus the hole, or None."""
    height, width = hole.shape[1:]
    for dy in range(height):
        for dx in range(width):
            if np.array_equal(np.roll(hole, (dy, dx), axis=(1, 2)) & ~hole, tube):
                return dy, dx
    return None


def test_the_tube_is_the_holes_moved_sideways_by_one_offset_beside_them():
    masks = _moving_holes()
    hole = masks[..., 0] > 0
    tube = beside(masks)
    assert tube.shape == masks.shape and tube.dtype == np.uint8
    tube = tube[..., 0] > 0
    assert not (tube & hole).any()
    assert tube.sum() == hole.sum()  # wholly beside: nothing lost to the overlap
    # one move for every frame, sideways, the shortest that clears the 61-px blob and the gap
    # (searched at a quarter of the size, up to 10% of the moved area may fall within it): 64 px
    # leaves 3 known columns between the two; without a gap, 56 px overlaps 5 of 61 columns
    np.testing.assert_array_equal(tube, np.roll(hole, (0, 64), axis=(1, 2)) & ~hole)
    np.testing.assert_array_equal(beside(masks, gap=0)[..., 0] > 0,
                                  np.roll(hole, (0, 56), axis=(1, 2)) & ~hole)
    assert beside(masks, gap=0)[..., 0].sum() == hole.sum() * 56 // 61
    np.testing.assert_array_equal(beside(masks), beside(masks))  # deterministic


def test_a_hole_as_wide_as_the_frame_moves_vertically_and_no_hole_gives_no_tube():
    masks = np.zeros((3, 120, 161, 1), np.uint8)
    masks[:, 40:60] = 1  # a band across the whole width: no sideways move clears it
    tube = beside(masks)[..., 0] > 0
    hole = masks[..., 0] > 0
    move = _single_move(tube[:, :, :1], hole[:, :, :1])  # columns are all alike
    assert move is not None and move[1] == 0 and tube.sum() == hole.sum()
    assert not (tube & hole).any()
    assert beside(np.zeros_like(masks)) is None
    # holes over most of the frame leave too little beside them to measure anything
    assert beside(np.ones_like(masks)) is None


def test_held_out_pixels_are_hole_in_every_example_and_never_reach_the_flow_fill():
    frames, masks = _clip(num_frames=6, height=48, width=64)
    held = beside(masks, gap=2)
    assert held is not None and held.any()
    unknown = np.maximum(masks, held)
    video_flow = flow.VideoFlow(frames, unknown, SETTINGS)
    sampler = MaskSampler(frames, masks, _sampling(tube=True), flow=video_flow, held=held)
    plain = MaskSampler(frames, masks, _sampling(tube=True), flow=video_flow)
    for seed in ([3, 7], [1, 2], [9, 4]):
        seed = tf.constant(seed, tf.int64)
        example, without = sampler.sample(seed, crop=False), plain.sample(seed, crop=False)
        i = int(np.argmin(np.abs(frames.astype(int) - example["frames"].numpy()).sum(
            axis=(1, 2, 3))))
        # no loss reads them and no input shows them: they are M_i, in X_i and in X_t
        np.testing.assert_array_equal(example["masks"].numpy(), unknown[i])
        assert example["target_masks"].numpy().sum() >= without["target_masks"].numpy().sum()
        # the training holes keep the real holes' shapes
        np.testing.assert_array_equal(example["translated"].numpy(), without["translated"].numpy())

    # the held-out examples: evenly spaced frames, as the real hole is filled
    examples = sampler.held_out_examples(4)
    assert examples["frames"].shape == (4, 48, 64, 3)
    chosen = [int(np.argmin(np.abs(frames.astype(int) - f).sum(axis=(1, 2, 3))))
              for f in examples["frames"].numpy()]
    assert chosen == [0, 2, 3, 5]
    np.testing.assert_array_equal(examples["held"].numpy(), held[chosen])
    np.testing.assert_array_equal(examples["hole"].numpy(), unknown[chosen])
    # their flow fill reads no held-out pixel of any frame: change them all, it stays
    inside = held[..., 0] > 0
    changed = frames.copy()
    changed[inside] = 255 - changed[inside]
    changed_flow = copy.copy(video_flow)
    changed_flow.frames = tf.constant(changed.astype(np.float32))
    changed_sampler = MaskSampler(changed, masks, _sampling(tube=True), flow=changed_flow,
                                  held=held)
    np.testing.assert_array_equal(changed_sampler.held_out_examples(4)["prefilled"].numpy(),
                                  examples["prefilled"].numpy())
    # ... and fills them: the known pixels around stay, the held-out ones are propagated
    prefilled = examples["prefilled"].numpy()
    known = examples["hole"].numpy()[..., 0] == 0
    np.testing.assert_array_equal(prefilled[known], examples["frames"].numpy()[known])
    assert plain.held_out_examples(4) is None


@pytest.mark.parametrize("count", [1, 50])
def test_held_out_examples_cover_as_many_frames_as_asked_and_hold(count):
    frames, masks = _clip(num_frames=6, height=48, width=64)
    held = np.zeros_like(masks)
    held[1, 2:6, 2:6] = held[4, 2:6, 2:6] = 1  # only frames 1 and 4 hold pixels out
    sampler = MaskSampler(frames, masks, _sampling(), held=held)
    examples = sampler.held_out_examples(count)
    assert len(examples["frames"]) == min(count, 2)
    assert "prefilled" not in examples
    assert all(h.any() for h in examples["held"].numpy())


@pytest.mark.slow
def test_a_fit_holding_pixels_beside_the_hole_measures_its_blend_there(tmp_path):
    import json

    from conftest import TINY, fit_run

    settings = [*TINY, "data.working_height=48", "data.working_width=64",
                "data.prefill=pyramid+flow", "generator.prefill_gate=false",
                "flow.preset=ultrafast"]
    beside_run = fit_run(tmp_path / "beside", ["--video", "sample"], 4,
                         [*settings, "data.held_out=beside"])
    holes_run = fit_run(tmp_path / "holes", ["--video", "sample"], 4,
                        [*settings, "data.held_out=holes"])
    both_run = fit_run(tmp_path / "both", ["--video", "sample"], 2,
                       [*settings, "data.held_out=both"])
    beside_choice, holes_choice, both_choice = (
        json.loads((run / "result" / "summary.json").read_text())["flow_keep"]
        for run in (beside_run, holes_run, both_run))
    assert beside_choice["measured_on"] == "beside" and holes_choice["measured_on"] == "holes"
    assert both_choice["measured_on"] == "both"
    assert 0.0 <= beside_choice["keep"] <= 1.0 and 0.0 <= beside_choice["smooth"] <= 1.0
    # measured elsewhere, on other pixels: not the training holes' numbers
    assert beside_choice["psnr_flow"] != holes_choice["psnr_flow"]
    assert beside_choice["psnr"] >= max(beside_choice["psnr_network"], beside_choice["psnr_flow"],
                                        beside_choice["psnr_smooth"]) - 0.05


def test_both_measures_the_tube_and_the_training_holes_as_one_set_of_pixels():
    from tfinpaint.fitting.blend import best_blend, held_out
    from tfinpaint.model.generator import build_generator

    frames, masks = _clip(num_frames=6, height=48, width=64)
    held = beside(masks, gap=2)
    video_flow = flow.VideoFlow(frames, np.maximum(masks, held), SETTINGS)
    sampler = MaskSampler(frames, masks, _sampling(tube=True), flow=video_flow, held=held)
    generator = build_generator("base", channels=4, in_channels=4, flow_keep=True,
                                smooth_share=True)
    measured = {on: held_out(generator, sampler, "flow", seed=5, count=4, on=on)
                for on in ("beside", "holes", "both")}
    tube, holes, both = measured["beside"], measured["holes"], measured["both"]
    assert (tube.measured_on, holes.measured_on, both.measured_on) == ("beside", "holes", "both")
    # the tube's pixels are the held-out ones of the evenly spaced frames; the holes' others
    assert tube.truth.size == 3 * held[[0, 2, 3, 5]].sum()
    assert holes.truth.size and not np.array_equal(tube.truth, holes.truth)
    for field in ("network", "flow", "smooth", "truth"):
        np.testing.assert_array_equal(getattr(both, field), np.concatenate(
            [getattr(tube, field), getattr(holes, field)]))
    choice = both.best()
    assert choice.measured_on == "both"
    again = best_blend(both.network, both.flow, both.truth, smooth=both.smooth)
    assert (choice.keep, choice.smooth) == (again.keep, again.smooth)
    # one measurement of each set: the pooled PSNR lies between the two sets' own
    assert min(tube.best().psnr, holes.best().psnr) - 1e-6 <= choice.psnr
    # without a tube every choice falls back on the training holes
    plain = MaskSampler(frames, masks, _sampling(tube=True), flow=video_flow)
    assert held_out(generator, plain, "flow", seed=5, count=4, on="both").measured_on == "holes"
