"""Export a fitted run as a SavedModel for TensorFlow Serving (and ONNX).

Examples:
  python -m tfinpaint.export --run runs/clip --out models/clip            # models/clip/<next>/
  python -m tfinpaint.export --run runs/clip --out models/clip --onnx     # + assets.extra/*.onnx
  python -m tfinpaint.export --run runs/clip --out models/clip --version 3 --overwrite

The version folder is the next integer after those in --out unless --version names one; an
existing version is replaced only with --overwrite. Everything is written to a hidden folder
beside it and renamed into place at the end, so a server watching --out never sees half a
version. With --onnx, the ONNX models are checked against TensorFlow before the version is
published; if they disagree, nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from tfinpaint.errors import InputError, cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfinpaint.export", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run folder written by tfinpaint.train")
    parser.add_argument("--out", required=True, help="the model folder, models/NAME")
    parser.add_argument("--version", type=int, help="version number (default: the next one)")
    parser.add_argument("--onnx", action="store_true",
                        help="also write ONNX models (tf2onnx), checked against TensorFlow")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    return parser


def export(run_path: str | Path, out: str | Path, *, version: int | None = None,
           onnx: bool = False, opset: int | None = None, overwrite: bool = False,
           log=print) -> Path:
    """Export the run's newest checkpoint to `out/<version>/`; returns that folder.

    Raises `InputError` for a bad run folder, an unusable --out or --version, an existing
    version without `overwrite`, or ONNX models that disagree with TensorFlow; in every case
    before anything under `out` changes.
    """
    from tfinpaint import __version__
    from tfinpaint.export import savedmodel
    from tfinpaint.run import RunDir

    run = RunDir(run_path)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: no such run folder")
    if not run.config_path.is_file():
        raise InputError(f"{run.path}: not a run folder (no config.yaml)")
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

    config = run.saved_config()
    from tfinpaint.generator import MULTIPLE
    from tfinpaint.infer import load_generator

    generator = load_generator(run)
    height, width = savedmodel.working_size(config, run.result / "summary.json")
    info = {
        "working_height": height,
        "working_width": width,
        "arch": config.generator.arch,
        "channels": config.generator.channels,
        "padding": config.generator.padding,
        "multiple": MULTIPLE,
        "checkpoint": Path(checkpoint).name,
        "run": run.path.resolve().name,
        "signatures": {savedmodel.DEFAULT_SIGNATURE: "uint8 frames, masks -> inpainted",
                       savedmodel.FLOAT_SIGNATURE: "float32 [0, 1] frames, masks -> inpainted"},
        "onnx": None,
        "tfinpaint_version": __version__,
    }
    module = savedmodel.InpaintModule(generator, config.data.prefill)

    models = None
    if onnx:
        from tfinpaint.export import onnx as onnx_export
        from tfinpaint.train import MIN_WORKING_SIZE_REFLECT

        models = onnx_export.convert(module, opset=opset or onnx_export.DEFAULT_OPSET)
        try:
            report = onnx_export.check(module, models, min_size=MIN_WORKING_SIZE_REFLECT
                                       if config.generator.padding == "reflect" else 0)
        except onnx_export.OnnxCheckError as error:
            raise InputError(f"{run.path}: ONNX conversion is not faithful: {error}; nothing "
                             "written (export without --onnx, or try another --opset)") from None
        log(f"ONNX check on {len(report.sizes)} odd sizes: max difference "
            f"{report.max_float_diff:.1e} (float), {report.max_uint8_diff} level(s) (uint8)")
        info["onnx"] = {name: f"{onnx_export.FOLDER}/{file}"
                        for name, file in onnx_export.FILES.items()}
        info["onnx_opset"] = opset or onnx_export.DEFAULT_OPSET

    staged = savedmodel.stage_folder(final)
    try:
        savedmodel.write_savedmodel(module, staged, info=info,
                                    config_yaml=run.config_path.read_text())
        if models is not None:
            onnx_export.write(models, staged)
        try:
            savedmodel.publish(staged, final, overwrite=overwrite)
        except OSError as error:
            if final.exists() and not overwrite:  # another export took this version meanwhile
                raise InputError(f"{final}: version {version} appeared while exporting; "
                                 "nothing written, run again") from None
            raise
    finally:
        savedmodel.remove_tree(staged)
    return final


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    final = export(args.run, args.out, version=args.version, onnx=args.onnx, opset=args.opset,
                   overwrite=args.overwrite, log=lambda line: print(line, file=sys.stderr))
    info = json.loads((final / "assets" / "tfinpaint.json").read_text())
    extra = f" and ONNX ({', '.join(info['onnx'].values())})" if info["onnx"] else ""
    print(f"exported: {final} (SavedModel, signatures serving_default and serving_float{extra}; "
          f"working size {info['working_height']}x{info['working_width']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
