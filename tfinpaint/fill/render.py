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

from tfinpaint.config import Config, uses_flow
from tfinpaint.errors import InputError
from tfinpaint.fill import resample, tiling
from tfinpaint.fill.prefill import apply_prefill
from tfinpaint.io.clip import resize_frames, resize_masks, upsample
from tfinpaint.io.video import hole_disc
from tfinpaint.model.generator import (PRIOR_CHANNELS, generator_from, network_input, to_signed,
                                       to_uint8)
from tfinpaint.io.rundir import RunDir

FillFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def predict_hole(generator: keras.Model, frames: tf.Tensor, hole: tf.Tensor, *,
                 prefill: str = "none", priors: tf.Tensor | None = None,
                 prefilled: tf.Tensor | None = None) -> tf.Tensor:
    """The network's last-stage output, float in [-1, 1], for frames of any H and W.

    `frames`, `priors` and `prefilled` (the flow fill, `data.prefill: flow`) are float in
    [-1, 1], `hole` float 0/1. `Generator` pads to a multiple of its stride and crops back itself.
    """
    inputs = network_input(frames, hole, priors, prefill, prefilled)
    return generator(inputs, training=False)[-1]


def make_fill_fn(generator: keras.Model, prefill: str = "none",
                 working_size: tuple[int, int] | None = None, *,
                 native_detail: bool = True) -> FillFn:
    """A graph function `(frames uint8 [N,H,W,3], masks uint8 [N,H,W,1]) -> uint8 [N,H,W,3]`.

    Any H and W; any non-zero mask value is hole; known pixels pass through exactly.
    `prefill` is the run's `data.prefill`: the network's input must be the one it was fitted on.
    With "flow" the function takes a third input, `prefilled` uint8 [N,H,W,3]: the frames with
    their holes filled by flow propagation at the frames' own size (`native_prefill`), reduced
    inside the graph as the frames are; with `native_detail` its high frequencies (what the
    reduction removes) are added back to the upsampled fill, so the hole keeps native detail.

    `working_size` (H, W) is the run's `data.working_height/width` (0: the frames' own size on
    that axis): the graph then takes native frames and does what `tfinpaint.infer` promises, all
    inside (`fill_at_working_size`); it is what `infer`, `train`'s render and the exported
    SavedModel and ONNX models run. None: the network fills at whatever size it is given (tiles,
    frames already reduced, the later stages of a progressive ladder).
    """
    specs = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
             tf.TensorSpec([None, None, None, 1], tf.uint8, name="masks")]
    if uses_flow(prefill):
        return _make_flow_fill_fn(generator, prefill, working_size, specs, native_detail)
    if working_size is not None:
        working = tuple(int(side) for side in working_size)

        @tf.function(input_signature=specs)
        def fill_native(frames, masks):
            return fill_at_working_size(generator, frames, masks, working, prefill=prefill)

        return fill_native

    @tf.function(input_signature=specs)
    def fill(frames, masks):
        is_hole = masks > 0
        output = predict_hole(generator, to_signed(frames), tf.cast(is_hole, tf.float32),
                              prefill=prefill)
        return tf.where(is_hole, to_uint8(output), frames)

    return fill


def _make_flow_fill_fn(generator, prefill: str, working_size, specs,
                       native_detail: bool) -> Callable:
    specs = specs + [tf.TensorSpec([None, None, None, 3], tf.uint8, name="prefilled")]
    if working_size is not None:
        working = tuple(int(side) for side in working_size)

        @tf.function(input_signature=specs)
        def fill_native(frames, masks, prefilled):
            return fill_at_working_size(generator, frames, masks, working, prefill=prefill,
                                        prefilled=prefilled, native_detail=native_detail)

        return fill_native

    @tf.function(input_signature=specs)
    def fill(frames, masks, prefilled):
        is_hole = masks > 0
        output = predict_hole(generator, to_signed(frames), tf.cast(is_hole, tf.float32),
                              prefill=prefill, prefilled=to_signed(prefilled))
        return tf.where(is_hole, to_uint8(output), frames)

    return fill


