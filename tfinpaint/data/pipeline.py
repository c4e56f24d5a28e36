"""The training input pipeline: frames held once as uint8 tensors, samples drawn on the device.

Element `e` of the stream (example `b` of step `s`, `e = s * batch + b`) is a pure function of
`(seed, e)`: stateless random ops seeded with it pick the frame `i`, the frame `t` whose mask is
borrowed, the translation and the crop. Resuming at step `s` therefore replays exactly the
samples an uninterrupted fit would have drawn, with no RNG state to save.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from tfinpaint.data import masks as mask_ops


@dataclass
class Sampling:
    """How translated masks and crops are drawn (see DataConfig)."""

    translation: str = "uniform"
    band_y: float = 45.0  # at 480p
    band_x: float = 80.0
    boundary_weight: float = 5.0
    crop_height: int = 0
    crop_width: int = 0
    # "random": anywhere in the frame; "hole": around the translated mask M'_t, whose hidden known
    # pixels are what teaches the network to fill (the crop centre is jittered by up to a quarter
    # of the crop, so the hole is seen at every position the network will meet).
    crop_placement: str = "random"


def element_seed(seed: int, element: tf.Tensor, stream: int) -> tf.Tensor:
    """The stateless seed of element `element` of stream `stream` (training 0, self-check 1, ...)."""
    return tf.stack([tf.cast(seed, tf.int64) * 1000003 + stream, tf.cast(element, tf.int64)])


def seeded_batches(sample: Callable[[tf.Tensor], dict], *, batch_size: int, seed: int,
                   stream: int = 0, start_step: int = 0) -> tf.data.Dataset:
    """An endless stream of batches of `sample(element_seed(...))`, from step `start_step` on."""
    elements = tf.data.Dataset.range(start_step * batch_size, np.iinfo(np.int64).max)
    examples = elements.map(lambda e: sample(element_seed(seed, e, stream)),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return examples.batch(batch_size, drop_remainder=True).prefetch(2)


def fixed_examples(sample: Callable[[tf.Tensor], dict], count: int, seed: int,
                   stream: int = 1) -> dict[str, tf.Tensor]:
    """`count` examples stacked into one batch, the same for every call (the self-check)."""
    examples = [sample(element_seed(seed, e, stream)) for e in range(count)]
    return {key: tf.stack([example[key] for example in examples]) for key in examples[0]}


class MaskSampler:
    """Draws (frame, its mask, a translated mask of another frame) from a clip held in memory.

    Args:
        frames: uint8 [N, H, W, 3] at working resolution.
        masks: uint8 [N, H, W, 1], 1 = hole.
        sampling: translation sampler and crop size.
    """

    def __init__(self, frames: np.ndarray, masks: np.ndarray, sampling: Sampling):
        self.sampling = sampling
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.frames = tf.constant(frames, tf.uint8)
        self.masks = tf.constant(masks, tf.uint8)
        self.centres = tf.constant(mask_ops.mask_centres(masks))
        scale = self.height / 480.0
        band_y = max(1, int(round(sampling.band_y * scale)))
        band_x = max(1, int(round(sampling.band_x * scale)))
        self.bands = tf.constant(mask_ops.boundary_band(masks, band_y, band_x))

    def sample(self, seed: tf.Tensor, crop: bool = True) -> dict[str, tf.Tensor]:
        """One example: `frames` uint8 [h, w, 3], `masks` (M_i) and `translated` (M'_t) uint8 [h, w, 1]."""
        seeds = tf.random.experimental.stateless_split(seed, 4)
        n = self.num_frames
        i = tf.random.stateless_uniform([], seeds[0], 0, n, dtype=tf.int32)
        # t is another frame where there is one: the borrowed mask then differs from M_i.
        t = (i + tf.random.stateless_uniform([], seeds[1], 1, max(n, 2), dtype=tf.int32)) % n
        if self.sampling.translation == "boundary":
            offset = mask_ops.boundary_offset(seeds[2], self.bands[i], self.centres[t],
                                              self.sampling.boundary_weight)
        else:
            offset = mask_ops.uniform_offset(seeds[2], self.height, self.width)
        example = {
            "frames": self.frames[i],
            "masks": self.masks[i],
            "translated": mask_ops.translate(self.masks[t], offset),
        }
        if crop and self.sampling.crop_height and self.sampling.crop_width:
            translated_centre = (tf.cast(tf.round(self.centres[t]), tf.int32) + offset) % tf.constant(
                [self.height, self.width])
            example = self._crop(example, seeds[3], translated_centre)
        return example

    def _crop(self, example: dict[str, tf.Tensor], seed: tf.Tensor,
              translated_centre: tf.Tensor) -> dict[str, tf.Tensor]:
        crop_h = min(self.sampling.crop_height, self.height)
        crop_w = min(self.sampling.crop_width, self.width)
        draw = tf.random.stateless_uniform([2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
        if self.sampling.crop_placement == "hole":
            jitter = tf.constant([crop_h // 4, crop_w // 4])
            corner = translated_centre - tf.constant([crop_h // 2, crop_w // 2]) + draw % (2 * jitter + 1) - jitter
            corner = tf.clip_by_value(corner, 0, tf.constant([self.height - crop_h, self.width - crop_w]))
        else:
            corner = draw % tf.constant([self.height - crop_h + 1, self.width - crop_w + 1])
        return {key: value[corner[0]:corner[0] + crop_h, corner[1]:corner[1] + crop_w]
                for key, value in example.items()}

    def dataset(self, *, batch_size: int, seed: int, start_step: int = 0) -> tf.data.Dataset:
        """An endless stream of batches, starting at `start_step` of the fit."""
        return seeded_batches(self.sample, batch_size=batch_size, seed=seed, start_step=start_step)

    def fixed_batch(self, count: int, seed: int) -> dict[str, tf.Tensor]:
        """A fixed set of whole-frame examples (the self-check), the same for every call."""
        return fixed_examples(lambda s: self.sample(s, crop=False), count, seed)
