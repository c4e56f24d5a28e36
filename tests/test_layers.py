"""Gated convolution layers: the layer contract (`layer_harness.run_layer_test`), then what is
particular to each: output sizes at odd sizes, reflection padding, the initializer, bad arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_harness import run_layer_test
from tfinpaint.model.layers import GatedConv2D, GatedUpConv2D, PaddedConv2D


def _random(*shape):
    return tf.random.stateless_uniform(shape, seed=(1, 2), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("layer_cls, init_kwargs, output_shape, params", [
    (GatedConv2D, dict(filters=8, kernel_size=3, strides=2, dilation_rate=1, padding="reflect",
                       activation="relu"), (2, 6, 5, 4), 3 * 3 * 4 * 8 + 8),
    (GatedConv2D, dict(filters=8, kernel_size=3, dilation_rate=2, padding="zero"),
     (2, 11, 9, 4), 3 * 3 * 4 * 8 + 8),
    (GatedUpConv2D, dict(filters=8, padding="reflect"), (2, 22, 18, 4), 3 * 3 * 4 * 8 + 8),
    (PaddedConv2D, dict(filters=3, kernel_size=3, padding="reflect", activation="tanh"),
     (2, 11, 9, 3), 3 * 3 * 4 * 3 + 3),
])
def test_layer_contract(layer_cls, init_kwargs, output_shape, params):
    run_layer_test(layer_cls, init_kwargs, input_shape=(2, 11, 9, 4),
                   expected_output_shape=output_shape, expected_num_trainable_weights=2,
                   expected_num_params=params)


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
