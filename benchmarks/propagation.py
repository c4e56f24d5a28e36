"""Propagation only (the flow fill, no fitting) against the truth on the evaluation protocols.

    python benchmarks/propagation.py                                  # every protocol, default fill
    python benchmarks/propagation.py --set moving_speed=0 --set moving_speed=4 --protocols dog

Protocols (`time_to_quality.load_clip`), at 240x432 with the holes grown by 3 px (the default
`data.mask_dilation`; the sample's are exact):
  bmx       bmx-trees, 80 frames, the paper's centred rectangle;
  crossing-rider  crossing under bmx-trees' masks (the paper's object protocol);
  crossing  crossing with its walkers' own masks moved right by 1/18 of the width;
  dog       dog-agility under bmx-trees' masks;
  sample    the built-in sample clip.
Every protocol but the sample is also scored off and on the footage's own annotated objects
(`annotations/`: the rider, the walkers, the dog), since no frame may show what they hide.
Each `--set KEY=VALUE` (a `flow` setting, repeatable) is one variant beside OpenCV's Telea fill;
prints one JSON line per protocol and variant: hole PSNR and SSIM, warping error, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PROTOCOLS = ("bmx", "crossing-rider", "crossing", "dog", "sample")


def load(name: str, data: Path = DATA):
    """(truth uint8 [N, H, W, 3], masks grown by 3 px but the sample's, the footage's annotated
    objects bool [N, H, W] or None): the clips of `time_to_quality.load_clip` (bmx-trees with
    all its 80 frames)."""
    from time_to_quality import load_clip

    from tfinpaint.evaluation.protocols import dilate

    clip = load_clip(name, 80, data / "bmx-trees", data / "crossing")
    # the sample's masks are exact (its config grows them by 0)
    return clip.truth, clip.masks if name == "sample" else dilate(clip.masks, 3), clip.objects


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
        truth, masks, objects = load(name, args.data)
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
            if objects is not None:
                hole = masks[..., 0] > 0
                row["psnr_off_objects"] = _psnr(filled, truth, hole & ~objects)
                row["psnr_on_objects"] = _psnr(filled, truth, hole & objects)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
