"""Throughput of fitting and filling, next to what this machine's matrix multiply reaches.

Prints one JSON object: training s/step and steps/s through the real fitting path (`model.fit`
on the tf.data sampler), inference frames/s, peak memory, the model's FLOPs per training step
(counted from the forward graph by TensorFlow's profiler, times 3 for the backward pass), and the
achieved FLOP/s as a fraction of a large float32 and bfloat16 matrix multiply timed in the same
run. Every time is a median over repeats after a warm-up.

Examples:
  python tools/benchmark.py                              # coarse_to_fine, 128x240, batch 5
  python tools/benchmark.py --precision float32 --inter-op-threads 1
  python tools/benchmark.py --steps 4 --repeats 5 --steps-per-execution 2
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1])
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--arch", default="coarse_to_fine")
    parser.add_argument("--precision", default="auto",
                        help="auto (as fitting chooses), float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--inter-op-threads", type=int, default=0, help="0 = TensorFlow's choice")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--skip-inference", action="store_true")
    return parser


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


@functools.lru_cache(maxsize=None)
def _matmul():
    import tensorflow as tf

    return tf.function(lambda x, y: tf.cast(tf.matmul(x, y)[0, 0], tf.float32), reduce_retracing=True)


def matmul_flops_per_second(size: int, dtype, repeats: int) -> float:
    """FLOP/s of a square matrix multiply (2 n^3 FLOPs), median of repeats after one warm-up."""
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = _matmul()
    matmul(a, b).numpy()
    seconds = _median_seconds(lambda: matmul(a, b).numpy(), repeats)
    return 2.0 * size**3 / seconds


def forward_flops(generator, height: int, width: int) -> int:
    """FLOPs of one forward pass of one frame, counted by TensorFlow's profiler on the frozen graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([1, height, width, generator.inputs[0].shape[-1]], tf.float32)
    concrete = tf.function(lambda x: generator(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    from tfinpaint.config import Config
    from tfinpaint.data.pipeline import MaskSampler
    from tfinpaint.fitting import build_inpainter, choose_precision, sampling_from
    from tfinpaint.generator import build_generator
    from tfinpaint.inference import make_fill_fn
    from tfinpaint.protocols import fixed_masks

    height, width = args.height, args.width
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    masks = fixed_masks(8, height, width)

    # FLOPs are a property of the graph, counted in float32 before any mixed policy is set.
    keras.mixed_precision.set_global_policy("float32")
    flops_forward = forward_flops(build_generator(args.arch), height, width)
    flops_step = 3 * flops_forward * args.batch

    precision = choose_precision(args.precision)
    keras.mixed_precision.set_global_policy(precision)
    config = Config()
    config.generator.arch = args.arch
    config.train.batch_size = args.batch
    config.train.steps_per_execution = args.steps_per_execution
    config.train.precision = precision
    model = build_inpainter(config)
    sampler = MaskSampler(frames, masks, sampling_from(config))
    dataset = sampler.dataset(batch_size=args.batch, seed=0)

    class StepTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    spe = args.steps_per_execution
    executions = max(1, -(-args.steps // spe))
    timer = StepTimes()
    model.fit(dataset, epochs=1, steps_per_epoch=max(1, -(-args.warmup // spe)) * spe, verbose=0)
    for size, dtype in ((256, tf.float32), (256, tf.bfloat16)):
        matmul_flops_per_second(size, dtype, 1)  # trace outside the timed loop

    # The machine is shared: each repeat times the training steps and both matrix multiplies
    # back to back, so that each ratio compares figures taken under the same load.
    step_seconds, peaks = [], {"float32": [], "bfloat16": []}
    for _ in range(args.repeats):
        # The first execution of each fit call also starts the input iterator: not timed.
        model.fit(dataset, epochs=1, steps_per_epoch=(executions + 1) * spe, callbacks=[timer],
                  verbose=0, shuffle=False)
        step_seconds.append(float(np.mean(np.diff(timer.ends)[1:])) / spe)
        for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
            peaks[name].append(matmul_flops_per_second(args.matmul_size, dtype, 2))
    step = statistics.median(step_seconds)

    result = {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "arch": args.arch, "height": height, "width": width, "batch": args.batch,
        "precision": precision, "steps_per_execution": spe,
        "inter_op_threads": args.inter_op_threads or "default",
        "train_seconds_per_step": round(step, 4),
        "train_steps_per_second": round(1.0 / step, 4),
        "train_seconds_per_step_repeats": [round(s, 4) for s in step_seconds],
        "flops_forward_per_frame": flops_forward,
        "flops_per_train_step": flops_step,
        "train_gflops_per_second": round(flops_step / step / 1e9, 1),
    }
    for name, values in peaks.items():
        fractions = [flops_step / s / p for s, p in zip(step_seconds, values)]
        result[f"matmul_{name}_gflops_per_second"] = round(statistics.median(values) / 1e9, 1)
        result[f"fraction_of_{name}_matmul"] = round(statistics.median(fractions), 3)
        result[f"ceiling_seconds_per_step_{name}"] = round(
            statistics.median([flops_step / p for p in values]), 3)

    if not args.skip_inference:
        fill = make_fill_fn(model.generator)
        batch_frames, batch_masks = tf.constant(frames[:args.batch]), tf.constant(masks[:args.batch])
        fill(batch_frames, batch_masks).numpy()
        seconds = _median_seconds(lambda: fill(batch_frames, batch_masks).numpy(), args.repeats)
        result["inference_frames_per_second"] = round(args.batch / seconds, 3)

    result["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
