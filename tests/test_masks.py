"""Translated masks and the boundary-aware sampler, eagerly and inside tf.data."""

import numpy as np
import tensorflow as tf

from tfinpaint.data import masks as mask_ops
from tfinpaint.config import DataConfig
from tfinpaint.data.pipeline import element_seed
from tfinpaint.data.samplers import MaskSampler, sampling_from


def _square_masks(n=3, h=48, w=64):
    masks = np.zeros((n, h, w, 1), np.uint8)
    masks[:, 18:30, 26:38] = 1
    return masks


def test_translate_is_a_circular_shift():
    mask = tf.constant(_square_masks(1)[0])
    moved = mask_ops.translate(mask, tf.constant([5, -7]))
    assert int(tf.reduce_sum(moved)) == int(tf.reduce_sum(mask))
    np.testing.assert_array_equal(moved.numpy(), np.roll(mask.numpy(), (5, -7), axis=(0, 1)))


def test_boundary_band_surrounds_the_mask_edge():
    band = mask_ops.boundary_band(_square_masks(1), band_y=3, band_x=3)[0]
    assert band[18, 30] == 1 and band[17, 32] == 1   # on and just outside the edge
    assert band[24, 32] == 0                          # deep inside
    assert band[2, 2] == 0                            # far outside


def test_boundary_sampler_prefers_the_band_five_to_one():
    masks = _square_masks(1)
    band = tf.constant(mask_ops.boundary_band(masks, 4, 4)[0])
    centre = tf.constant(mask_ops.mask_centres(masks)[0])
    offsets = np.array([mask_ops.boundary_offset(tf.constant([3, s], tf.int64), band, centre, 5.0).numpy()
                        for s in range(4000)])
    targets = (np.round(centre.numpy()).astype(int) + offsets) % np.array(band.shape)
    in_band = band.numpy()[targets[:, 0], targets[:, 1]].astype(bool)
    area = band.numpy().mean()
    expected = 5 * area / (5 * area + (1 - area))
    assert abs(in_band.mean() - expected) < 0.04
    assert in_band.mean() > 2 * area  # clearly more often than uniform


def test_sampler_examples_are_consistent_and_deterministic():
    frames = np.random.default_rng(0).integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    masks = _square_masks(4)
    sampler = MaskSampler(frames, masks, sampling_from(DataConfig(translation="boundary", crop_height=32, crop_width=40)))
    first = next(iter(sampler.dataset(batch_size=3, seed=1)))
    again = next(iter(sampler.dataset(batch_size=3, seed=1)))
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())
    assert first["frames"].shape == (3, 32, 40, 3)
    assert first["translated"].shape == (3, 32, 40, 1)
    assert set(np.unique(first["translated"].numpy())) <= {0, 1}


def test_resumed_stream_replays_the_uninterrupted_one():
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    sampler = MaskSampler(frames, _square_masks(5, 32, 32), sampling_from(DataConfig()))
    stream = iter(sampler.dataset(batch_size=2, seed=7))
    batches = [next(stream) for _ in range(4)]
    resumed = next(iter(sampler.dataset(batch_size=2, seed=7, start_step=3)))
    for key in resumed:
        np.testing.assert_array_equal(resumed[key].numpy(), batches[3][key].numpy())


def test_fixed_batch_is_whole_frames_and_stable():
    frames = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    sampler = MaskSampler(frames, _square_masks(3), sampling_from(DataConfig(crop_height=32, crop_width=32)))
    a, b = sampler.fixed_batch(2, seed=0), sampler.fixed_batch(2, seed=0)
    assert a["frames"].shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(a["translated"].numpy(), b["translated"].numpy())
    # traced by tf.data, the same examples as `sample` called op by op with the self-check's seeds
    for e in range(2):
        alone = sampler.sample(element_seed(0, e, 1), crop=False)
        for key, value in alone.items():
            np.testing.assert_array_equal(a[key][e].numpy(), value.numpy(), err_msg=key)
