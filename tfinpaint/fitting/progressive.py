"""Progressive high-resolution fitting (Sec. 4.1, Fig. 3, Appendix A.4).

A ladder of stages, each a fit of its own in `runs/NAME/stage<k>/`, resumable on its own:

- stage 1 is the ordinary fit at the base working size (`data.working_*`) on whole frames;
- stage k > 1 works at twice the previous stage's size (the last at the video's own size, or
  `progressive.final_*`) and fits on base-size patches, its input carrying the previous stage's
  upsampled result as the prior (3 more channels). Patch centres are `patch_boundary_weight`
  times likelier near the object's boundary, and a patch whose translated hole hides fewer known
  pixels than `min_hole_pixels` (App. A.4: 1,000 per 960x540 patch) is redrawn;
- a later stage fills on the grid of `tfinpaint.tiling`, skipping tiles without a hole, at most
  `progressive.tile_batch` tiles at a time, one frame at a time.

Each stage writes `stage<k>/result/frames/*.png`, the next stage's prior; a stage with a result
is done and is skipped on resume.
"""

from __future__ import annotations

import copy
import json
import sys
import time

import numpy as np

from tfinpaint.config import Config
from tfinpaint.data.samplers import PatchSampler
from tfinpaint.fill.render import Stage, fill_stage, load_generator, make_fill_fn, make_prior_fill_fn
from tfinpaint.fitting.loop import fit
from tfinpaint.io.clip import resize_frames, resize_masks, upsample
from tfinpaint.io.progress import Progress
from tfinpaint.io.rundir import RunDir, staged_folder
from tfinpaint.io.video import read_video, write_frames
from tfinpaint.model.generator import PRIOR_CHANNELS

PAPER_PATCH_PIXELS = 960 * 540


def stage_sizes(config: Config, native: tuple[int, int]) -> list[tuple[int, int]]:
    """(H, W) of each stage: the base size, doubled per stage; the last is `final_*` or native."""
    p = config.progressive
    base = (config.data.working_height or native[0], config.data.working_width or native[1])
    sizes = [(base[0] * 2 ** k, base[1] * 2 ** k) for k in range(p.stages)]
    if p.stages > 1:
        sizes[-1] = (p.final_height or native[0], p.final_width or native[1])
    return sizes


def min_hole_pixels(patch: tuple[int, int], per_paper_patch: int) -> int:
    """The hole-pixel threshold of an (h, w) patch: `per_paper_patch` pixels per 960x540 patch
    (the paper's), scaled by the patch's area; the frame's size does not enter."""
    return int(round(per_paper_patch * patch[0] * patch[1] / PAPER_PATCH_PIXELS))


def stage_config(config: Config, stage: int, size: tuple[int, int]) -> Config:
    """The config of one stage: its working size and, for later stages, its steps and budget."""
    staged = copy.deepcopy(config)
    staged.data.working_height, staged.data.working_width = size
    if stage > 1:
        p = config.progressive
        staged.data.crop_height = staged.data.crop_width = 0  # the patch sampler crops
        staged.train.steps = p.stage_steps + (stage - 2) * p.stage_steps_increment
        if p.stage_time_budget_minutes:
            staged.train.time_budget_minutes = p.stage_time_budget_minutes
    return staged


# --- the ladder -----------------------------------------------------------------------------

def _stage_run(run: RunDir, stage: int) -> RunDir:
    return RunDir(run.path / f"stage{stage}")


def warm_start_from(previous):
    """`fit`'s warm start: copy `previous`'s weights; input weights for the prior start at zero,
    so the new stage begins as the previous one, and learns how much to trust the prior."""

    def initialize(generator) -> None:
        for source, target in zip(previous.weights, generator.weights):
            value = source.numpy()
            if value.shape != tuple(target.shape):  # a first layer: more input channels
                padded = np.zeros(target.shape, value.dtype)
                padded[..., :value.shape[-2], :] = value
                value = padded
            target.assign(value)

    return initialize


