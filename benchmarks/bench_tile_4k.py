"""Peak memory and time of `tools/tile_4k.py` on a 3840x2160 clip; prints one JSON line.

    python benchmarks/bench_tile_4k.py                       # bmx-trees upscaled, a tiny 3-stage ladder
    python benchmarks/bench_tile_4k.py --run runs/clip4k     # a fitted run instead

The clip (default 20 frames of ../shared/data/bmx-trees upscaled to 3840x2160, with the fixed
centre mask, 1/4 of width and height) is written under --workdir (default /tmp, never the
repository). Without --run, a ladder of `configs/progressive_4k.yaml` with tiny untrained
networks (`--channels`) is written there: it exercises the same tiling and memory as a fitted
one. The peak resident set size of the tile_4k process is read from `/usr/bin/time -v` where it
exists, otherwise from `resource.getrusage(RUSAGE_CHILDREN)`. Known pixels of every output
frame are checked to be the input's, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from tfinpaint.evaluation.protocols import fixed_masks

BMX = ROOT.parent / "shared" / "data" / "bmx-trees" / "frames"
SIZE = (2160, 3840)


def make_clip(folder: Path, frames: int, source: Path) -> None:
    """bmx-trees (or a gradient where it is absent) upscaled to 4K, with fixed centre masks."""
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    mask = fixed_masks(1, *SIZE)[0, ..., 0] * 255
    files = sorted(source.glob("*.jpg")) + sorted(source.glob("*.png")) if source.is_dir() else []
    for index in range(frames):
        if files:
            image = cv2.resize(cv2.imread(str(files[index % len(files)])), SIZE[::-1],
                               interpolation=cv2.INTER_CUBIC)
        else:
            y, x = np.mgrid[0:SIZE[0], 0:SIZE[1]]
            image = np.stack([x * 255 // SIZE[1], y * 255 // SIZE[0],
                              np.full_like(x, 9 * index % 256)], -1).astype(np.uint8)
        cv2.imwrite(str(folder / "frames" / f"{index:05d}.png"), image)
        cv2.imwrite(str(folder / "masks" / f"{index:05d}.png"), mask)


def make_ladder(folder: Path, channels: int) -> None:
    """A run folder holding an untrained ladder of configs/progressive_4k.yaml."""
    import tensorflow as tf

    from tfinpaint.config import load_config
    from tfinpaint.fitting.progressive import stage_config, stage_sizes
    from tfinpaint.io.rundir import save_config
    from tfinpaint.model.generator import PRIOR_CHANNELS
    from tfinpaint.model.generator import generator_from

    config = load_config([ROOT / "configs" / "progressive_4k.yaml"],
                         [f"generator.channels={channels}"])
    save_config(config, folder / "config.yaml")
    for index, size in enumerate(stage_sizes(config, SIZE)):
        stage = folder / f"stage{index + 1}"
        save_config(stage_config(config, index + 1, size), stage / "config.yaml")
        generator = generator_from(config.generator,
                                   in_channels=4 + (PRIOR_CHANNELS if index else 0))
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator),
                                   str(stage / "checkpoints"), max_to_keep=1).save(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a fitted run (default: a tiny untrained 4K ladder)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4, help="tiles per network call")
    parser.add_argument("--workdir", default="/tmp/tfinpaint_bench_4k")
    parser.add_argument("--source", default=str(BMX),
                        help="frames to upscale (a gradient clip where the folder is absent)")
    args = parser.parse_args()

    work = Path(args.workdir)
    clip = work / f"clip{args.frames}"
    if not (clip / "masks" / f"{args.frames - 1:05d}.png").exists():
        make_clip(clip, args.frames, Path(args.source))
    run = Path(args.run) if args.run else work / f"ladder_c{args.channels}"
    if not args.run and not (run / "stage3" / "checkpoints").exists():
        make_ladder(run, args.channels)
    out = work / "out"
    command = [sys.executable, str(ROOT / "tools" / "tile_4k.py"), "--run", str(run),
               "--video", str(clip / "frames"), "--masks", str(clip / "masks"),
               "--out", str(out), "--batch", str(args.batch), "--quiet"]
    timer = "/usr/bin/time"
    measured_by = "/usr/bin/time -v" if os.access(timer, os.X_OK) else "getrusage"
    if measured_by != "getrusage":
        command = [timer, "-v", *command]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        return done.returncode
    if measured_by == "getrusage":
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    else:
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])

    exact = True
    for index in range(args.frames):
        name = f"{index:05d}.png"
        source = cv2.imread(str(clip / "frames" / name))
        filled = cv2.imread(str(out / name))
        known = cv2.imread(str(clip / "masks" / name), cv2.IMREAD_GRAYSCALE) == 0
        exact &= bool((source[known] == filled[known]).all())
    print(json.dumps({"frames": args.frames, "size": f"{SIZE[1]}x{SIZE[0]}",
                      "run": str(run), "peak_rss_mb": round(peak_kb / 1024, 1),
                      "measured_by": measured_by, "seconds": round(seconds, 1),
                      "seconds_per_frame": round(seconds / args.frames, 2),
                      "known_pixels_bit_exact": exact}))
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
