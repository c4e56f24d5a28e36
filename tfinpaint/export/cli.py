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
from typing import Sequence

from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import cli
from tfinpaint.export.names import ASSETS_JSON, MASK_DILATION, NEEDS_PREFILLED, PREFILLED


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


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    from tfinpaint.export.exporter import export

    final = export(args.run, args.out, version=args.version, onnx=args.onnx, opset=args.opset,
                   overwrite=args.overwrite, log=lambda line: print(line, file=sys.stderr))
    info = json.loads((final / "assets" / ASSETS_JSON).read_text())
    extra = f" and ONNX ({', '.join(info['onnx'].values())})" if info["onnx"] else ""
    flow = (f"; both also take '{PREFILLED}', the clip's flow fill, "
            "which tfinpaint.serving.client computes") if info.get(NEEDS_PREFILLED) else ""
    grown = (f"; masks as drawn, holes grown {info[MASK_DILATION]} px in the graph"
             if info.get(MASK_DILATION) else "")
    print(f"exported: {final} (SavedModel, signatures serving_default and serving_float{extra}; "
          f"working size {info['working_height']}x{info['working_width']}{grown}{flow})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
