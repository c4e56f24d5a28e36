"""Propagate one frame's object mask to every frame of a video (paper Sec. 4.2).

Writes one binary PNG (0 background, 255 object) per frame, named like the frames and dilated by
data.mask_dilation, ready for `python -m tfinpaint.train --masks`, and confidence.json (each
frame's mean object probability inside its mask: low values flag frames to check). Without
--config nothing is fitted (propagate.method motion, then the background passes); for an object
that moves like the camera, propagate.method track fits a network (docs/mask_propagation.md).

Examples:
  python -m tfinpaint.propagate --video frames/ --mask annotations/00000.png --out masks/
  python -m tfinpaint.propagate --video frames/ --mask annotations/00000.png --out masks/ \\
      --set propagate.method=track --time-budget 8
  python -m tfinpaint.propagate --video clip.mp4 --mask first.png --frame 12 --out masks/ \\
      --config configs/propagate_quick.yaml --set data.working_height=120 --set data.working_width=216
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from tfinpaint import config as config_lib
from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfinpaint.propagate", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True, help="a folder of frames or a video file")
    parser.add_argument("--mask", required=True, help="the object's mask on the annotated frame "
                        "(one image at the video's size; any non-zero pixel is object)")
    parser.add_argument("--frame", type=int, default=0,
                        help="index of the annotated frame, from 0 (default 0)")
    parser.add_argument("--out", required=True, help="folder for the propagated masks")
    parser.add_argument("--config", action="append", default=[],
                        help="YAML config (repeatable; later files override earlier ones)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set propagate.alpha=0.8")
    parser.add_argument("--steps", type=int, help="fitting steps (propagate.steps)")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="fitting-time budget (propagate.time_budget_minutes, 0 = none); the "
                             "learning rate decays over it")
    parser.add_argument("--run-dir", help="folder for config.yaml, TensorBoard logs and a summary "
                        "(default runs/<video name>-propagation)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder and run folder")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    overrides = list(args.set) + ([f"propagate.steps={args.steps}"] if args.steps is not None else [])
    if args.time_budget is not None:
        overrides.append(f"propagate.time_budget_minutes={args.time_budget}")
    config = config_lib.load_config(args.config, overrides)
    from tfinpaint.io.clip import check_size, read_annotation
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.masking.spread import propagate

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    run = RunDir(args.run_dir or Path("runs") / f"{Path(args.video.rstrip('/')).stem}-propagation")
    run.check(resume=False, overwrite=args.overwrite)
    annotation = read_annotation(args.video, args.mask, args.frame,
                                 threshold=config.data.mask_threshold)
    check_size(annotation.video.frames.shape[1:3], config, args.video)

    # Everything the user gave has been read and checked: only now is anything written.
    run.create(config, overwrite=args.overwrite)
    masks, result = propagate(config, annotation, out=out, logdir=run.logs,
                              dilation=config.data.mask_dilation, verbose=not args.quiet)
    summary = {"video": args.video, "mask": args.mask, "frame": args.frame, "out": str(out),
               "method": config.propagate.method, "steps": result.steps,
               "fit_seconds": round(result.seconds, 1),
               "total_seconds": round(result.total_seconds, 1),
               "min_confidence": round(float(result.confidence.min()), 4),
               "object_fraction": float(masks.mean())}
    (run.path / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"masks: {out} ({len(masks)} frames, confidence.json beside them); fitted "
          f"{result.steps} steps in {result.seconds:.0f} s, {result.total_seconds:.0f} s in all; "
          f"logs: {run.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
