"""Score predicted object masks against ground-truth annotations: recall, precision, IoU.

    python tools/score_masks.py --pred masks/ --truth annotations/ [--exclude 00000] [--out scores.json] \
        [--plot scores.png] [--first 12]

Masks are matched by file stem; any non-zero pixel is object. A prediction of another size is
resized to the truth's (nearest neighbour). Per frame: recall = |P & T| / |T| (how much of the
object the mask covers, what inpainting needs), precision = |P & T| / |P|, IoU = |P & T| / |P | T|.
A ratio with an empty denominator is null and left out of the means. Prints and writes JSON (with
the means over the first `--first` frames too, where given), and with --plot a PNG of the three
over the frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


import cv2
import numpy as np

from tfinpaint.errors import InputError, cli
from tfinpaint.io import video


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def score_frame(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Recall, precision and IoU of one boolean mask against another of the same size."""
    overlap = int(np.count_nonzero(predicted & truth))
    return {"recall": _ratio(overlap, int(np.count_nonzero(truth))),
            "precision": _ratio(overlap, int(np.count_nonzero(predicted))),
            "iou": _ratio(overlap, int(np.count_nonzero(predicted | truth)))}


def _means(frames: list[dict]) -> dict:
    mean = {}
    for key in ("recall", "precision", "iou"):
        values = [s[key] for s in frames if s[key] is not None]
        mean[key] = float(np.mean(values)) if values else None
    return mean


def score(predicted: dict[str, np.ndarray], truth: dict[str, np.ndarray], first: int = 0) -> dict:
    """`{"frames": {name: scores}, "mean": scores, "count": N}` over the names in `truth` (in
    their order), and `"mean_first": scores` over the first `first` of them when `first` > 0."""
    frames = {name: score_frame(predicted[name], truth[name]) for name in truth}
    result = {"frames": frames, "mean": _means(list(frames.values())), "count": len(frames)}
    if first > 0:
        result["first"] = min(first, len(frames))
        result["mean_first"] = _means(list(frames.values())[:first])
    return result


COLOURS = {"recall": (200, 90, 30), "precision": (40, 150, 40), "iou": (30, 30, 210)}  # BGR


def plot(result: dict, path: Path, *, width: int = 900, height: int = 360) -> None:
    """Recall, precision and IoU against the frame (in name order), one line each, as a PNG."""
    names = list(result["frames"])
    margin_l, margin_r, margin_t, margin_b = 50, 130, 20, 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    plot_w, plot_h = width - margin_l - margin_r, height - margin_t - margin_b

    def x_of(index: int) -> int:
        return margin_l + round(index * plot_w / max(len(names) - 1, 1))

    def y_of(value: float) -> int:
        return margin_t + round((1.0 - value) * plot_h)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for tick in np.linspace(0, 1, 6):
        cv2.line(canvas, (margin_l, y_of(tick)), (margin_l + plot_w, y_of(tick)), (225, 225, 225), 1)
        cv2.putText(canvas, f"{tick:.1f}", (8, y_of(tick) + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for index in range(0, len(names), max(1, len(names) // 8)):
        cv2.putText(canvas, names[index], (x_of(index) - 15, height - 15), font, 0.35, (60, 60, 60),
                    1, cv2.LINE_AA)
    for row, (key, colour) in enumerate(COLOURS.items()):
        points = [(x_of(i), y_of(result["frames"][name][key])) for i, name in enumerate(names)
                  if result["frames"][name][key] is not None]
        if points:
            cv2.polylines(canvas, [np.int32(points)], False, colour, 2, cv2.LINE_AA)
        mean = result["mean"][key]
        label = f"{key} {mean:.3f}" if mean is not None else f"{key} n/a"
        cv2.putText(canvas, label, (width - margin_r + 8, margin_t + 20 + 22 * row), font, 0.45,
                    colour, 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), canvas):
        raise InputError(f"{path}: could not write the plot")


def read_folder(folder: Path, what: str) -> dict[str, np.ndarray]:
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} folder not found")
    files = video.image_files(folder)
    if not files:
        raise InputError(f"{folder}: {what} folder holds no images")
    return {f.stem: video.read_mask_image(f) > 0 for f in files}


@cli
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pred", required=True, help="folder of predicted masks")
    parser.add_argument("--truth", required=True, help="folder of ground-truth masks")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="STEM",
                        help="frames to leave out (e.g. the annotated one)")
    parser.add_argument("--out", help="write the JSON here too")
    parser.add_argument("--plot", help="write a PNG of recall, precision and IoU over the frames")
    parser.add_argument("--first", type=int, default=0, metavar="K",
                        help="also the means over the first K scored frames")
    args = parser.parse_args(argv)
    truth = read_folder(Path(args.truth), "truth")
    predicted = read_folder(Path(args.pred), "prediction")
    truth = {name: mask for name, mask in truth.items() if name not in set(args.exclude)}
    missing = sorted(set(truth) - set(predicted))
    if missing:
        raise InputError(f"{args.pred}: no prediction for {len(missing)} truth frame(s), "
                         f"e.g. {missing[0]}")
    for name, mask in truth.items():
        if predicted[name].shape != mask.shape:
            predicted[name] = cv2.resize(predicted[name].astype(np.uint8), mask.shape[::-1],
                                         interpolation=cv2.INTER_NEAREST) > 0
    result = score(predicted, truth, first=args.first)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    if args.plot:
        plot(result, Path(args.plot))
    for label, count, mean in (("mean", result["count"], result["mean"]),
                               ("mean_first", result.get("first"), result.get("mean_first"))):
        if mean is not None:
            print("{} over {} frames: {}".format(label, count, ", ".join(
                f"{key} {value:.3f}" if value is not None else f"{key} n/a"
                for key, value in mean.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
