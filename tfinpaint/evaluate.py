"""Score a filled video against the truth, beside OpenCV's Telea fill as the classical baseline.

    python -m tfinpaint.evaluate --pred runs/clip/result --truth clip/ --masks clip_masks/ \
        --baseline telea --json scores.json --report report.png

The truth is the clip before its (borrowed or fixed) hole was made; see tools/make_masks.py.
The baseline fills the input (`--input`, or the truth with the hole blanked) frame by frame.
Prints one row per method, and the warping error of the truth itself (the floor of that score).
`--json` writes {"rows": {"ours": {...}, "telea": {...}}, ...}, NaN (e.g. the warping error of
a one-frame clip) as null.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli
from tfinpaint.io import video
from tfinpaint.io.rundir import write_text

BASELINES = ("telea",)  # OpenCV's per-frame Telea fill: metrics.telea_baseline
COLUMNS = ("psnr", "ssim", "psnr_hole", "ssim_hole", "warping_error")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tfinpaint.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--pred", required=True, help="our filled frames (folder or video)")
    parser.add_argument("--truth", required=True, help="the true frames (folder or video)")
    parser.add_argument("--masks", required=True, help="the hole masks (folder or one PNG)")
    parser.add_argument("--input", help="the frames the methods were given (default: the truth "
                        "with the hole blanked)")
    parser.add_argument("--baseline", choices=sorted(BASELINES), action="append", default=[],
                        help="also score this classical fill of the input")
    parser.add_argument("--json", help="write the scores here (JSON)")
    parser.add_argument("--report", help="write a visual report PNG here")
    parser.add_argument("--max-frames", type=int, help="score only the first N frames")
    return parser.parse_args(argv)


def _read(path: str, role: str, max_frames: int | None) -> video.Video:
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder (--{role})")
    return video.read_video(path, max_frames=max_frames)


def _same_shape(frames: np.ndarray, truth: np.ndarray, path: str, role: str) -> None:
    if frames.shape != truth.shape:
        raise InputError(f"{path}: --{role} has {len(frames)} frames of {frames.shape[2]}x"
                         f"{frames.shape[1]}, the truth {len(truth)} of {truth.shape[2]}x"
                         f"{truth.shape[1]}")


def _table(rows: dict[str, dict[str, float]]) -> str:
    lines = [f"{'method':<10}" + "".join(f"{c:>15}" for c in COLUMNS)]
    for method, row in rows.items():
        lines.append(f"{method:<10}" + "".join(f"{row[c]:>15.4f}" for c in COLUMNS))
    return "\n".join(lines)


def _write_json(path: str, document: dict) -> None:
    write_text(path, json.dumps(document, indent=2, allow_nan=False) + "\n")


def _json_number(value: float) -> float | None:
    """NaN (no hole, one frame) becomes null: JSON has no NaN."""
    return value if math.isfinite(value) else None


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    from tfinpaint.evaluation import metrics, report

    clip = _read(args.truth, "truth", args.max_frames)
    truth = clip.frames
    pred = _read(args.pred, "pred", args.max_frames).frames
    _same_shape(pred, truth, args.pred, "pred")
    num_frames, height, width = truth.shape[:3]
    if min(height, width) < 11:
        raise InputError(f"{args.truth}: frames of {width}x{height} are too small to score "
                         "(SSIM needs at least 11x11)")
    if not Path(args.masks).exists():
        raise InputError(f"{args.masks}: no such file or folder (--masks)")
    masks = video.read_masks(args.masks, num_frames, height, width, names=clip.names)
    if args.input:
        given = _read(args.input, "input", args.max_frames).frames
        _same_shape(given, truth, args.input, "input")
    else:
        given = np.where(masks != 0, 0, truth).astype(np.uint8)

    rows = {"ours": metrics.score(pred, truth, masks)}
    for name in args.baseline:
        baseline = {"telea": metrics.telea_baseline}[name]
        rows[name] = metrics.score(baseline(given, masks), truth, masks)
    print(_table(rows))
    # occlusions and flow errors make even the truth score above 0: the floor to compare with
    truth_warping_error = metrics.warping_error(truth, truth, masks)
    print(f"warping error of the truth itself (the floor): {truth_warping_error:.4f}")

    if args.json:
        _write_json(args.json, {
            "pred": args.pred, "truth": args.truth, "masks": args.masks,
            "num_frames": num_frames, "height": height, "width": width,
            "hole_fraction": float(np.mean(masks != 0)), "psnr_cap_db": metrics.PSNR_CAP,
            "truth_warping_error": _json_number(truth_warping_error),
            "rows": {method: {key: _json_number(value) for key, value in row.items()}
                     for method, row in rows.items()},
        })
        print(f"wrote {args.json}")
    if args.report:
        report.write_report(args.report, frames=given, masks=masks, filled=pred, truth=truth)
        print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
