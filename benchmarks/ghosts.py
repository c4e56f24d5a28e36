"""Pictures of the flow fill's ghosts: frames where propagation pasted a moving object into the
hole with movers as sources (`flow.moving_speed` 0), beside the default fill and the truth.

    python benchmarks/ghosts.py --out runs/ghosts             # bmx-trees' rectangle
    python benchmarks/ghosts.py --clip dog --frames 4 --out runs/ghosts
    python benchmarks/ghosts.py --renders runs/ttq/renders_dog.npz --out runs/ghosts

Clips are `time_to_quality.load_clip`'s (240x432). For each clip the frames where the two
fills differ most inside the hole are drawn: one row per frame, columns truth | Telea | movers
as sources | default, cut around the hole and enlarged 2x, the hole outlined. Writes
OUT/ghosts_<clip>.png and prints JSON with each shown frame's hole PSNR per fill.

With --renders (a `time_to_quality.py --save-renders` file) the fits' results are drawn instead:
columns truth | Telea | flow fill | each contender, the rows the frames where the flow fill is
furthest from the truth in the hole (where propagation pasted what is not there), or --at.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from time_to_quality import load_clip

from tfinpaint.config import FlowConfig
from tfinpaint.evaluation.metrics import psnr, telea_baseline
from tfinpaint.fill.flow import fill_clip


def _crop_box(mask: np.ndarray, pad: int = 24) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    return (slice(max(ys.min() - pad, 0), min(ys.max() + pad + 1, height)),
            slice(max(xs.min() - pad, 0), min(xs.max() + pad + 1, width)))


def _panel(image: np.ndarray, mask: np.ndarray, box, label: str) -> np.ndarray:
    cut = np.ascontiguousarray(image[box][..., ::-1])
    cut = cv2.resize(cut, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    edge = cv2.resize(mask[box].astype(np.uint8), None, fx=2, fy=2,
                      interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(cut, contours, -1, (0, 255, 255), 1)
    cv2.putText(cut, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return cut


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="bmx", choices=["bmx", "crossing-rider", "dog"])
    parser.add_argument("--bmx-frames", type=int, default=80)
    parser.add_argument("--frames", type=int, default=3, help="rows: the frames shown")
    parser.add_argument("--out", type=Path, default=Path("runs/ghosts"))
    parser.add_argument("--renders", type=Path,
                        help="a time_to_quality.py --save-renders .npz: draw its fits' results")
    parser.add_argument("--at", type=lambda text: [int(v) for v in text.split(",")],
                        metavar="T,T,...", help="with --renders: these frames")
    args = parser.parse_args(argv)

    if args.renders is not None:
        saved = np.load(args.renders)
        name = args.renders.stem.removeprefix("renders_")
        masks, truth = saved["masks"], saved["truth"]
        fills = {"truth": truth, "Telea": saved["telea"]} | {
            key.removeprefix("fill:"): saved[key] for key in saved.files
            if key == "flow fill" or key.startswith("fill:")}
        # where the flow fill (or Telea, without one) is furthest from the truth
        compared = fills.get("flow fill", fills["Telea"]), truth
    else:
        clip = load_clip(args.clip, args.bmx_frames)
        name, masks, truth = args.clip, clip.masks, clip.truth
        fills = {"truth": truth, "Telea": telea_baseline(clip.frames, clip.masks),
                 "movers as sources": fill_clip(clip.frames, clip.masks,
                                                FlowConfig(moving_speed=0.0)).filled,
                 "default": fill_clip(clip.frames, clip.masks, FlowConfig()).filled}
        # where excluding movers as sources changed the fill most
        compared = fills["movers as sources"], fills["default"]
    hole = masks[..., 0] > 0
    change = np.abs(compared[0].astype(int) - compared[1]).sum(-1) * hole
    change = change.reshape(len(hole), -1).sum(1)
    shown = args.at or sorted(np.argsort(change)[::-1][:args.frames])
    rows, scores = [], {}
    for t in shown:
        box = _crop_box(hole[t])
        rows.append(np.concatenate([_panel(image[t], hole[t], box, f"{label} #{t}")
                                    for label, image in fills.items()], axis=1))
        scores[int(t)] = {label: round(psnr(image[t:t + 1], truth[t:t + 1], masks[t:t + 1]), 2)
                          for label, image in fills.items() if label != "truth"}
    width = max(row.shape[1] for row in rows)
    canvas = np.concatenate([cv2.copyMakeBorder(row, 0, 4, 0, width - row.shape[1],
                                                cv2.BORDER_CONSTANT) for row in rows])
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ghosts_{name}.png"
    cv2.imwrite(str(path), canvas)
    print(json.dumps({"clip": name, "picture": str(path), "hole_psnr": scores}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
