"""What the regularisers cost and what the stabilisation term buys, on the built-in sample clip.

  python studies/regularizer_bench.py                      # both parts, prints JSON (~10 min, 2 cores)
  python studies/regularizer_bench.py --skip-consistency   # step times only
  python studies/regularizer_bench.py --skip-consistency --height 240 --width 432 --batch-size 1 \
      --channels 32 --variants reconstruction,ambiguity     # the default config's size, ~3 min
      [--clip ../shared/data/bmx-trees]                     # a real clip's masks (larger holes)

1. Step time (coarse-to-fine, by default batch 5, 128x240, 48 channels, mixed_bfloat16; random VGG
   weights, which cost the same as ImageNet's): reconstruction only, + stabilisation (on
   `losses.stabilization_examples` examples of the batch, and on the whole batch as the paper),
   + anti-ambiguity (`losses.ambiguity_positions` x `losses.ambiguity_target_positions` matched),
   both; each the median of `--timing-steps` compiled steps after warm-up, all in one process, the
   variants taking turns step by step. Then the contextual loss alone (forward and gradient,
   float32) for a few numbers of source x target positions.
2. Temporal consistency: a fit of `--fit-steps` with reconstruction only, then `--extra-steps` more
   either with reconstruction only or with the stabilisation term added (same weights and optimizer
   state at the branch point). Reported: the mean absolute change of the filled hole between
   consecutive frames after undoing the sample's known camera motion (0-255 scale), the same figure
   for the true background (the floor left by resampling and the scene itself), and hole PSNR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


import cv2
import keras
import numpy as np
import tensorflow as tf

from tfinpaint.config import DataConfig
from tfinpaint.config import LossConfig
from tfinpaint.data.samplers import MaskSampler, sampling_from
from tfinpaint.evaluation.metrics import psnr
from tfinpaint.fitting import losses
from tfinpaint.fitting.inpainter import Inpainter
from tfinpaint.io.clip import resize_frames
from tfinpaint.io.sample import make_sample
from tfinpaint.io.video import read_masks, read_video
from tfinpaint.model import vgg
from tfinpaint.model.generator import build_generator
from tfinpaint.model.generator import composite, network_input, to_signed, to_uint8


def _inpainter(generator, *, ambiguity=0.0, stabilization=0.0, learning_rate=2e-4,
               stabilization_examples=LossConfig().stabilization_examples):
    extractor = vgg.build_feature_extractor(weights=None) if ambiguity else None
    defaults = LossConfig()
    model = Inpainter(generator, ambiguity=ambiguity, stabilization=stabilization,
                      feature_extractor=extractor, stabilization_examples=stabilization_examples,
                      ambiguity_positions=defaults.ambiguity_positions,
                      ambiguity_target_positions=defaults.ambiguity_target_positions)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.optimizer.build(generator.trainable_variables)
    return model


VARIANTS = {"reconstruction": {}, "stabilization": {"stabilization": 0.2},
            "stabilization_whole_batch": {"stabilization": 0.2, "stabilization_examples": 0},
            "ambiguity": {"ambiguity": 0.1},
            "both": {"ambiguity": 0.1, "stabilization": 0.2}}


def _clip(folder: str, height: int, width: int, count: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The first frames of a clip folder holding `frames/` and `masks/`, at height x width."""
    video = read_video(Path(folder) / "frames", max_frames=count)
    masks = read_masks(Path(folder) / "masks", len(video.frames), height, width, names=video.names)
    return resize_frames(video.frames, height, width), masks


def step_times(steps: int, warmup: int = 2, *, height: int = 128, width: int = 240,
               batch_size: int = 5, channels: int = 48, variants=tuple(VARIANTS),
               clip: str = "") -> dict:
    if clip:
        frames, masks = _clip(clip, height, width)
    else:
        sample = make_sample(num_frames=24, height=height, width=width)
        frames, masks = sample.frames, sample.masks
    batches = iter(MaskSampler(frames, masks, sampling_from(DataConfig())).dataset(batch_size=batch_size, seed=0))
    steps_by_name = {}
    for name in ("reconstruction", *[v for v in variants if v != "reconstruction"]):
        keras.utils.set_random_seed(0)
        generator = build_generator("coarse_to_fine", channels=channels, padding="zero",
                                    in_channels=4)
        steps_by_name[name] = tf.function(_inpainter(generator, **VARIANTS[name]).train_step)
    # Round robin, so that a change in the machine's load (it is shared) hits every variant alike.
    times = {name: [] for name in steps_by_name}
    for index in range(warmup + steps):
        batch = next(batches)
        for name, step in steps_by_name.items():
            began = time.perf_counter()
            float(step(batch)["total"])
            if index >= warmup:
                times[name].append(time.perf_counter() - began)
    result = {name: round(1000 * statistics.median(values), 1) for name, values in times.items()}
    base = result["reconstruction"]
    return {"clip": clip or "sample", "hole_fraction": round(float((masks > 0).mean()), 3),
            "ms_per_step": result,
            "ratio": {name: round(value / base, 3) for name, value in result.items()}}


