"""Explicit optical-flow propagation: fill each frame's hole with what the other frames show.

- `flow_fields` (OpenCV/numpy, once per video): DIS flow forward (t -> t+1) and backward
  (t -> t-1), measured on frames whose holes were filled on their own (`flow_input`), reliable
  outside the hole grown by `margin` and where the forward-backward check passes, completed by
  push-pull elsewhere (`complete_flow`).
- `propagate_frame` (TensorFlow, traceable, any shapes): each hole pixel of frame `index` follows
  the chained flow forwards and backwards until it lands on known pixels; pixels no frame sees
  get the push-pull fill. It never reads frame `index`'s pixels or flow inside its hole (grown by
  `margin`), so at training time the hole `M_i ∪ M'_t` is filled only from the other frames.
- `flow_fill` / `fill_clip` run both over a whole video, also returning `hops` (frame distance of
  each colour's source) and `found` (0 where the push-pull fallback filled); `VideoFlow` holds one
  video's fields as tensors for `tf.data`.

How it works in full, its remaining indirect leak and what was measured: docs/flow_fill.md.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import get_args

import cv2
import numpy as np
import tensorflow as tf

from tfinpaint.config import FlowBlend, FlowConfig, FlowInput
from tfinpaint.fill.prefill import pyramid_fill

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FLOW_INPUTS = get_args(FlowInput)
BLENDS = get_args(FlowBlend)
# Forward-backward consistency (Sundaram et al., ECCV 2010): |f + b|^2 < a (|f|^2 + |b|^2) + b0.
_CONSISTENCY_RELATIVE = 0.01
_CONSISTENCY_ABSOLUTE = 0.5
# `moving_speed` is in px per frame at this longer side; a mover's mask grows by MOVER_GROWTH px.
SPEED_SIDE = 432
MOVER_GROWTH = 2
# Rounding slack on a landing point's bilinear weight of known pixels.
_KNOWN_SLACK = 1e-4


@dataclass
class FlowFields:
    """Per-video flow, float32 numpy, N frames of H x W.

    Attributes:
        forward: [N, H, W, 2] (dx, dy) from frame t to t+1, completed where unreliable (the last
            frame's is zero).
        backward: [N, H, W, 2] from frame t to t-1 (the first frame's is zero).
        forward_reliable, backward_reliable: [N, H, W, 1], 1 where the measured flow is kept
            (outside the grown hole and consistent), 0 where it was completed.
    """

    forward: np.ndarray
    backward: np.ndarray
    forward_reliable: np.ndarray
    backward_reliable: np.ndarray


@dataclass
class FlowFill:
    """A video filled by flow propagation.

    Attributes:
        filled: uint8 [N, H, W, 3], known pixels unchanged.
        hops: int32 [N, H, W, 1], frames between a hole pixel and the nearest frame its colour
            came from (0 outside the hole and for fallback pixels).
        found: uint8 [N, H, W, 1], 1 where known or found by flow, 0 where push-pull filled it.
    """

    filled: np.ndarray
    hops: np.ndarray
    found: np.ndarray


# ----------------------------------------------------------------------------------------------
# flow fields (numpy / OpenCV, once per video)


def _hole_bool(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 4:
        masks = masks[..., 0]
    return masks != 0


def grow(hole: np.ndarray, margin: int) -> np.ndarray:
    """Boolean [N, H, W] hole grown by `margin` px (a square, like `propagate_frame`'s max pool)."""
    if margin <= 0:
        return hole
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return np.stack([cv2.dilate(h.astype(np.uint8), kernel) for h in hole]).astype(bool)


def prefill_for_flow(frames: np.ndarray, masks: np.ndarray, method: str = "telea") -> np.ndarray:
    """The frames with their holes filled on their own (no flow), for measuring flow: uint8."""
    hole = _hole_bool(masks)
    if method == "telea":
        out = frames.copy()
        for t in range(len(frames)):
            if hole[t].any():
                out[t] = cv2.inpaint(frames[t], hole[t].astype(np.uint8), 3, cv2.INPAINT_TELEA)
        return out
    if method == "pyramid":
        filled = pyramid_fill(tf.constant(frames, tf.float32),
                              tf.constant(hole[..., None], tf.float32)).numpy()
        return np.clip(np.rint(filled), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown flow input {method!r}; expected one of {FLOW_INPUTS}")


def consistent(flow: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """Forward-backward check of `flow` [H, W, 2] against the `reverse` field of the frame it points
    into: bool [H, W], True where following `flow` then `reverse` returns near the start. Flow
    that leaves the frame cannot be checked and counts as consistent."""
    height, width = flow.shape[:2]
    target = flow + _grid(height, width)
    back = cv2.remap(reverse, target, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = cv2.magnitude(*cv2.split(flow + back)) ** 2
    bound = (_CONSISTENCY_RELATIVE * (cv2.magnitude(*cv2.split(flow)) ** 2
                                      + cv2.magnitude(*cv2.split(back)) ** 2)
             + _CONSISTENCY_ABSOLUTE)
    outside = cv2.inRange(target, (0.0, 0.0), (width - 1.0, height - 1.0)) == 0
    return (error < bound) | outside


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> np.ndarray:
    """[H, W, 2] float32 pixel coordinates (x, y)."""
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                np.arange(height, dtype=np.float32)), axis=-1)
    grid.flags.writeable = False
    return grid


def complete_flow(flow: tf.Tensor, reliable: tf.Tensor) -> tf.Tensor:
    """Flow [B, H, W, 2] kept where `reliable` [B, H, W, 1] is 1, push-pull filled elsewhere."""
    return pyramid_fill(flow, 1.0 - tf.cast(reliable, tf.float32))


def flow_fields(frames: np.ndarray, masks: np.ndarray, *, preset: str = "medium",
                flow_input: str = "telea", check: bool = True, margin: int = 4) -> FlowFields:
    """Forward and backward DIS flow of a video, completed over holes and inconsistent pixels.

    Args:
        frames: uint8 [N, H, W, 3] RGB; the values in the hole are never used.
        masks: [N, H, W, 1] or [N, H, W], non-zero in the hole.
        preset: DIS preset, one of `PRESETS`.
        flow_input: how holes are filled before measuring flow, one of `FLOW_INPUTS`.
        check: reject flow failing the forward-backward consistency check (completed instead).
        margin: flow within this many px of the hole is not trusted (completed instead).
    """
    frames = np.asarray(frames)
    hole = _hole_bool(masks)
    num_frames, height, width = frames.shape[:3]
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in prefill_for_flow(frames, hole, flow_input)]
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])
    forward = np.zeros((num_frames, height, width, 2), np.float32)
    backward = np.zeros_like(forward)
    for t in range(num_frames - 1):
        forward[t] = dis.calc(gray[t], gray[t + 1], None)
        backward[t + 1] = dis.calc(gray[t + 1], gray[t], None)
    outside = ~grow(hole, margin)
    forward_reliable = outside.copy()
    backward_reliable = outside.copy()
    forward_reliable[-1] = False
    backward_reliable[0] = False
    if check:
        for t in range(num_frames - 1):
            forward_reliable[t] &= consistent(forward[t], backward[t + 1])
            backward_reliable[t + 1] &= consistent(backward[t + 1], forward[t])
    forward_reliable = forward_reliable[..., None].astype(np.float32)
    backward_reliable = backward_reliable[..., None].astype(np.float32)
    forward = _complete_in_chunks(forward, forward_reliable)
    backward = _complete_in_chunks(backward, backward_reliable)
    return FlowFields(forward, backward, forward_reliable, backward_reliable)


def camera_residual(flow: np.ndarray, reliable: np.ndarray | None = None, *, grid_step: int = 6,
                    ransac_threshold: float = 1.0) -> np.ndarray:
    """float32 [H, W]: how far each pixel's `flow` ([H, W, 2], px) is from the one homography
    that explains most of it (the camera's motion), fitted by RANSAC (`ransac_threshold` px) to
    every `grid_step`-th pixel where `reliable` (bool [H, W]; default: everywhere) holds. Where
    no homography can be fitted (a tiny frame), the residual is from the median motion."""
    grid = _grid(*flow.shape[:2])
    source = grid[::grid_step, ::grid_step].reshape(-1, 2)
    target = source + flow[::grid_step, ::grid_step].reshape(-1, 2)
    if reliable is not None:
        keep = reliable[::grid_step, ::grid_step].reshape(-1)
        if keep.sum() >= 8:
            source, target = source[keep], target[keep]
    homography = None
    if len(source) >= 4:
        homography, _ = cv2.findHomography(source, target, cv2.RANSAC, ransac_threshold)
    if homography is None:
        camera = np.median(flow.reshape(-1, 2), axis=0)
    else:
        moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(grid.shape)
        camera = moved - grid
    return np.linalg.norm(flow - camera, axis=-1).astype(np.float32)


def moving_objects(fields: FlowFields, masks: np.ndarray, speed: float) -> np.ndarray:
    """bool [N, H, W]: the pixels outside the hole that move unlike the camera by more than
    `speed` px per frame at a `SPEED_SIDE`-px longer side (scaled to the frames' size), in both
    directions (the smaller `camera_residual` of the forward and the backward flow); opened
    (3x3, no specks) and grown by `MOVER_GROWTH` px at that side, since a moving object's flow
    is blurred into its edge. All False for `speed` <= 0."""
    hole = _hole_bool(masks)
    num_frames, height, width = hole.shape
    movers = np.zeros(hole.shape, bool)
    if speed <= 0:
        return movers
    scale = max(height, width) / SPEED_SIDE
    square = np.ones((3, 3), np.uint8)
    for t in range(num_frames):
        residuals = [camera_residual(field[t], reliable[t, ..., 0] > 0)
                     for field, reliable, present in (
                         (fields.forward, fields.forward_reliable, t + 1 < num_frames),
                         (fields.backward, fields.backward_reliable, t >= 1)) if present]
        if residuals:
            moving = (np.minimum.reduce(residuals) > speed * scale).astype(np.uint8)
            movers[t] = cv2.morphologyEx(moving, cv2.MORPH_OPEN, square) > 0
    return grow(movers, round(MOVER_GROWTH * scale)) & ~hole


def without_movers(fields: FlowFields, movers: np.ndarray) -> FlowFields:
    """`fields` with the flow on `movers` (bool [N, H, W]) completed from the scene around them
    instead of measured, so that a chain crossing a moving object follows the scene."""
    moved = np.flatnonzero(movers.any(axis=(1, 2)))  # the other frames' fields stay as they are
    if len(moved) == 0:
        return fields
    still = (~movers[moved])[..., None].astype(np.float32)
    completed = []
    for field, reliable in ((fields.forward, fields.forward_reliable),
                            (fields.backward, fields.backward_reliable)):
        field, reliable = field.copy(), reliable.copy()
        reliable[moved] *= still
        field[moved] = _complete_in_chunks(field[moved], reliable[moved])
        completed += [field, reliable]
    return FlowFields(completed[0], completed[2], completed[1], completed[3])


def _complete_in_chunks(flow: np.ndarray, reliable: np.ndarray, chunk: int = 16) -> np.ndarray:
    return np.concatenate([complete_flow(tf.constant(flow[s:s + chunk]),
                                         tf.constant(reliable[s:s + chunk])).numpy()
                           for s in range(0, len(flow), chunk)])


# ----------------------------------------------------------------------------------------------
# propagation (TensorFlow: one frame, any hole; inside tf.function at training time)


def _bilinear(images: tf.Tensor, frame: tf.Tensor, points: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Bilinear corners of `points` [K, 2] (x, y) in `images[frame]` ([N, H, W, C], flattened
    gather, no copy of the frame): returns (values [K, 4, C], weights [K, 4, 1], inside [K])."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    x, y = points[:, 0], points[:, 1]
    inside = ((x >= 0.0) & (x <= tf.cast(width - 1, tf.float32))
              & (y >= 0.0) & (y <= tf.cast(height - 1, tf.float32)))
    x = tf.clip_by_value(x, 0.0, tf.cast(width - 1, tf.float32))
    y = tf.clip_by_value(y, 0.0, tf.cast(height - 1, tf.float32))
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)
    base = frame * height * width
    index = tf.stack([base + y0 * width + x0, base + y0 * width + x1,
                      base + y1 * width + x0, base + y1 * width + x1], axis=1)  # [K, 4]
    weights = tf.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
    flat = tf.reshape(images, [-1, shape[3]])
    return tf.gather(flat, index), weights[..., None], inside


def _sample(images: tf.Tensor, frame: tf.Tensor, points: tf.Tensor) -> tf.Tensor:
    values, weights, _ = _bilinear(images, frame, points)
    return tf.reduce_sum(values * weights, axis=1)


def _land(frames, known, frame, points, alive, min_known):
    """Where a chain lands in `frame`: (hit [K], colour [K, C], still inside [K]). The colour is
    the bilinear average of the known corners only; a hit needs their weight >= `min_known`."""
    known_corners, weights, inside = _bilinear(known, frame, points)
    colours, _, _ = _bilinear(frames, frame, points)
    weights = weights * known_corners
    known_weight = tf.reduce_sum(weights, axis=1)
    colour = tf.math.divide_no_nan(tf.reduce_sum(colours * weights, axis=1), known_weight)
    hit = alive & inside & (known_weight[:, 0] >= min_known - _KNOWN_SLACK)
    return hit, colour, alive & inside


def grow_hole(hole: tf.Tensor, margin: int) -> tf.Tensor:
    """Float [..., H, W, 1] hole grown by `margin` px (square max pool)."""
    if margin <= 0:
        return hole
    batched = hole if hole.shape.rank == 4 else hole[None]
    grown = tf.nn.max_pool2d(batched, 2 * margin + 1, 1, "SAME")
    return grown if hole.shape.rank == 4 else grown[0]


def propagate_frame(frames: tf.Tensor, known: tf.Tensor, forward: tf.Tensor, backward: tf.Tensor,
                    forward_reliable: tf.Tensor, backward_reliable: tf.Tensor, index: tf.Tensor,
                    hole: tf.Tensor, *, max_hops: int | tf.Tensor | None = None,
                    margin: int = 4, blend: str = "both",
                    min_known: float = 1.0, max_disagreement: float = 0.0) -> tuple[tf.Tensor, ...]:
    """Fill frame `index`'s `hole` by following the chained flow into the other frames.

    Args:
        frames: float [N, H, W, C] (any scale: 0-255 or [-1, 1]).
        known: float [N, H, W, 1], 1 where a frame's pixel may be copied (outside its hole).
        forward, backward, forward_reliable, backward_reliable: a `FlowFields`' arrays.
        index: int scalar, the frame to fill.
        hole: float [H, W, 1], 1 where frame `index` is to be filled (at training time its real
            hole united with the translated one). Frame `index`'s pixels there, and its flow
            within `margin` px of it, are never read.
        max_hops: farthest frame distance to look (default: the whole video).
        margin: as in `flow_fields`.
        blend: "both" (default): the first hit of each direction, weighted by 1 / hops;
            "nearest": the nearer hit wins, forward and backward averaged at equal distance
            (measured worse: docs/flow_fill.md).
        min_known: a landing point is a hit when its four bilinear neighbours' weight on known
            pixels reaches this (1: all known); its colour averages the known ones.
        max_disagreement: where both directions hit and their colours differ by more than this
            (mean absolute difference over channels, in the frames' units), the pixel counts as
            not found and gets the push-pull fill: something moved there, and the flow, which
            was completed from the hole's surroundings, cannot say what. 0: off.

    Returns:
        filled: float32 [H, W, C], frame `index` outside the hole, propagated colour inside it,
            push-pull where no frame sees the pixel.
        hops: float32 [H, W, 1], frame distance of the colour's nearest source (0 outside the
            hole and where nothing was found).
        found: float32 [H, W, 1], 1 outside the hole and where the flow found a known pixel.
    """
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of {BLENDS}")
    frames = tf.cast(frames, tf.float32)
    known = tf.cast(known, tf.float32)
    hole = tf.cast(hole, tf.float32)
    index = tf.cast(index, tf.int32)
    num_frames = tf.shape(frames)[0]
    max_hops = num_frames if max_hops is None else tf.cast(max_hops, tf.int32)

    # frame index's own flow, completed from outside this hole only
    outside = 1.0 - grow_hole(hole, margin)
    reliable = tf.stack([forward_reliable[index], backward_reliable[index]]) * outside
    own = complete_flow(tf.stack([forward[index], backward[index]]), reliable)

    pixels = tf.where(hole[..., 0] > 0.5)  # [K, 2] (y, x)
    start = tf.cast(tf.reverse(pixels, axis=[1]), tf.float32)  # (x, y)
    count = tf.shape(pixels)[0]
    channels = tf.shape(frames)[3]
    # the chains still looking: `ids` into the hole pixels, compacted every hop, so that the cost
    # follows the pixels still unresolved rather than the farthest one
    state = (
        tf.constant(1),
        tf.range(count),
        start + tf.gather_nd(own[0], pixels),  # forward chain, in frame index + hop
        start + tf.gather_nd(own[1], pixels),  # backward chain, in frame index - hop
        tf.fill([count], index + 1 < num_frames),
        tf.fill([count], index >= 1),
        tf.zeros([count, channels]),  # colour of the forward hit
        tf.zeros([count, channels]),  # colour of the backward hit
        tf.zeros([count], tf.int32),  # hop of the forward hit, 0 while none
        tf.zeros([count], tf.int32),  # hop of the backward hit
    )
    invariants = ((tf.TensorShape([]), tf.TensorShape([None])) + (tf.TensorShape([None, 2]),) * 2
                  + (tf.TensorShape([None]),) * 2 + (tf.TensorShape([None, None]),) * 2
                  + (tf.TensorShape([None]),) * 2)

    def unresolved(hop, ids, *_):
        return (hop <= max_hops) & (tf.size(ids) > 0)

    def record(hit, ids, value, hop, colour, hops):
        where = tf.boolean_mask(ids, hit)[:, None]
        return (tf.tensor_scatter_nd_update(colour, where, tf.boolean_mask(value, hit)),
                tf.tensor_scatter_nd_update(hops, where, tf.fill(tf.shape(where)[:1], hop)))

    def step(hop, ids, pos_f, pos_b, alive_f, alive_b, colour_f, colour_b, hop_f, hop_b):
        frame_f = tf.minimum(index + hop, num_frames - 1)
        frame_b = tf.maximum(index - hop, 0)
        hit_f, value_f, alive_f = _land(frames, known, frame_f, pos_f, alive_f, min_known)
        hit_b, value_b, alive_b = _land(frames, known, frame_b, pos_b, alive_b, min_known)
        colour_f, hop_f = record(hit_f, ids, value_f, hop, colour_f, hop_f)
        colour_b, hop_b = record(hit_b, ids, value_b, hop, colour_b, hop_b)
        if blend == "nearest":  # the first hit in either direction ends both chains
            alive_f = alive_f & ~(hit_f | hit_b)
            alive_b = alive_b & ~(hit_f | hit_b)
        else:  # each direction looks until its own first hit
            alive_f = alive_f & ~hit_f
            alive_b = alive_b & ~hit_b
        alive_f = alive_f & (index + hop + 1 < num_frames)
        alive_b = alive_b & (index - hop - 1 >= 0)
        keep = alive_f | alive_b
        ids, pos_f, pos_b, alive_f, alive_b = (tf.boolean_mask(t, keep)
                                               for t in (ids, pos_f, pos_b, alive_f, alive_b))
        pos_f = pos_f + _sample(forward, frame_f, pos_f)
        pos_b = pos_b + _sample(backward, frame_b, pos_b)
        return hop + 1, ids, pos_f, pos_b, alive_f, alive_b, colour_f, colour_b, hop_f, hop_b

    colour_f, colour_b, hop_f, hop_b = tf.while_loop(unresolved, step, state,
                                                     shape_invariants=invariants)[-4:]
    # each direction's hit weighted by 1 / hops: "nearest" leaves both only at equal distance
    weight_f = tf.math.divide_no_nan(1.0, tf.cast(hop_f, tf.float32))[:, None]
    weight_b = tf.math.divide_no_nan(1.0, tf.cast(hop_b, tf.float32))[:, None]
    colour = tf.math.divide_no_nan(weight_f * colour_f + weight_b * colour_b, weight_f + weight_b)
    found_hop = tf.where((hop_f > 0) & (hop_b > 0), tf.minimum(hop_f, hop_b),
                         tf.maximum(hop_f, hop_b))
    if max_disagreement > 0:
        apart = tf.reduce_mean(tf.abs(colour_f - colour_b), axis=-1)
        found_hop = tf.where((hop_f > 0) & (hop_b > 0) & (apart > max_disagreement), 0, found_hop)

    shape = tf.shape(hole, out_type=tf.int64)
    found_in_hole = tf.cast(found_hop > 0, tf.float32)
    propagated = tf.scatter_nd(pixels, colour * found_in_hole[:, None],
                               tf.concat([shape[:2], [tf.cast(channels, tf.int64)]], 0))
    found = tf.scatter_nd(pixels, found_in_hole[:, None], shape) + (1.0 - hole)
    hops = tf.scatter_nd(pixels, tf.cast(found_hop, tf.float32)[:, None], shape)
    seen = frames[index] * (1.0 - hole) + propagated
    filled = pyramid_fill(seen[None], 1.0 - found[None])[0]
    return filled, hops, found


# ----------------------------------------------------------------------------------------------
# a whole video


@functools.lru_cache(maxsize=None)
def _traced_propagate_frame(margin: int, blend: str, min_known: float,
                            max_disagreement: float = 0.0):
    """`propagate_frame` traced once for any video size (one graph per margin)."""
    video = [tf.TensorSpec([None, None, None, None], tf.float32)] * 6
    return tf.function(
        lambda frames, known, forward, backward, forward_reliable, backward_reliable, index, hole,
        max_hops: propagate_frame(frames, known, forward, backward, forward_reliable,
                                  backward_reliable, index, hole, max_hops=max_hops,
                                  margin=margin, blend=blend, min_known=min_known,
                                  max_disagreement=max_disagreement),
        input_signature=video + [tf.TensorSpec([], tf.int32),
                                 tf.TensorSpec([None, None, 1], tf.float32),
                                 tf.TensorSpec([], tf.int32)])


def flow_fill(frames: np.ndarray, masks: np.ndarray, *, preset: str = "medium",
              flow_input: str = "telea", check: bool = True, margin: int = 4,
              max_hops: int | None = None, blend: str = "both", min_known: float = 1.0,
              max_disagreement: float = 0.0, moving_speed: float = 0.0,
              fields: FlowFields | None = None) -> FlowFill:
    """Fill every frame's hole by flow propagation (`flow_fields`, then `propagate_frame`),
    taking colour only from what moves with the scene (`moving_objects` are never a source).

    Args:
        frames: uint8 [N, H, W, 3]; masks: [N, H, W, 1] or [N, H, W], non-zero in the hole.
        preset, flow_input, check, margin: as in `flow_fields`.
        max_hops, blend, min_known: as in `propagate_frame`.
        max_disagreement: as in `propagate_frame`, in 0-255 levels.
        moving_speed: as in `moving_objects` (0: every known pixel is a source).
        fields: precomputed `flow_fields` (else computed with preset, flow_input, check, margin).

    Returns:
        `FlowFill`: the filled frames (known pixels bit-exact), hops and found.
    """
    frames = np.asarray(frames)
    hole = _hole_bool(masks)[..., None].astype(np.float32)
    if fields is None:
        fields = flow_fields(frames, hole, preset=preset, flow_input=flow_input, check=check,
                             margin=margin)
    known, fields = _sources(hole, fields, moving_objects(fields, hole, moving_speed))
    video = [tf.constant(a) for a in (frames.astype(np.float32), known, fields.forward,
                                      fields.backward, fields.forward_reliable,
                                      fields.backward_reliable)]
    hops_limit = tf.constant(len(frames) if max_hops is None else max_hops, tf.int32)
    one = _traced_propagate_frame(margin, blend, min_known, max_disagreement)
    filled = frames.copy()
    hops = np.zeros(hole.shape, np.int32)
    found = np.ones(hole.shape, np.uint8)
    for t in range(len(frames)):
        if not hole[t].any():
            continue
        image, hop, seen = one(*video, tf.constant(t), tf.constant(hole[t]), hops_limit)
        inside = hole[t, ..., 0] > 0
        filled[t][inside] = np.clip(np.rint(image.numpy()[inside]), 0, 255).astype(np.uint8)
        hops[t] = hop.numpy().astype(np.int32)
        found[t] = seen.numpy().astype(np.uint8)
    return FlowFill(filled, hops, found)


# ----------------------------------------------------------------------------------------------
# the network's prefill (`data.prefill: flow`, settings in `FlowConfig`)


def _max_hops(settings: FlowConfig) -> int | None:
    return settings.max_hops or None


def _sources(hole: np.ndarray, fields: FlowFields, movers: np.ndarray):
    """(known float32 [N, H, W, 1]: 1 where a pixel may be copied, the fields to follow): the
    moving objects (`moving_objects`, bool [N, H, W]) are taken out of both."""
    return 1.0 - np.maximum(hole, movers[..., None]), without_movers(fields, movers)


def fill_clip(frames: np.ndarray, masks: np.ndarray, settings: FlowConfig) -> FlowFill:
    """`flow_fill` with a config's `flow` settings: the clip's real holes, at the frames' size
    (inference's prefill, at the native resolution)."""
    return flow_fill(frames, masks, preset=settings.preset, flow_input=settings.flow_input,
                     check=settings.check, margin=settings.margin, max_hops=_max_hops(settings),
                     blend=settings.blend, min_known=settings.min_known,
                     max_disagreement=settings.max_disagreement,
                     moving_speed=settings.moving_speed)


class VideoFlow:
    """A video's flow fields, measured once (`flow_fields`) and held as tensors with its frames,
    so that any hole of any frame can be filled by `propagate_frame` inside `tf.data` or a step.

    Args:
        frames: uint8 [N, H, W, 3] (the working resolution at training time).
        masks: [N, H, W, 1], non-zero in the hole.
        settings: the config's `flow`.

    Attributes:
        seconds: how long measuring the fields took.
        movers: bool [N, H, W], the `moving_objects` that are never a source.
    """

    def __init__(self, frames: np.ndarray, masks: np.ndarray, settings: FlowConfig):
        began = time.perf_counter()
        hole = _hole_bool(masks)[..., None].astype(np.float32)
        fields = flow_fields(frames, hole, preset=settings.preset,
                             flow_input=settings.flow_input, check=settings.check,
                             margin=settings.margin)
        self.movers = moving_objects(fields, hole, settings.moving_speed)
        known, fields = _sources(hole, fields, self.movers)
        self.seconds = time.perf_counter() - began
        self.settings = settings
        self.frames = tf.constant(np.asarray(frames, np.float32))
        self.known = tf.constant(known)
        self.fields = tuple(tf.constant(a) for a in (fields.forward, fields.backward,
                                                      fields.forward_reliable,
                                                      fields.backward_reliable))

    def prefill(self, index: tf.Tensor, hole: tf.Tensor,
                hidden: tf.Tensor | None = None) -> tf.Tensor:
        """uint8 [H, W, 3]: frame `index` with `hole` ([H, W, 1], 1 = fill) filled from the other
        frames only (frame `index`'s pixels inside `hole` are never read), and from none of
        their pixels where `hidden` ([N, H, W, 1], 1 = hidden) is set."""
        settings = self.settings
        max_hops = _max_hops(settings)
        known = self.known if hidden is None else self.known * (1.0 - tf.cast(hidden, tf.float32))
        filled, _, _ = propagate_frame(
            self.frames, known, *self.fields, index, tf.cast(hole, tf.float32),
            max_hops=max_hops, margin=settings.margin, blend=settings.blend,
            min_known=settings.min_known, max_disagreement=settings.max_disagreement)
        return tf.cast(tf.round(tf.clip_by_value(filled, 0.0, 255.0)), tf.uint8)
