"""A small TensorFlow Serving stand-in: TF Serving's gRPC `PredictionService` over exported videos.

The real `tensorflow_model_server` cannot be installed on these machines (see serving/README.md),
so this server speaks the same gRPC API (`Predict`, `GetModelMetadata`) over the same
`models/NAME/<version>/` SavedModels, and a client written for one works with the other.
Versions are the integer folders under `--model-base`, listed on every request (a new one is
picked up without a restart), each loaded once and kept; a request without a version gets the
latest. Requests are checked against the signature before anything runs (`INVALID_ARGUMENT`;
an unknown model, version or signature is `NOT_FOUND`). At most `--max-concurrent` predictions
run at once and `--max-queued` wait (`RESOURCE_EXHAUSTED` beyond; `DEADLINE_EXCEEDED` for a
caller's deadline), so memory stays bounded. Besides `signature_def`, `GetModelMetadata` answers
the field `tfinpaint` with the export's `assets/tfinpaint.json` as a `google.protobuf.Struct`
(the real server rejects that field; clients then fall back, see `tfinpaint.serving.remote`).
"""

from __future__ import annotations

import json
import math
import os
import threading
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from tfinpaint.errors import InputError
from tfinpaint.export.names import (ASSETS_JSON, DEFAULT_SIGNATURE, FRAMES, MASKS, PREFILLED,
                                    SIGNATURE_DEF_FIELD, TFINPAINT_FIELD)
MEGABYTE = 1 << 20
# Values per pixel a request may declare (RGBA at most): caps what a tensor can expand to.
MAX_CHANNELS = 4


