"""How much to dilate a user's object mask: hole quality and visible halo against a known truth.

A real object's edge (antialiasing, motion blur, a soft shadow) reaches beyond its annotation;
whatever of it stays in the "known" pixels is left visible beside the fill, and every method
copies it into the hole. There is no truth behind a real object, so this builds a clip with one:

1. The halo profile is measured on a static-camera clip (`crossing`): the per-pixel median of the
   frames where no object is within `--far` px is the background; the mean colour distance of a
   frame to it, by distance d outside the annotation, falls from its level inside the object to
   the far-field noise level. Normalised between the two (and made non-increasing), it is the
   opacity alpha(d) of the object at d px outside its annotation.
2. The bmx-trees rider (first `--frames` frames) is pasted onto the crossing frames at the same
   place, cut out with that opacity around its raw annotation (alpha 1 inside): the pasted
   band carries the rider's real blurred edge and its own surroundings, fading out as measured
   (`--halo-extra PX` keeps it opaque PX px further out first: a faster, blurrier object).
   The truth is the crossing frame; the mask a user gives is the raw annotation.
3. Each dilation D grows that mask by D px (`tfinpaint.io.video.dilate_masks`, as `data.mask_dilation`
   does) and the hole is filled by OpenCV Telea (per frame) and, with `--fit-steps N`, by a real
   fit (`python -m tfinpaint.train --config configs/default.yaml --steps N
   --set data.mask_dilation=D`, no time budget, so every D fits the same N steps).
4. Scores, all at the clip's own 854x480: hole PSNR and SSIM (`tfinpaint.evaluation.metrics`) over one
   fixed region for every D, the annotation dilated by `--eval-dilation` px, so that the halo
   left outside a small mask counts against it; `halo_out`, the mean RGB distance to the truth
   in the `--ring` px just outside the dilated mask (the halo left visible beside the fill, the
   same for every method: known pixels are kept); `halo_in`, the same in the `--ring` px just
   inside it (what the fill carried in from its edge, plus the fill's own error there).

Writes OUT/clip/ (frames, masks, truth as PNG), OUT/fit_dD/ (run folders, reused when complete
with the same steps: a fit that fails stops the study, and a rerun continues from there) and
OUT/dilation_study.json; prints the table.

Examples:
  python studies/dilation_study.py                                  # Telea only, a minute
  python studies/dilation_study.py --fit-steps 200 --fit-dilations 0 3 6 9
  python studies/dilation_study.py --halo-extra 2 --out runs/dilation_study_extra2 \
      --fit-steps 200 --fit-dilations 0 3 6
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tfinpaint.errors import InputError, cli
from tfinpaint.evaluation import metrics
from tfinpaint.io import video

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1])
    parser.add_argument("--data", default=str(DATA), help="folder holding bmx-trees/ and crossing/")
    parser.add_argument("--out", default="runs/dilation_study", help="work folder")
    parser.add_argument("--frames", type=int, default=20, help="first N frames of each clip")
    parser.add_argument("--dilations", type=int, nargs="+", default=[0, 3, 6, 9, 12])
    parser.add_argument("--eval-dilation", type=int, default=12,
                        help="the scored region: the annotation dilated by this many px")
    parser.add_argument("--ring", type=int, default=3, help="width of the halo rings in px")
    parser.add_argument("--far", type=int, default=25,
                        help="halo profile: px from any object beyond which a pixel is background")
    parser.add_argument("--halo-extra", type=int, default=0,
                        help="a wider halo than measured: the rider stays opaque this many px "
                             "beyond its annotation before the measured fade (a faster object)")
    parser.add_argument("--fit-steps", type=int, default=0, help="also fit each D this many steps")
    parser.add_argument("--fit-dilations", type=int, nargs="+",
                        help="fit only these D (default: every --dilations)")
    parser.add_argument("--config", default=str(REPO / "configs" / "default.yaml"))
    args = parser.parse_args(argv)
    if min(args.dilations) < 0 or args.frames < 2:
        raise InputError("--dilations must be >= 0 and --frames >= 2")
    return args


def _distance_outside(masks: np.ndarray) -> np.ndarray:
    """Euclidean px from each pixel to the nearest hole pixel (0 inside): float32 [N, H, W]."""
    return np.stack([cv2.distanceTransform((1 - m[..., 0]).astype(np.uint8), cv2.DIST_L2, 5)
                     for m in masks])


def halo_profile(frames: np.ndarray, masks: np.ndarray, far: int) -> np.ndarray:
    """alpha(d) for d = 0..far px outside the annotation of a static-camera clip (see step 1)."""
    distance = _distance_outside(masks)
    background_here = distance > far
    stack = np.where(background_here[..., None], frames.astype(np.float32), np.nan)
    median = np.nanmedian(stack, axis=0)  # NaN where an object never left: excluded below
    error = np.linalg.norm(frames.astype(np.float32) - median[None], axis=-1)
    valid = ~np.isnan(error)
    inside = float(np.mean(error[valid & (distance == 0)]))
    floor = float(np.mean(error[valid & background_here]))
    level = [inside] + [float(np.mean(error[valid & (distance > d - 1) & (distance <= d)]))
                        for d in range(1, far + 1)]
    alpha = np.clip((np.array(level) - floor) / (inside - floor), 0.0, 1.0)
    return np.minimum.accumulate(alpha)


def composite(data: Path, num_frames: int, far: int, extra: int = 0):
    """(frames, raw masks, truth, alpha profile, names): the rider pasted onto crossing."""
    rider = video.read_video(data / "bmx-trees" / "frames", max_frames=num_frames)
    street = video.read_video(data / "crossing" / "frames", max_frames=num_frames)
    if rider.frames.shape != street.frames.shape:
        raise InputError(f"{data}: bmx-trees and crossing frames differ in size or count")
    height, width = rider.frames.shape[1:3]
    street_all = video.read_video(data / "crossing" / "frames")
    street_masks = video.read_masks(data / "crossing" / "annotations", len(street_all.frames),
                                    height, width, names=street_all.names)
    alpha_of_distance = np.concatenate([np.ones(extra),
                                        halo_profile(street_all.frames, street_masks, far)])
    masks = video.read_masks(data / "bmx-trees" / "annotations", num_frames, height, width,
                             names=rider.names)
    distance = _distance_outside(masks)
    alpha = np.interp(distance, np.arange(len(alpha_of_distance)), alpha_of_distance,
                      right=0.0)[..., None]
    pasted = alpha * rider.frames + (1.0 - alpha) * street.frames
    frames = np.round(pasted).astype(np.uint8)
    return frames, masks, street.frames, alpha_of_distance, rider.names


def _ring(masks: np.ndarray, width: int, outside: bool) -> np.ndarray:
    grown = video.dilate_masks(masks, width) if outside else masks
    shrunk = masks if outside else 1 - video.dilate_masks(1 - masks, width)
    return (grown != 0) & (shrunk == 0)


def _colour_distance(filled: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    difference = filled.astype(np.float32) - truth.astype(np.float32)
    return float(np.mean(np.linalg.norm(difference, axis=-1)[where[..., 0]]))


def scores(filled: np.ndarray, truth: np.ndarray, hole: np.ndarray, region: np.ndarray,
           ring: int) -> dict[str, float]:
    return {"psnr_region": metrics.psnr(filled, truth, region),
            "ssim_region": metrics.ssim(filled, truth, region),
            "halo_out": _colour_distance(filled, truth, _ring(hole, ring, outside=True)),
            "halo_in": _colour_distance(filled, truth, _ring(hole, ring, outside=False)),
            "hole_fraction": float(np.mean(hole))}


def fit(clip: Path, run: Path, dilation: int, steps: int, config: str) -> np.ndarray:
    """The filled frames of `python -m tfinpaint.train` at this dilation (reused when done)."""
    summary = run / "result" / "summary.json"
    if not (summary.exists() and json.loads(summary.read_text()).get("steps") == steps):
        command = [sys.executable, "-m", "tfinpaint.train", "--video", str(clip / "frames"),
                   "--masks", str(clip / "masks"), "--config", config, "--steps", str(steps),
                   "--set", f"data.mask_dilation={dilation}",
                   "--set", "train.time_budget_minutes=0", "--run-dir", str(run),
                   "--overwrite", "--quiet"]
        print(" ".join(command[1:]), file=sys.stderr)
        subprocess.run(command, check=True)
    return video.read_video(run / "result" / "frames").frames


def _table(rows: list[dict]) -> str:
    lines = [f"{'method':<12}{'D':>3}{'PSNR':>8}{'SSIM':>8}{'halo_out':>10}{'halo_in':>9}"
             f"{'hole%':>7}"]
    for row in rows:
        lines.append(f"{row['method']:<12}{row['dilation']:>3}{row['psnr_region']:>8.2f}"
                     f"{row['ssim_region']:>8.4f}{row['halo_out']:>10.2f}{row['halo_in']:>9.2f}"
                     f"{100 * row['hole_fraction']:>7.2f}")
    return "\n".join(lines)


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    data, out = Path(args.data), Path(args.out)
    for clip_name in ("bmx-trees", "crossing"):
        if not (data / clip_name / "annotations").is_dir():
            raise InputError(f"{data / clip_name}: no annotations/ folder (--data)")
    frames, masks, truth, alpha, names = composite(data, args.frames, args.far, args.halo_extra)
    clip = out / "clip"
    video.write_frames(clip / "frames", frames, names)
    video.write_frames(clip / "masks", np.repeat(masks * np.uint8(255), 3, axis=-1), names)
    video.write_frames(clip / "truth", truth, names)
    print("halo opacity alpha(d), d = 0.." + str(len(alpha) - 1) + " px outside the annotation: "
          + " ".join(f"{a:.2f}" for a in alpha))

    region = video.dilate_masks(masks, args.eval_dilation)
    rows = [{"method": "pasted", "dilation": -1,
             **scores(frames, truth, masks, region, args.ring)}]
    for dilation in args.dilations:
        hole = video.dilate_masks(masks, dilation)
        rows.append({"method": "telea", "dilation": dilation,
                     **scores(metrics.telea_baseline(frames, hole), truth, hole, region,
                              args.ring)})
    if args.fit_steps:
        for dilation in args.fit_dilations or args.dilations:
            hole = video.dilate_masks(masks, dilation)
            filled = fit(clip, out / f"fit_d{dilation}", dilation, args.fit_steps, args.config)
            rows.append({"method": f"fit{args.fit_steps}", "dilation": dilation,
                         **scores(filled, truth, hole, region, args.ring)})
            print(_table(rows[-1:]).splitlines()[1], file=sys.stderr)
    print(_table(rows))
    document = {"frames": args.frames, "eval_dilation": args.eval_dilation, "ring": args.ring,
                "halo_extra": args.halo_extra,
                "fit_steps": args.fit_steps, "config": args.config,
                "halo_alpha": [round(float(a), 4) for a in alpha], "rows": rows}
    (out / "dilation_study.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out / 'dilation_study.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
