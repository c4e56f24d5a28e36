"""The push-pull prefill of the hole (`data.prefill: pyramid`)."""

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.fill.prefill import apply_prefill, pyramid_fill
from tfinpaint.model.generator import network_input


def _hole(height, width, top, left, bottom, right, batch=1):
    hole = np.zeros([batch, height, width, 1], np.float32)
    hole[:, top:bottom, left:right] = 1.0
    return hole


def test_constant_image_is_filled_with_the_constant():
    image = np.full([2, 37, 53, 3], 0.25, np.float32)
    image[..., 1] = -0.5
    hole = _hole(37, 53, 10, 12, 30, 40, batch=2)
    garbage = np.where(hole > 0, 7.0, image).astype(np.float32)  # values in the hole are ignored
    filled = pyramid_fill(garbage, hole).numpy()
    np.testing.assert_allclose(filled, image, atol=1e-6)


def test_known_pixels_are_unchanged_bit_for_bit():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, [3, 40, 41, 3]).astype(np.float32)
    hole = (rng.uniform(size=[3, 40, 41, 1]) > 0.7).astype(np.float32)
    filled = pyramid_fill(image, hole).numpy()
    known = np.broadcast_to(hole == 0, image.shape)
    assert np.array_equal(filled[known], image[known])
    assert np.all(np.isfinite(filled))


def test_a_hole_between_two_colours_is_filled_between_them():
    image = np.zeros([1, 32, 64, 3], np.float32)
    image[:, :, :32] = [-0.8, 0.2, 0.5]
    image[:, :, 32:] = [0.6, -0.4, 0.9]
    hole = _hole(32, 64, 8, 16, 24, 48)
    filled = pyramid_fill(image, hole).numpy()
    inside = filled[0, 8:24, 16:48]
    low, high = np.minimum(image[0, 0, 0], image[0, 0, -1]), np.maximum(image[0, 0, 0], image[0, 0, -1])
    assert np.all(inside >= low - 1e-6) and np.all(inside <= high + 1e-6)
    # the left side of the hole is nearer the left colour than the right side is
    assert inside[:, 0, 0].mean() < inside[:, -1, 0].mean()


def test_an_image_without_known_pixels_gives_zeros():
    filled = pyramid_fill(np.ones([1, 9, 9, 3], np.float32), np.ones([1, 9, 9, 1], np.float32))
    np.testing.assert_array_equal(filled.numpy(), 0.0)


def test_works_in_tf_function_with_unknown_shapes():
    fill = tf.function(pyramid_fill, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32),
        tf.TensorSpec([None, None, None, 1], tf.float32)])
    for height, width in ((17, 23), (64, 48), (1, 5)):
        image = np.full([2, height, width, 3], 0.3, np.float32)
        hole = _hole(height, width, 0, 1, height, width // 2 + 1, batch=2)
        np.testing.assert_allclose(fill(image, hole).numpy(), image, atol=1e-6)
        np.testing.assert_allclose(fill(image, hole).numpy(), pyramid_fill(image, hole).numpy(),
                                   atol=1e-6)


def test_works_in_tf_data_map():
    image = np.full([4, 20, 30, 3], -0.2, np.float32)
    hole = _hole(20, 30, 5, 5, 15, 25, batch=4)
    dataset = tf.data.Dataset.from_tensor_slices((image, hole)).batch(2).map(pyramid_fill)
    for batch in dataset:
        np.testing.assert_allclose(batch.numpy(), -0.2, atol=1e-6)


def test_network_input_keeps_four_channels_and_defaults_to_blanking():
    rng = np.random.default_rng(1)
    frames = tf.constant(rng.uniform(-1, 1, [2, 16, 24, 3]).astype(np.float32))
    hole = tf.constant(_hole(16, 24, 4, 4, 12, 12, batch=2))
    blank = network_input(frames, hole).numpy()
    assert blank.shape == (2, 16, 24, 4)
    np.testing.assert_array_equal(blank[..., :3], (frames * (1 - hole)).numpy())
    filled = network_input(frames, hole, prefill="pyramid").numpy()
    assert filled.shape == (2, 16, 24, 4)
    np.testing.assert_array_equal(filled[..., 3:], hole.numpy())
    assert np.abs(filled[:, 4:12, 4:12, :3]).sum() > 0
    # pyramid+flow: the push-pull fill, the hole, then the frame filled from the flow fill
    flowed = tf.constant(rng.uniform(-1, 1, [2, 16, 24, 3]).astype(np.float32))
    both = network_input(frames, hole, prefill="pyramid+flow", prefilled=flowed).numpy()
    assert both.shape == (2, 16, 24, 7)
    np.testing.assert_array_equal(both[..., :4], filled)
    np.testing.assert_array_equal(both[..., 4:], (frames * (1 - hole) + flowed * hole).numpy())
    with pytest.raises(ValueError, match="prefilled"):
        network_input(frames, hole, prefill="pyramid+flow")
    with pytest.raises(ValueError):
        apply_prefill(frames, hole, "nope")


def test_fill_fn_and_a_training_step_with_prefill():
    from tfinpaint import config as config_lib
    from tfinpaint.fill.render import make_fill_fn
    from tfinpaint.fitting.loop import build_inpainter

    config = config_lib.load_config([], ["data.prefill=pyramid", "generator.arch=base",
                                         "generator.channels=8", "train.precision=float32"])
    model = build_inpainter(config)
    assert model.prefill == "pyramid"
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, [2, 72, 72, 3], dtype=np.uint8)
    masks = np.zeros([2, 72, 72, 1], np.uint8)
    masks[:, 20:40, 20:40] = 1
    translated = np.roll(masks, 25, axis=2)
    logs = model.train_step({"frames": tf.constant(frames), "masks": tf.constant(masks),
                             "translated": tf.constant(translated)})
    assert np.isfinite(float(logs["total"]))
    filled = make_fill_fn(model.generator, "pyramid")(tf.constant(frames), tf.constant(masks)).numpy()
    assert np.array_equal(filled[masks[..., 0] == 0], frames[masks[..., 0] == 0])