class ServingError(Exception):
    """A request the server refuses, with the gRPC status code to answer it with."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class _Version:
    """One loaded SavedModel version: its callable signatures, their SignatureDefs, its assets."""

    def __init__(self, path: Path):
        self.loaded = tf.saved_model.load(str(path))
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = {name: signature for name, signature
                               in saved_model.meta_graphs[0].signature_def.items()
                               if not name.startswith("__")}
        assets = path / "assets" / ASSETS_JSON
        self.assets = json.loads(assets.read_text()) if assets.is_file() else None


class ModelRepository:
    """The versions of one model under `model_base`, loaded on first use and kept."""

    def __init__(self, model_base: str | os.PathLike, name: str | None = None):
        self.base = Path(model_base)
        self.name = name or self.base.resolve().name
        if not self.base.is_dir():
            raise InputError(f"{self.base}: no such model folder")
        if not self.versions():
            raise InputError(f"{self.base}: no version folder (an integer name holding "
                             "saved_model.pb)")
        self._loaded: dict[int, _Version] = {}
        self._lock = threading.Lock()

    def versions(self) -> list[int]:
        return sorted(int(entry.name) for entry in self.base.iterdir()
                      if entry.name.isdigit() and (entry / "saved_model.pb").is_file())

    def get(self, name: str, version: int | None) -> tuple[int, _Version]:
        if name != self.name:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"model '{name}' not found (this server serves '{self.name}')")
        versions = self.versions()
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"model '{name}' has no version {version} (has {versions})")
        with self._lock:  # load each version once, even under concurrent first requests
            if version not in self._loaded:
                self._loaded[version] = _Version(self.base / str(version))
            return version, self._loaded[version]


def _requested_version(model_spec) -> int | None:
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version_label":
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           f"version label '{model_spec.version_label}' not found "
                           "(this server has no labels; ask for a version number)")
    return model_spec.version.value if choice == "version" else None


def _check_declared_shape(key: str, proto, max_pixels: int) -> None:
    """Refuse a tensor whose declared shape is invalid or too big, before it is materialised.

    A TensorProto with a shape and no values decodes to that whole shape, padded: a request of a
    few bytes could otherwise ask this server for terabytes.
    """
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(size < 0 for size in shape):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input '{key}' has no complete shape (got {shape})")
    elements = math.prod(shape)
    if elements > MAX_CHANNELS * max_pixels:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input '{key}' declares shape {shape}, more than this server's cap "
                           f"of {max_pixels} pixels; send fewer or smaller frames (tile them)")


def _check_inputs(inputs: dict[str, np.ndarray], specs: dict[str, tf.TensorSpec],
                  max_pixels: int) -> None:
    """Refuse what the signature would refuse, and what is too big, before running anything."""
    missing = sorted(set(specs) - set(inputs))
    unexpected = sorted(set(inputs) - set(specs))
    if missing or unexpected:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"inputs must be {sorted(specs)}; missing {missing}, "
                           f"unexpected {unexpected}")
    for key, spec in specs.items():
        array = inputs[key]
        if array.dtype != spec.dtype.as_numpy_dtype:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input '{key}' must be {spec.dtype.name}, got {array.dtype}")
        if spec.shape.rank is not None:
            if array.ndim != spec.shape.rank:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"input '{key}' must have rank {spec.shape.rank} "
                                   f"{spec.shape}, got shape {list(array.shape)}")
            if not spec.shape.is_compatible_with(array.shape):
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"input '{key}' must have shape {spec.shape}, "
                                   f"got {list(array.shape)}")
        pixels = int(np.prod(array.shape[:-1])) if array.ndim else 1
        if pixels > max_pixels:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input '{key}' has {pixels} pixels {list(array.shape)}, more "
                               f"than this server's cap of {max_pixels}; send fewer or "
                               "smaller frames (tile them)")
    frames = inputs.get(FRAMES)
    for key in (MASKS, PREFILLED):
        other = inputs.get(key)
        if frames is None or other is None or frames.ndim < 3 or other.ndim < 3:
            continue
        if frames.shape[:3] != other.shape[:3]:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"frames {list(frames.shape)} and {key} {list(other.shape)} "
                               "differ in N, H or W")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`Predict` and `GetModelMetadata` of TF Serving's PredictionService over one model.

    `Predict` rejects with `INVALID_ARGUMENT`, before anything runs: missing or unexpected
    inputs, a wrong dtype, rank or fixed dimension, `masks` (or a flow export's `prefilled`)
    differing from `frames` in N, H or W, and more than `max_pixels` pixels in one input. At
    most `max_concurrent` predictions run at once; further calls wait for a slot up to their own
    deadline (then `DEADLINE_EXCEEDED`).
    """

    def __init__(self, repository: ModelRepository, *, max_concurrent: int, max_pixels: int):
        self.repository = repository
        self.max_pixels = max_pixels
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def Predict(self, request, context):
        try:
            return self._predict(request, context)
        except ServingError as error:
            context.abort(error.code, str(error))

    def GetModelMetadata(self, request, context):
        try:
            return self._metadata(request)
        except ServingError as error:
            context.abort(error.code, str(error))

    def _predict(self, request, context) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        version, model = self.repository.get(spec.name, _requested_version(spec))
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in model.loaded.signatures:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"signature '{signature_name}' not found in model '{spec.name}' "
                               f"version {version} (has {sorted(model.signature_defs)})")
        function = model.loaded.signatures[signature_name]
        for key, proto in request.inputs.items():
            _check_declared_shape(key, proto, self.max_pixels)
        try:
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        except (TypeError, ValueError) as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"unreadable input tensor: {error}") from None
        _check_inputs(inputs, function.structured_input_signature[1], self.max_pixels)
        outputs = sorted(request.output_filter) or sorted(function.structured_outputs)
        unknown = sorted(set(outputs) - set(function.structured_outputs))
        if unknown:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"output_filter names unknown outputs {unknown} "
                               f"(has {sorted(function.structured_outputs)})")

        remaining = context.time_remaining()  # huge when the client set no deadline
        if not self._slots.acquire(timeout=None if remaining > 1e6 else remaining):  # queue for a slot, up to the deadline
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               "deadline passed while waiting for a free model slot")
        try:
            results = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, error.message) from None
        finally:
            self._slots.release()

        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.repository.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature_name
        for key in outputs:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(results[key].numpy()))
        return response

    def _metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = request.model_spec
        version, model = self.repository.get(spec.name, _requested_version(spec))
        fields = list(request.metadata_field)
        if not fields:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "GetModelMetadataRequest must name at least one metadata_field")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.repository.name
        response.model_spec.version.value = version
        for field in fields:
            if field == SIGNATURE_DEF_FIELD:
                signatures = get_model_metadata_pb2.SignatureDefMap()
                for name, signature in model.signature_defs.items():
                    signatures.signature_def[name].CopyFrom(signature)
                response.metadata[field].Pack(signatures)
            elif field == TFINPAINT_FIELD:
                if model.assets is None:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"model '{spec.name}' version {version} has no "
                                       f"assets/{ASSETS_JSON}")
                response.metadata[field].Pack(json_format.ParseDict(model.assets,
                                                                    struct_pb2.Struct()))
            else:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"metadata field '{field}' is not supported (supported: "
                                   f"'{SIGNATURE_DEF_FIELD}', '{TFINPAINT_FIELD}')")
        return response


def serve(model_base: str | os.PathLike, port: int, *, host: str = "127.0.0.1",
          model_name: str | None = None, max_message_mb: int = 64, max_concurrent: int = 4,
          max_queued: int = 16, max_pixels: int = 1 << 24) -> tuple[grpc.Server, int]:
    """Start serving the model under `model_base` on host:port; returns (server, bound port).

    Port 0 picks a free port. The latest version is loaded before this returns, so the first
    request does not pay for it. At most `max_queued` calls wait beyond the running ones; gRPC
    answers any more with `RESOURCE_EXHAUSTED`, so memory stays bounded by about
    (max_concurrent + max_queued) x the largest message. Stop with `server.stop(grace)`.
    """
    repository = ModelRepository(model_base, model_name)
    repository.get(repository.name, None)
    message_bytes = max_message_mb * MEGABYTE
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_concurrent + max_queued,
                                   thread_name_prefix="tfinpaint-serve"),
        maximum_concurrent_rpcs=max_concurrent + max_queued,
        options=[("grpc.max_receive_message_length", message_bytes),
                 ("grpc.max_send_message_length", message_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository, max_concurrent=max_concurrent, max_pixels=max_pixels),
        server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise InputError(f"--port {port}: cannot listen on {host}:{port} (in use?)")
    server.start()
    return server, bound
