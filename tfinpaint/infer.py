"""Fill a video with a fitted run's network (the run's own clip, or other frames and masks).

Examples:
  python -m tfinpaint.infer --run runs/clip
  python -m tfinpaint.infer --run runs/clip --video other_frames/ --masks other_masks/ --out filled/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfinpaint.infer", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run folder written by tfinpaint.train")
    parser.add_argument("--video", help="frames to fill (default: the run's own video)")
    parser.add_argument("--masks", help="their masks (default: the run's own masks)")
    parser.add_argument("--out", help="output folder (default: RUN/result)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--lossless", action="store_true",
                        help="also write video.mkv, lossless (infer.lossless_video)")
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    from tfinpaint.config import uses_flow
    from tfinpaint.fill.render import load_generator, make_fill_fn, native_prefill, render
    from tfinpaint.io.clip import check_size, load_clip, result_options, write_result
    from tfinpaint.io.progress import Progress
    from tfinpaint.io.rundir import RunDir

    run = RunDir(args.run)
    config = run.require_config()
    source = {}
    if (run.path / "source.json").exists():
        source = json.loads((run.path / "source.json").read_text())
    video = args.video or source.get("video")
    if not video:
        raise InputError(f"{args.run}: no record of the video; pass --video and --masks")
    clip = load_clip(video, args.masks or (None if args.video else source.get("masks")), config)
    size = check_size(clip.frames.shape[1:3], config, clip.source)
    out = Path(args.out) if args.out else run.result
    if args.out and Path(args.out).exists() and any(Path(args.out).iterdir()) and not args.overwrite:
        raise InputError(f"{args.out}: exists; pass --overwrite to replace it")
    generator = load_generator(run)
    fill = make_fill_fn(generator, config.data.prefill, working_size=size,
                        native_detail=config.flow.native_detail)
    prefilled = None
    if uses_flow(config.data.prefill):  # the network's third input: the clip's flow fill
        prefilled = native_prefill("flow", clip.frames, clip.masks, config.flow)
    rendering = Progress("rendering", total=len(clip.frames), unit="frame")
    filled = render(fill, clip.frames, clip.masks, batch_size=config.infer.batch_size,
                    progress=rendering.update, prefilled=prefilled)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.lossless:
        config.infer.lossless_video = True
    summary = write_result(out, clip, filled, logdir=run.logs, **result_options(config),
                           extra={"working_size": list(size)})
    print(f"result: {out}/video.mp4")
    if "psnr_hole" in summary:
        print(f"hole PSNR against the truth: ours {summary['psnr_hole']:.2f} dB, "
              f"OpenCV Telea {summary['psnr_hole_telea']:.2f} dB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
