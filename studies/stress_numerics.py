"""Stress a fit for NaNs: the default config with train.debug_numerics on, one clip, one line out.

    python studies/stress_numerics.py --clip flat --lr 4e-3 --precision mixed_bfloat16 --minutes 3
    python studies/stress_numerics.py --clip bmx-object --lr 2e-3 --precision float32 --size 120 216

Clips: "bmx-fixed" (bmx-trees, centred rectangle of half the width and height: a large hole),
"bmx-object" (bmx-trees with crossing's object masks borrowed, dilated), "flat" (generated: sky-like
smooth gradients, slopes, almost no texture, a large moving elliptical hole; see `flat_clip`).
The learning rate is held constant (final_lr_fraction 1): harsher than the default's decay, which
at the reported failure (step 923 of a 20-minute budget) was still near its start. Prints one JSON
line: clip, lr, precision, steps, the first non-finite tensor (or none), the largest gradient
global norm and the spikes.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path


import cv2
import numpy as np

from tfinpaint import config as config_lib
from tfinpaint.errors import InputError
from tfinpaint.evaluation import protocols
from tfinpaint.io import video

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def flat_clip(num_frames: int, height: int, width: int, seed: int = 0):
    """Sky over a slope: smooth vertical gradients, faint noise, a slow pan; an ellipse covering
    about 15% of the frame moves across it. Returns uint8 frames [N,H,W,3] and masks [N,H,W,1]."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height)[:, None]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    sky_top, sky_bottom = np.array([70, 120, 200.0]), np.array([190, 215, 240.0])
    snow_near, snow_far = np.array([235, 238, 245.0]), np.array([200, 205, 220.0])
    for t in range(num_frames):
        x = np.linspace(0.0, 1.0, width)[None, :] + 0.004 * t  # a slow pan
        horizon = 0.55 + 0.08 * np.sin(2.2 * x + 0.5)
        sky = sky_top + (sky_bottom - sky_top) * (y / horizon)[..., None]
        slope = snow_far + (snow_near - snow_far) * ((y - horizon) / (1 - horizon))[..., None]
        image = np.where((y < horizon)[..., None], sky, slope)
        image += rng.normal(0, 0.8, image.shape)  # sensor noise, no texture
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
        cy = int(height * (0.45 + 0.15 * np.sin(t / 7.0)))
        cx = int(width * (0.2 + 0.6 * t / max(num_frames - 1, 1)))
        cv2.ellipse(masks[t, ..., 0], (cx, cy), (int(width * 0.2), int(height * 0.25)),
                    0, 0, 360, 1, -1)
    return frames, masks


def load(clip: str, num_frames: int, height: int, width: int):
    from tfinpaint.io.clip import resize_frames

    if clip == "flat":
        return flat_clip(num_frames, height, width)
    frames = video.read_video(DATA / "bmx-trees" / "frames", max_frames=num_frames).frames
    frames = resize_frames(frames, height, width)
    if clip == "bmx-fixed":
        masks = np.zeros((len(frames), height, width, 1), np.uint8)
        masks[:, height // 4:height - height // 4, width // 4:width - width // 4] = 1
    else:
        source = video.read_video(DATA / "crossing" / "masks").frames.max(axis=-1)
        masks = protocols.dilate(protocols.object_masks(source, len(frames), height, width),
                                 max(1, height // 40))
    return frames, masks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", choices=("flat", "bmx-fixed", "bmx-object"), required=True)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--size", type=int, nargs=2, default=(240, 432), metavar=("H", "W"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--config", default=str(config_lib.CONFIG_DIR / "default.yaml"))
    args = parser.parse_args(argv)

    from tfinpaint.fitting.loop import fit
    from tfinpaint.io.rundir import RunDir

    height, width = args.size
    config = config_lib.load_config([args.config], [
        f"train.learning_rate={args.lr}", f"train.precision={args.precision}",
        f"train.time_budget_minutes={args.minutes}", f"train.steps={args.steps}",
        "train.final_lr_fraction=1.0", "train.debug_numerics=true", "train.checkpoint_every=0",
        "train.selfcheck_every=0", "train.image_every=0", "train.log_every=100",
        f"data.working_height={height}", f"data.working_width={width}", *args.set])
    frames, masks = load(args.clip, args.frames, height, width)
    record = dict(clip=args.clip, lr=args.lr, precision=args.precision, size=[height, width],
                  hole_fraction=round(float(masks.mean()), 3), overrides=args.set)
    run = RunDir(tempfile.mkdtemp(prefix="stress-") + "/run")
    run.create(config, overwrite=False)
    began = time.perf_counter()
    try:
        outcome = fit(config, frames, masks, run, verbose=True)
        record.update(steps=outcome.steps, first_nonfinite=None)
    except InputError as error:
        text = str(error)
        match = re.search(r"step (\d+): ([^;]+)", text)
        record.update(steps=int(match.group(1)) if match else None,
                      first_nonfinite=match.group(2) if match else text)
    record["seconds"] = round(time.perf_counter() - began, 1)
    record["run"] = str(run.path)
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
