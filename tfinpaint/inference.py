"""Filling frames with a fitted generator: every fill graph, at the working resolution and back
at the native one, on whole frames or on a grid of tiles, and the one way to restore a fitted
network from its run folder. Nothing here needs the training code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfinpaint import tiling
from tfinpaint.clip import resize_frames, resize_masks, upsample
from tfinpaint.config import Config
from tfinpaint.errors import InputError
from tfinpaint.generator import (MULTIPLE, PRIOR_CHANNELS, crop_to, generator_from, network_input,
                                 pad_to_multiple, to_signed, to_uint8)
from tfinpaint.rundir import RunDir

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
            image = upsample(image, height, width)
            hole = masks[index, ..., 0] > 0
            result[index][hole] = image[hole]
        if progress is not None:
            progress(stop)
    return result


def load_generator(run: RunDir, in_channels: int = 4) -> keras.Model:
    """The run's generator with its newest checkpoint restored, in float32 (for any device).

    `in_channels` is 4, or 4 + PRIOR_CHANNELS for a later stage of progressive fitting.
    """
    config = run.saved_config()
    latest = run.latest_checkpoint()
    if latest is None:
        raise InputError(f"{run.checkpoints}: no checkpoint to restore; fit first")
    keras.mixed_precision.set_global_policy("float32")
    generator = generator_from(config.generator, in_channels=in_channels)
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return generator


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


@dataclass
class Stage:
    """One rung of a fitted ladder, ready to fill: its size and its fill function."""

    size: tuple[int, int]
    fill: Callable
    with_prior: bool


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
