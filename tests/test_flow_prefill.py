"""data.prefill: flow: the sampler's per-example flow prefill (no leak), inference's prefill of
the real holes, the fill graph's third input, and a fit of 0 steps (propagation only)."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_args
from tfinpaint import train
from tfinpaint.config import CONFIG_DIR, FlowConfig, load_config
from tfinpaint.data.pipeline import element_seed
from tfinpaint.data.samplers import MaskSampler, Sampling
from tfinpaint.fill import flow
from tfinpaint.fill.render import make_fill_fn, native_prefill
from tfinpaint.io.clip import load_clip
from tfinpaint.io.sample import make_sample
from tfinpaint.io.video import read_video
from tfinpaint.model.generator import network_input, to_signed

SETTINGS = FlowConfig(preset="ultrafast", margin=2)


def _clip(num_frames=6, height=48, width=64):
    """A textured scene panning right by 2 px a frame, a rectangle hole moving across it."""
    rng = np.random.default_rng(0)
    texture = tf.image.resize(rng.uniform(0, 255, (1, 12, 30, 3)), (height, width + 2 * num_frames),
                              method="bicubic")[0].numpy()
    frames = np.stack([texture[:, 2 * t:2 * t + width] for t in range(num_frames)])
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    for t in range(num_frames):
        masks[t, 14:30, 10 + 4 * t:26 + 4 * t] = 1
    return frames, masks


def _sampling(tube=False, mover_weight=1.0):
    return Sampling(translation="uniform", band_y=45.0, band_x=80.0, boundary_weight=5.0,
                    crop_height=0, crop_width=0, crop_placement="random", tube=tube,
                    mover_weight=mover_weight)


def _seen(example):
    """What the network sees of an example: network_input, as Inpainter.train_step builds it."""
    hole = tf.cast(tf.maximum(example["masks"], example["translated"]), tf.float32)
    return network_input(to_signed(example["frames"])[None], hole[None], None, "flow",
                         to_signed(example["prefilled"])[None]).numpy()


def test_no_leak_frame_i_inside_its_hole_and_the_translated_hole_changes_nothing_seen():
    frames, masks = _clip()
    video_flow = flow.VideoFlow(frames, masks, SETTINGS)
    sampler = MaskSampler(frames, masks, _sampling(), flow=video_flow)
    seed = tf.constant([3, 7], tf.int64)
    example = sampler.sample(seed, crop=False)
    i = int(np.argmin(np.abs(frames.astype(int) - example["frames"].numpy()).sum(axis=(1, 2, 3))))
    hole = np.maximum(example["masks"].numpy(), example["translated"].numpy())[..., 0] > 0
    assert example["translated"].numpy()[..., 0].any() and hole.sum() > masks[i].sum()

    # frame i's pixels inside M_i ∪ M'_t inverted; the fields (measured once per video) kept
    changed = frames.copy()
    changed[i][hole] = 255 - changed[i][hole]
    changed_flow = copy.copy(video_flow)
    changed_flow.frames = tf.constant(changed.astype(np.float32))
    changed_sampler = MaskSampler(changed, masks, _sampling(), flow=changed_flow)
    np.testing.assert_array_equal(_seen(changed_sampler.sample(seed, crop=False)),
                                  _seen(example))
    # the same inside tf.data's map (the fit's stream and the self-check's fixed batch)
    batch = next(iter(sampler.dataset(batch_size=2, seed=5)))
    changed_batch = next(iter(changed_sampler.dataset(batch_size=2, seed=5)))
    for key in ("prefilled", "masks", "translated"):
        assert batch[key].shape[:3] == (2, 48, 64)
    fixed = sampler.fixed_batch(2, seed=1)
    assert fixed["prefilled"].shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(  # traced by tf.data, the flow fill that eager `sample` gives
        fixed["prefilled"][1].numpy(),
        sampler.sample(element_seed(1, 1, 1), crop=False)["prefilled"].numpy())
    # the prefill is propagated content, not frame i's own: the hole was filled from elsewhere
    prefilled = example["prefilled"].numpy()
    np.testing.assert_array_equal(prefilled[~hole], frames[i][~hole])
    assert np.abs(prefilled[hole].astype(int) - frames[i][hole].astype(int)).mean() < 20
    del batch, changed_batch


def test_the_translated_tube_moves_as_the_borrowed_masks_and_hides_the_other_frames():
    frames, masks = _clip()
    video_flow = flow.VideoFlow(frames, masks, SETTINGS)
    sampler = MaskSampler(frames, masks, _sampling(tube=True), flow=video_flow)
    i, t, offset = 2, 4, tf.constant([5, -20])
    tube = sampler.tube(tf.constant(i), tf.constant(t), offset).numpy()
    assert tube.shape == masks.shape
    moved = lambda k: np.roll(masks[k], (5, -20), axis=(0, 1))  # noqa: E731
    # frame i holds M'_t; frame i + k holds M_{t + k} moved, the clip's last mask past its end
    for frame, borrowed in ((2, 4), (3, 5), (4, 5), (5, 5), (1, 3), (0, 2)):
        np.testing.assert_array_equal(tube[frame], moved(borrowed))

    # what the tube hides in the other frames is never read: invert it, the prefill stays
    hole = np.maximum(masks[i], moved(t)).astype(np.float32)
    prefill = video_flow.prefill(i, hole, tube).numpy()
    hidden = tube[..., 0] > 0
    changed = frames.copy()
    changed[hidden] = 255 - changed[hidden]
    changed_flow = copy.copy(video_flow)
    changed_flow.frames = tf.constant(changed.astype(np.float32))
    np.testing.assert_array_equal(changed_flow.prefill(i, hole, tube).numpy(), prefill)
    # without the tube the neighbours show what the hole hides, and that is what gets copied
    seen = changed_flow.prefill(i, hole).numpy()
    inside = hole[..., 0] > 0
    assert np.abs(seen[inside].astype(int) - prefill[inside].astype(int)).mean() > 20
    np.testing.assert_array_equal(prefill[~inside], frames[i][~inside])

    # the sampler's examples: the same frames, masks and translated mask as without the tube,
    # a different prefill inside the hole only
    seed = tf.constant([3, 7], tf.int64)
    with_tube = sampler.sample(seed, crop=False)
    plain = MaskSampler(frames, masks, _sampling(), flow=video_flow).sample(seed, crop=False)
    for key in ("frames", "masks", "translated"):
        np.testing.assert_array_equal(with_tube[key].numpy(), plain[key].numpy())
    outside = np.maximum(plain["masks"].numpy(), plain["translated"].numpy())[..., 0] == 0
    np.testing.assert_array_equal(with_tube["prefilled"].numpy()[outside],
                                  plain["prefilled"].numpy()[outside])
    assert not np.array_equal(with_tube["prefilled"].numpy(), plain["prefilled"].numpy())


def test_mover_weight_puts_translated_holes_on_moving_objects():
    frames, masks = _clip(num_frames=4, height=60, width=80)
    video_flow = flow.VideoFlow(frames, masks, dataclasses.replace(SETTINGS, moving_speed=0.0))
    assert not video_flow.movers.any()  # none looked for: uniform translations
    assert MaskSampler(frames, masks, _sampling(mover_weight=50.0), flow=video_flow).movers is None
    # a moving object of 1/20 of the frame, somewhere else in every frame
    video_flow.movers = np.zeros(frames.shape[:3], bool)
    for t in range(4):
        video_flow.movers[t, 5 + 10 * t:17 + 10 * t, 50 - 8 * t:62 - 8 * t] = True

    def on_movers(weight, count=40):
        sampler = MaskSampler(frames, masks, _sampling(mover_weight=weight), flow=video_flow)
        shares = []
        for k in range(count):
            example = sampler.sample(tf.constant([k, 1], tf.int64), crop=False)
            i = int(np.argmin(np.abs(frames.astype(int) - example["frames"].numpy()).sum(
                axis=(1, 2, 3))))
            translated = example["translated"].numpy()[..., 0] > 0
            shares.append((translated & video_flow.movers[i]).sum() / translated.sum())
        return np.mean(shares)

    # the object is 3% of the frame: the hole's share on it as often as chance, then ~60% of
    # the centres on it (50 * 3% against 97%), each hiding it in part
    uniform, biased = on_movers(1.0), on_movers(50.0)
    assert uniform < 0.06 and biased > 0.25


def test_inference_prefill_of_a_real_hole_is_propagate_frames_and_reaches_the_network():
    frames, masks = _clip()
    prefilled = native_prefill("flow", frames, masks, SETTINGS)
    video_flow = flow.VideoFlow(frames, masks, SETTINGS)
    for t in (0, 3):
        np.testing.assert_array_equal(prefilled[t],
                                      video_flow.prefill(t, masks[t].astype(np.float32)).numpy())
    # a "network" that returns its input's colour: the fill graph must feed it the prefill
    echo = lambda inputs, training=False: [inputs[..., :3]]  # noqa: E731
    fill = make_fill_fn(echo, "flow")
    np.testing.assert_array_equal(fill(frames, masks, prefilled).numpy(), prefilled)
    # at a working size, with native detail: the known pixels bit-exact, the hole near the flow
    native = make_fill_fn(echo, "flow", working_size=(24, 32))
    filled = native(frames, masks, prefilled).numpy()
    hole = masks[..., 0] > 0
    np.testing.assert_array_equal(filled[~hole], frames[~hole])
    blurred = make_fill_fn(echo, "flow", working_size=(24, 32), native_detail=False)(
        frames, masks, prefilled).numpy()
    error = lambda x: np.abs(x[hole].astype(int) - prefilled[hole].astype(int)).mean()  # noqa: E731
    assert error(filled) < error(blurred)


def test_zero_steps_writes_the_propagation_only_result(tmp_path):
    run = tmp_path / "run"
    assert train.main(["--video", "sample", "--run-dir", str(run), "--steps", "0",
                       "--set", "data.prefill=flow", "--set", "flow.preset=ultrafast",
                       *tiny_args()]) == 0
    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["steps"] == 0 and summary["prefill"] == "flow"
    sample = make_sample()
    filled = read_video(run / "result" / "frames").frames
    config = load_config([CONFIG_DIR / "quick.yaml"], tiny_args()[1::2])
    clip = load_clip("sample", None, config)
    np.testing.assert_array_equal(
        filled, native_prefill("flow", clip.frames, clip.masks,
                               FlowConfig(preset="ultrafast")))
    known = clip.masks[..., 0] == 0
    np.testing.assert_array_equal(filled[known], sample.frames[known])

