"""Throughput of fitting and filling, next to what this machine's matrix multiply reaches.

Prints one JSON object: training s/step and steps/s through the real fitting path (`model.fit`
on the tf.data sampler), inference frames/s, peak memory, the model's FLOPs per training step
(counted from the forward graph by TensorFlow's profiler, times 3 for the backward pass), and the
achieved FLOP/s as a fraction of a large float32 and bfloat16 matrix multiply timed in the same
run. Every time is a median over repeats after a warm-up.

With --serving (or --serving-only), a "serving" section: a fitted run (--run, or a one-step fit
of --arch at --height x --width with --channels) is exported, then the same clip at the working
size is filled in this process and over gRPC through `python -m tfinpaint.serve` (frames/s,
outputs compared), and frames --tiled-scale times the working size go through the tiling path
(time, peak memory of the filling process, tiles sent).

Examples:
  python benchmarks/benchmark.py                              # coarse_to_fine, 128x240, batch 5
  python benchmarks/benchmark.py --precision float32 --inter-op-threads 1
  python benchmarks/benchmark.py --steps 4 --repeats 5 --steps-per-execution 2
  python benchmarks/benchmark.py --height 240 --width 432 --batch 1 --channels 32   # the default fit
  python benchmarks/benchmark.py --serving-only --run runs/clip     # serving and tiled inference only
  python benchmarks/benchmark.py --serving-only --channels 8        # a quick look with a tiny network
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



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1])
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--arch", default="coarse_to_fine")
    parser.add_argument("--channels", type=int, default=48,
                        help="the network's width unit (the paper's 48; configs/default.yaml: 32)")
    parser.add_argument("--precision", default="auto",
                        help="auto (as fitting chooses), float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--inter-op-threads", type=int, default=0, help="0 = TensorFlow's choice")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--skip-inference", action="store_true")
    serving = parser.add_argument_group("serving (TF Serving-compatible gRPC and tiled inference)")
    serving.add_argument("--serving", action="store_true", help="add the serving section")
    serving.add_argument("--serving-only", action="store_true", help="only the serving section")
    serving.add_argument("--run", help="a fitted run folder (default: fit one step here)")
    serving.add_argument("--serving-frames", type=int, default=16,
                         help="frames of the clip at the working size")
    serving.add_argument("--serving-batch", type=int, default=4, help="frames or tiles per request")
    serving.add_argument("--serving-concurrency", type=int, default=2, help="requests in flight")
    serving.add_argument("--tiled-scale", type=int, default=4,
                         help="tiled frames are this many times the working size per side")
    serving.add_argument("--tiled-frames", type=int, default=2)
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
    if args.serving_only:
        print(json.dumps({"serving": serving_benchmark(args)}, indent=2))
        return 0
    import keras
    import numpy as np
    import tensorflow as tf

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    from tfinpaint.config import CONFIG_DIR, load_config
    from tfinpaint.data.samplers import MaskSampler
    from tfinpaint.data.samplers import sampling_from
    from tfinpaint.evaluation.protocols import fixed_masks
    from tfinpaint.fill.render import make_fill_fn
    from tfinpaint.fitting.device import choose_precision
    from tfinpaint.fitting.loop import build_inpainter
    from tfinpaint.model.generator import build_generator

    height, width = args.height, args.width
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    masks = fixed_masks(8, height, width)

    # FLOPs are a property of the graph, counted in float32 before any mixed policy is set.
    keras.mixed_precision.set_global_policy("float32")
    flops_forward = forward_flops(build_generator(args.arch, channels=args.channels), height, width)
    flops_step = 3 * flops_forward * args.batch

    precision = choose_precision(args.precision)
    keras.mixed_precision.set_global_policy(precision)
    # the paper's fit (zeros in the hole, no gate, its schedule), at the size and width asked
    config = load_config([CONFIG_DIR / "paper.yaml"])
    config.generator.arch = args.arch
    config.generator.channels = args.channels
    config.train.batch_size = args.batch
    config.train.steps_per_execution = args.steps_per_execution
    config.train.precision = precision
    model = build_inpainter(config)
    sampler = MaskSampler(frames, masks, sampling_from(config.data))
    dataset = sampler.dataset(batch_size=args.batch, seed=0)

    class StepTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    spe = args.steps_per_execution
    executions = max(1, -(-args.steps // spe))
    timer = StepTimes()
    model.fit(dataset, epochs=1, steps_per_epoch=max(1, -(-args.warmup // spe)) * spe, verbose=0,
              shuffle=False)
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
        "arch": args.arch, "channels": args.channels, "height": height, "width": width, "batch": args.batch,
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
    if args.serving:
        result["serving"] = serving_benchmark(args)
    print(json.dumps(result, indent=2))
    return 0


# --- serving: gRPC vs in-process throughput, tiled inference at a multiple of the working size

def _memory_mib(pid="self") -> dict[str, float]:
    """Resident and peak resident memory (MiB) of a process, from /proc (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _reset_peak_memory(pid="self") -> None:
    """Restart a process's peak-RSS count (Linux >= 4.0), so that a peak belongs to one stage."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _fit_tiny_run(folder: Path, args) -> Path:
    import contextlib

    from tfinpaint.train import main as train

    settings = [f"generator.arch={args.arch}", f"generator.channels={args.channels}",
                f"data.working_height={args.height}", f"data.working_width={args.width}",
                "train.batch_size=1", "data.mask_dilation=0"]
    argv = ["--video", "sample", "--steps", "1", "--run-dir", str(folder), "--quiet"]
    for setting in settings:
        argv += ["--set", setting]
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON only
        status = train(argv)
    if status != 0:
        raise SystemExit("could not fit the benchmark's run")
    return folder


def serving_benchmark(args) -> dict:
    """Frames/s of one clip filled in this process and through `python -m tfinpaint.serve`, and
    time and peak memory of tiled inference at `--tiled-scale` times the working size."""
    import os
    import signal
    import subprocess
    import tempfile

    import numpy as np

    from tfinpaint.export import export
    from tfinpaint.fill.render import load_generator
    from tfinpaint.fill.render import make_fill_fn
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.io.sample import make_sample
    from tfinpaint.serving.remote import connect, fetch_working_size, fill_frames, local_predict_fn

    scratch = tempfile.TemporaryDirectory(prefix="tfinpaint-bench-")
    with scratch:
        run = Path(args.run) if args.run else _fit_tiny_run(Path(scratch.name) / "run", args)
        version = export(run, Path(scratch.name) / "models" / "bench", log=lambda line: None)
        config = RunDir(run).saved_config()
        size = (config.data.working_height or args.height, config.data.working_width or args.width)
        clip = make_sample(num_frames=args.serving_frames, height=size[0], width=size[1])
        big = make_sample(num_frames=max(2, args.tiled_frames), height=args.tiled_scale * size[0],
                          width=args.tiled_scale * size[1], seed=1)
        big.frames, big.masks = big.frames[:args.tiled_frames], big.masks[:args.tiled_frames]
        options = dict(tile_size=size, batch=args.serving_batch,
                       concurrency=args.serving_concurrency)

        # the exported graph itself (it reduces to the working size; tiles of that size pass
        # through the resize unchanged)
        local = local_predict_fn(make_fill_fn(
            load_generator(RunDir(run)), config.data.prefill,
            working_size=(config.data.working_height, config.data.working_width)))
        tiles = []

        def counting(frames, masks):
            tiles.append(len(frames))
            return local(frames, masks)

        server = subprocess.Popen(
            [sys.executable, "-m", "tfinpaint.serve", "--model-base", str(version.parent),
             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            cwd=Path(__file__).resolve().parent.parent)
        try:
            target = "127.0.0.1:" + server.stdout.readline().strip().rsplit(":", 1)[-1]
            stub = connect(target)
            reported = fetch_working_size(stub, "bench")
            paths = {"in_process": (local, None), "grpc": (stub, "bench")}
            for predict, model in paths.values():  # trace and load outside the timing
                fill_frames(predict, model, clip.frames[:args.serving_batch],
                            clip.masks[:args.serving_batch], **options)
                fill_frames(predict, model, big.frames[:1], big.masks[:1], **options)
            # The machine is shared: each repeat times both paths back to back, so that their
            # ratio compares figures taken under the same load.
            seconds = {name: [] for name in paths}
            outputs = {}
            for _ in range(args.repeats):
                for name, (predict, model) in paths.items():
                    began = time.perf_counter()
                    outputs[name] = fill_frames(predict, model, clip.frames, clip.masks,
                                                **options)
                    seconds[name].append(time.perf_counter() - began)

            tiles.clear()
            rss_before = _memory_mib()["VmRSS"]
            _reset_peak_memory()
            began = time.perf_counter()
            tiled_expected = fill_frames(counting, None, big.frames, big.masks, **options)
            tiled_in_process = time.perf_counter() - began
            tiled_peak = _memory_mib()["VmHWM"]

            server_before = _memory_mib(server.pid)
            _reset_peak_memory(server.pid)
            began = time.perf_counter()
            tiled_served = fill_frames(stub, "bench", big.frames, big.masks, **options)
            tiled_over_grpc = time.perf_counter() - began
            server_after = _memory_mib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

    frames = len(clip.frames)
    return {
        "run": str(args.run or f"one-step fit, {args.arch} channels={args.channels}"),
        "working_size": list(size), "reported_working_size": list(reported or []),
        "clip_frames": frames, "batch": args.serving_batch,
        "concurrency": args.serving_concurrency,
        "in_process_frames_per_second": round(frames / statistics.median(
            seconds["in_process"]), 3),
        "grpc_frames_per_second": round(frames / statistics.median(seconds["grpc"]), 3),
        "grpc_throughput_over_in_process": round(statistics.median(
            [a / b for a, b in zip(seconds["in_process"], seconds["grpc"])]), 3),
        "grpc_identical_to_in_process": bool(np.array_equal(outputs["grpc"],
                                                            outputs["in_process"])),
        "tiled": {
            "frame_size": list(big.frames.shape[1:3]), "frames": len(big.frames),
            "tiles_sent": int(sum(tiles)),
            "in_process_seconds_per_frame": round(tiled_in_process / len(big.frames), 3),
            "in_process_rss_before_mib": rss_before,
            "in_process_peak_rss_mib": tiled_peak,
            "grpc_seconds_per_frame": round(tiled_over_grpc / len(big.frames), 3),
            "server_rss_before_mib": server_before.get("VmRSS"),
            "server_peak_rss_mib": server_after.get("VmHWM"),
            "grpc_identical_to_in_process": bool(np.array_equal(tiled_served, tiled_expected)),
        },
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


if __name__ == "__main__":
    sys.exit(main())