def native_prefill(prefill: str, frames: np.ndarray, masks: np.ndarray, flow_settings,
                   chunk: int = 8) -> np.ndarray:
    """The frames with their holes prefilled at their own size, uint8, known pixels unchanged:
    the flow fill (`tfinpaint.fill.flow.fill_clip` with the config's `flow` settings), the push-pull
    fill ("pyramid") or mid-grey ("none", what the network's zeros are). It is the flow fill
    network's third input, and the result of a fit of 0 steps."""
    if uses_flow(prefill):
        from tfinpaint.fill.flow import fill_clip

        return fill_clip(frames, masks, flow_settings).filled
    hole = masks > 0
    result = frames.copy()
    for start in range(0, len(frames), chunk):
        part = slice(start, start + chunk)
        signed = to_signed(frames[part])
        filled = apply_prefill(signed, tf.cast(hole[part], tf.float32), prefill)
        result[part] = np.where(hole[part], to_uint8(filled).numpy(), frames[part])
    return result


def dilate_holes(is_hole: tf.Tensor, pixels: int) -> tf.Tensor:
    """bool [N, H, W, 1] holes grown by `pixels` in-graph, exactly as
    `tfinpaint.io.video.dilate_masks` grows them with OpenCV (`data.mask_dilation`): the disc is
    the union of the rectangles its rows span, and growing by a union is the maximum of the max
    pools by each rectangle ("SAME": outside the frame is never hole). 0 returns `is_hole`."""
    if pixels <= 0:
        return is_hole
    hole = tf.cast(is_hole, tf.float32)
    grown = None
    for half_height, half_width in disc_rectangles(pixels):
        pooled = tf.nn.max_pool2d(hole, [2 * half_height + 1, 2 * half_width + 1], 1, "SAME")
        grown = pooled if grown is None else tf.maximum(grown, pooled)
    return grown > 0.5


def disc_rectangles(pixels: int) -> list[tuple[int, int]]:
    """(half height, half width) of the centred rectangles whose union is `hole_disc(pixels)`:
    one per distinct row width (the disc's rows are centred runs, wider towards the middle)."""
    disc = hole_disc(pixels).astype(bool)
    half_widths = disc.sum(axis=1) // 2
    rectangles = [(pixels - int(np.flatnonzero(half_widths >= half_width)[0]), int(half_width))
                  for half_width in sorted(set(half_widths.tolist()))]
    union = np.zeros_like(disc)
    for half_height, half_width in rectangles:
        union[pixels - half_height:pixels + half_height + 1,
              pixels - half_width:pixels + half_width + 1] = True
    if not np.array_equal(union, disc):
        raise AssertionError(f"the {pixels} px disc is not a union of centred rectangles")
    return rectangles


def resolve_working_size(working: tuple[int, int], native: tf.Tensor) -> tf.Tensor:
    """int32 [2]: the working (H, W), the native size where `working` says 0 (in-graph)."""
    requested = tf.constant(working, tf.int32)
    return tf.where(requested > 0, requested, native)


def fill_at_working_size(generator: keras.Model, frames: tf.Tensor, masks: tf.Tensor,
                         working: tuple[int, int], *, prefill: str = "none",
                         prefilled: tf.Tensor | None = None,
                         native_detail: bool = True) -> tf.Tensor:
    """Native uint8 frames filled as the network was fitted: reduced to the working size (area,
    `tfinpaint.fill.resample`, the reduction training's frames had), the hole reduced by area and
    kept wherever touched, filled and rounded to uint8 there, brought back up to the native size
    (bicubic) and pasted into the hole only; every known pixel is the input's, bit for bit.

    `prefilled` (uint8, native, `data.prefill: flow`) is reduced the same way for the network's
    input; with `native_detail`, its detail above the working size's band, prefilled minus
    up(down(prefilled)), is added to the upsampled fill: the network corrects colour and
    structure at the working size, the flow brings the native texture it copied."""
    native = tf.shape(frames)[1:3]
    size = resolve_working_size(working, native)
    is_hole = masks > 0
    small_frames = resample.resize_uint8(frames, size)
    small_hole = resample.resize_hole(is_hole, size)
    small_prefilled = None
    if prefilled is not None:
        small_prefilled = to_signed(resample.resize_uint8(prefilled, size))
    output = predict_hole(generator, to_signed(small_frames), tf.cast(small_hole, tf.float32),
                          prefill=prefill, prefilled=small_prefilled)
    small_filled = tf.where(small_hole, to_uint8(output), small_frames)
    if prefilled is None or not native_detail:
        return tf.where(is_hole, resample.resize_uint8(small_filled, native), frames)
    detail = native_detail_of(tf.cast(prefilled, tf.float32), size, native)
    up = resample.resize_images(tf.cast(small_filled, tf.float32), native)
    return tf.where(is_hole, resample.to_levels(up + detail), frames)


