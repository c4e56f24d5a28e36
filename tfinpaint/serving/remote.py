"""Filling frames through a TF Serving-compatible server (`python -m tfinpaint.serve` or the real
`tensorflow_model_server`), in whole frames or in tiles.

An export whose `tfinpaint.json` says `fills_at_working_size` reduces native frames itself, as
`tfinpaint.infer` does: the client sends whole frames, as many per request as fit the gRPC
message limit, and never tiles. Older exports fill at the size they are sent: frames larger
than their working size are cut into tiles of it (`tfinpaint.tiling`), only tiles holding a
hole pixel are sent, and the outputs are blended back into the hole. `tile_size_for` says which.

A flow run's export (`needs_prefilled`, or a `prefilled` input in its signature) fills with the
clip's flow fill, which needs the whole clip: the client computes it once (`clip_prefill`, with
the export's `flow` settings) and sends each batch its slice; such an export is never tiled.
Masks go as the user drew them: an export recording `mask_dilation` grows its holes itself (as
`infer` does), so the client grows them only for the flow fill and for pasting the answer.
In-process and remote filling share one path, `fill_frames`, behind a `PredictFn`:
`remote_predict_fn` (gRPC, with retries) or `local_predict_fn` (a SavedModel loaded here).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Callable, Iterator

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from tfinpaint.config import FlowConfig, config_from_dict
from tfinpaint.errors import InputError
from tfinpaint.fill import tiling
from tfinpaint.export.names import (ASSETS_JSON, DEFAULT_SIGNATURE, FILLS_AT_WORKING_SIZE,
                                    FLOW_SETTINGS, FRAMES, MASK_DILATION, MASKS,
                                    NEEDS_PREFILLED, OUTPUT, PREFILLED, SIGNATURE_DEF_FIELD,
                                    TFINPAINT_FIELD)
from tfinpaint.io.video import dilate_masks

PredictFn = Callable[..., np.ndarray]
"""`(frames uint8 [N,H,W,3], masks uint8 [N,H,W,1]) -> inpainted uint8 [N,H,W,3]`; for an
export that needs it, also `prefilled` uint8 [N,H,W,3], the third positional argument."""

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
MEGABYTE = 1 << 20
# The default gRPC message limit of `connect` and `tfinpaint.serve`, in MB.
DEFAULT_MESSAGE_MB = 64
# Bytes a whole frame takes in a request (RGB and mask) and in its answer (RGB), per pixel;
# and room for the protobuf framing of one request.
REQUEST_BYTES_PER_PIXEL = 4
PREFILLED_BYTES_PER_PIXEL = 3  # a flow export's requests also carry the flow fill (RGB)
RESPONSE_BYTES_PER_PIXEL = 3
MESSAGE_OVERHEAD = 64 * 1024


def connect(target: str, *, max_message_mb: int = DEFAULT_MESSAGE_MB
            ) -> prediction_service_pb2_grpc.PredictionServiceStub:
    """A PredictionService stub on an insecure channel to HOST:PORT."""
    message_bytes = max_message_mb * MEGABYTE
    channel = grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", message_bytes),
        ("grpc.max_receive_message_length", message_bytes),
        # reconnect about as often as `with_retries` retries, not after gRPC's 1 s..120 s
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 4000),
    ])
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _stub(stub_or_target) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return connect(stub_or_target) if isinstance(stub_or_target, str) else stub_or_target


def with_retries(call: Callable[[], object], *, retries: int = 5, backoff: float = 0.5,
                 max_backoff: float = 8.0, sleep: Callable[[float], None] = time.sleep):
    """`call()`, retried up to `retries` times on UNAVAILABLE or DEADLINE_EXCEEDED.

    Waits backoff, 2 x backoff, ... (at most max_backoff) between tries; any other error, and
    the last retryable one, propagate.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE or attempt == retries:
                raise
            sleep(min(backoff * 2 ** attempt, max_backoff))
    raise AssertionError("unreachable")


def _model_spec(spec, model: str, version: int | None, signature: str | None = None) -> None:
    spec.name = model
    if version is not None:
        spec.version.value = version
    if signature is not None:
        spec.signature_name = signature


