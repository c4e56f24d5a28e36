"""Propagation only (the flow fill, no fitting) against the truth on the evaluation protocols.

    python benchmarks/propagation.py                                  # every protocol, default fill
    python benchmarks/propagation.py --set moving_speed=0 --set moving_speed=4 --protocols dog

Protocols, at 240x432 with the holes grown by 3 px (the default `data.mask_dilation`):
  bmx       bmx-trees, 80 frames, the paper's centred rectangle; also scored off and on the rider
            (its annotations), since no frame shows what the rider hides;
  crossing-rider  crossing under bmx-trees' masks (the paper's object protocol);
  crossing  crossing with its walkers' own masks moved right by 1/18 of the width;
  dog       dog-agility under bmx-trees' masks;
  sample    the built-in sample clip.
Each `--set KEY=VALUE` (a `flow` setting, repeatable) is one variant beside OpenCV's Telea fill;
prints one JSON line per protocol and variant: hole PSNR and SSIM, warping error, seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZE = (240, 432)
PROTOCOLS = ("bmx", "crossing-rider", "crossing", "dog", "sample")


def _frames(folder: Path, count: int | None = None) -> np.ndarray:
    from tfinpaint.io.clip import resize_frames

    paths = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png"))
    return resize_frames(np.stack([cv2.imread(str(p))[..., ::-1] for p in paths[:count]]), *SIZE)


def _masks(folder: Path) -> np.ndarray:
    paths = sorted(folder.glob("*.png"))
    return np.stack([cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), SIZE[::-1],
                                interpolation=cv2.INTER_NEAREST) > 0
                     for p in paths]).astype(np.uint8)[..., None]


def load(name: str, data: Path = DATA):
    """(truth uint8 [N, H, W, 3], masks uint8 [N, H, W, 1], rider [N, H, W, 1] or None)."""
    from tfinpaint.evaluation.protocols import dilate, fixed_masks, object_masks
    from tfinpaint.io.sample import make_sample

    if name == "sample":
        sample = make_sample()
        return sample.truth, sample.masks, None
    rider = None
    if name == "bmx":
        truth = _frames(data / "bmx-trees" / "frames")
        masks = fixed_masks(len(truth), *SIZE)
        rider = _masks(data / "bmx-trees" / "annotations")
    elif name == "crossing":
        truth = _frames(data / "crossing" / "frames")
        masks = object_masks(_masks(data / "crossing" / "masks"), len(truth), *SIZE,
                             shift=(SIZE[1] // 18, 0))
    else:
        truth = _frames(data / ("crossing" if name == "crossing-rider" else "dog-agility")
                        / "frames")
        masks = object_masks(_masks(data / "bmx-trees" / "masks"), len(truth), *SIZE)
    return truth, dilate(masks, 3), rider


def _psnr(filled: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    error = (filled.astype(np.float64) - truth)[where]
    return round(float(10 * np.log10(255.0 ** 2 / np.mean(error ** 2))), 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a flow setting of one variant (default: the default settings)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    from tfinpaint.config import FlowConfig, config_from_dict, parse_overrides
    from tfinpaint.evaluation.metrics import score, telea_baseline
    from tfinpaint.fill.flow import fill_clip

    variants = {"default": FlowConfig()} if not args.set else {
        text: config_from_dict({"flow": parse_overrides([text])}).flow for text in args.set}
    for name in args.protocols:
        truth, masks, rider = load(name, args.data)
        given = np.where(masks > 0, 0, truth).astype(np.uint8)
        fills = {"telea": lambda: telea_baseline(given, masks)}
        fills.update({label: (lambda s=settings: fill_clip(given, masks, s).filled)
                      for label, settings in variants.items()})
        for label, fill in fills.items():
            began = time.perf_counter()
            filled = fill()
            row = {"protocol": name, "fill": label,
                   "seconds": round(time.perf_counter() - began, 1),
                   **{key: round(float(value), 4) for key, value in
                      score(filled, truth, masks).items()
                      if key in ("psnr_hole", "ssim_hole", "warping_error")}}
            if rider is not None:
                hole = masks[..., 0] > 0
                row["psnr_off_rider"] = _psnr(filled, truth, hole & (rider[..., 0] == 0))
                row["psnr_on_rider"] = _psnr(filled, truth, hole & (rider[..., 0] > 0))
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
