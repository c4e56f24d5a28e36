"""Progressive fitting: patch sampling (threshold, boundary preference), prior alignment, grid
inference, and each stage of a tiny ladder resuming after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_args
from tfinpaint import train
from tfinpaint.config import load_config
from tfinpaint.data import masks as mask_ops
from tfinpaint.data.samplers import PatchSampler
from tfinpaint.fill.render import grid_fill
from tfinpaint.fitting.progressive import min_hole_pixels, stage_sizes
from tfinpaint.io.clip import upsample
from tfinpaint.io.sample import make_sample
from tfinpaint.io.video import write_frames

ROOT = Path(__file__).resolve().parent.parent
HEIGHT, WIDTH, PATCH = 96, 160, (32, 48)


def _gradient(frames=4, height=HEIGHT, width=WIDTH):
    """R = row, G = column, B = frame index: every pixel says where it came from."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([y, x, np.full_like(y, 10 * i)], -1) for i in range(frames)]
                    ).astype(np.uint8)


def _object_masks(frames=4, height=HEIGHT, width=WIDTH):
    masks = np.zeros((frames, height, width, 1), np.uint8)
    for i in range(frames):
        masks[i, 36 + i:60 + i, 60:100] = 1
    return masks


def _sampler(frames, masks, priors=None, **overrides):
    options = dict(patch=PATCH, band=(6, 6), boundary_weight=5.0, min_pixels=0, tries=16)
    options.update(overrides)
    return PatchSampler(frames, masks, frames if priors is None else priors, **options)


def _batch(sampler, count, seed=0):
    return {key: value.numpy() for key, value in
            next(iter(sampler.dataset(batch_size=count, seed=seed))).items()}


def test_threshold_belongs_to_the_patch_not_the_frame():
    # App. A.4: 1,000 object pixels per 960x540 patch, at 2K and 4K alike
    assert min_hole_pixels((540, 960), 1000) == 1000
    # another base size: scaled by the patch's area
    assert min_hole_pixels((240, 432), 1000) == 200
    assert min_hole_pixels((1080, 1920), 1000) == 4000


def test_stage_sizes_double_and_end_at_the_video_size():
    config = load_config([ROOT / "configs" / "progressive_cpu.yaml"])
    assert stage_sizes(config, (480, 854)) == [(240, 432), (480, 854)]
    config = load_config([ROOT / "configs" / "progressive_4k.yaml"])
    assert stage_sizes(config, (2160, 3840)) == [(540, 960), (1080, 1920), (2160, 3840)]


def test_patches_hide_at_least_the_threshold_of_known_pixels_eagerly_and_in_tf_data():
    frames, masks = _gradient(), _object_masks()
    threshold = 300
    sampler = _sampler(frames, masks, min_pixels=threshold)
    batch = _batch(sampler, 64)
    hidden = (batch["translated"] * (1 - batch["masks"])).sum(axis=(1, 2, 3))
    assert (hidden >= threshold).all(), hidden.min()
    eager = sampler.sample(tf.constant([3, 4], tf.int64))
    assert int(tf.reduce_sum(tf.cast(eager["translated"] * (1 - eager["masks"]), tf.int32))) \
        >= threshold
    # Without the threshold, many first candidates hide less: the rule is what enforces it.
    loose = _batch(_sampler(frames, masks, tries=1), 64)
    assert ((loose["translated"] * (1 - loose["masks"])).sum(axis=(1, 2, 3)) < threshold).any()