def remote_predict_fn(stub_or_target, model: str, *, version: int | None = None,
                      signature: str = DEFAULT_SIGNATURE, timeout: float = 300.0,
                      retries: int = 5, backoff: float = 0.5) -> PredictFn:
    """A PredictFn that calls `Predict` on a TF Serving-compatible server.

    `stub_or_target` is a PredictionServiceStub or "HOST:PORT". Each call has a deadline of
    `timeout` seconds and is retried on UNAVAILABLE / DEADLINE_EXCEEDED (see `with_retries`).
    Thread-safe: gRPC stubs may be shared by threads.
    """
    stub = _stub(stub_or_target)

    def predict(frames: np.ndarray, masks: np.ndarray,
                prefilled: np.ndarray | None = None) -> np.ndarray:
        request = predict_pb2.PredictRequest()
        _model_spec(request.model_spec, model, version, signature)
        request.inputs[FRAMES].CopyFrom(tf.make_tensor_proto(frames))
        request.inputs[MASKS].CopyFrom(tf.make_tensor_proto(masks))
        if prefilled is not None:
            request.inputs[PREFILLED].CopyFrom(tf.make_tensor_proto(prefilled))
        response = with_retries(lambda: stub.Predict(request, timeout=timeout),
                                retries=retries, backoff=backoff)
        return tf.make_ndarray(response.outputs[OUTPUT])

    return predict


def local_predict_fn(saved_model, *, signature: str = DEFAULT_SIGNATURE) -> PredictFn:
    """A PredictFn over a SavedModel in this process: a path, a loaded object, or a function.

    A function (for example `tfinpaint.fill.render.make_fill_fn(generator)`) is called as
    `function(frames=..., masks=...)` (and `prefilled=...` when given one) and may return the
    tensor or `{OUTPUT: tensor}`.
    """
    if isinstance(saved_model, (str, os.PathLike)):
        saved_model = tf.saved_model.load(str(saved_model))
    function = saved_model.signatures[signature] if hasattr(saved_model, "signatures") \
        else saved_model

    def predict(frames: np.ndarray, masks: np.ndarray,
                prefilled: np.ndarray | None = None) -> np.ndarray:
        inputs = {FRAMES: tf.constant(frames), MASKS: tf.constant(masks)}
        if prefilled is not None:
            inputs[PREFILLED] = tf.constant(prefilled)
        result = function(**inputs)
        if isinstance(result, dict):
            result = result[OUTPUT]
        return np.asarray(result)

    return predict


def fetch_model_info(stub_or_target, model: str, *, version: int | None = None,
                     timeout: float = 30.0, retries: int = 5, backoff: float = 0.5) -> dict | None:
    """The export's `assets/tfinpaint.json` as `tfinpaint.serve` reports it; None if the server
    does not know the `tfinpaint` metadata field (the real TF Serving answers INVALID_ARGUMENT)
    or the export has no `tfinpaint.json` (NOT_FOUND)."""
    stub = _stub(stub_or_target)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[TFINPAINT_FIELD])
    _model_spec(request.model_spec, model, version)
    try:
        response = with_retries(lambda: stub.GetModelMetadata(request, timeout=timeout),
                                retries=retries, backoff=backoff)
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED):
            return None
        if error.code() == grpc.StatusCode.NOT_FOUND and ASSETS_JSON in (error.details() or ""):
            return None  # an export without assets/tfinpaint.json
        raise
    info = struct_pb2.Struct()
    response.metadata[TFINPAINT_FIELD].Unpack(info)
    return json_format.MessageToDict(info)


def fetch_signature_inputs(stub_or_target, model: str, *, version: int | None = None,
                           signature: str = DEFAULT_SIGNATURE, timeout: float = 30.0,
                           retries: int = 5, backoff: float = 0.5) -> set[str] | None:
    """The input keys of the model's `signature` from `GetModelMetadata` (`signature_def`, which
    the real TF Serving answers too); None where the signature is not listed."""
    stub = _stub(stub_or_target)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
    _model_spec(request.model_spec, model, version)
    response = with_retries(lambda: stub.GetModelMetadata(request, timeout=timeout),
                            retries=retries, backoff=backoff)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
    if signature not in signatures.signature_def:
        return None
    return set(signatures.signature_def[signature].inputs)


def needs_prefilled(info: dict | None) -> bool:
    """Whether the export's signatures take `prefilled`, the clip's flow fill (a flow run's)."""
    return bool(info and info.get(NEEDS_PREFILLED))


