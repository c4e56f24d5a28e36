"""ONNX versions of the export's two signatures (tf2onnx), checked against TensorFlow first.

Layout: beside the SavedModel, in the version folder's `assets.extra/` (TF Serving's place for
files it does not load), so that an ONNX model is published with, and only with, the SavedModel
it was converted from:

    models/NAME/<version>/assets.extra/model.onnx         serving_default (uint8)
    models/NAME/<version>/assets.extra/model_float.onnx   serving_float (float32)

Inputs `frames` and `masks` (and `prefilled`, the clip's flow fill, for a flow run's export),
output `inpainted`, the dimensions N, H and W dynamic; the graphs
pad and crop inside like the SavedModel's. Before anything is written, `check` runs both runtimes
on random frames and masks of odd sizes: the float model must agree within `FLOAT_TOLERANCE`, the
uint8 model within `UINT8_TOLERANCE` levels, and known pixels (outside the holes as the graph
grows them, `InpaintModule.mask_dilation`) must come back bit-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfinpaint.export.names import (DEFAULT_SIGNATURE, FLOAT_SIGNATURE, FRAMES, MASKS, OUTPUT,
                                    PREFILLED)
from tfinpaint.export.savedmodel import InpaintModule
from tfinpaint.io.video import dilate_masks

DEFAULT_OPSET = 17
FILES = {DEFAULT_SIGNATURE: "model.onnx", FLOAT_SIGNATURE: "model_float.onnx"}
FOLDER = "assets.extra"
# The acceptance bounds: ONNX Runtime and TensorFlow order their float sums differently,
# so a rounded uint8 output may differ by one level where the float value sits on a .5 boundary.
FLOAT_TOLERANCE = 1e-4
UINT8_TOLERANCE = 1
# Odd sizes exercise the padding to a multiple of 4 and the crop back; the larger one also
# satisfies the reflect-padded network's minimum (68 px).
CHECK_SIZES = ((37, 53), (69, 101))
CHECK_FRAMES = 2


class OnnxCheckError(Exception):
    """The converted model disagrees with TensorFlow beyond the tolerances."""


@dataclass
class CheckReport:
    """Largest differences seen: float in [0, 1] units, uint8 in levels."""

    max_float_diff: float
    max_uint8_diff: int
    sizes: tuple[tuple[int, int], ...]


def convert(module: InpaintModule, *, opset: int = DEFAULT_OPSET) -> dict:
    """`{signature name: onnx.ModelProto}` for both signatures of `module`."""
    import onnx
    import tf2onnx

    models = {}
    for name, function in ((DEFAULT_SIGNATURE, module.serving_default),
                           (FLOAT_SIGNATURE, module.serving_float)):
        model, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature,
                                                 opset=opset)
        _rename_output(model.graph, OUTPUT)
        onnx.checker.check_model(model)
        models[name] = model
    return models


def _rename_output(graph, name: str) -> None:
    """tf2onnx names the output after the TF tensor (`Identity:0`); use the signature's name."""
    (output,) = graph.output
    old = output.name
    for node in graph.node:
        node.output[:] = [name if value == old else value for value in node.output]
        node.input[:] = [name if value == old else value for value in node.input]
    output.name = name


def session(model):
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])


def run(sess, frames: np.ndarray, masks: np.ndarray,
        prefilled: np.ndarray | None = None) -> np.ndarray:
    """The model's `inpainted`; `prefilled` only for a flow run's models, which need it."""
    return sess.run([OUTPUT], _feed(frames, masks, prefilled))[0]


def _feed(frames, masks, prefilled) -> dict:
    feed = {FRAMES: frames, MASKS: masks}
    if prefilled is not None:
        feed[PREFILLED] = prefilled
    return feed


def random_inputs(height: int, width: int, *, frames: int, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Random frames, and masks mixing a block hole with scattered single pixels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    masks = (rng.random((frames, height, width, 1)) < 0.05).astype(np.uint8)
    for mask in masks:
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[top:top + height // 3, left:left + width // 3] = 255
    return images, masks


def check(module: InpaintModule, models: dict, *, sizes=CHECK_SIZES, min_size: int = 0,
          seed: int = 0) -> CheckReport:
    """Compare ONNX Runtime with TensorFlow on random inputs; raise `OnnxCheckError` if they differ.

    Sizes with a side under `min_size` (what the network accepts) are skipped.
    """
    sessions = {name: session(model) for name, model in models.items()}
    sizes = tuple(size for size in sizes if min(size) >= min_size)
    max_float, max_uint8 = 0.0, 0
    for index, (height, width) in enumerate(sizes):
        frames, masks = random_inputs(height, width, frames=CHECK_FRAMES, seed=seed + index)
        known = dilate_masks((masks > 0).astype(np.uint8), module.mask_dilation) == 0
        where = f"{CHECK_FRAMES}x{height}x{width}"
        prefilled = None
        if module.needs_prefilled:  # any fill of the hole will do: random levels
            noise, _ = random_inputs(height, width, frames=CHECK_FRAMES, seed=seed + index + 100)
            prefilled = np.where(known, frames, noise)

        feed = _feed(frames, masks, prefilled)
        expected = module.serving_default(**feed)[OUTPUT].numpy()
        got = run(sessions[DEFAULT_SIGNATURE], frames, masks, prefilled)
        _check_shape(got, expected, DEFAULT_SIGNATURE, where)
        diff = int(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max())
        max_uint8 = max(max_uint8, diff)
        if diff > UINT8_TOLERANCE:
            raise OnnxCheckError(f"{FILES[DEFAULT_SIGNATURE]} differs from TensorFlow by {diff} "
                                 f"levels on {where} (allowed {UINT8_TOLERANCE})")
        if not np.array_equal(np.where(known, got, 0), np.where(known, frames, 0)):
            raise OnnxCheckError(f"{FILES[DEFAULT_SIGNATURE]} changes known pixels on {where}")

        float_frames = frames.astype(np.float32) / 255.0
        float_masks = (masks > 0).astype(np.float32)
        float_prefilled = None if prefilled is None else prefilled.astype(np.float32) / 255.0
        feed = _feed(float_frames, float_masks, float_prefilled)
        expected = module.serving_float(**feed)[OUTPUT].numpy()
        got = run(sessions[FLOAT_SIGNATURE], float_frames, float_masks, float_prefilled)
        _check_shape(got, expected, FLOAT_SIGNATURE, where)
        diff = float(np.abs(got - expected).max())
        max_float = max(max_float, diff)
        if not diff < FLOAT_TOLERANCE:
            raise OnnxCheckError(f"{FILES[FLOAT_SIGNATURE]} differs from TensorFlow by {diff:.2e} "
                                 f"on {where} (allowed {FLOAT_TOLERANCE:.0e})")
        if not np.array_equal(np.where(known, got, 0), np.where(known, float_frames, 0)):
            raise OnnxCheckError(f"{FILES[FLOAT_SIGNATURE]} changes known pixels on {where}")
    return CheckReport(max_float, max_uint8, sizes)


def _check_shape(got, expected, name, where) -> None:
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise OnnxCheckError(f"{FILES[name]} returns {got.dtype} {list(got.shape)} on {where}, "
                             f"TensorFlow {expected.dtype} {list(expected.shape)}")


def write(models: dict, version_folder: Path) -> list[Path]:
    """Write the models into `version_folder/assets.extra/`; returns their paths."""
    folder = version_folder / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in models.items():
        path = folder / FILES[name]
        path.write_bytes(model.SerializeToString())
        paths.append(path)
    return paths
