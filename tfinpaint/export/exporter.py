"""A version folder of an export: the run's newest checkpoint as a SavedModel in TensorFlow
Serving's layout, its assets and, optionally, its ONNX models checked against TensorFlow; written
whole beside its place and renamed in (see `tfinpaint.export` for the layout)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfinpaint import __version__
from tfinpaint.errors import InputError
from tfinpaint.export import onnx as onnx_export
from tfinpaint.export import savedmodel
from tfinpaint.export.names import (DEFAULT_SIGNATURE, FILLS_AT_WORKING_SIZE, FLOAT_SIGNATURE,
                                    FLOW_SETTINGS, MASK_DILATION, NEEDS_PREFILLED, PREFILLED)
from tfinpaint.fill.render import load_generator
from tfinpaint.io.rundir import RunDir, staged_folder
from tfinpaint.model.generator import MULTIPLE, min_input_size


def export(run_path: str | Path, out: str | Path, *, version: int | None = None,
           onnx: bool = False, opset: int | None = None, overwrite: bool = False,
           log=print) -> Path:
    """Export the run's newest checkpoint to `out/<version>/`; returns that folder.

    Raises `InputError` for a bad run folder, an unusable --out or --version, an existing
    version without `overwrite`, or ONNX models that disagree with TensorFlow; in every case
    before anything under `out` changes.
    """
    run = RunDir(run_path)
    config = run.require_config()
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise InputError(f"{run.checkpoints}: no checkpoint to export; fit first")
    base = Path(out)
    if base.exists() and not base.is_dir():
        raise InputError(f"{base}: exists and is not a folder")
    if version is not None and version < 1:
        raise InputError(f"--version {version}: must be a positive integer")
    if opset is not None and not onnx:
        raise InputError("--opset applies to --onnx only")
    version = version if version is not None else savedmodel.next_version(base)
    final = base / str(version)
    if final.exists() and not overwrite:
        raise InputError(f"{final}: version {version} exists; pass --overwrite to replace it "
                         "or omit --version for the next one")

    generator = load_generator(run)
    height, width = savedmodel.working_size(config, run.result / "summary.json")
    info = {
        "working_height": height,
        "working_width": width,
        # The graph takes whole native frames and reduces them to the working size itself;
        # exports without this key fill at whatever size they are sent (clients tile them).
        FILLS_AT_WORKING_SIZE: True,
        # The graph grows the user's masks by the run's dilation itself, as `infer` does when it
        # reads them; a client computing the flow fill grows them by this much for it.
        MASK_DILATION: config.data.mask_dilation,
        "arch": config.generator.arch,
        "channels": config.generator.channels,
        "padding": config.generator.padding,
        "prefill": config.data.prefill,
        "multiple": MULTIPLE,
        "checkpoint": Path(checkpoint).name,
        "run": run.path.resolve().name,
        "signatures": {DEFAULT_SIGNATURE: "uint8 frames, masks -> inpainted",
                       FLOAT_SIGNATURE: "float32 [0, 1] frames, masks -> inpainted"},
        "onnx": None,
        "tfinpaint_version": __version__,
    }
    module = savedmodel.InpaintModule(
        generator, config.data.prefill,
        working_size=(config.data.working_height, config.data.working_width),
        native_detail=config.flow.native_detail, mask_dilation=config.data.mask_dilation)
    if module.needs_prefilled:
        # The fill's third input is the clip's flow fill, which only a client holding the whole
        # clip can compute: say so, and with which settings.
        info[NEEDS_PREFILLED] = True
        info[FLOW_SETTINGS] = dataclasses.asdict(config.flow)
        info["signatures"] = {
            DEFAULT_SIGNATURE: f"uint8 frames, masks, {PREFILLED} -> inpainted",
            FLOAT_SIGNATURE: f"float32 [0, 1] frames, masks, {PREFILLED} -> inpainted"}

    models = None
    if onnx:
        models = onnx_export.convert(module, opset=opset or onnx_export.DEFAULT_OPSET)
        try:
            report = onnx_export.check(module, models,
                                       min_size=min_input_size(config.generator.padding))
        except onnx_export.OnnxCheckError as error:
            raise InputError(f"{run.path}: ONNX conversion is not faithful: {error}; nothing "
                             "written (export without --onnx, or try another --opset)") from None
        log(f"ONNX check on {len(report.sizes)} odd sizes: max difference "
            f"{report.max_float_diff:.1e} (float), {report.max_uint8_diff} level(s) (uint8)")
        info["onnx"] = {name: f"{onnx_export.FOLDER}/{file}"
                        for name, file in onnx_export.FILES.items()}
        info["onnx_opset"] = opset or onnx_export.DEFAULT_OPSET

    try:
        with staged_folder(final, replace=overwrite) as staged:
            savedmodel.write_savedmodel(module, staged, info=info,
                                        config_yaml=run.config_path.read_text())
            if models is not None:
                onnx_export.write(models, staged)
    except OSError:
        if final.exists() and not overwrite:  # another export took this version meanwhile
            raise InputError(f"{final}: version {version} appeared while exporting; "
                             "nothing written, run again") from None
        raise
    return final
