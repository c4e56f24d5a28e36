"""Fit one network to one video and write the filled video at the video's own resolution.

Examples:
  python -m tfinpaint.train --video sample
  python -m tfinpaint.train --video clip.mp4 --masks clip_masks/ --run-dir runs/clip
  python -m tfinpaint.train --video frames/ --masks masks/ --config configs/quick.yaml --time-budget 10
  python -m tfinpaint.train --run-dir runs/clip --resume --steps 80000 --set losses.stabilization=0.2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

from tfinpaint import config as config_lib
from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli
from tfinpaint.io.sample import SAMPLE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfinpaint.train", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", help="a folder of frames, a video file, or 'sample' (built in)")
    parser.add_argument("--masks", help="a folder of masks (one per frame), one mask image, or a mask video")
    parser.add_argument("--config", action="append", default=[],
                        help="YAML config (repeatable; later files override earlier ones; default "
                             "configs/default.yaml, configs/quick.yaml for the sample)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.batch_size=4")
    parser.add_argument("--run-dir", help="run folder (default runs/<video name>)")
    parser.add_argument("--resume", action="store_true", help="continue the fit in --run-dir")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--steps", type=int, help="total fitting steps (train.steps)")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="fitting minutes in all, counted across resumes "
                             "(train.time_budget_minutes); then the result is written. A decaying "
                             "learning rate ends with the budget")
    parser.add_argument("--mask-dilation", type=int, help="grow masks by N px (data.mask_dilation)")
    parser.add_argument("--mask-threshold", type=int, help="hole where mask > T (data.mask_threshold)")
    parser.add_argument("--first-mask", metavar="FIRST.png", help="the object's mask on one frame "
                        "only: propagate it to every frame (tfinpaint.propagate), then inpaint")
    parser.add_argument("--first-mask-frame", type=int, default=0, metavar="K",
                        help="the frame that --first-mask was drawn on (default 0)")
    parser.add_argument("--lossless", action="store_true",
                        help="also write result/video.mkv, lossless (infer.lossless_video)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def resolve_config(args: argparse.Namespace) -> config_lib.Config:
    """Defaults < YAML files < flags < --set. Without --config a new fit uses configs/default.yaml
    (configs/quick.yaml for the sample); --resume uses the run's saved config."""
    files = list(args.config)
    if not files and not args.resume:
        files = [config_lib.CONFIG_DIR / ("quick.yaml" if args.video == SAMPLE else "default.yaml")]
    overrides = list(args.set)
    for flag, key in (("steps", "train.steps"), ("time_budget", "train.time_budget_minutes"),
                      ("mask_dilation", "data.mask_dilation"), ("mask_threshold", "data.mask_threshold")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.lossless:
        overrides.append("infer.lossless_video=true")
    if not args.resume:
        return config_lib.load_config(files, overrides)
    from tfinpaint.io.rundir import RunDir

    saved = RunDir(args.run_dir).saved_config()
    if files:
        # A config file on resume must describe the same fit; explicit --set/flags may change it.
        requested = config_lib.load_config(files, overrides)
        changed = set(config_lib.diff(saved, config_lib.load_config(files, [])))
        conflicts = sorted(changed - config_lib.override_keys(overrides))
        if conflicts:
            raise InputError(f"{args.run_dir}/config.yaml disagrees with --config on "
                             f"{', '.join(conflicts)}; drop --config or use --set to change these")
        return requested
    return config_lib.with_overrides(saved, overrides)


def default_run_dir(video: str) -> Path:
    return Path("runs") / (Path(video.rstrip("/")).stem or "clip")


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    if not args.video and not args.resume:
        raise InputError("--video is required (a folder of frames, a video file, or 'sample')")
    if args.resume and not args.run_dir:
        if not args.video:
            raise InputError("--resume needs --run-dir (or --video to find runs/<name>)")
    args.run_dir = args.run_dir or str(default_run_dir(args.video))
    if args.first_mask and (args.masks or args.resume or args.video == SAMPLE):
        raise InputError("--first-mask goes with --video PATH alone (not with --masks, --resume or the sample)")

    from tfinpaint.io.clip import check_size, load_clip
    from tfinpaint.io.rundir import RunDir

    run = RunDir(args.run_dir)
    run.check(resume=args.resume, overwrite=args.overwrite)
    config = resolve_config(args)
    source = args.video or _saved_source(run)
    clip = load_clip(source, args.masks or _saved_masks(run, args), config, args.first_mask,
                     args.first_mask_frame)
    size = check_size(clip.frames.shape[1:3], config, clip.source)
    if config.losses.ambiguity > 0:
        from tfinpaint.model.vgg import resolve_weights

        resolve_weights(config.losses.vgg_weights)  # a missing file is named before anything is written

    # Everything the user gave has been read and checked: only now is anything written.
    run.create(config, overwrite=args.overwrite)
    if args.first_mask:
        from tfinpaint.masking.spread import propagate_for_inpainting

        args.masks, clip.masks = propagate_for_inpainting(config, clip, args.first_mask_frame,
                                                          run.path / "propagation", verbose=not args.quiet)
    (run.path / "source.json").write_text(json.dumps({"video": source, "masks": args.masks or _saved_masks(run, args)}))

    if config.progressive.stages > 1:
        return fit_progressive(config, clip, run, verbose=not args.quiet)

    from tfinpaint.fitting.single import fit_and_render

    filled, extra = fit_and_render(config, clip.frames, clip.masks, run, working_size=size,
                                   resume=args.resume, verbose=not args.quiet)
    return _write(run, clip, filled, extra, config)


def _write(run, clip, filled, extra: dict, config: config_lib.Config) -> int:
    from tfinpaint.io.clip import result_options, write_result

    summary = write_result(run.result, clip, filled, logdir=run.logs, extra=extra,
                           **result_options(config))
    print(f"result: {run.result}/video.mp4 ({len(filled)} frames at "
          f"{clip.frames.shape[2]}x{clip.frames.shape[1]})")
    if "psnr_hole" in summary:
        print(f"hole PSNR against the truth: ours {summary['psnr_hole']:.2f} dB, "
              f"OpenCV Telea {summary['psnr_hole_telea']:.2f} dB")
    return 0


def fit_progressive(config: config_lib.Config, clip, run, *, verbose: bool) -> int:
    """The stage ladder of `tfinpaint.fitting.progressive`; the result as a single fit writes it."""
    from tfinpaint.fitting.progressive import fit_ladder
    from tfinpaint.io.clip import result_options, write_result

    began = time.perf_counter()
    filled, stages = fit_ladder(config, clip.frames, clip.masks, clip.names, run, verbose=verbose)
    last_logs = run.path / f"stage{len(stages)}" / "logs"
    extra = {"stages": stages, "seconds": round(time.perf_counter() - began, 1),
             "native_size": list(clip.frames.shape[1:3])}
    summary = write_result(run.result, clip, filled, logdir=last_logs, extra=extra,
                           **result_options(config))
    print(f"result: {run.result}/video.mp4 ({len(filled)} frames at "
          f"{clip.frames.shape[2]}x{clip.frames.shape[1]}, {len(stages)} stages)")
    if "psnr_hole" in summary:
        print(f"hole PSNR against the truth: ours {summary['psnr_hole']:.2f} dB, "
              f"OpenCV Telea {summary['psnr_hole_telea']:.2f} dB")
    return 0


def _saved_source(run) -> str:
    try:
        return json.loads((run.path / "source.json").read_text())["video"]
    except (OSError, ValueError, KeyError):
        raise InputError(f"{run.path}: no record of the video; pass --video") from None


def _saved_masks(run, args) -> str | None:
    if args.video == SAMPLE:
        return None
    try:
        return json.loads((run.path / "source.json").read_text()).get("masks")
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    raise SystemExit(main())