def flow_settings(info: dict | None) -> FlowConfig:
    """The `flow` settings to compute a flow export's `prefilled` with: the export's (its
    tfinpaint.json), else the config's defaults. Raises `InputError` for settings this version
    of tfinpaint does not know."""
    settings = (info or {}).get(FLOW_SETTINGS)
    if not settings:
        return FlowConfig()
    # GetModelMetadata's Struct holds every number as a double: integral ones back to int
    # (a float setting takes an int as well)
    settings = {key: int(value) if isinstance(value, float) and value.is_integer() else value
                for key, value in settings.items()}
    try:
        return config_from_dict({"flow": settings}).flow
    except InputError as error:
        raise InputError(f"the export's flow settings: {error}") from None


def export_mask_dilation(info: dict | None) -> int | None:
    """px the export grows every hole by itself (its run's `data.mask_dilation`): 0 for an export
    made before it said (it fills the holes as sent); None where the server does not describe
    the export (the real TF Serving)."""
    if info is None:
        return None
    return int(info.get(MASK_DILATION, 0))


def clip_prefill(frames: np.ndarray, masks: np.ndarray, settings: FlowConfig, *,
                 mask_dilation: int = 0) -> np.ndarray:
    """A flow export's `prefilled` for a whole clip: the frames with their holes filled by flow
    propagation at their own size, computed once over every frame (one request holds only a
    slice of the clip; `fill_frames` sends each batch its slice). `masks` are those sent to the
    export; `mask_dilation` the export's (`export_mask_dilation`): the flow fill is computed on
    the holes the graph fills, grown as `infer` grows them."""
    from tfinpaint.fill.render import native_prefill

    masks = masks if masks.ndim == 4 else masks[..., None]
    masks = dilate_masks((masks != 0).astype(np.uint8), mask_dilation)
    return native_prefill("flow", frames, masks, settings)


def fetch_working_size(stub_or_target, model: str, **kwargs) -> tuple[int, int] | None:
    """The model's working (height, width) as `tfinpaint.serve` reports it; None if unknown.
    Keyword arguments as for `fetch_model_info`."""
    return _working_size(fetch_model_info(stub_or_target, model, **kwargs))


def _working_size(info: dict | None) -> tuple[int, int] | None:
    if not info:
        return None
    size = int(info.get("working_height", 0)), int(info.get("working_width", 0))
    return size if min(size) > 0 else None  # 0 = the export does not know its working size


def tile_size_for(info: dict | None, requested: tuple[int, int] | None
                  ) -> tuple[int, int] | None:
    """The tile size to send an export, None for whole frames (see the module docstring).

    `info` is the export's `tfinpaint.json`, which `tfinpaint.serve` answers to
    `GetModelMetadata` with the metadata field `tfinpaint` (None where the server does not say:
    the real TF Serving answers only `signature_def`); `requested` the user's `--tile-size`,
    for an old export. Without either, frames are sent whole, right for every recent export.
    Raises `InputError` for a tile size with an export that fills at its working size itself,
    or that needs the clip's flow fill.
    """
    if requested is not None and needs_prefilled(info):
        raise InputError(f"--tile-size {requested[0]}x{requested[1]}: this export (a data.prefill: "
                         "flow run) fills whole frames with the whole clip's flow fill and "
                         "cannot be tiled; send whole frames (omit --tile-size)")
    if info and info.get(FILLS_AT_WORKING_SIZE):
        if requested is not None:
            size = _working_size(info)
            working = f" ({size[0]}x{size[1]})" if size else ""
            raise InputError(f"--tile-size {requested[0]}x{requested[1]}: this export reduces "
                             f"whole frames to its working size{working} itself; send whole "
                             "frames (tiles are only for exports made before "
                             f"'{FILLS_AT_WORKING_SIZE}')")
        return None
    return requested or _working_size(info)


