"""Propagate one frame's object mask to every frame of a video (paper Sec. 4.2).

Writes one binary PNG (0 background, 255 object) per frame, named like the frames and dilated by
data.mask_dilation, ready for `python -m tfinpaint.train --masks`.

Examples:
  python -m tfinpaint.propagate --video frames/ --mask annotations/00000.png --out masks/
  python -m tfinpaint.propagate --video clip.mp4 --mask first.png --frame 12 --out masks/ \\
      --config configs/propagate_quick.yaml --set data.working_height=120 --set data.working_width=216
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tfinpaint import config as config_lib
from tfinpaint import video as video_io
from tfinpaint.errors import InputError, cli


@dataclass
class Annotation:
    """The video and its one annotated frame: `mask` uint8 [H, W, 1], 1 = object."""

    video: video_io.Video
    frame: int
    mask: np.ndarray


def read_annotation(video: str, mask: str, frame: int, *, threshold: int = 0,
                    frame_option: str = "--frame") -> Annotation:
    """Reads the video and the object mask drawn on its frame `frame`; every input error here."""
    clip = video_io.read_video(video)
    count, height, width = clip.frames.shape[:3]
    if not 0 <= frame < count:
        raise InputError(f"{frame_option} {frame}: {video} has {count} frames, so the annotated "
                         f"frame must be 0..{count - 1}")
    path = Path(mask)
    if path.is_dir():
        raise InputError(f"{path}: expected one mask image (of the annotated frame), got a folder")
    if not path.exists():
        raise InputError(f"{path}: no such mask file")
    # The video module's own decoder: same formats, same errors, any colour counts as object.
    labels = video_io.read_mask_image(path)
    if labels.shape != (height, width):
        raise InputError(f"{path}: mask is {labels.shape[1]}x{labels.shape[0]} but the frames are "
                         f"{width}x{height}; draw it on frame {frame} at the video's size")
    object_mask = (labels > threshold).astype(np.uint8)[..., None]
    if not object_mask.any():
        raise InputError(f"{path}: mask is empty (no pixel above {threshold}); mark the object "
                         "to remove on the annotated frame")
    if object_mask.all():
        raise InputError(f"{path}: mask covers the whole frame; the object needs background "
                         "around it")
    return Annotation(video=clip, frame=frame, mask=object_mask)


def check_working_size(config: config_lib.Config, native: tuple[int, int], source: str) -> tuple[int, int]:
    from tfinpaint.inference import working_size
    from tfinpaint.train import MIN_WORKING_SIZE, MIN_WORKING_SIZE_REFLECT

    size = working_size(native, (config.data.working_height, config.data.working_width))
    minimum = MIN_WORKING_SIZE_REFLECT if config.generator.padding == "reflect" else MIN_WORKING_SIZE
    if min(size) < minimum:
        raise InputError(f"{source}: frames of {size[1]}x{size[0]} at working resolution are too "
                         f"small for the network (at least {minimum}x{minimum} px)")
    return size


def write_masks(out: Path, masks: np.ndarray, names: list[str]) -> None:
    """0/255 PNGs named like the frames, staged beside `out` and swapped in whole."""
    from tfinpaint.run import swap_in

    staged = out.with_name(out.name + ".partial")
    if staged.exists():
        shutil.rmtree(staged)
    video_io.write_frames(staged, np.repeat(masks * np.uint8(255), 3, axis=-1), names)
    swap_in(staged, out)


def propagate(config: config_lib.Config, annotation: Annotation, *, out: Path, logdir: Path | None,
              dilation: int, verbose: bool = True):
    """Fits, predicts every frame's mask, dilates it by `dilation` px and writes it to `out`.

    Returns the written masks (uint8 [N, H, W, 1], 0/1) and the `Propagation`.
    """
    from tfinpaint.propagation import propagate_masks

    frames = annotation.video.frames
    size = check_working_size(config, frames.shape[1:3], "video")
    result = propagate_masks(config, frames, annotation.frame, annotation.mask, size,
                             logdir=logdir, verbose=verbose)
    masks = video_io.dilate_masks(result.masks, dilation)
    write_masks(Path(out), masks, annotation.video.names)
    return masks, result


def propagate_for_inpainting(config: config_lib.Config, clip, frame: int, folder: Path, *,
                             verbose: bool = True) -> tuple[str, np.ndarray]:
    """`train --first-mask`: propagates `clip.masks[frame]` to every frame of `clip` (a
    `tfinpaint.train.Clip`) into `folder` (masks/ and logs/).

    The masks are saved undilated, so that `--resume` reads them as any mask folder; returns
    that folder and the masks dilated by data.mask_dilation, ready to inpaint.
    """
    annotation = Annotation(video=video_io.Video(frames=clip.frames, fps=clip.fps, names=clip.names),
                            frame=frame, mask=clip.masks[frame])
    masks, result = propagate(config, annotation, out=folder / "masks", logdir=folder / "logs",
                              dilation=0, verbose=verbose)
    if verbose:
        print(f"propagated the mask of frame {frame} in {result.seconds:.0f} s "
              f"({result.steps} steps): {folder / 'masks'}", file=sys.stderr)
    return str(folder / "masks"), video_io.dilate_masks(masks, config.data.mask_dilation)


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
    parser.add_argument("--run-dir", help="folder for config.yaml, TensorBoard logs and a summary "
                        "(default runs/<video name>-propagation)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder and run folder")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.set) + ([f"propagate.steps={args.steps}"] if args.steps is not None else [])
    config = config_lib.load_config(args.config, overrides)
    from tfinpaint.propagation import check_config
    from tfinpaint.run import RunDir

    check_config(config.propagate)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    run = RunDir(args.run_dir or Path("runs") / f"{Path(args.video.rstrip('/')).stem}-propagation")
    run.check(resume=False, overwrite=args.overwrite)
    annotation = read_annotation(args.video, args.mask, args.frame,
                                 threshold=config.data.mask_threshold)
    check_working_size(config, annotation.video.frames.shape[1:3], args.video)

    # Everything the user gave has been read and checked: only now is anything written.
    if args.overwrite and run.path.exists():
        shutil.rmtree(run.path)
    run.logs.mkdir(parents=True, exist_ok=True)
    config_lib.save_config(config, run.config_path)
    masks, result = propagate(config, annotation, out=out, logdir=run.logs,
                              dilation=config.data.mask_dilation, verbose=not args.quiet)
    summary = {"video": args.video, "mask": args.mask, "frame": args.frame, "out": str(out),
               "steps": result.steps, "fit_seconds": round(result.seconds, 1),
               "object_fraction": float(masks.mean())}
    (run.path / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"masks: {out} ({len(masks)} frames); fitted {result.steps} steps in "
          f"{result.seconds:.0f} s; logs: {run.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
