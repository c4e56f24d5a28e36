"""Gated convolution layers: config round trip, shapes (eager and traced), weights, one fit step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.layers import GatedConv2D, GatedUpConv2D, PaddedConv2D


def _random(*shape):
    return tf.random.stateless_uniform(shape, seed=(1, 2), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("layer", [
    GatedConv2D(8, 3, strides=2, dilation_rate=1, padding="reflect", activation="relu",
                name="g"),
    GatedUpConv2D(8, padding="reflect", name="u"),
    PaddedConv2D(3, 3, padding="reflect", activation="tanh", name="o"),
])
def test_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = _random(1, 12, 12, 4)
    assert clone(x).shape == layer(x).shape
    # Registered under the package name, so .keras files find them.
    assert keras.saving.get_registered_object(
        f"tfinpaint>{layer.__class__.__name__}") is layer.__class__


@pytest.mark.parametrize("padding", ["zero", "reflect"])
@pytest.mark.parametrize("size, kernel, strides, dilation, expected", [
    ((9, 7), 3, 2, 1, (5, 4)),    # odd sizes, stride 2 -> ceil
    ((8, 10), 5, 1, 1, (8, 10)),
    ((8, 10), 3, 2, 1, (4, 5)),
    # Reflection with dilation 16 needs at least 17 px (68 px at the network's input).
    ((17, 19), 3, 1, 16, (17, 19)),
    ((17, 21), 5, 2, 1, (9, 11)),
    # (Keras' Conv2D rejects strides > 1 with dilation > 1; the networks never combine them.)
])
def test_gated_conv_shapes_eager_and_traced(padding, size, kernel, strides, dilation, expected):
    layer = GatedConv2D(8, kernel, strides=strides, dilation_rate=dilation, padding=padding)
    x = _random(2, *size, 3)
    assert layer(x).shape == (2, *expected, 4)

    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 3])])
    assert traced(x).shape == (2, *expected, 4)
    assert layer.compute_output_shape((2, *size, 3)) == (2, *expected, 4)


def test_reflect_padding_is_reflection_then_valid_conv():
    layer = GatedConv2D(4, 3, dilation_rate=2, padding="reflect")
    x = _random(1, 9, 9, 3)
    y = layer(x)
    padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    conv = tf.nn.conv2d(padded, layer.conv.kernel, 1, "VALID", dilations=2) + layer.conv.bias
    features, gates = tf.split(conv, 2, axis=-1)
    np.testing.assert_allclose(y, tf.nn.elu(features) * tf.sigmoid(gates), atol=1e-5)


@pytest.mark.parametrize("padding", ["zero", "reflect"])
def test_up_conv_doubles_with_unknown_size(padding):
    layer = GatedUpConv2D(8, padding=padding)
    x = _random(2, 5, 7, 6)
    assert layer(x).shape == (2, 10, 14, 4)
    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 6])])
    assert traced(x).shape == (2, 10, 14, 4)


def test_weight_counts_and_initializer():
    gated = GatedConv2D(96, 3)
    gated.build((None, None, None, 24))
    assert gated.count_params() == 3 * 3 * 24 * 96 + 96
    assert isinstance(gated.conv.kernel_initializer, keras.initializers.HeNormal)
    up = GatedUpConv2D(48)
    up.build((None, None, None, 48))
    assert up.count_params() == 3 * 3 * 48 * 48 + 48


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="padding"):
        GatedConv2D(8, 3, padding="same")
    with pytest.raises(ValueError, match="activation"):
        GatedConv2D(8, 3, activation="tanh")
    with pytest.raises(ValueError, match="even"):
        GatedConv2D(7, 3)


def test_one_fit_step_changes_weights():
    model = keras.Sequential([
        keras.Input((None, None, 3)),
        GatedConv2D(8, 3, strides=2, padding="reflect"),
        GatedUpConv2D(8, padding="reflect"),
        PaddedConv2D(3, 3, padding="reflect"),
    ])
    model.compile(optimizer="adam", loss="mae")
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = _random(2, 8, 8, 3).numpy()
    model.fit(x, x, epochs=1, batch_size=2, verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_mixed_bfloat16(mixed_bfloat16):
    for layer in (GatedConv2D(8, 3, padding="reflect"), GatedUpConv2D(8)):
        y = layer(_random(1, 6, 6, 3))
        assert y.dtype == tf.bfloat16
        assert all(w.dtype == "float32" for w in layer.weights)
        assert layer.conv.dtype_policy.name == "mixed_bfloat16"