def test_patch_centres_prefer_the_object_boundary():
    frames, masks = _gradient(), _object_masks()
    band = mask_ops.boundary_band(masks, 6, 6)

    def in_band(weight):
        batch = _batch(_sampler(frames, masks, boundary_weight=weight, tries=1), 400, seed=7)
        # the patch's centre, read back from the gradient (R = row, G = column, B = frame)
        rows = batch["frames"][:, PATCH[0] // 2, PATCH[1] // 2, 0].astype(int)
        cols = batch["frames"][:, PATCH[0] // 2, PATCH[1] // 2, 1].astype(int)
        index = batch["frames"][:, 0, 0, 2].astype(int) // 10
        return band[index, rows, cols].mean()

    area = band.mean()
    uniform, boundary = in_band(1.0), in_band(5.0)
    # Weight w turns an area a into w a / (w a + 1 - a) of the draws (clipping at the borders
    # aside): here about 0.2 -> 0.55.
    assert abs(uniform - area) < 0.1, (uniform, area)
    assert boundary > uniform + 0.2, (boundary, uniform)


def test_prior_is_cut_from_the_same_window_as_the_patch():
    frames, masks = _gradient(), _object_masks()
    batch = _batch(_sampler(frames, masks, priors=255 - frames), 32)
    np.testing.assert_array_equal(batch["prior"], 255 - batch["frames"])
    # A real prior: the frames at half size brought back up; aligned to within rounding.
    priors = upsample(upsample(frames, HEIGHT // 2, WIDTH // 2), HEIGHT, WIDTH)
    batch = _batch(_sampler(frames, masks, priors=priors), 32)
    inner = (slice(None), slice(4, -4), slice(4, -4), slice(0, 2))
    difference = np.abs(batch["prior"].astype(int) - batch["frames"].astype(int))[inner]
    assert difference.max() <= 2, difference.max()


def test_grid_fill_aligns_the_prior_skips_hole_free_tiles_and_keeps_known_pixels():
    frame = _gradient(1)[0]
    prior = 255 - frame
    mask = np.zeros((HEIGHT, WIDTH, 1), np.uint8)
    mask[10:20, 10:30] = 1  # only in the top-left grid tile and the seam tiles over it
    calls = []

    def fill(frames, masks, priors):
        calls.append(int(frames.shape[0]))
        return tf.where(masks > 0, priors, frames)  # "fill" with the prior

    filled = grid_fill(fill, frame, mask, prior, tile_size=(HEIGHT // 2, WIDTH // 2), batch=2)
    hole = mask[..., 0] > 0
    np.testing.assert_array_equal(filled[~hole], frame[~hole])
    np.testing.assert_array_equal(filled[hole], prior[hole])
    assert sum(calls) < 9  # of 2x2 grid + 5 seam tiles, those without the hole are skipped


@pytest.mark.slow
def test_each_stage_resumes_after_sigkill(tmp_path, capsys):
    sample = make_sample(num_frames=4, height=64, width=112)
    names = [f"f{i}" for i in range(4)]
    write_frames(tmp_path / "frames", sample.frames, names)
    write_frames(tmp_path / "masks", np.repeat(sample.masks * 255, 3, axis=-1), names)
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "tfinpaint.train", "--video", str(tmp_path / "frames"),
               "--masks", str(tmp_path / "masks"), "--run-dir", str(run),
               "--config", str(ROOT / "configs" / "progressive_cpu.yaml"), *tiny_args(
                   "--set", "data.working_height=32", "--set", "data.working_width=56",
                   "--set", "train.steps=4", "--set", "progressive.stage_steps=400",
                   "--set", "progressive.placement_tries=4")]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    index = run / "stage2" / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if index.exists() and "ckpt-4" in index.read_text():
                break
            time.sleep(0.3)
        else:
            pytest.fail("no stage-2 checkpoint appeared")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (run / "stage1" / "result" / "summary.json").exists()
    assert not (run / "stage2" / "result").exists()
    # The fit may have gone on past ckpt-4 before the kill landed, and the kill may land after a
    # checkpoint's files but before the index names it: the resume takes the newest checkpoint
    # on disk (fitting.checkpoints.Checkpoints), so resume 4 steps past that one.
    saved = max(int(p.name[len("ckpt-"):-len(".index")])
                for p in index.parent.glob("ckpt-*.index"))
    total = saved + 4

    # the resume needs no process of its own: it runs here
    code = train.main(["--run-dir", str(run), "--resume",
                       "--set", f"progressive.stage_steps={total}"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "stage 1 at 56x32: done" in err
    started = [line for line in err.splitlines() if line.startswith("fitting steps")]
    assert len(started) == 1 and int(started[0].split()[2].split("..")[0]) == saved >= 4, started
    stage2 = json.loads((run / "stage2" / "result" / "summary.json").read_text())
    assert stage2["steps"] == total
    assert (run / "result" / "video.mp4").exists()


def test_warm_start_begins_a_later_stage_as_the_previous_one():
    from tfinpaint.fitting.progressive import warm_start_from
    from tfinpaint.model.generator import PRIOR_CHANNELS
    from tfinpaint.model.generator import build_generator

    previous = build_generator("coarse_to_fine", channels=8, in_channels=4)
    later = build_generator("coarse_to_fine", channels=8, in_channels=4 + PRIOR_CHANNELS)
    warm_start_from(previous)(later)
    inputs = np.random.default_rng(0).uniform(-1, 1, (1, 32, 48, 4)).astype(np.float32)
    prior = np.random.default_rng(1).uniform(-1, 1, (1, 32, 48, PRIOR_CHANNELS)).astype(np.float32)
    np.testing.assert_allclose(later(np.concatenate([inputs, prior], -1))[-1],
                               previous(inputs)[-1], atol=1e-6)
