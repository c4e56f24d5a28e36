"""data.prefill: flow: the sampler's per-example flow prefill (no leak), inference's prefill of
the real holes, the fill graph's third input, and a fit of 0 steps (propagation only)."""

import copy
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_args
from tfinpaint import train
from tfinpaint.config import CONFIG_DIR, FlowConfig, load_config
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


def _sampling():
    return Sampling(translation="uniform", band_y=45.0, band_x=80.0, boundary_weight=5.0,
                    crop_height=0, crop_width=0, crop_placement="random")


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
    # the prefill is propagated content, not frame i's own: the hole was filled from elsewhere
    prefilled = example["prefilled"].numpy()
    np.testing.assert_array_equal(prefilled[~hole], frames[i][~hole])
    assert np.abs(prefilled[hole].astype(int) - frames[i][hole].astype(int)).mean() < 20
    del batch, changed_batch


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

