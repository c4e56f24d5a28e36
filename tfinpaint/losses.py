"""Loss terms, one pure function each, masked and normalised by the mask's area.

Images are float in [-1, 1], masks float in {0, 1} with shape [B, H, W, 1].
"""

from __future__ import annotations

import tensorflow as tf

_EPS = 1e-6


def masked_l1(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """Mean absolute error over the pixels where `weight` is 1 (per channel), 0 if there are none."""
    prediction = tf.cast(prediction, tf.float32)
    channels = tf.cast(tf.shape(prediction)[-1], tf.float32)
    total = tf.reduce_sum(tf.abs(prediction - target) * weight)
    return total / (tf.reduce_sum(weight) * channels + _EPS)


def reconstruction_loss(outputs: list[tf.Tensor], frames: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
    """Eq. 1-2: L1 between every stage's output and the frame, on the known pixels `1 - M_i` only.

    The pixels behind the translated mask `M'_t` are known, hidden from the network's input, and
    scored here: that is what teaches the network to fill. The truth behind `M_i` is never used.
    """
    return tf.add_n([masked_l1(output, frames, known) for output in outputs])


def masked_psnr(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """PSNR in dB (images in [-1, 1], so the peak-to-peak range is 2) over the weighted pixels."""
    prediction = tf.cast(prediction, tf.float32)
    channels = tf.cast(tf.shape(prediction)[-1], tf.float32)
    mse = tf.reduce_sum(tf.square(prediction - target) * weight) / (tf.reduce_sum(weight) * channels + _EPS)
    return 10.0 * tf.math.log(4.0 / tf.maximum(mse, 1e-10)) / tf.math.log(10.0)
