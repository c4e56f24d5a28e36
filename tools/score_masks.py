"""Score predicted object masks against ground-truth annotations: recall, precision, IoU.

    python tools/score_masks.py --pred masks/ --truth annotations/ [--exclude 00000] [--out scores.json]

Masks are matched by file stem; any non-zero pixel is object. A prediction of another size is
resized to the truth's (nearest neighbour). Per frame: recall = |P & T| / |T| (how much of the
object the mask covers, what inpainting needs), precision = |P & T| / |P|, IoU = |P & T| / |P | T|.
A ratio with an empty denominator is null and left out of the means. Prints and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


import cv2
import numpy as np

from tfinpaint import video
from tfinpaint.errors import InputError, cli


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def score_frame(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Recall, precision and IoU of one boolean mask against another of the same size."""
    overlap = int(np.count_nonzero(predicted & truth))
    return {"recall": _ratio(overlap, int(np.count_nonzero(truth))),
            "precision": _ratio(overlap, int(np.count_nonzero(predicted))),
            "iou": _ratio(overlap, int(np.count_nonzero(predicted | truth)))}


def score(predicted: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict:
    """`{"frames": {name: scores}, "mean": scores}` over the names in `truth`."""
    frames = {name: score_frame(predicted[name], truth[name]) for name in truth}
    mean = {}
    for key in ("recall", "precision", "iou"):
        values = [s[key] for s in frames.values() if s[key] is not None]
        mean[key] = float(np.mean(values)) if values else None
    return {"frames": frames, "mean": mean, "count": len(frames)}


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
    result = score(predicted, truth)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    mean = result["mean"]
    print("mean over {} frames: {}".format(result["count"], ", ".join(
        f"{key} {value:.3f}" if value is not None else f"{key} n/a" for key, value in mean.items())),
        file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
