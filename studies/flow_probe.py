"""Score flow propagation (tfinpaint.fill.flow) against Telea and the push-pull prefill on a clip.

    PYTHONPATH=$PWD python studies/flow_probe.py                       # bmx-trees, fixed, 240x432
    PYTHONPATH=$PWD python studies/flow_probe.py --size 480 854 --variants base ultrafast
    PYTHONPATH=$PWD python studies/flow_probe.py --clip ../shared/data/crossing --protocol object
    PYTHONPATH=$PWD python studies/flow_probe.py --baselines --variants base nearest \
        --step-cost 40 --vs-generator          # training-style per-call cost beside a step
    PYTHONPATH=$PWD python studies/flow_probe.py --baselines --variants --leak 20 50

Frames are resized (INTER_AREA) to --size; masks follow the paper's protocols (tools/make_masks.py)
made at that size. Scores are tfinpaint.evaluation.metrics.score (what tfinpaint.evaluate prints): hole PSNR,
hole SSIM, warping error. Seconds are wall time of the fill alone (fields_s: of which the flow
fields), in this run; other jobs on the machine make them vary, so compare within one run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from tfinpaint.evaluation import protocols, metrics
from tfinpaint.fill import flow
from tfinpaint.fill.prefill import pyramid_fill
from tfinpaint.io import video

_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
VARIANTS = {
    "base": {},  # blend "both"
    "nearest": {"blend": "nearest"},
    "no-check": {"check": False},
    "margin0": {"margin": 0},
    "margin8": {"margin": 8},
    "input-pyramid": {"flow_input": "pyramid"},
    "fast": {"preset": "fast"},
    "ultrafast": {"preset": "ultrafast"},
    "min-known0.5": {"min_known": 0.5},
    # the first measurements, blend "nearest" (then the default) with one change each
    "nearest+no-check": {"blend": "nearest", "check": False},
    "nearest+margin0": {"blend": "nearest", "margin": 0},
    "nearest+margin8": {"blend": "nearest", "margin": 8},
    "nearest+input-pyramid": {"blend": "nearest", "flow_input": "pyramid"},
    "nearest+fast": {"blend": "nearest", "preset": "fast"},
    "nearest+ultrafast": {"blend": "nearest", "preset": "ultrafast"},
}


_FIELD_OPTIONS = ("preset", "flow_input", "check", "margin")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default=str(_DATA / "bmx-trees"), help="folder with frames/")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 432), metavar=("H", "W"))
    parser.add_argument("--protocol", choices=("fixed", "object"), default="fixed")
    parser.add_argument("--source", default=str(_DATA / "bmx-trees" / "masks"),
                        help="object protocol: another clip's masks")
    parser.add_argument("--dilation", type=int, default=0)
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--variants", nargs="*", default=["base"], choices=sorted(VARIANTS))
    parser.add_argument("--baselines", nargs="*", default=["telea", "pyramid"])
    parser.add_argument("--json", help="append the rows to this JSON-lines file")
    parser.add_argument("--step-cost", type=int, default=0, metavar="CALLS",
                        help="also time this many training-style calls of propagate_frame "
                        "(frame i's hole united with another frame's hole, rolled at random)")
    parser.add_argument("--leak", type=int, nargs="*", default=[], metavar="FRAME",
                        help="measure the leak through the flow measurement at these frames")
    parser.add_argument("--vs-generator", action="store_true",
                        help="with --step-cost: also time a generator training step")
    return parser.parse_args()


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                     for f in frames])


def main() -> None:
    args = _parse()
    clip = Path(args.clip)
    truth = video.read_video(clip / "frames" if (clip / "frames").is_dir() else clip,
                             max_frames=args.max_frames).frames
    height, width = args.size
    truth = _resize(truth, height, width)
    num_frames = len(truth)
    if args.protocol == "fixed":
        masks = protocols.fixed_masks(num_frames, height, width)
    else:
        source = video.read_video(args.source).frames.max(axis=-1)
        masks = protocols.object_masks(source, num_frames, height, width)
    masks = protocols.dilate(masks, args.dilation)
    given = np.where(masks != 0, 0, truth).astype(np.uint8)
    print(f"{clip.name}: {num_frames} frames {width}x{height}, {args.protocol} holes "
          f"{100 * masks.mean():.1f}% of pixels")

    fills = {
        "telea": lambda: metrics.telea_baseline(given, masks),
        "pyramid": lambda: np.clip(np.rint(pyramid_fill(
            tf.constant(given, tf.float32), tf.constant(masks, tf.float32)).numpy()),
            0, 255).astype(np.uint8),
    }
    if args.leak:
        leak_check(given, masks, args.leak)
    if args.step_cost:
        step_cost(given, masks, args.step_cost, args.variants, args.vs_generator)
    print(f"{'method':<20}{'psnr_hole':>10}{'ssim_hole':>10}{'warp_err':>10}{'found%':>8}"
          f"{'seconds':>9}{'fields_s':>9}")
    for name in list(args.baselines) + [f"flow:{v}" for v in args.variants]:
        begin = time.perf_counter()
        fields_seconds, found = np.nan, np.nan
        if name.startswith("flow:"):
            options = VARIANTS[name[len("flow:"):]]
            field_options = {k: v for k, v in options.items() if k in _FIELD_OPTIONS}
            fields = flow.flow_fields(given, masks, **field_options)
            fields_seconds = time.perf_counter() - begin
            result = flow.flow_fill(given, masks, fields=fields, **{
                k: v for k, v in options.items() if k not in _FIELD_OPTIONS or k == "margin"})
            found = 100 * result.found[masks != 0].mean()
            result = result.filled
        else:
            result = fills[name]()
        seconds = time.perf_counter() - begin
        scores = metrics.score(result, truth, masks)
        print(f"{name:<20}{scores['psnr_hole']:>10.2f}{scores['ssim_hole']:>10.3f}"
              f"{scores['warping_error']:>10.4f}{found:>8.1f}{seconds:>9.1f}"
              f"{fields_seconds:>9.1f}", flush=True)
        if args.json:
            with open(args.json, "a") as file:
                file.write(json.dumps({"clip": clip.name, "size": [height, width],
                                       "protocol": args.protocol, "method": name,
                                       "seconds": seconds, "fields_seconds": fields_seconds,
                                       "found_percent": found, **scores}) + "\n")


def step_cost(given: np.ndarray, masks: np.ndarray, calls: int, variants: list[str],
              generator: bool) -> None:
    """Seconds per training-style `propagate_frame` call in a tf.function (fields precomputed)."""
    rng = np.random.default_rng(0)
    holes = masks.astype(np.float32)
    height, width = holes.shape[1:3]
    for name in variants:
        options = VARIANTS[name]
        fields = flow.flow_fields(given, masks, **{k: v for k, v in options.items()
                                                   if k in _FIELD_OPTIONS})
        video = [tf.constant(a) for a in (given.astype(np.float32), 1.0 - holes, fields.forward,
                                          fields.backward, fields.forward_reliable,
                                          fields.backward_reliable)]
        propagate_options = {k: v for k, v in options.items()
                             if k not in _FIELD_OPTIONS or k == "margin"}
        step = tf.function(lambda index, hole: flow.propagate_frame(
            *video, index, hole, **propagate_options))
        draws = []
        for _ in range(calls + 1):
            index, other = rng.integers(len(given), size=2)
            translated = np.roll(holes[other], (rng.integers(height), rng.integers(width)), (0, 1))
            draws.append((tf.constant(int(index)), tf.constant(np.maximum(holes[index],
                                                                          translated))))
        step(*draws[0])  # trace
        begin = time.perf_counter()
        for index, hole in draws[1:]:
            filled, _, _ = step(index, hole)
        filled.numpy()
        seconds = (time.perf_counter() - begin) / calls
        generator_seconds = _generator_step_seconds(height, width, calls) if generator else np.nan
        share = np.mean([h.numpy().mean() for _, h in draws])
        print(f"step cost flow:{name}: {seconds * 1000:.1f} ms per call at {width}x{height} "
              f"(hole M_i ∪ M'_t: {100 * share:.1f}% of the frame, {calls} calls); a generator "
              f"training step right after: {generator_seconds * 1000:.0f} ms", flush=True)


def leak_check(given: np.ndarray, masks: np.ndarray, frames: list[int]) -> None:
    """How much frame i's pixels inside a translated hole M'_t still reach its fill through the
    flow fields: `propagate_frame` never reads them, but DIS measured frame i's flow (and its
    neighbours' flow into frame i) with them in view. Inverts them, recomputes the fields and
    compares the fills of M_i ∪ M'_t (mean and max absolute difference, in levels)."""
    rng = np.random.default_rng(1)
    holes = masks.astype(np.float32)
    height, width = holes.shape[1:3]
    one = flow._traced_propagate_frame(4, "both", 1.0)
    reference = flow.flow_fields(given, masks)
    for index in frames:
        translated = np.roll(holes[(index + 7) % len(given)],
                             (rng.integers(height // 4, height // 2),
                              rng.integers(width // 4, width // 2)), (0, 1))
        step_hole = np.maximum(holes[index], translated)
        changed = given.copy()
        inside = (translated[..., 0] > 0) & (holes[index, ..., 0] == 0)
        changed[index][inside] = 255 - changed[index][inside]
        fills = []
        for clip, fields in ((given, reference), (changed, flow.flow_fields(changed, masks))):
            known = 1.0 - holes
            known[index] = 1.0 - step_hole
            video = [tf.constant(a) for a in (clip.astype(np.float32), known, fields.forward,
                                              fields.backward, fields.forward_reliable,
                                              fields.backward_reliable)]
            fills.append(one(*video, tf.constant(index), tf.constant(step_hole),
                             tf.constant(len(clip)))[0].numpy())
        difference = np.abs(fills[0] - fills[1])[step_hole[..., 0] > 0]
        print(f"leak through DIS, frame {index}: fill of M_i ∪ M'_t changes by "
              f"{difference.mean():.3f} levels on average, {difference.max():.1f} at most, when "
              f"frame {index}'s pixels in M'_t are inverted", flush=True)


def _generator_step_seconds(height: int, width: int, calls: int) -> float:
    """One training step (forward, gradients, Adam) of the default generator (coarse_to_fine,
    channels 32, float32, batch 1 of whole frames), as a yardstick measured under the same load."""
    import keras

    from tfinpaint.model.generator import build_generator

    model = build_generator("coarse_to_fine", channels=32)
    optimizer = keras.optimizers.Adam(2e-4)
    inputs = tf.random.uniform([1, height, width, 4])

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_mean(tf.abs(y)) for y in tf.nest.flatten(model(inputs))])
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))
        return loss

    train_step()
    begin = time.perf_counter()
    for _ in range(max(3, calls // 5)):
        loss = train_step()
    loss.numpy()
    return (time.perf_counter() - begin) / max(3, calls // 5)


if __name__ == "__main__":
    main()