def _read_stage_result(stage_run: RunDir) -> np.ndarray | None:
    summary = stage_run.result / "summary.json"
    if not summary.exists():
        return None
    return read_video(stage_run.result / "frames").frames


def _write_stage_result(stage_run: RunDir, filled: np.ndarray, names: list[str],
                        summary: dict) -> None:
    with staged_folder(stage_run.result) as staged:
        write_frames(staged / "frames", filled, names)
        (staged / "summary.json").write_text(json.dumps(summary, indent=2))


def fit_ladder(config: Config, frames: np.ndarray, masks: np.ndarray, names: list[str],
               run: RunDir, *, verbose: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Fits (or resumes) every stage of the ladder on a native-resolution clip.

    Returns the last stage's result at the clip's native size (known pixels are the clip's,
    bit for bit) and each stage's summary.
    """
    sizes = stage_sizes(config, frames.shape[1:3])
    base = sizes[0]
    p = config.progressive
    result, summaries = None, []
    for index, size in enumerate(sizes):
        number = index + 1
        stage_run = _stage_run(run, number)
        done = _read_stage_result(stage_run)
        if done is not None and done.shape[1:3] == size:
            if verbose:
                print(f"stage {number} at {size[1]}x{size[0]}: done, result read", file=sys.stderr)
            result = done
            summaries.append(json.loads((stage_run.result / "summary.json").read_text()))
            continue
        staged = stage_config(config, number, size)
        stage_run.create(staged)
        stage_frames = resize_frames(frames, *size)
        stage_masks = resize_masks(masks, *size)
        if verbose:
            print(f"stage {number} at {size[1]}x{size[0]}: fitting", file=sys.stderr)
        if index == 0:
            outcome = fit(staged, stage_frames, stage_masks, stage_run, verbose=verbose)
            stage = Stage(size, make_fill_fn(outcome.model.generator, staged.data.prefill),
                          with_prior=False)
            priors = None
        else:
            priors = upsample(result, *size)
            band = (round(config.data.boundary_band_y * size[0] / 480),
                    round(config.data.boundary_band_x * size[0] / 480))
            sampler = PatchSampler(stage_frames, stage_masks, priors, patch=base, band=band,
                                   boundary_weight=p.patch_boundary_weight,
                                   min_pixels=min_hole_pixels(base, p.min_hole_pixels),
                                   tries=p.placement_tries)
            warm_start = None
            if p.warm_start:
                previous = load_generator(_stage_run(run, number - 1),
                                          4 + (PRIOR_CHANNELS if number > 2 else 0))
                warm_start = warm_start_from(previous)
            outcome = fit(staged, stage_frames, stage_masks, stage_run, verbose=verbose,
                          sampler=sampler, in_channels=4 + PRIOR_CHANNELS,
                          warm_start=warm_start)
            stage = Stage(size, make_prior_fill_fn(outcome.model.generator, staged.data.prefill),
                          with_prior=True)
        began = time.perf_counter()
        rendering = Progress(f"rendering stage {number}", total=len(stage_frames), unit="frame")
        result = fill_stage(stage, stage_frames, stage_masks, priors, base=base, config=staged,
                            progress=rendering.update if verbose else None)
        summary = {"stage": number, "size": list(size), "steps": outcome.steps,
                   "fit_seconds": round(outcome.seconds, 1),
                   "fill_seconds": round(time.perf_counter() - began, 1),
                   "selfcheck_psnr": outcome.selfcheck[-1][2] if outcome.selfcheck else None,
                   "stop_reason": outcome.stop_reason}
        _write_stage_result(stage_run, result, names, summary)
        summaries.append(summary)
    filled = frames.copy()
    hole = masks[..., 0] != 0
    for index in range(len(frames)):
        filled[index][hole[index]] = upsample(result[index], *frames.shape[1:3])[hole[index]]
    return filled, summaries
