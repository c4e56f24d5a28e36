"""A cheap fill of the hole, computed on the device, that the network starts from (`data.prefill`).

`pyramid_fill` is a push-pull fill: the known pixels and their weights are averaged down a
pyramid (2x2 average pooling, "pull"), then, from the coarsest level up, each level's holes are
filled with the upsampled level below it ("push"). A hole pixel gets the average colour of the
nearest known pixels, at the scale where any exist: a smooth extension of the surroundings instead
of grey, so the network refines a plausible fill rather than inventing one from nothing.
With `smoothing` iterations, each level's hole is relaxed towards the mean of its four neighbours
after the push (Jacobi steps of Laplace's equation, coarse to fine: a multigrid cascade), which
approaches the harmonic fill, the smoothest surface that meets the hole's edge: what the
generator blends in where nothing in the clip shows what the hole hides (`SmoothShare`).

Plain TF ops: any H and W (also unknown when traced), inside `tf.function` and `tf.data`.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfinpaint.config import Prefill, choices

PREFILLS = choices(Prefill)
# Levels when the frame size is unknown at trace time: enough for frames up to 2^14 px. Pooling
# a 1x1 level leaves it 1x1, so extra levels cost next to nothing.
_DEFAULT_LEVELS = 14


def _levels(images: tf.Tensor) -> int:
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        return _DEFAULT_LEVELS
    return max(1, math.ceil(math.log2(max(height, width, 2))))


def _neighbour_mean(images: tf.Tensor) -> tf.Tensor:
    """The mean of each pixel's 4 neighbours inside the image (3 at an edge, 2 in a corner; a
    1x1 image, which has none, as it is)."""
    cross = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[:, :, None, None]
    total = tf.nn.depthwise_conv2d(images, tf.tile(cross, [1, 1, images.shape[-1], 1]),
                                   [1, 1, 1, 1], "SAME")
    count = tf.nn.conv2d(tf.ones_like(images[..., :1]), cross, 1, "SAME")
    return tf.where(count > 0, tf.math.divide_no_nan(total, count), images)


def pyramid_fill(images: tf.Tensor, hole: tf.Tensor, levels: int | None = None,
                 smoothing: int = 0) -> tf.Tensor:
    """Fills the hole of `images` from the known pixels around it (push-pull).

    Args:
        images: float [B, H, W, C]; the values inside the hole are ignored.
        hole: float [B, H, W, 1], 1 = hole, 0 = known.
        levels: pyramid depth (default: enough to reach 1x1).
        smoothing: Jacobi steps per level after the push, each setting a level's missing
            weight to its neighbours' mean (0: plain push-pull).

    Returns:
        float32 [B, H, W, C]: the known pixels exactly as given, the hole filled with a convex
        combination of known pixels (zeros where an image has no known pixel at all).
    """
    images = tf.cast(images, tf.float32)
    known = 1.0 - tf.cast(hole, tf.float32)
    levels = _levels(images) if levels is None else levels
    # pull: premultiplied colour and weight, averaged 2x2 at each level
    colours, weights = [images * known], [known]
    for _ in range(levels):
        colours.append(tf.nn.avg_pool2d(colours[-1], 2, 2, "SAME"))
        weights.append(tf.nn.avg_pool2d(weights[-1], 2, 2, "SAME"))
    # push: the coarsest level normalised, then each finer level's missing weight taken from it
    filled = tf.math.divide_no_nan(colours[-1], weights[-1])
    for colour, weight in zip(reversed(colours[:-1]), reversed(weights[:-1])):
        up = tf.image.resize(filled, tf.shape(colour)[1:3], method="bilinear")
        filled = colour + (1.0 - weight) * up
        for _ in range(smoothing):
            filled = colour + (1.0 - weight) * _neighbour_mean(filled)
    # at level 0 the weight is 0 or 1, so known pixels are the input's; make that exact anyway
    return tf.where(known > 0.5, images, filled)


def apply_prefill(images: tf.Tensor, hole: tf.Tensor, prefill: str = "none",
                  prefilled: tf.Tensor | None = None) -> tf.Tensor:
    """The network's view of the frame: the hole blanked ("none"), prefilled by push-pull
    ("pyramid", and "pyramid+flow", whose flow fill comes as more channels: `network_input`), or
    taken from `prefilled` ("flow": the flow propagation of `tfinpaint.fill.flow`, computed
    outside, in the same value range as `images`)."""
    if prefill == "flow":
        if prefilled is None:
            raise ValueError('prefill "flow" needs the flow-propagated frames (prefilled)')
        return images * (1.0 - hole) + tf.cast(prefilled, images.dtype) * hole
    if prefill == "none":
        return images * (1.0 - hole)
    if prefill in ("pyramid", "pyramid+flow"):
        return tf.cast(pyramid_fill(images, hole), images.dtype)
    raise ValueError(f"unknown prefill {prefill!r}; expected one of {PREFILLS}")
