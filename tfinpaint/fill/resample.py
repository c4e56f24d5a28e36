"""Resizing images with weight matrices, one way for every path that moves frames between the
native and the working resolution: training's reduction (`tfinpaint.io.clip.resize_frames`), the fill
graph of `tfinpaint.infer` and the exported SavedModel and ONNX models (`tfinpaint.fill.render`).

Each axis is resized by one [out, in] matrix built from plain TF ops (range, min/max, floor,
equal), applied with a matrix multiply along H and then along W, so that the same graph runs
under `tf.function` with unknown sizes and converts with tf2onnx. An axis that shrinks (or keeps
its size) is averaged over the area each output pixel covers, as OpenCV's INTER_AREA does; the
overlaps are counted in integers, so equal sizes give the identity exactly and a pixel outside an
output pixel's area gets a weight of exactly 0 (a mask reduced this way and thresholded at > 0
keeps every pixel the hole touches). An axis that grows is interpolated bicubically (Keys,
a = -0.75, pixel centres aligned, edges replicated), as OpenCV's INTER_CUBIC does.
"""

from __future__ import annotations

import tensorflow as tf

# Keys' cubic convolution parameter, OpenCV's choice for INTER_CUBIC.
CUBIC_A = -0.75


def area_weights(in_size, out_size) -> tf.Tensor:
    """[out, in] float32: the share of input pixel j in output pixel i's area (rows sum to 1).

    In units of 1 / (in * out) of the axis, output pixel i spans [i * in, (i + 1) * in) and input
    pixel j spans [j * out, (j + 1) * out): their overlap is an exact integer.
    """
    out_index = tf.range(out_size)[:, None]
    in_index = tf.range(in_size)[None, :]
    overlap = tf.maximum(0, tf.minimum((out_index + 1) * in_size, (in_index + 1) * out_size)
                         - tf.maximum(out_index * in_size, in_index * out_size))
    return tf.cast(overlap, tf.float32) / tf.cast(in_size, tf.float32)


def _cubic(distance: tf.Tensor) -> tf.Tensor:
    d = tf.abs(distance)
    near = ((CUBIC_A + 2.0) * d - (CUBIC_A + 3.0)) * d * d + 1.0
    far = ((CUBIC_A * d - 5.0 * CUBIC_A) * d + 8.0 * CUBIC_A) * d - 4.0 * CUBIC_A
    return tf.where(d <= 1.0, near, tf.where(d < 2.0, far, 0.0))


def cubic_weights(in_size, out_size) -> tf.Tensor:
    """[out, in] float32: bicubic interpolation weights, taps beyond the edge folded onto it."""
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    source = (tf.cast(tf.range(out_size), tf.float32) + 0.5) * scale - 0.5
    left = tf.floor(source)
    fraction = source - left
    left = tf.cast(left, tf.int32)
    in_index = tf.range(in_size)[None, :]
    weights = 0.0
    for tap in range(-1, 3):
        index = tf.clip_by_value(left + tap, 0, in_size - 1)
        weight = _cubic(fraction - float(tap))
        weights += weight[:, None] * tf.cast(tf.equal(index[:, None], in_index), tf.float32)
    return weights


def axis_weights(in_size, out_size) -> tf.Tensor:
    """[out, in] float32: area weights where the axis shrinks or keeps its size, cubic where it
    grows. Both are built and one is selected, so that no control flow enters the graph."""
    return tf.where(out_size <= in_size, area_weights(in_size, out_size),
                    cubic_weights(in_size, out_size))


def resize_images(images, size) -> tf.Tensor:
    """float32 images [N, H, W, C] resized to `size` = (height, width), Python ints or scalar
    tensors. Values keep their range where an axis shrinks; a growing axis may overshoot slightly
    (cubic), so round and clip when converting back to uint8 (`to_levels`)."""
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    count, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    out_height = tf.cast(size[0], tf.int32)
    out_width = tf.cast(size[1], tf.int32)
    rows = axis_weights(height, out_height)
    columns = axis_weights(width, out_width)
    # along H: [out_h, H] @ [N, H, W*C]
    resized = tf.matmul(rows[None], tf.reshape(images, [count, height, width * channels]))
    # along W as one large product: [N*out_h*C, W] @ [W, out_w]
    resized = tf.transpose(tf.reshape(resized, [count * out_height, width, channels]), [0, 2, 1])
    resized = tf.matmul(tf.reshape(resized, [-1, width]), columns, transpose_b=True)
    resized = tf.reshape(resized, [count, out_height, channels, out_width])
    return tf.transpose(resized, [0, 1, 3, 2])


def to_levels(images: tf.Tensor) -> tf.Tensor:
    """float32 values in [0, 255] (after `resize_images`) -> uint8, rounded and clipped."""
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)


def resize_uint8(frames, size) -> tf.Tensor:
    """uint8 frames [N, H, W, C] resized to `size` (H, W), rounded back to uint8."""
    return to_levels(resize_images(frames, size))


def resize_hole(is_hole, size) -> tf.Tensor:
    """bool hole [N, H, W, 1] resized to `size`: every pixel the hole touches stays hole (area
    weights are exactly 0 outside an output pixel, so > 0 means touched)."""
    return resize_images(tf.cast(is_hole, tf.float32), size) > 0.0
