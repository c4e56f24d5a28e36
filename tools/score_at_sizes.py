"""Score filled videos against the truth at the native size and at reduced sizes, beside Telea.

    python tools/score_at_sizes.py --truth clip/ --masks clip_masks/ --size 240x432 \
        prop=runs/prop/result/frames fit=runs/fit/result/frames --json scores.json

The scores are `tfinpaint.evaluation.metrics.score`'s (what `tfinpaint.evaluate` prints). At a reduced size
the truth and every fill are area-reduced (`tfinpaint.fill.resample`), the hole is every pixel the
native hole touches, and Telea fills the reduced frames (the baseline a user at that size gets).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tensorflow as tf

from tfinpaint.evaluation import metrics
from tfinpaint.fill import resample
from tfinpaint.io import video


def _reduce(images: np.ndarray, size: tuple[int, int], chunk: int = 8) -> np.ndarray:
    return np.concatenate([resample.resize_uint8(tf.constant(images[s:s + chunk]), size).numpy()
                           for s in range(0, len(images), chunk)])


def _reduce_hole(masks: np.ndarray, size: tuple[int, int], chunk: int = 8) -> np.ndarray:
    return np.concatenate([resample.resize_hole(tf.constant(masks[s:s + chunk] > 0), size).numpy()
                           for s in range(0, len(masks), chunk)]).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--size", action="append", default=[], help="HxW, e.g. 240x432")
    parser.add_argument("--json")
    parser.add_argument("fills", nargs="+", metavar="NAME=PATH")
    args = parser.parse_args()
    truth = video.read_video(args.truth).frames
    count, height, width = truth.shape[:3]
    masks = video.read_masks(args.masks, count, height, width)
    fills = {name: video.read_video(path).frames
             for name, path in (pair.split("=", 1) for pair in args.fills)}
    sizes = [(height, width)] + [tuple(int(v) for v in s.split("x")) for s in args.size]
    scores = {}
    for size in sizes:
        if size == (height, width):
            t, m, reduced = truth, masks, fills
        else:
            t, m = _reduce(truth, size), _reduce_hole(masks, size)
            reduced = {name: _reduce(frames, size) for name, frames in fills.items()}
        given = np.where(m != 0, 0, t).astype(np.uint8)
        rows = {"telea": metrics.score(metrics.telea_baseline(given, m), t, m)}
        rows.update({name: metrics.score(frames, t, m) for name, frames in reduced.items()})
        key = f"{size[0]}x{size[1]}"
        for name, row in rows.items():
            print(f"{key:>8} {name:<16} hole PSNR {row['psnr_hole']:6.2f}  hole SSIM "
                  f"{row['ssim_hole']:.4f}  warping error {row['warping_error']:.4f}", flush=True)
        scores[key] = rows
    if args.json:
        with open(args.json, "w") as out:
            json.dump(scores, out, indent=1)


if __name__ == "__main__":
    main()