def contextual_cost(sizes, repeats: int = 5, channels: int = 256) -> dict:
    """Median ms of `losses.contextual_loss` and its gradient for P source x Q target positions
    (batch 1, float32 all-pairs tensors of P * Q * 4 bytes each)."""
    rng = np.random.default_rng(0)
    result = {}
    for source_count, target_count in sizes:
        source = tf.Variable(rng.normal(size=(1, source_count, channels)).astype(np.float32))
        target = tf.constant(rng.normal(size=(1, target_count, channels)).astype(np.float32))
        weights = tf.ones([1, source_count]), tf.ones([1, target_count])

        @tf.function
        def loss_and_gradient():
            with tf.GradientTape() as tape:
                loss = losses.contextual_loss(source, target, *weights)
            return loss, tape.gradient(loss, source)

        loss_and_gradient()
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            loss_and_gradient()[0].numpy()
            times.append(time.perf_counter() - began)
        result[f"{source_count}x{target_count}"] = {
            "ms": round(1000 * statistics.median(times), 1),
            "pairs_tensor_mib": round(source_count * target_count * 4 / 2**20, 1)}
    return result


def _fit(model, sampler, steps, batch_size, start):
    dataset = sampler.dataset(batch_size=batch_size, seed=0, start_step=start)
    began = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - began


def _branch(model, **weights):
    """A copy of `model`'s generator and Adam state under other loss weights."""
    generator = build_generator("coarse_to_fine", channels=48, padding="zero", in_channels=4)
    generator.set_weights(model.generator.get_weights())
    branch = _inpainter(generator, learning_rate=4e-4, **weights)
    for mine, theirs in zip(branch.optimizer.variables, model.optimizer.variables):
        mine.assign(theirs)
    return branch


def _fill(generator, frames, masks):
    signed = to_signed(frames)
    hole = tf.cast(masks, tf.float32)
    outputs = generator(network_input(signed, hole), training=False)
    return to_uint8(composite(outputs[-1], signed, hole)).numpy()


def hole_flicker(video: np.ndarray, masks: np.ndarray, camera: np.ndarray) -> float:
    """Mean |F_i(p) - F_{i+1}(p + c_i - c_{i+1})| over the hole pixels p of frame i that frame i+1
    also shows, on the 0-255 scale: how much the fill changes once the camera motion is undone."""
    height, width = video.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    changes = []
    for i in range(len(video) - 1):
        dx, dy = (camera[i] - camera[i + 1]).astype(np.float32)
        map_x, map_y = xs + dx, ys + dy
        seen = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        following = cv2.remap(video[i + 1].astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
        where = (masks[i, ..., 0] > 0) & seen
        changes.append(np.abs(video[i].astype(np.float32) - following)[where].mean())
    return float(np.mean(changes))


def temporal_consistency(fit_steps: int, extra_steps: int, batch_size: int = 4) -> dict:
    sample = make_sample()
    sampler = MaskSampler(sample.frames, sample.masks, sampling_from(DataConfig()))
    keras.utils.set_random_seed(0)
    generator = build_generator("coarse_to_fine", channels=48, padding="zero", in_channels=4)
    base = _inpainter(generator, learning_rate=4e-4)
    seconds = {"reconstruction_phase": _fit(base, sampler, fit_steps, batch_size, 0)}
    result = {"truth_floor": round(hole_flicker(sample.truth, sample.masks, sample.camera), 3)}
    for name, weights in (("without_stabilization", {}), ("with_stabilization", {"stabilization": 0.2})):
        branch = _branch(base, **weights)
        seconds[name] = _fit(branch, sampler, extra_steps, batch_size, fit_steps)
        filled = _fill(branch.generator, sample.frames, sample.masks)
        result[name] = {"hole_flicker": round(hole_flicker(filled, sample.masks, sample.camera), 3),
                        "psnr_hole": round(psnr(filled, sample.truth, sample.masks), 2)}
    result["seconds"] = {name: round(value, 1) for name, value in seconds.items()}
    result["steps"] = {"reconstruction": fit_steps, "then": extra_steps, "batch_size": batch_size}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timing-steps", type=int, default=10)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--channels", type=int, default=48)
    parser.add_argument("--clip", default="",
                        help="a clip folder with frames/ and masks/ (e.g. "
                             "../shared/data/bmx-trees) for the step times, not the sample")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--fit-steps", type=int, default=150)
    parser.add_argument("--extra-steps", type=int, default=100)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-consistency", action="store_true")
    args = parser.parse_args(argv)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    report = {"device": "cpu" if not tf.config.list_physical_devices("GPU") else "gpu",
              "precision": "mixed_bfloat16"}
    if not args.skip_timing:
        variants = [name for name in args.variants.split(",") if name]
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}, choose from {list(VARIANTS)}")
        key = f"step_time_{args.height}x{args.width}_batch{args.batch_size}_channels{args.channels}"
        report[key] = step_times(args.timing_steps, height=args.height, width=args.width,
                                 batch_size=args.batch_size, channels=args.channels,
                                 variants=variants, clip=args.clip)
        report["contextual_loss_alone"] = contextual_cost(
            [(1024, 4096), (1024, 6480), (4096, 4096)])
        print(json.dumps(report), file=sys.stderr, flush=True)
    if not args.skip_consistency:
        report["temporal_consistency_sample"] = temporal_consistency(args.fit_steps, args.extra_steps)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
