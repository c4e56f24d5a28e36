"""Filling frames with a fitted generator, at the working resolution and back at the native one."""

from __future__ import annotations

from typing import Callable

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfinpaint.generator import MULTIPLE, crop_to, pad_to_multiple
from tfinpaint.inpainter import network_input, to_signed, to_uint8

FillFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def predict_hole(generator: keras.Model, frames: tf.Tensor, hole: tf.Tensor, *,
                 prefill: str = "none", priors: tf.Tensor | None = None) -> tf.Tensor:
    """The network's last-stage output, float in [-1, 1], for frames of any H and W.

    `frames` and `priors` are float in [-1, 1], `hole` float 0/1. The input is
    reflection-padded to a multiple of the network's stride and the output cropped back.
    """
    inputs = network_input(frames, hole, priors, prefill)
    padded, size = pad_to_multiple(inputs, MULTIPLE)
    return crop_to(generator(padded, training=False)[-1], size)


def make_fill_fn(generator: keras.Model, prefill: str = "none") -> FillFn:
    """A graph function `(frames uint8 [N,H,W,3], masks uint8 [N,H,W,1]) -> uint8 [N,H,W,3]`.

    Any H and W; any non-zero mask value is hole; known pixels pass through exactly.
    `prefill` is the run's `data.prefill`: the network's input must be the one it was fitted on.
    """

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
        tf.TensorSpec([None, None, None, 1], tf.uint8, name="masks"),
    ])
    def fill(frames, masks):
        is_hole = masks > 0
        output = predict_hole(generator, to_signed(frames), tf.cast(is_hole, tf.float32),
                              prefill=prefill)
        return tf.where(is_hole, to_uint8(output), frames)

    return fill


PriorFillFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def make_prior_fill_fn(generator: keras.Model, prefill: str = "none") -> PriorFillFn:
    """`make_fill_fn` for a later stage of progressive fitting: `(frames, masks, priors uint8
    [N,H,W,3]) -> uint8 [N,H,W,3]`, the prior being the previous stage's upsampled result."""

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
        tf.TensorSpec([None, None, None, 1], tf.uint8, name="masks"),
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="priors"),
    ])
    def fill(frames, masks, priors):
        is_hole = masks > 0
        output = predict_hole(generator, to_signed(frames), tf.cast(is_hole, tf.float32),
                              prefill=prefill, priors=to_signed(priors))
        return tf.where(is_hole, to_uint8(output), frames)

    return fill


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes 0/1 masks so that every pixel touched by the hole stays hole (area, then > 0)."""
    if masks.shape[1:3] == (height, width):
        return masks
    resized = [cv2.resize(m[..., 0].astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
               for m in masks]
    return (np.stack(resized)[..., None] > 0).astype(np.uint8)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def working_size(native: tuple[int, int], requested: tuple[int, int]) -> tuple[int, int]:
    """The working (H, W): as configured, or the native size where the config says 0."""
    height, width = requested
    return (height or native[0], width or native[1])


def render(fill: FillFn, frames: np.ndarray, masks: np.ndarray, size: tuple[int, int],
           batch_size: int = 4, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Fills native-resolution frames with a network that works at `size` (H, W).

    The frames are reduced to the working size and filled there; only the hole is brought back
    up (bicubic) and pasted, so every known pixel of the result is the input's, bit for bit.
    """
    height, width = frames.shape[1:3]
    small_frames = resize_frames(frames, *size)
    small_masks = resize_masks(masks, *size)
    result = frames.copy()
    for start in range(0, len(frames), batch_size):
        stop = min(start + batch_size, len(frames))
        filled = fill(tf.constant(small_frames[start:stop]), tf.constant(small_masks[start:stop])).numpy()
        for offset, image in enumerate(filled):
            index = start + offset
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
            hole = masks[index, ..., 0] > 0
            result[index][hole] = image[hole]
        if progress is not None:
            progress(stop)
    return result
