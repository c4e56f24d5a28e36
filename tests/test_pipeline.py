"""The training sampler's crops: shapes, determinism, and crops placed around the translated hole."""

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.config import DataConfig
from tfinpaint.data.masks import largest_extent
from tfinpaint.data.pipeline import element_seed
from tfinpaint.data.samplers import MaskSampler, crop_size, sampling_from


def _clip(num_frames=6, height=64, width=96):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    for index in range(num_frames):
        top, left = 4 + 3 * index, 6 + 5 * index
        masks[index, top:top + 10, left:left + 14] = 1
    return frames, masks


@pytest.mark.parametrize("placement", ["random", "hole"])
def test_crops_have_the_configured_size_eagerly_and_in_a_dataset(placement):
    frames, masks = _clip()
    sampler = MaskSampler(frames, masks, sampling_from(DataConfig(crop_height=32, crop_width=48, crop_placement=placement)))
    example = sampler.sample(element_seed(0, tf.constant(3, tf.int64), 0))
    assert example["frames"].shape == (32, 48, 3)
    batch = next(iter(sampler.dataset(batch_size=4, seed=0)))
    assert batch["frames"].shape == (4, 32, 48, 3)
    assert batch["translated"].shape == (4, 32, 48, 1)


def _fraction_inside(sampling, count=40):
    """Mean share of the translated mask's pixels that fall inside the crop."""
    frames, masks = _clip()
    cropping, whole = MaskSampler(frames, masks, sampling), MaskSampler(frames, masks, sampling_from(DataConfig()))
    shares = []
    for element in range(count):
        seed = element_seed(1, tf.constant(element, tf.int64), 0)
        inside = tf.reduce_sum(tf.cast(cropping.sample(seed)["translated"], tf.float32))
        total = tf.reduce_sum(tf.cast(whole.sample(seed)["translated"], tf.float32))
        shares.append(float(inside / total))
    return float(np.mean(shares))


def test_hole_placed_crops_contain_the_translated_mask():
    around_hole = _fraction_inside(sampling_from(DataConfig(crop_height=32, crop_width=48, crop_placement="hole")))
    anywhere = _fraction_inside(sampling_from(DataConfig(crop_height=32, crop_width=48)))
    # Jitter and wrap-around may cut some of the hole off; random crops miss most of it.
    assert around_hole > 0.7
    assert around_hole > anywhere + 0.2


def test_the_same_element_is_the_same_sample():
    frames, masks = _clip()
    sampler = MaskSampler(frames, masks, sampling_from(DataConfig(crop_height=32, crop_width=48, crop_placement="hole")))
    first = next(iter(sampler.dataset(batch_size=2, seed=5, start_step=3)))
    again = next(iter(sampler.dataset(batch_size=2, seed=5, start_step=3)))
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())


def test_largest_extent_is_the_tallest_and_the_widest_box_of_any_frame():
    masks = np.zeros((3, 40, 60, 1), np.uint8)
    masks[0, 5:25, 10:14] = 1  # 20 tall, 4 wide
    masks[1, 2:4, 0:30] = 1  # 2 tall, 30 wide
    masks[1, 30, 50] = 1  # a second blob in the same frame: the box spans both, 29 x 51
    assert largest_extent(masks) == (29, 51)
    assert largest_extent(masks[2:]) == (0, 0)  # no hole


def test_crops_grow_to_hold_the_largest_hole_with_room_around_it():
    frames, masks = _clip(height=120, width=96)
    masks[2, 10:70, 20:30] = 1  # a hole 60 px tall: 1.25 x 60 = 75, so crops of 76
    sampling = sampling_from(DataConfig(crop_height=32, crop_width=48, crop_placement="hole"))
    assert crop_size(sampling, masks) == (76, 48)
    example = MaskSampler(frames, masks, sampling).sample(element_seed(0, tf.constant(1, tf.int64), 0))
    assert example["frames"].shape == (76, 48, 3)
    masks[2, 10:110, :40] = 1  # taller than the frame allows: at most the frame
    assert crop_size(sampling, masks) == (120, 52)
    masks[2, 10:110, :] = 1  # the whole frame in both directions: whole frames, uncut
    assert crop_size(sampling, masks) is None
    assert crop_size(sampling_from(DataConfig()), masks) is None  # 0 x 0: whole frames