def native_detail_of(images: tf.Tensor, size, native) -> tf.Tensor:
    """The detail of float `images` at the `native` size that the working `size` cannot hold:
    images - up(down(images)), what `flow.native_detail` adds to the upsampled fill."""
    return images - resample.resize_images(resample.resize_images(images, size), native)


def fill_float_at_working_size(generator: keras.Model, frames: tf.Tensor, is_hole: tf.Tensor,
                               working: tuple[int, int] | None, *, prefill: str = "none",
                               prefilled: tf.Tensor | None = None,
                               native_detail: bool = True) -> tf.Tensor:
    """`fill_at_working_size` for float32 frames in [0, 1] and a bool hole, never rounded
    (the SavedModel's `serving_float`). `working` None: fill at the frames' own size.
    `prefilled` (float32 in [0, 1], `data.prefill: flow`) goes as in `fill_at_working_size`;
    with native detail the hole is clipped to [0, 1], as the uint8 graph clips to levels."""
    signed_prefilled = None if prefilled is None else prefilled * 2.0 - 1.0
    if working is None:
        output = predict_hole(generator, frames * 2.0 - 1.0, tf.cast(is_hole, tf.float32),
                              prefill=prefill, prefilled=signed_prefilled)
        return tf.where(is_hole, (output + 1.0) * 0.5, frames)
    native = tf.shape(frames)[1:3]
    size = resolve_working_size(working, native)
    small_frames = resample.resize_images(frames, size)
    small_hole = resample.resize_hole(is_hole, size)
    small_prefilled = None
    if prefilled is not None:
        small_prefilled = resample.resize_images(prefilled, size) * 2.0 - 1.0
    output = predict_hole(generator, small_frames * 2.0 - 1.0, tf.cast(small_hole, tf.float32),
                          prefill=prefill, prefilled=small_prefilled)
    small_filled = tf.where(small_hole, (output + 1.0) * 0.5, small_frames)
    up = resample.resize_images(small_filled, native)
    if prefilled is None or not native_detail:
        return tf.where(is_hole, up, frames)
    detail = native_detail_of(prefilled, size, native)
    return tf.where(is_hole, tf.clip_by_value(up + detail, 0.0, 1.0), frames)


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


def render(fill: FillFn, frames: np.ndarray, masks: np.ndarray, *, batch_size: int = 4,
           progress: Callable[[int], None] | None = None,
           prefilled: np.ndarray | None = None) -> np.ndarray:
    """Fills frames `batch_size` at a time with `fill`, a graph that takes them at their size.

    For native frames and a network fitted at a working size, `fill` is
    `make_fill_fn(generator, prefill, working_size)`: the reduction, the fill, the way back up
    and the paste all happen in that graph, the one the exported models run. `prefilled` is
    the third input of a flow fill (`native_prefill`).
    """
    result = np.empty_like(frames)
    for start in range(0, len(frames), batch_size):
        stop = min(start + batch_size, len(frames))
        args = [tf.constant(frames[start:stop]), tf.constant(masks[start:stop])]
        if prefilled is not None:
            args.append(tf.constant(prefilled[start:stop]))
        result[start:stop] = np.asarray(fill(*args))
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
    generator = generator_from(config.generator, in_channels=in_channels,
                               prefill=config.data.prefill)
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return generator


def grid_fill(fill: Callable, frame: np.ndarray, mask: np.ndarray, prior: np.ndarray | None, *,
              tile_size: tuple[int, int], overlap: int = 0, batch: int = 4) -> np.ndarray:
    """Fill one frame on the grid of `tiling.plan_tiles` (with seam tiles), `batch` tiles a call.

    Args:
        fill: `(frames, masks, priors) -> uint8` (`render.make_prior_fill_fn`), or
            `(frames, masks) -> uint8` when `prior` is None (`render.make_fill_fn`).
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
        return render(stage.fill, frames, masks, batch_size=config.infer.batch_size,
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
