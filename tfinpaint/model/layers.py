"""Gated convolutions (DeepFill v2) as serializable Keras 3 layers.

The networks of the paper (Appendix A.1) are stacks of three blocks: `G(c, k, s, d)`
(`GatedConv2D`), `U(c)` (`GatedUpConv2D`) and `Out` (`PaddedConv2D` followed by tanh). All three
take the same `padding` choice: "zero" (the reference implementation's default) or "reflect"
(the paper's).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfinpaint.config import Padding, choices

PADDINGS = choices(Padding)
GATE_ACTIVATIONS = ("elu", "relu")


def _check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _reflect_pad(x: tf.Tensor, kernel_size: int, dilation_rate: int) -> tf.Tensor:
    """Pad H and W by REFLECT so that a VALID convolution keeps ceil(size / stride).

    The padding is symmetric and the same for every stride: with an odd effective kernel
    `ke = d * (k - 1) + 1`, padding `(ke - 1) / 2` each side and a VALID stride-s convolution
    give `floor((H - 1) / s) + 1 = ceil(H / s)` rows, like "same". REFLECT needs the padding
    to be smaller than the size, so a dilation-16 3x3 layer needs at least 17 px at its level.
    """
    effective = dilation_rate * (kernel_size - 1) + 1
    before = (effective - 1) // 2
    after = effective - 1 - before
    return tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], mode="REFLECT")


@keras.saving.register_keras_serializable(package="tfinpaint")
class PaddedConv2D(keras.layers.Layer):
    """A plain 2D convolution with zero ("same") or reflection padding.

    Used for the network's `Out` block (a 3x3 convolution before tanh), so that the whole
    network honours one padding choice.

    Args:
        filters: number of output channels.
        kernel_size: odd int, the square kernel size.
        strides: int, the stride in both directions.
        dilation_rate: int, the dilation in both directions.
        padding: "zero" (Keras "same") or "reflect" (`tf.pad` REFLECT, then a VALID convolution).
        activation: a Keras activation name or None.
        **kwargs: passed on to `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4D tensor `[batch, height, width, channels]`.

    Example:
    >>> layer = PaddedConv2D(3, 3, padding="reflect")
    >>> layer(tf.zeros([1, 8, 8, 12])).shape
    TensorShape([1, 8, 8, 3])

    Reference:
        - [Ouyang et al., Internal Video Inpainting by Implicit Long-range Propagation,
          ICCV 2021, Appendix A.1](https://arxiv.org/abs/2108.01912)
    """

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, padding="zero",
                 activation=None, **kwargs):
        super().__init__(**kwargs)
        _check_padding(padding)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.padding = padding
        self.activation = activation
        self.conv = keras.layers.Conv2D(
            filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
            padding="same" if padding == "zero" else "valid", activation=activation,
            dtype=self.dtype_policy, name="conv")

    def build(self, input_shape):
        # The kernel depends on the channels only; with "reflect" the convolution sees the
        # padded size, so let it not check the unpadded one.
        self.conv.build((None, None, None, input_shape[-1]))

    def call(self, inputs):
        if self.padding == "reflect":
            inputs = _reflect_pad(inputs, self.kernel_size, self.dilation_rate)
        return self.conv(inputs)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, _strided(height, self.strides), _strided(width, self.strides), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dilation_rate=self.dilation_rate, padding=self.padding,
                      activation=self.activation)
        return config


@keras.saving.register_keras_serializable(package="tfinpaint")
class GatedConv2D(keras.layers.Layer):
    """Gated convolution `G(c, k, s, d)`: one convolution split into features and soft gates.

    A single convolution with `filters` (= c) output channels; the first c/2 channels are
    features, the last c/2 gates, and the layer returns `activation(features) * sigmoid(gates)`
    (c/2 channels). Spatial size is `ceil(size / strides)` with both paddings. Kernels start from
    `he_normal`: with glorot a 17-layer gated stack barely trains.

    Args:
        filters: even int, the convolution's output channels c (the layer outputs c/2).
        kernel_size: odd int, the square kernel size k.
        strides: int, the stride s.
        dilation_rate: int, the dilation d.
        padding: "zero" (Keras "same") or "reflect" (`tf.pad` REFLECT of `d * (k - 1) / 2`
            each side, then a VALID convolution). Reflection needs the padding to be smaller
            than the input: a 3x3 layer with dilation 16 needs at least 17 px.
        activation: "elu" (the paper's) or "relu" (one layer of the refiner's branch B).
        **kwargs: passed on to `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4D tensor `[batch, height, width, channels]`.

    Example:
    >>> layer = GatedConv2D(96, 3, strides=2)
    >>> layer(tf.zeros([1, 9, 9, 24])).shape
    TensorShape([1, 5, 5, 48])

    Reference:
        - [Yu et al., Free-Form Image Inpainting with Gated Convolution, ICCV 2019](
          https://arxiv.org/abs/1806.03589)
        - [Ouyang et al., Internal Video Inpainting by Implicit Long-range Propagation,
          ICCV 2021, Appendix A.1](https://arxiv.org/abs/2108.01912)
    """

    def __init__(self, filters, kernel_size, strides=1, dilation_rate=1, padding="zero",
                 activation="elu", **kwargs):
        super().__init__(**kwargs)
        _check_padding(padding)
        if activation not in GATE_ACTIVATIONS:
            raise ValueError(f"activation must be one of {GATE_ACTIVATIONS}, got {activation!r}")
        if filters % 2:
            raise ValueError(f"filters must be even (half features, half gates), got {filters}")
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.padding = padding
        self.activation = activation
        self.conv = keras.layers.Conv2D(
            filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
            padding="same" if padding == "zero" else "valid",
            kernel_initializer="he_normal", dtype=self.dtype_policy, name="conv")

    def build(self, input_shape):
        # The kernel depends on the channels only; with "reflect" the convolution sees the
        # padded size, so let it not check the unpadded one.
        self.conv.build((None, None, None, input_shape[-1]))

    def call(self, inputs):
        if self.padding == "reflect":
            inputs = _reflect_pad(inputs, self.kernel_size, self.dilation_rate)
        features, gates = tf.split(self.conv(inputs), 2, axis=-1)
        if self.activation == "elu":
            features = tf.nn.elu(features)
        else:
            features = tf.nn.relu(features)
        return features * tf.sigmoid(gates)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, _strided(height, self.strides), _strided(width, self.strides),
                self.filters // 2)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dilation_rate=self.dilation_rate, padding=self.padding,
                      activation=self.activation)
        return config


@keras.saving.register_keras_serializable(package="tfinpaint")
class GatedUpConv2D(keras.layers.Layer):
    """Upsampling block `U(c)`: bilinear x2 resize, then `GatedConv2D(c, 3, 1, 1)`.

    The resize is `tf.image.resize` rather than `keras.layers.UpSampling2D`, whose bilinear mode
    fails to trace when height and width are unknown.

    Args:
        filters: even int, the gated convolution's channels c (the layer outputs c/2).
        padding: "zero" or "reflect", as in `GatedConv2D`.
        **kwargs: passed on to `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4D tensor `[batch, height, width, channels]`; the output is
            `[batch, 2 * height, 2 * width, filters / 2]`.

    Example:
    >>> layer = GatedUpConv2D(96)
    >>> layer(tf.zeros([1, 8, 8, 96])).shape
    TensorShape([1, 16, 16, 48])

    Reference:
        - [Ouyang et al., Internal Video Inpainting by Implicit Long-range Propagation,
          ICCV 2021, Appendix A.1](https://arxiv.org/abs/2108.01912)
    """

    def __init__(self, filters, padding="zero", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.padding = padding
        self.conv = GatedConv2D(filters, 3, padding=padding, dtype=self.dtype_policy,
                                name="gated_conv")

    def build(self, input_shape):
        batch, height, width, channels = input_shape
        self.conv.build((batch, _doubled(height), _doubled(width), channels))

    def call(self, inputs):
        size = tf.shape(inputs)[1:3] * 2
        # tf.image.resize returns float32 for bilinear; keep the compute dtype (bfloat16).
        upsampled = tf.cast(tf.image.resize(inputs, size, method="bilinear"), inputs.dtype)
        return self.conv(upsampled)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, _doubled(height), _doubled(width), self.filters // 2)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, padding=self.padding)
        return config


def _strided(size, strides):
    return None if size is None else -(-size // strides)


def _doubled(size):
    return None if size is None else 2 * size
