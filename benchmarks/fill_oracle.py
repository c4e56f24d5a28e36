"""What the truth allows a chooser of fills, and what the fit's own training holes tell it.

    python benchmarks/fill_oracle.py                       # every protocol
    python benchmarks/fill_oracle.py --protocols crossing dog

For each protocol of `benchmarks/propagation.py` (240x432, holes grown by 3 px but the
sample's), prints one JSON line with the hole PSNR (dB) of:
  - each fill alone: the flow fill (`flow.fill_clip`, the default settings), the push-pull fill
    (`fill.prefill.pyramid_fill`) and OpenCV's Telea;
  - oracles that know the truth: the least-squares mix of the flow and push-pull fills (shares
    in [0, 1] that sum to 1) and that mix chosen anew on every frame;
  - the same mix chosen where a fit can choose it: on 32 held-out training holes (the default
    sampler's tubes, seed stream 2, the truth known there), then applied to the real hole.

Where the three "alone" numbers are far below the oracle mix, the fills err apart and a mix of
them errs less; where the held-out choice is far from the oracle's, the training holes do not
show what the real hole hides, and no measurement on them can choose the mix.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from propagation import DATA, PROTOCOLS, load


def _psnr(error: np.ndarray) -> float:
    return round(float(10 * np.log10(255.0 ** 2 / np.mean(np.square(error)))), 2)


def mix_shares(fills: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    """Shares w >= 0, sum(w) = 1, minimising |sum(w_k fills_k) - truth|^2 for the two fills
    (flow, push-pull; flat arrays): the fit's own `best_keep`, with the push-pull fill in the
    network's place, so the flow share is rounded to 0.01 as the fit's keep is."""
    from tfinpaint.fitting.blend import best_blend

    flow_share = best_blend(fills[1], fills[0], truth).keep
    return np.array([flow_share, 1.0 - flow_share])


def _mixed(fills: list[np.ndarray], shares: np.ndarray) -> np.ndarray:
    return shares[0] * fills[0] + shares[1] * fills[1]


def held_out_fills(given: np.ndarray, masks: np.ndarray, flow_settings, data_settings,
                   seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The flow and push-pull fills and the truth on the pixels of 32 held-out training holes
    that the fit scores (`tfinpaint.fitting.blend.held_out`'s), flat float64."""
    import tensorflow as tf

    from tfinpaint.data.pipeline import fixed_examples
    from tfinpaint.data.samplers import MaskSampler, sampling_from
    from tfinpaint.fill.flow import VideoFlow
    from tfinpaint.fill.prefill import pyramid_fill
    from tfinpaint.fitting.blend import HELD_OUT_EXAMPLES, HELD_OUT_STREAM

    flow = VideoFlow(given, masks, flow_settings)
    sampler = MaskSampler(given, masks, sampling_from(data_settings), flow=flow)
    held = fixed_examples(sampler.sample, HELD_OUT_EXAMPLES, seed, stream=HELD_OUT_STREAM)
    hole = tf.maximum(held["masks"], tf.cast(held["translated"], held["masks"].dtype))
    where = ((held["translated"].numpy() > 0) & (held["masks"].numpy() == 0))[..., 0]
    pushed = pyramid_fill(held["frames"], hole).numpy()
    flat = [np.asarray(a, np.float64)[where].ravel()
            for a in (held["prefilled"].numpy(), pushed, held["frames"].numpy())]
    return flat[:2], flat[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    from tfinpaint.config import Config
    from tfinpaint.evaluation.metrics import telea_baseline
    from tfinpaint.fill.flow import fill_clip
    from tfinpaint.fill.prefill import pyramid_fill

    config = Config()
    for name in args.protocols:
        truth, masks, _ = load(name, args.data)
        given = np.where(masks > 0, 0, truth).astype(np.uint8)
        hole = masks[..., 0] > 0
        flow = fill_clip(given, masks, config.flow).filled
        pushed = np.concatenate([pyramid_fill(given[k:k + 8].astype(np.float32),
                                              hole[k:k + 8, ..., None].astype(np.float32)).numpy()
                                 for k in range(0, len(given), 8)])
        telea = telea_baseline(given, masks)
        real = [np.asarray(a, np.float64)[hole] for a in (flow, pushed, telea, truth)]
        fills, target = [a.ravel() for a in real[:2]], real[3].ravel()
        oracle = mix_shares(fills, target)
        per_frame = []  # the mix chosen anew on every frame: squared errors, then one PSNR
        for t in range(len(given)):
            if hole[t].any():
                frame = [np.asarray(a[t], np.float64)[hole[t]].ravel() for a in (flow, pushed)]
                goal = np.asarray(truth[t], np.float64)[hole[t]].ravel()
                per_frame.append(_mixed(frame, mix_shares(frame, goal)) - goal)
        held_fills, held_truth = held_out_fills(given, masks, config.flow, config.data,
                                                config.train.seed)
        held = mix_shares(held_fills, held_truth)
        print(json.dumps({
            "protocol": name,
            "flow": _psnr(fills[0] - target), "push_pull": _psnr(fills[1] - target),
            "telea": _psnr(real[2].ravel() - target),
            "oracle_mix": _psnr(_mixed(fills, oracle) - target),
            "oracle_flow_share": round(float(oracle[0]), 2),
            "oracle_mix_per_frame": _psnr(np.concatenate(per_frame)),
            "held_out_flow": _psnr(held_fills[0] - held_truth),
            "held_out_push_pull": _psnr(held_fills[1] - held_truth),
            "held_out_flow_share": round(float(held[0]), 2),
            "held_out_mix_on_real_hole": _psnr(_mixed(fills, held) - target)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
