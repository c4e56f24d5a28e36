"""Progressive high-resolution fitting (Sec. 4.1, Fig. 3, Appendix A.4).

A ladder of stages, each a fit of its own in `runs/NAME/stage<k>/` (config, checkpoints, logs,
result), resumable on its own:

- stage 1 is the ordinary fit at the base working size (`data.working_*`) on whole frames;
- stage k > 1 works at twice the previous stage's size (the last stage at the video's own size,
  or `progressive.final_*`) and fits on base-size patches of those frames. Its input carries the
  previous stage's result, upsampled, as the prior (3 more channels). Patches are placed
  boundary-aware: their centre is `patch_boundary_weight` times likelier near the object's
  boundary; a patch whose translated hole hides fewer known pixels than
  `min_hole_pixels_4k * (H * W) / (3840 * 2160)` is redrawn;
- a later stage fills its frames on the grid of `tfinpaint.tiling` (2x2, then 4x4 base-size
  tiles plus the tiles across their seams); tiles without a hole are skipped, and memory is
  bounded by `progressive.tile_batch` tiles, one frame at a time.

Each stage writes `stage<k>/result/frames/*.png`, which the next stage reads as its prior; a
stage with a result is done and is skipped on resume.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import tensorflow as tf

from tfinpaint import tiling
from tfinpaint.config import Config, save_config
from tfinpaint.data import masks as mask_ops
from tfinpaint.data.pipeline import fixed_examples, seeded_batches
from tfinpaint.fitting import fit
from tfinpaint.generator import generator_from
from tfinpaint.inference import (make_fill_fn, make_prior_fill_fn, render, resize_frames,
                                 resize_masks)
from tfinpaint.run import RunDir, swap_in
from tfinpaint.video import read_video, write_frames

PIXELS_4K = 3840 * 2160
PRIOR_CHANNELS = 3


def stage_sizes(config: Config, native: tuple[int, int]) -> list[tuple[int, int]]:
    """(H, W) of each stage: the base size, doubled per stage; the last is `final_*` or native."""
    p = config.progressive
    base = (config.data.working_height or native[0], config.data.working_width or native[1])
    sizes = [(base[0] * 2 ** k, base[1] * 2 ** k) for k in range(p.stages)]
    if p.stages > 1:
        sizes[-1] = (p.final_height or native[0], p.final_width or native[1])
    return sizes


def min_hole_pixels(height: int, width: int, at_4k: int) -> int:
    """The 4K hole-pixel threshold scaled to a height x width frame."""
    return int(round(at_4k * height * width / PIXELS_4K))


def stage_config(config: Config, stage: int, size: tuple[int, int]) -> Config:
    """The config of one stage: its working size and, for later stages, its steps and budget."""
    staged = copy.deepcopy(config)
    staged.data.working_height, staged.data.working_width = size
    if stage > 1:
        p = config.progressive
        staged.data.crop_height = staged.data.crop_width = 0  # the patch sampler crops
        staged.train.steps = p.stage_steps + (stage - 2) * p.stage_steps_increment
        if p.stage_time_budget_minutes:
            staged.train.time_budget_minutes = p.stage_time_budget_minutes
    return staged


def upsample(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """The prior: a stage's result (uint8 [..., h, w, 3]) brought up to height x width (bicubic)."""
    if images.shape[-3:-1] == (height, width):
        return images
    if images.ndim == 3:
        return cv2.resize(images, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.stack([upsample(image, height, width) for image in images])


class PatchSampler:
    """Draws base-size training patches from a later stage's frames, with their prior.

    A drop-in for `MaskSampler` in `fitting.fit`: elements are dicts of uint8 `frames`, `masks`
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


def grid_fill(fill: Callable, frame: np.ndarray, mask: np.ndarray, prior: np.ndarray | None, *,
              tile_size: tuple[int, int], overlap: int = 0, batch: int = 4) -> np.ndarray:
    """Fill one frame on the grid of `tiling.plan_tiles` (with seam tiles), `batch` tiles a call.

    Args:
        fill: `(frames, masks, priors) -> uint8` (`inference.make_prior_fill_fn`), or
            `(frames, masks) -> uint8` when `prior` is None (`inference.make_fill_fn`).
        frame: uint8 [H, W, 3]; mask [H, W, 1], non-zero in the hole; prior uint8 [H, W, 3].

    Returns:
        uint8 [H, W, 3]: known pixels are `frame`'s bit-exactly; hole-free tiles are skipped.
    """
    tiles = tiling.plan_tiles(frame.shape[0], frame.shape[1], *tile_size, overlap)
    stacked = frame if prior is None else np.concatenate([frame, prior], axis=-1)
    kept_tiles, outputs = [], []
    for start in range(0, len(tiles), batch):
        chunk = tiles[start:start + batch]
        cut, cut_masks, kept = tiling.tile(stacked, mask, chunk)
        if not kept:
            continue
        args = [tf.constant(cut[..., :3]), tf.constant(cut_masks.astype(np.uint8))]
        if prior is not None:
            args.append(tf.constant(cut[..., 3:]))
        outputs.extend(np.asarray(fill(*args)))
        kept_tiles += [chunk[k] for k in kept]
    if not kept_tiles:
        return frame.copy()
    return tiling.stitch(frame, mask, kept_tiles, np.stack(outputs))


# --- the ladder -----------------------------------------------------------------------------

@dataclass
class Stage:
    """One rung of a fitted ladder, ready to fill: its size and its fill function."""

    size: tuple[int, int]
    fill: Callable
    with_prior: bool


def _stage_run(run: RunDir, stage: int) -> RunDir:
    return RunDir(run.path / f"stage{stage}")


def fill_stage(stage: Stage, frames: np.ndarray, masks: np.ndarray, priors: np.ndarray | None, *,
               base: tuple[int, int], config: Config,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Fills frames already at the stage's size: whole frames for stage 1, the grid after."""
    if not stage.with_prior:
        return render(stage.fill, frames, masks, stage.size, batch_size=config.infer.batch_size,
                      progress=progress)
    filled = np.empty_like(frames)
    for index in range(len(frames)):
        filled[index] = grid_fill(stage.fill, frames[index], masks[index], priors[index],
                                  tile_size=base, overlap=config.progressive.tile_overlap,
                                  batch=config.progressive.tile_batch)
        if progress is not None:
            progress(index + 1)
    return filled


def fill_frame(ladder: list[Stage], frame: np.ndarray, mask: np.ndarray, *, base: tuple[int, int],
               config: Config) -> np.ndarray:
    """One native-resolution frame through every stage of a fitted ladder (for streaming).

    Every known pixel of the result is `frame`'s; in the hole, the last stage's fill (upsampled
    when the last stage is smaller than the frame).
    """
    mask = mask if mask.ndim == 3 else mask[..., None]
    hole = mask[..., 0] != 0
    if not hole.any():
        return frame.copy()
    result = None
    for stage in ladder:
        small_frame = resize_frames(frame[None], *stage.size)
        small_mask = resize_masks(mask[None], *stage.size)
        prior = None if result is None else upsample(result, *stage.size)[None]
        result = fill_stage(stage, small_frame, small_mask, prior, base=base, config=config)[0]
    filled = frame.copy()
    filled[hole] = upsample(result, *frame.shape[:2])[hole]
    return filled


def load_ladder(run_path: str | Path) -> tuple[Config, list[Stage], tuple[int, int]]:
    """A fitted ladder from its run folder: the run's config, its stages and the base size.

    A run without stages (an ordinary fit) is a ladder of one.
    """
    run = RunDir(run_path)
    config = run.saved_config()
    folders = sorted((p for p in run.path.glob("stage*") if p.name[5:].isdigit()),
                     key=lambda p: int(p.name[5:])) or [run.path]
    ladder = []
    for index, folder in enumerate(folders):
        stage_run = RunDir(folder)
        staged = stage_run.saved_config()
        generator = load_generator(stage_run, 4 + (PRIOR_CHANNELS if index else 0))
        size = (staged.data.working_height, staged.data.working_width)
        fill = (make_prior_fill_fn(generator, staged.data.prefill) if index
                else make_fill_fn(generator, staged.data.prefill))
        ladder.append(Stage(size, fill, with_prior=bool(index)))
    return config, ladder, ladder[0].size


def load_generator(stage_run: RunDir, in_channels: int):
    """The generator of a fitted stage, restored from its newest checkpoint."""
    staged = stage_run.saved_config()
    generator = generator_from(staged.generator, in_channels=in_channels)
    latest = stage_run.latest_checkpoint()
    if latest is None:
        raise FileNotFoundError(f"{stage_run.path}: no checkpoint")
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return generator


def warm_start_from(previous):
    """`fit`'s warm start: copy `previous`'s weights; input weights for the prior start at zero,
    so the new stage begins as the previous one, and learns how much to trust the prior."""

    def initialize(generator) -> None:
        for source, target in zip(previous.weights, generator.weights):
            value = source.numpy()
            if value.shape != tuple(target.shape):  # a first layer: more input channels
                padded = np.zeros(target.shape, value.dtype)
                padded[..., :value.shape[-2], :] = value
                value = padded
            target.assign(value)

    return initialize


def _read_stage_result(stage_run: RunDir) -> np.ndarray | None:
    summary = stage_run.result / "summary.json"
    if not summary.exists():
        return None
    return read_video(stage_run.result / "frames").frames


def _write_stage_result(stage_run: RunDir, filled: np.ndarray, names: list[str],
                        summary: dict) -> None:
    staged = stage_run.result.with_name(stage_run.result.name + ".partial")
    if staged.exists():
        shutil.rmtree(staged)
    write_frames(staged / "frames", filled, names)
    (staged / "summary.json").write_text(json.dumps(summary, indent=2))
    swap_in(staged, stage_run.result)


def fit_ladder(config: Config, frames: np.ndarray, masks: np.ndarray, names: list[str],
               run: RunDir, *, verbose: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Fits (or resumes) every stage of the ladder on a native-resolution clip.

    Returns the last stage's result at the clip's native size (known pixels are the clip's,
    bit for bit) and each stage's summary.
    """
    sizes = stage_sizes(config, frames.shape[1:3])
    base = sizes[0]
    p = config.progressive
    result, summaries = None, []
    for index, size in enumerate(sizes):
        number = index + 1
        stage_run = _stage_run(run, number)
        done = _read_stage_result(stage_run)
        if done is not None and done.shape[1:3] == size:
            if verbose:
                print(f"stage {number} at {size[1]}x{size[0]}: done, result read", file=sys.stderr)
            result = done
            summaries.append(json.loads((stage_run.result / "summary.json").read_text()))
            continue
        staged = stage_config(config, number, size)
        for folder in (stage_run.checkpoints, stage_run.logs):
            folder.mkdir(parents=True, exist_ok=True)
        save_config(staged, stage_run.config_path)
        stage_frames = resize_frames(frames, *size)
        stage_masks = resize_masks(masks, *size)
        if verbose:
            print(f"stage {number} at {size[1]}x{size[0]}: fitting", file=sys.stderr)
        if index == 0:
            outcome = fit(staged, stage_frames, stage_masks, stage_run, verbose=verbose)
            stage = Stage(size, make_fill_fn(outcome.model.generator, staged.data.prefill),
                          with_prior=False)
            priors = None
        else:
            priors = upsample(result, *size)
            band = (round(config.data.boundary_band_y * size[0] / 480),
                    round(config.data.boundary_band_x * size[0] / 480))
            sampler = PatchSampler(stage_frames, stage_masks, priors, patch=base, band=band,
                                   boundary_weight=p.patch_boundary_weight,
                                   min_pixels=min_hole_pixels(*size, p.min_hole_pixels_4k),
                                   tries=p.placement_tries)
            warm_start = None
            if p.warm_start:
                previous = load_generator(_stage_run(run, number - 1),
                                          4 + (PRIOR_CHANNELS if number > 2 else 0))
                warm_start = warm_start_from(previous)
            outcome = fit(staged, stage_frames, stage_masks, stage_run, verbose=verbose,
                          sampler=sampler, in_channels=4 + PRIOR_CHANNELS,
                          warm_start=warm_start)
            stage = Stage(size, make_prior_fill_fn(outcome.model.generator, staged.data.prefill),
                          with_prior=True)
        began = time.perf_counter()
        result = fill_stage(stage, stage_frames, stage_masks, priors, base=base, config=staged)
        summary = {"stage": number, "size": list(size), "steps": outcome.steps,
                   "fit_seconds": round(outcome.seconds, 1),
                   "fill_seconds": round(time.perf_counter() - began, 1),
                   "selfcheck_psnr": outcome.selfcheck[-1][2] if outcome.selfcheck else None,
                   "stop_reason": outcome.stop_reason}
        _write_stage_result(stage_run, result, names, summary)
        summaries.append(summary)
    filled = frames.copy()
    hole = masks[..., 0] != 0
    for index in range(len(frames)):
        filled[index][hole[index]] = upsample(result[index], *frames.shape[1:3])[hole[index]]
    return filled, summaries