def whole_frames_per_request(height: int, width: int, batch: int,
                             message_mb: int | None, *, prefilled: bool = False) -> int:
    """How many whole frames of height x width to send at once: `batch`, or fewer where the
    request (with `prefilled`, the flow fill too) or its answer would pass the gRPC message
    limit. Raises `InputError` when one frame alone does not fit."""
    if message_mb is None:
        return batch
    limit = message_mb * MEGABYTE - MESSAGE_OVERHEAD
    request = REQUEST_BYTES_PER_PIXEL + (PREFILLED_BYTES_PER_PIXEL if prefilled else 0)
    per_frame = height * width * max(request, RESPONSE_BYTES_PER_PIXEL)
    if per_frame > limit:
        raise InputError(f"one {width}x{height} frame takes {per_frame / MEGABYTE:.0f} MB per "
                         f"request, over the {message_mb} MB gRPC message limit; raise "
                         "--max-message-mb on the server and the client")
    return max(1, min(batch, limit // per_frame))


# A piece of work: (frame index, tile or None for the whole frame).
_Piece = tuple[int, "tiling.Tile | None"]


def _whole_frame_batches(frames, masks, holes, batch,
                         prefilled=None) -> Iterator[tuple[list[_Piece], ...]]:
    indices = [i for i in range(len(frames)) if holes[i]]
    for start in range(0, len(indices), batch):
        chosen = indices[start:start + batch]
        arrays = (frames[chosen], masks[chosen])
        if prefilled is not None:  # this batch's slice of the whole clip's flow fill
            arrays += (prefilled[chosen],)
        yield ([(i, None) for i in chosen],) + arrays


def _tile_batches(frames, masks, holes, tiles, batch) -> Iterator[tuple[list[_Piece], ...]]:
    """Batches of `batch` tiles (across frames), cutting one frame at a time to bound memory."""
    pieces, frame_tiles, mask_tiles = [], [], []
    for i in range(len(frames)):
        if not holes[i]:
            continue
        cut_frames, cut_masks, kept = tiling.tile(frames[i], masks[i], tiles)
        pieces += [(i, tiles[k]) for k in kept]
        frame_tiles += list(cut_frames)
        mask_tiles += list(cut_masks)
        while len(pieces) >= batch:
            yield pieces[:batch], np.stack(frame_tiles[:batch]), np.stack(mask_tiles[:batch])
            del pieces[:batch], frame_tiles[:batch], mask_tiles[:batch]
    if pieces:
        yield pieces, np.stack(frame_tiles), np.stack(mask_tiles)


def fill_frames(stub_or_target, model: str | None, frames: np.ndarray, masks: np.ndarray, *,
                tile_size: tuple[int, int] | None = None, overlap: int | None = None,
                batch: int = 4, concurrency: int = 2, version: int | None = None,
                message_mb: int | None = None, prefilled: np.ndarray | None = None,
                mask_dilation: int | None = 0,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Fill the holes of `frames` by calling a model, tiling frames larger than `tile_size`.

    Args:
      stub_or_target: where the model runs: a `PredictFn` (`local_predict_fn(...)`,
        `remote_predict_fn(...)`), a PredictionServiceStub, or "HOST:PORT".
      model: the served model's name (ignored for a PredictFn).
      frames: uint8 [N, H, W, 3]; masks: [N, H, W, 1] or [N, H, W], non-zero in the hole.
      tile_size: (height, width), for exports that fill at the size they are sent (made before
        `fills_at_working_size`; see `tile_size_for`): frames no larger are sent whole in
        batches of `batch`; larger ones are tiled (`tiling.plan_tiles`, with seam tiles) and
        only tiles with a hole pixel are sent, `batch` tiles per request. None: whole frames.
      overlap: least overlap of neighbouring tiles (default: a quarter of the tile's smaller
        side).
      concurrency: requests in flight at once (a bounded window, not a queue of everything).
      version: model version (default: the server's latest).
      message_mb: the gRPC message limit: whole frames go `batch` per request or fewer, so that
        a request and its answer fit (`whole_frames_per_request`). None: no limit.
      prefilled: for an export that needs it (a flow run's), the WHOLE clip's flow fill, uint8
        [N, H, W, 3] like `frames` (`clip_prefill`); each request gets its frames' slice.
        Whole frames only: with a tile size that would tile, `InputError`.
      mask_dilation: px the model grows each hole by itself (`export_mask_dilation`): `masks`
        are sent as they are and the answer is pasted into the holes so grown. None where that
        is not known: a whole frame's answer is taken whole (every export passes known pixels
        through). Whole frames only where above 0.
      progress: called with the number of frames done so far, as frames complete.

    Returns:
      uint8 [N, H, W, 3]; known pixels (outside the grown holes) are `frames`' bit-exactly,
      frames without a hole are copied without a request.
    """
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    if masks.ndim == 3:
        masks = masks[..., None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} "
                         f"{list(frames.shape)}")
    if masks.ndim != 4 or masks.shape[:3] != frames.shape[:3] or masks.shape[-1] != 1:
        raise ValueError(f"masks {list(masks.shape)} do not match frames {list(frames.shape)}")
    if batch < 1 or concurrency < 1:
        raise ValueError(f"batch ({batch}) and concurrency ({concurrency}) must be >= 1")
    masks = masks.astype(np.uint8)
    if prefilled is not None:
        prefilled = np.asarray(prefilled)
        if prefilled.dtype != np.uint8 or prefilled.shape != frames.shape:
            raise ValueError(f"prefilled must be uint8 {list(frames.shape)} like frames, got "
                             f"{prefilled.dtype} {list(prefilled.shape)}")
    if not callable(stub_or_target) and message_mb is None:
        message_mb = DEFAULT_MESSAGE_MB  # what `connect` allows
    predict = stub_or_target if callable(stub_or_target) \
        else remote_predict_fn(stub_or_target, model, version=version)

    num_frames, height, width, _ = frames.shape
    holes = masks.reshape(num_frames, -1).any(axis=1)
    filled = frames.copy()
    done = int(num_frames - holes.sum())
    if progress:
        progress(done)

    pending: dict[int, int] = {}  # frame index -> its tiles still to come back
    returned: dict[int, list[tuple[tiling.Tile, np.ndarray]]] = {}
    tiled = tile_size is not None and (height > tile_size[0] or width > tile_size[1])
    if tiled and prefilled is not None:
        raise InputError(f"{width}x{height} frames: an export that takes the clip's flow fill "
                         f"fills whole frames and cannot be tiled at {tile_size[0]}x{tile_size[1]}")
    if tiled and mask_dilation:
        raise InputError(f"{width}x{height} frames: an export that grows its holes itself fills "
                         f"whole frames and cannot be tiled at {tile_size[0]}x{tile_size[1]}")
    pasted = dilate_masks(masks, mask_dilation or 0)  # the holes the model fills
    if tiled:
        tile_h, tile_w = tile_size
        overlap = min(tile_h, tile_w) // 4 if overlap is None else overlap
        tiles = tiling.plan_tiles(height, width, tile_h, tile_w, overlap)
        batches = _tile_batches(frames, masks, holes, tiles, batch)
        for i in np.flatnonzero(holes):
            hole = masks[i, ..., 0] != 0
            pending[int(i)] = sum(bool(hole[t.window].any()) for t in tiles)
    else:
        per_request = whole_frames_per_request(height, width, batch, message_mb,
                                               prefilled=prefilled is not None)
        batches = _whole_frame_batches(frames, masks, holes, per_request, prefilled)

    def collect(pieces: list[_Piece], outputs: np.ndarray) -> None:
        nonlocal done
        if outputs.shape[0] != len(pieces):
            raise ValueError(f"model returned {outputs.shape[0]} outputs for {len(pieces)} inputs")
        for (i, piece), output in zip(pieces, outputs):
            if piece is None:
                filled[i] = output if mask_dilation is None \
                    else np.where(pasted[i] != 0, output, frames[i])
                done += 1
            else:
                returned.setdefault(i, []).append((piece, output))
                pending[i] -= 1
                if pending[i] == 0:
                    parts = returned.pop(i)
                    filled[i] = tiling.stitch(frames[i], masks[i], [t for t, _ in parts],
                                              np.stack([o for _, o in parts]))
                    done += 1
            if progress and (piece is None or pending[i] == 0):
                progress(done)

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        in_flight: dict[concurrent.futures.Future, list[_Piece]] = {}
        try:
            for pieces, *arrays in batches:
                while len(in_flight) >= concurrency:
                    _drain(in_flight, collect, concurrent.futures.FIRST_COMPLETED)
                in_flight[pool.submit(predict, *arrays)] = pieces
            while in_flight:
                _drain(in_flight, collect, concurrent.futures.FIRST_COMPLETED)
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    return filled


def _drain(in_flight, collect, return_when) -> None:
    finished, _ = concurrent.futures.wait(in_flight, return_when=return_when)
    for future in finished:
        pieces = in_flight.pop(future)
        collect(pieces, np.asarray(future.result()))
