"""The small random perturbation g of the stabilisation loss (paper eq. 4-5, Appendix A.3).

g is a projective transform (translation, rotation, scale and shear about the image centre,
combined into one 3x3 matrix) followed, on images only, by a linear intensity change and a 3x3 or
5x5 Gaussian blur. Masks take the geometric part alone, with nearest-neighbour sampling, so they
stay binary. Every op is core TensorFlow (`tf.raw_ops.ImageProjectiveTransformV3`) driven by a
stateless seed: it runs eagerly, inside `tf.data` and inside a compiled step, and the same seed
gives the same g.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from tfinpaint.config import PerturbationConfig


@dataclass
class Draw:
    """One g per example: `transforms` [B, 8] (output to input pixel coordinates, as
    ImageProjectiveTransformV3 takes them), `gains` [B], `blur_choice` [B] int32 into blur_sizes."""

    transforms: tf.Tensor
    gains: tf.Tensor
    blur_choice: tf.Tensor


def _uniform(seed: tf.Tensor, shape, half_range: float, centre: float = 0.0) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed, centre - half_range, centre + half_range)


def forward_matrices(seed: tf.Tensor, batch: int | tf.Tensor, height, width,
                     ranges: PerturbationConfig = PerturbationConfig()) -> tf.Tensor:
    """float32 [B, 3, 3]: per example, where g sends pixel (x, y, 1) of the original image."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    shift = _uniform(seeds[0], [batch, 2], ranges.translation)
    angle = _uniform(seeds[1], [batch], ranges.rotation * math.pi / 180.0)
    scale = _uniform(seeds[2], [batch], ranges.scale, centre=1.0)
    shear = _uniform(seeds[3], [batch], ranges.shear * math.pi / 180.0)
    zeros, ones = tf.zeros([batch]), tf.ones([batch])

    def matrix(rows):
        return tf.reshape(tf.stack([v for row in rows for v in row], axis=-1), [-1, 3, 3])

    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    to_centre = matrix([[ones, zeros, -cx * ones], [zeros, ones, -cy * ones], [zeros, zeros, ones]])
    back = matrix([[ones, zeros, cx + shift[:, 0]], [zeros, ones, cy + shift[:, 1]],
                   [zeros, zeros, ones]])
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotate = matrix([[cos, -sin, zeros], [sin, cos, zeros], [zeros, zeros, ones]])
    sheared = matrix([[ones, tf.tan(shear), zeros], [zeros, ones, zeros], [zeros, zeros, ones]])
    scaled = matrix([[scale, zeros, zeros], [zeros, scale, zeros], [zeros, zeros, ones]])
    return back @ rotate @ sheared @ scaled @ to_centre


def draw(seed: tf.Tensor, batch: int | tf.Tensor, height, width,
         ranges: PerturbationConfig = PerturbationConfig()) -> Draw:
    """Draws one perturbation g per example of a [batch, height, width, C] batch."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    forward = forward_matrices(seeds[0], batch, height, width, ranges)
    inverse = tf.linalg.inv(forward)
    inverse = inverse / inverse[:, 2:3, 2:3]
    transforms = tf.reshape(inverse, [-1, 9])[:, :8]
    gains = _uniform(seeds[1], [batch], ranges.intensity, centre=1.0)
    blur_choice = tf.random.stateless_uniform([batch], seeds[2], 0, len(ranges.blur_sizes),
                                              dtype=tf.int32)
    return Draw(transforms=transforms, gains=gains, blur_choice=blur_choice)


def warp(images: tf.Tensor, transforms: tf.Tensor, interpolation: str = "BILINEAR") -> tf.Tensor:
    """Applies [B, 8] projective transforms to [B, H, W, C] float images; borders replicate the
    edge ("NEAREST" fill), so the frame never gains a black margin the network would have to fill.
    """
    shape = tf.shape(images)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(transforms, tf.float32), output_shape=shape[1:3],
        fill_value=0.0, interpolation=interpolation, fill_mode="NEAREST")


def gaussian_kernel(size: int) -> tf.Tensor:
    """The normalised 1-D Gaussian of `size` taps, sigma as OpenCV picks it for that size."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8
    taps = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    return kernel / tf.reduce_sum(kernel)


def _blur(images: tf.Tensor, size: int) -> tf.Tensor:
    channels = images.shape[-1]
    pad = size // 2
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    kernel = gaussian_kernel(size)
    rows = tf.tile(tf.reshape(kernel, [size, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(kernel, [1, size, 1, 1]), [1, 1, channels, 1])
    padded = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(padded, cols, [1, 1, 1, 1], "VALID")


def perturb_images(images: tf.Tensor, g: Draw, ranges: PerturbationConfig = PerturbationConfig()) -> tf.Tensor:
    """g on images in [-1, 1]: warp (bilinear), intensity gain, Gaussian blur; clipped to [-1, 1]."""
    warped = warp(tf.cast(images, tf.float32), g.transforms, "BILINEAR")
    # The gain scales brightness (in [0, 1] terms), so black stays black.
    gained = (warped + 1.0) * g.gains[:, None, None, None] - 1.0
    blurred = tf.zeros_like(gained)
    for index, size in enumerate(ranges.blur_sizes):
        chosen = tf.equal(g.blur_choice, index)[:, None, None, None]
        blurred = tf.where(chosen, _blur(gained, size), blurred)
    return tf.clip_by_value(blurred, -1.0, 1.0)


def perturb_masks(masks: tf.Tensor, g: Draw) -> tf.Tensor:
    """The geometric part of g on {0, 1} masks, nearest-neighbour, so they stay binary."""
    return warp(tf.cast(masks, tf.float32), g.transforms, "NEAREST")
