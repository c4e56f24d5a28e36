"""The single-stage fit of a clip and its render at the native size (`progressive.fit_ladder`'s
counterpart when `progressive.stages` is 1)."""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

from tfinpaint.config import Config, uses_flow
from tfinpaint.fill.render import make_fill_fn, native_prefill, render
from tfinpaint.fitting.loop import fit
from tfinpaint.io.clip import resize_frames, resize_masks
from tfinpaint.io.progress import Progress
from tfinpaint.io.rundir import RunDir


def fit_and_render(config: Config, frames: np.ndarray, masks: np.ndarray, run: RunDir, *,
                   working_size: tuple[int, int], resume: bool = False,
                   verbose: bool = True) -> tuple[np.ndarray, dict]:
    """Fits (or resumes) a network at `working_size` and fills the native-size clip with it.

    `frames` and `masks` are the clip at its own size (uint8 [N,H,W,3] and [N,H,W,1]). Returns the
    filled frames and the run's summary entries. With 0 steps on a new run nothing is fitted: the
    result is the prefill alone.
    """
    prefilled, prefill_seconds = None, 0.0
    if uses_flow(config.data.prefill) or (config.train.steps == 0 and not resume):
        # the clip's real holes prefilled at the native size: the flow fill network's third
        # input, and with 0 steps the result itself
        began = time.perf_counter()
        prefilled = native_prefill(config.data.prefill, frames, masks, config.flow)
        prefill_seconds = time.perf_counter() - began
        if verbose:
            print(f"{config.data.prefill} prefill of {len(frames)} frames at "
                  f"{frames.shape[2]}x{frames.shape[1]} in {prefill_seconds:.1f} s",
                  file=sys.stderr)
    if config.train.steps == 0 and not resume:
        # no fitting: the prefill alone (with data.prefill: flow, propagation only)
        extra = {"steps": 0, "prefill": config.data.prefill,
                 "prefill_seconds": round(prefill_seconds, 1),
                 "native_size": list(frames.shape[1:3])}
        return prefilled, extra
    outcome = fit(config, resize_frames(frames, *working_size),
                  resize_masks(masks, *working_size), run, verbose=verbose)
    if verbose:
        why = f" ({outcome.stop_reason})" if outcome.stop_reason else ""
        print(f"fitted to step {outcome.steps} in {outcome.seconds:.0f} s{why}; rendering", file=sys.stderr)
    began = time.perf_counter()
    fill = make_fill_fn(outcome.model.generator, config.data.prefill, working_size=working_size,
                        native_detail=config.flow.native_detail)
    rendering = Progress("rendering", total=len(frames), unit="frame")
    filled = render(fill, frames, masks, batch_size=config.infer.batch_size,
                    progress=rendering.update if verbose else None,
                    prefilled=prefilled if uses_flow(config.data.prefill) else None)
    extra = {
        "steps": outcome.steps, "fit_seconds": round(outcome.seconds, 1),
        "render_seconds": round(time.perf_counter() - began, 1),
        "prefill_seconds": round(prefill_seconds, 1),
        "working_size": list(working_size), "native_size": list(frames.shape[1:3]),
        "selfcheck_psnr": outcome.selfcheck[-1][2] if outcome.selfcheck else None,
        "stop_reason": outcome.stop_reason,
        # generator.flow_keep and smooth_share: "auto" measured after this fit (the shares, keep
        # and smooth, and held-out hole PSNRs)
        "flow_keep": (dataclasses.asdict(outcome.flow_keep) if outcome.flow_keep
                      else config.generator.flow_keep),
        "recoveries": outcome.recoveries,
        "skipped_steps": outcome.skipped,
    }
    return filled, extra
