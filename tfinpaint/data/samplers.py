"""The samplers: where each fit draws its training examples from, on the device.

Every sampler holds its clip once as uint8 tensors and draws example `e` as a pure function of
`(seed, e)` (stateless random ops, `tfinpaint.data.pipeline.seeded_batches`), so a resumed fit
replays exactly the samples an uninterrupted one would have drawn, with no RNG state to save.

- `MaskSampler`: whole frames (or crops) with a translated mask of another frame (eq. 1-2).
- `PatchSampler`: base-size patches of a later progressive stage, with their prior (Sec. 4.1).
- `PasteSampler`: the annotated frame with its object pasted elsewhere (mask propagation, Sec. 4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfinpaint.config import DataConfig
from tfinpaint.data import masks as mask_ops
from tfinpaint.data.pipeline import fixed_examples, seeded_batches


@dataclass
class Sampling:
    """How translated masks and crops are drawn: `DataConfig`'s settings (where their defaults
    live), as `sampling_from` reads them."""

    translation: str
    band_y: float  # at 480p
    band_x: float
    boundary_weight: float
    crop_height: int
    crop_width: int
    # "random": anywhere in the frame; "hole": around the translated mask M'_t, whose hidden known
    # pixels are what teaches the network to fill (the crop centre is jittered by up to a quarter
    # of the crop, so the hole is seen at every position the network will meet).
    crop_placement: str
    # The translated mask hides the other frames too, as a tube (`MaskSampler.tube`).
    tube: bool = False
    # With a flow: "uniform" translations put the mask's centre on a moving object this many
    # times as often as elsewhere (`DataConfig.mover_weight`; 1 = uniform).
    mover_weight: float = 1.0


# A training crop is at least this many times the largest hole's bounding box, so that a
# translated hole fits in it with room around: a crop that cut the hole would never show the
# network a hole as large as the real one.
HOLE_ROOM = 1.25


def crop_size(sampling: Sampling, masks: np.ndarray) -> tuple[int, int] | None:
    """(height, width) of the training crops for `masks` (uint8 [N, H, W, 1]), or None for whole
    frames: the configured size, grown to `HOLE_ROOM` times the largest hole's bounding box in
    multiples of 4, at most the frame (None where that is the whole frame)."""
    if not (sampling.crop_height and sampling.crop_width):
        return None
    frame = tuple(masks.shape[1:3])
    extent = mask_ops.largest_extent(masks)
    size = tuple(min(max(configured, 4 * math.ceil(HOLE_ROOM * hole / 4)), side)
                 for configured, hole, side in zip((sampling.crop_height, sampling.crop_width),
                                                   extent, frame))
    return None if size == frame else size


def sampling_from(data: DataConfig) -> Sampling:
    return Sampling(translation=data.translation, band_y=data.boundary_band_y,
                    band_x=data.boundary_band_x, boundary_weight=data.boundary_weight,
                    crop_height=data.crop_height, crop_width=data.crop_width,
                    crop_placement=data.crop_placement, tube=data.translated_tube,
                    mover_weight=data.mover_weight)


class MaskSampler:
    """Draws (frame, its mask, a translated mask of another frame) from a clip held in memory.

    Args:
        frames: uint8 [N, H, W, 3] at working resolution.
        masks: uint8 [N, H, W, 1], 1 = hole.
        sampling: translation sampler and crop size (grown to hold the largest hole: `crop_size`).
        flow: with `data.prefill: flow`, the clip's `tfinpaint.fill.flow.VideoFlow` (its fields
            measured at this resolution): each example then also carries `prefilled`, uint8
            [h, w, 3], X_i with its hole M_i ∪ M'_t filled from the other frames only,
            propagated over the whole frame and cut with the crop. With `sampling.tube` the
            other frames lose their pixels under the moved mask as well (`tube`).
        held: uint8 [N, H, W, 1] or None: known pixels held out of the fit (a tube,
            `tfinpaint.data.masks.beside`). They count as hole in every example (no loss reads
            them, no input shows them; `flow` must be measured with them as hole too), while the
            translated masks keep the real holes' shapes. `held_out_examples` fills them.
    """

    def __init__(self, frames: np.ndarray, masks: np.ndarray, sampling: Sampling, flow=None,
                 held: np.ndarray | None = None):
        self.sampling = sampling
        self.flow = flow
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.crop = crop_size(sampling, masks)  # None: whole frames
        self.frames = tf.constant(frames, tf.uint8)
        self.masks = tf.constant(masks, tf.uint8)
        self.held = None if held is None else tf.constant(held, tf.uint8)
        # what no example shows or scores: the holes, and the held-out pixels
        self.unknown = self.masks if held is None else tf.maximum(self.masks, self.held)
        self.centres = tf.constant(mask_ops.mask_centres(masks))
        scale = self.height / 480.0
        band_y = max(1, int(round(sampling.band_y * scale)))
        band_x = max(1, int(round(sampling.band_x * scale)))
        self.bands = tf.constant(mask_ops.boundary_band(masks, band_y, band_x))
        self.movers = (None if flow is None or sampling.mover_weight == 1.0
                       or not flow.movers.any() else tf.constant(flow.movers, tf.uint8))

    def sample(self, seed: tf.Tensor, crop: bool = True) -> dict[str, tf.Tensor]:
        """One example: `frames` (X_i) uint8 [h, w, 3], `masks` (M_i) and `translated` (M'_t)
        uint8 [h, w, 1], and the frame t != i whose mask was borrowed: `target_frames` (X_t)
        and `target_masks` (M_t), the anti-ambiguity loss's target."""
        seeds = tf.random.experimental.stateless_split(seed, 4)
        n = self.num_frames
        i = tf.random.stateless_uniform([], seeds[0], 0, n, dtype=tf.int32)
        # t is another frame where there is one: the borrowed mask then differs from M_i.
        t = (i + tf.random.stateless_uniform([], seeds[1], 1, max(n, 2), dtype=tf.int32)) % n
        if self.sampling.translation == "boundary":
            offset = mask_ops.boundary_offset(seeds[2], self.bands[i], self.centres[t],
                                              self.sampling.boundary_weight)
        elif self.movers is not None:  # centres on moving objects `mover_weight` times as likely
            offset = mask_ops.boundary_offset(seeds[2], self.movers[i], self.centres[t],
                                              self.sampling.mover_weight)
        else:
            offset = mask_ops.uniform_offset(seeds[2], self.height, self.width)
        example = {
            "frames": self.frames[i],
            "masks": self.unknown[i],
            "translated": mask_ops.translate(self.masks[t], offset),
            "target_frames": self.frames[t],
            "target_masks": self.unknown[t],
        }
        if self.flow is not None:
            # No leak: propagate_frame never reads frame i inside the hole it is given
            hole = tf.maximum(example["masks"], tf.cast(example["translated"], tf.uint8))
            hidden = self.tube(i, t, offset) if self.sampling.tube else None
            example["prefilled"] = self.flow.prefill(i, hole, hidden)
        if crop and self.crop is not None:
            translated_centre = (tf.cast(tf.round(self.centres[t]), tf.int32) + offset) % tf.constant(
                [self.height, self.width])
            example = self._crop(example, seeds[3], translated_centre)
        return example

    def held_out_examples(self, count: int) -> dict[str, tf.Tensor] | None:
        """The held-out pixels of up to `count` frames, evenly spaced among those that hold some,
        as the real holes are filled: `frames` uint8 [K, H, W, 3], `hole` (holes and held-out
        pixels, uint8 [K, H, W, 1]), `held` (the pixels to score) and, with a flow, `prefilled`
        (the frame's `hole` filled from the other frames, which show none of it either). None
        without held-out pixels."""
        if self.held is None:
            return None
        holding = np.flatnonzero(self.held.numpy().any(axis=(1, 2, 3)))
        if len(holding) == 0:
            return None
        chosen = holding[np.unique(np.linspace(0, len(holding) - 1,
                                               min(count, len(holding))).round().astype(int))]

        def example(i):
            drawn = {"frames": self.frames[i], "hole": self.unknown[i], "held": self.held[i]}
            if self.flow is not None:
                drawn["prefilled"] = self.flow.prefill(i, self.unknown[i])
            return drawn

        return tf.data.Dataset.from_tensor_slices(chosen.astype(np.int32)).map(
            example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(
            len(chosen)).get_single_element()

    def tube(self, i: tf.Tensor, t: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
        """uint8 [N, H, W, 1]: the translated mask M'_t through the whole clip. Frame i + k holds
        frame t + k's mask (the last or first one past the clip's ends) moved by the same offset,
        so the training hole moves over time as the real holes do and other frames do not show
        what it hides where the real hole's neighbours would not either. Frame i holds M'_t."""
        borrowed = tf.clip_by_value(tf.range(self.num_frames) - i + t, 0, self.num_frames - 1)
        return tf.roll(tf.gather(self.masks, borrowed), shift=offset, axis=[1, 2])

    def _crop(self, example: dict[str, tf.Tensor], seed: tf.Tensor,
              translated_centre: tf.Tensor) -> dict[str, tf.Tensor]:
        crop_h, crop_w = self.crop
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


class PatchSampler:
    """Draws base-size training patches from a later stage's frames, with their prior.

    A drop-in for `MaskSampler` in `fitting.loop.fit`: elements are dicts of uint8 `frames`, `masks`
    (M_i), `translated` (M'_t) and `prior`, all cut from the same window, and element `e` is a
    pure function of `(seed, e)`, so a resumed stage replays what an uninterrupted one draws.

    Placement: `tries` candidate windows are drawn at once; each centre is a pixel drawn with
    probability `boundary_weight` times higher within M_i's boundary band (boundary-aware
    sampling, App. A.4), and M'_t (another frame's mask) is moved so that its centre falls at a
    uniform point inside the window. The first candidate whose translated hole hides at least
    `min_pixels` known pixels is kept (the one hiding most when none does).

    Args:
        frames, priors: uint8 [N, H, W, 3] at the stage's size; masks uint8 [N, H, W, 1].
        patch: (h, w) of a patch, the base size.
        band: (band_y, band_x) of the boundary band in pixels at this size.
    """

    def __init__(self, frames: np.ndarray, masks: np.ndarray, priors: np.ndarray, *,
                 patch: tuple[int, int], band: tuple[int, int], boundary_weight: float,
                 min_pixels: int, tries: int):
        if priors.shape != frames.shape:
            raise ValueError(f"priors {priors.shape} must match frames {frames.shape}")
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.patch = (min(patch[0], self.height), min(patch[1], self.width))
        self.min_pixels = min_pixels
        self.tries = tries
        self.frames = tf.constant(frames, tf.uint8)
        self.masks = tf.constant(masks, tf.uint8)
        self.priors = tf.constant(priors, tf.uint8)
        self.centres = tf.constant(mask_ops.mask_centres(masks))
        bands = mask_ops.boundary_band(masks, max(1, band[0]), max(1, band[1]))
        self.logits = tf.constant(np.log1p((boundary_weight - 1.0) * bands.reshape(
            len(bands), -1).astype(np.float32)))

    def sample(self, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        seeds = tf.random.experimental.stateless_split(seed, 4)
        n, height, width = self.num_frames, self.height, self.width
        patch_h, patch_w = self.patch
        i = tf.random.stateless_uniform([], seeds[0], 0, n, dtype=tf.int32)
        t = (i + tf.random.stateless_uniform([], seeds[1], 1, max(n, 2), dtype=tf.int32)) % n
        # boundary-aware placement: candidate centres near M_i's boundary
        flat = tf.random.stateless_categorical(self.logits[i][None], self.tries, seeds[2],
                                               dtype=tf.int32)[0]
        centres = tf.stack([flat // width, flat % width], axis=1)
        corners = tf.clip_by_value(centres - [patch_h // 2, patch_w // 2], 0,
                                   [height - patch_h, width - patch_w])
        # translated mask: M'_t's centre at a uniform point of each candidate window
        inside = tf.random.stateless_uniform([self.tries, 2], seeds[3], 0, tf.int32.max,
                                             dtype=tf.int32) % [patch_h, patch_w]
        offsets = corners + inside - tf.cast(tf.round(self.centres[t]), tf.int32)
        # Windows of the circularly moved mask, read from M_t without moving the whole frame.
        rows = corners[:, :1] + tf.range(patch_h)[None]
        cols = corners[:, 1:] + tf.range(patch_w)[None]
        translated = self._windows(self.masks[t, ..., 0], (rows - offsets[:, :1]) % height,
                                   (cols - offsets[:, 1:]) % width)
        object_mask = self._windows(self.masks[i, ..., 0], rows, cols)
        hidden = tf.reduce_sum(tf.cast(translated * (1 - object_mask), tf.int32), axis=[1, 2])
        enough = hidden >= self.min_pixels
        choice = tf.where(tf.reduce_any(enough), tf.argmax(tf.cast(enough, tf.int32)),
                          tf.argmax(hidden))
        top, left = corners[choice, 0], corners[choice, 1]
        window = (slice(top, top + patch_h), slice(left, left + patch_w))
        return {
            "frames": self.frames[i][window],
            "masks": self.masks[i][window],
            "translated": translated[choice][..., None],
            "prior": self.priors[i][window],
            "target_frames": self.frames[t][window],
            "target_masks": self.masks[t][window],
        }

    @staticmethod
    def _windows(mask: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
        """mask[rows[k]][:, cols[k]] for each candidate k: [K, h, w]."""
        return tf.gather(tf.gather(mask, rows), cols, axis=2, batch_dims=1)

    def dataset(self, *, batch_size: int, seed: int, start_step: int = 0) -> tf.data.Dataset:
        """An endless stream of batches, starting at `start_step` of the stage's fit."""
        return seeded_batches(self.sample, batch_size=batch_size, seed=seed, start_step=start_step)

    def fixed_batch(self, count: int, seed: int) -> dict[str, tf.Tensor]:
        """A fixed set of patches (the self-check), the same for every call."""
        return fixed_examples(self.sample, count, seed)


class PasteSampler:
    """Draws training examples from the annotated frame: the object pasted somewhere else in it.

    Element `e` of the stream is a pure function of `(seed, e)`, as in
    `tfinpaint.data.pipeline.MaskSampler`, so the samples are drawn on the device and reproducible.

    Args:
        frame: uint8 [H, W, 3], the annotated frame `X_0` at working resolution.
        mask: uint8 [H, W, 1], its object mask `M_0` (1 = object).
        scale_range: (low, high) scale factors of the pasted object.
        flip: probability that the pasted object is mirrored left to right.
        prior: a `PriorJitter` to also draw `prior`, the pasted mask spoilt as a flow warp spoils
            it, for a propagator that corrects the warp (None: no prior).
    """

    def __init__(self, frame: np.ndarray, mask: np.ndarray, *, scale_range: tuple[float, float],
                 flip: float, prior: "PriorJitter | None" = None):
        self.height, self.width = frame.shape[:2]
        self.frame = tf.constant(frame, tf.uint8)
        self.mask = tf.constant(mask, tf.uint8)
        self.scale_range = scale_range
        self.flip = flip
        self.prior = prior

    def sample(self, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """`pasted_frame` (X') uint8 [H, W, 3], `pasted_mask` (M'_0) and `object_mask` (M_0) [H, W, 1]."""
        seeds = tf.random.experimental.stateless_split(seed, 4)
        frame = tf.cast(self.frame, tf.float32)
        mask = tf.cast(self.mask, tf.float32)
        # mirrored, then scaled about the frame centre: the whole frame moves with the object
        mirrored = tf.random.stateless_uniform([], seeds[0]) < self.flip
        frame = tf.where(mirrored, tf.reverse(frame, axis=[1]), frame)
        mask = tf.where(mirrored, tf.reverse(mask, axis=[1]), mask)
        low, high = self.scale_range
        scale = tf.random.stateless_uniform([], seeds[1], low, high)
        size = tf.cast(tf.round(scale * tf.constant([self.height, self.width], tf.float32)), tf.int32)
        frame = tf.image.resize_with_crop_or_pad(tf.image.resize(frame, size), self.height, self.width)
        mask = tf.image.resize_with_crop_or_pad(
            tf.image.resize(mask, size, method="nearest"), self.height, self.width)
        # translated, circularly as the inpainting's translated masks
        offset = mask_ops.uniform_offset(seeds[2], self.height, self.width)
        pasted_mask = mask_ops.translate(mask, offset)
        pasted_object = mask_ops.translate(frame, offset)
        pasted_frame = pasted_mask * pasted_object + (1.0 - pasted_mask) * tf.cast(self.frame, tf.float32)
        example = {
            "pasted_frame": tf.cast(tf.round(tf.clip_by_value(pasted_frame, 0.0, 255.0)), tf.uint8),
            "pasted_mask": tf.cast(pasted_mask > 0.5, tf.uint8),
            "object_mask": self.mask,
        }
        if self.prior is not None:
            example["prior"] = self.prior.spoil(seeds[3], example["pasted_mask"])
        return example

    def dataset(self, *, batch_size: int, seed: int) -> tf.data.Dataset:
        """An endless stream of batches."""
        return seeded_batches(self.sample, batch_size=batch_size, seed=seed, stream=2)


@dataclass
class PriorJitter:
    """How `PasteSampler` spoils the pasted mask into the prior a flow warp would give: shifted
    (drift; by up to `shift` of the frame's height in each direction), grown or shrunk by up to
    `grow` px (edges that bled or eroded), cut by a vertical band with probability `occlusion`
    (a tree trunk in front: the warp drops what the occluder hid) and, with probability `empty`,
    no prior at all (the warp lost the object: the network must find it by its looks)."""

    shift: float
    grow: int
    occlusion: float
    empty: float

    def spoil(self, seed: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """uint8 [H, W, 1] 0/1 -> the spoilt prior, uint8 [H, W, 1] 0/1."""
        seeds = tf.random.experimental.stateless_split(seed, 6)
        height, width = tf.shape(mask)[0], tf.shape(mask)[1]
        prior = tf.cast(mask, tf.float32)[None]
        # drift
        reach = tf.cast(tf.round(self.shift * tf.cast(height, tf.float32)), tf.int32)
        offset = tf.random.stateless_uniform([2], seeds[0], -reach, reach + 1, dtype=tf.int32)
        prior = tf.roll(prior, offset, axis=[1, 2])
        # bled or eroded edges
        if self.grow > 0:
            radius = tf.random.stateless_uniform([], seeds[1], -self.grow, self.grow + 1,
                                                 dtype=tf.int32)
            grown = [tf.nn.max_pool2d(prior, 2 * r + 1, 1, "SAME") for r in range(1, self.grow + 1)]
            shrunk = [-tf.nn.max_pool2d(-prior, 2 * r + 1, 1, "SAME") for r in range(1, self.grow + 1)]
            choices = tf.stack(shrunk[::-1] + [prior] + grown)
            prior = choices[radius + self.grow]
        # an occluder's band
        columns = tf.range(width)
        left = tf.random.stateless_uniform([], seeds[2], 0, width, dtype=tf.int32)
        band = tf.random.stateless_uniform([], seeds[3], 1, tf.maximum(width // 12, 2), dtype=tf.int32)
        cut = tf.random.stateless_uniform([], seeds[4]) < self.occlusion
        inside = (columns >= left) & (columns < left + band) & cut
        prior = prior * (1.0 - tf.cast(inside, tf.float32))[None, None, :, None]
        # lost
        keep = tf.cast(tf.random.stateless_uniform([], seeds[5]) >= self.empty, tf.float32)
        return tf.cast(prior[0] * keep > 0.5, tf.uint8)
