"""Fitting one video: `fit` builds the Inpainter, resumes from its checkpoints, fits, reports."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from tfinpaint.config import Config, uses_flow
from tfinpaint.data.samplers import MaskSampler, sampling_from
from tfinpaint.errors import InputError
from tfinpaint.fitting.blend import BlendChoice, fixed_shares, measure_blend, set_blend
from tfinpaint.fitting.checkpoints import Checkpoints
from tfinpaint.fitting.device import choose_precision, choose_strategy
from tfinpaint.fitting.inpainter import Inpainter
from tfinpaint.fitting.monitor import FitProgress, Monitor
from tfinpaint.fitting.numerics import NumericsLog
from tfinpaint.fitting.schedule import FitClock, begin_segment, budget_spent, learning_rate, schedule_end
from tfinpaint.io.rundir import RunDir
from tfinpaint.model.generator import flow_keep_layer, generator_from, smooth_share_layer
from tfinpaint.model.vgg import build_feature_extractor, resolve_weights


def build_inpainter(config: Config, *, in_channels: int = 4) -> Inpainter:
    """The generator and its trainer, compiled with Adam as configured (call in strategy scope)."""
    generator = generator_from(config.generator, in_channels=in_channels,
                               prefill=config.data.prefill)
    losses = config.losses
    # The VGG weights are checked here, before any step, so a missing file is one clear line.
    extractor = (build_feature_extractor(resolve_weights(losses.vgg_weights))
                 if losses.ambiguity > 0 else None)
    model = Inpainter(generator, reconstruction=losses.reconstruction, ambiguity=losses.ambiguity,
                      stabilization=losses.stabilization, feature_extractor=extractor,
                      ambiguity_positions=losses.ambiguity_positions,
                      perturbation=losses.perturbation,
                      ambiguity_target_positions=losses.ambiguity_target_positions,
                      stabilization_examples=losses.stabilization_examples, seed=config.train.seed,
                      prefill=config.data.prefill, debug_numerics=config.train.debug_numerics)
    train = config.train
    end_step, end_seconds, configured = schedule_end(config)
    model.decay_segment.assign([0.0, 0.0, configured, end_step, end_seconds, configured])
    rate = learning_rate(config, model.fit_seconds, model.decay_segment, model.rate_scale)
    optimizer = keras.optimizers.Adam(rate,
                                      beta_1=train.beta_1, beta_2=train.beta_2,
                                      global_clipnorm=train.clip_global_norm or None)
    model.compile(optimizer=optimizer, steps_per_execution=config.train.steps_per_execution)
    optimizer.build(generator.trainable_variables)
    # Its generator is built. Without this, Keras under a distribution strategy would build the
    # model by calling it on a (dict) training batch, which is not the generator's input.
    model.built = True
    return model


@dataclass
class FitOutcome:
    model: Inpainter
    steps: int
    seconds: float
    stop_reason: str = ""
    selfcheck: list[tuple[int, float, float]] = field(default_factory=list)
    recoveries: list[dict] = field(default_factory=list)  # see Monitor.recover
    skipped: list[dict] = field(default_factory=list)  # see Monitor.skip
    # generator.flow_keep and smooth_share as measured after this fit ("auto"); None where
    # nothing was measured
    flow_keep: BlendChoice | None = None


def fit(config: Config, frames: np.ndarray, masks: np.ndarray, run: RunDir, *,
        verbose: bool = True, callbacks: tuple = (), sampler=None,
        in_channels: int = 4, warm_start=None) -> FitOutcome:
    """Fits (or resumes fitting) a generator to `frames` (uint8 [N,H,W,3] at working resolution).

    Resumes from the newest checkpoint in the run folder, if any, drawing exactly the samples an
    uninterrupted fit would have drawn from there on. `sampler` replaces the `MaskSampler` (any
    object with its `dataset` and `fixed_batch`; progressive fitting passes a patch sampler whose
    batches carry a prior) and `in_channels` is the generator's input width (7 with a prior).
    `warm_start(generator)`, if given, sets the initial weights of a fit that has no checkpoint.
    """
    keras.mixed_precision.set_global_policy(choose_precision(config.train.precision))
    keras.utils.set_random_seed(config.train.seed)
    strategy = choose_strategy()
    with strategy.scope():
        model = build_inpainter(config, in_channels=in_channels)
        checkpoints = Checkpoints(model, run.checkpoints)
        start = checkpoints.restore_latest()
        if start > 0 and begin_segment(model, config) and verbose:
            print(f"the schedule goes on from step {start} at learning rate "
                  f"{model.decay_segment.numpy()[2]:.2e}", file=sys.stderr)
        if warm_start is not None and start == 0:
            warm_start(model.generator)
    if sampler is None:
        sampler = training_sampler(config, frames, masks, verbose=verbose)
    selfcheck_batch = sampler.fixed_batch(config.train.selfcheck_frames, seed=config.train.seed)
    monitor = Monitor(config=config, run=run, checkpoints=checkpoints,
                      selfcheck_batch=selfcheck_batch, verbose=verbose)
    if config.train.debug_numerics:
        monitor.numerics = NumericsLog(model.numerics_names(),
                                       [v.path for v in model.generator.trainable_variables],
                                       monitor.writer, verbose=verbose)
    began = time.perf_counter()
    remaining = config.train.steps - start
    choice = None  # generator.flow_keep and smooth_share measured after this fit
    if remaining > 0 and budget_spent(model, config):
        if verbose:
            print(f"the time budget of {config.train.time_budget_minutes:g} min is spent "
                  f"({float(model.fit_seconds.numpy()) / 60:.1f} min fitted); raise "
                  "--time-budget to fit on", file=sys.stderr)
    elif remaining > 0:
        spe = config.train.steps_per_execution
        remaining = math.ceil(remaining / spe) * spe
        dataset = sampler.dataset(batch_size=config.train.batch_size, seed=config.train.seed,
                                  start_step=start)
        if verbose:
            budget = config.train.time_budget_minutes
            fitted = float(model.fit_seconds.numpy()) / 60.0
            print(f"fitting steps {start}..{config.train.steps}" + (
                f" or until {budget:g} min of fitting ({fitted:.1f} done)" if budget else ""),
                file=sys.stderr)
        progress = [FitProgress(config, monitor)] if verbose else []
        model.fit(dataset, epochs=1, steps_per_epoch=remaining // spe * spe, shuffle=False,
                  callbacks=[FitClock(), monitor, *progress, *callbacks], verbose=0)
        if monitor.diverged and monitor.recovery.events:
            raise InputError(f"{run.path}: fitting stopped, {monitor.diverged}")
        if monitor.diverged:
            kept = checkpoints.saved_step
            raise InputError(f"{run.path}: fitting stopped, {monitor.diverged}; " + (
                f"the last good checkpoint (step {kept}) is kept" if kept is not None else
                "no checkpoint was saved") + "; lower train.learning_rate and --resume")
        monitor.run_selfcheck(monitor.step(), images=True)
        if monitor.numerics is not None and verbose:
            print(f"numerics: {monitor.numerics.summary()}", file=sys.stderr)
        choice = settle_blend(config, model, sampler, monitor, verbose=verbose)
    else:
        if verbose:
            print(f"already fitted to step {start}", file=sys.stderr)
        settings = config.generator
        if not (isinstance(settings.flow_keep, str) and isinstance(settings.smooth_share, str)):
            settle_blend(config, model, sampler, monitor, verbose=verbose)  # fixed, maybe changed
    return FitOutcome(model=model, steps=int(model.optimizer.iterations.numpy()),
                      seconds=time.perf_counter() - began, stop_reason=monitor.stop_reason,
                      selfcheck=monitor.history,
                      recoveries=monitor.recovery.events if monitor.recovery else [],
                      skipped=monitor.recovery.skips if monitor.recovery else [],
                      flow_keep=choice)


def training_sampler(config: Config, frames: np.ndarray, masks: np.ndarray, *,
                     verbose: bool = False) -> MaskSampler:
    """The fit's `MaskSampler` of `frames` and `masks` (at working resolution): with a flow fill,
    the clip's `VideoFlow`; with `data.held_out` "beside" or "both" and a share to measure
    ("auto"), a tube of known pixels beside the holes (`tfinpaint.data.masks.beside`) held out of
    the fit, on which (and, with "both", on training holes too) `fitting.blend.held_out`
    measures the shares."""
    flow = held = None
    if uses_flow(config.data.prefill):
        from tfinpaint.data.masks import beside
        from tfinpaint.fill.flow import VideoFlow

        settings = config.generator
        if config.data.held_out in ("beside", "both") and "auto" in (settings.flow_keep,
                                                                     settings.smooth_share):
            held = beside(masks)
        flow = VideoFlow(frames, masks if held is None else np.maximum(masks, held), config.flow)
        if verbose:
            print(f"flow fields of {len(frames)} frames at {frames.shape[2]}x{frames.shape[1]} "
                  f"in {flow.seconds:.1f} s", file=sys.stderr)
            if held is not None:
                print(f"held out of the fit to measure the blend on: {held.mean():.1%} of the "
                      "pixels, beside the holes", file=sys.stderr)
    sampler = MaskSampler(frames, masks, sampling_from(config.data), flow=flow, held=held)
    if verbose and sampler.crop is not None:
        where = ("around the translated hole" if config.data.crop_placement == "hole"
                 else "anywhere in the frame")
        print(f"training crops of {sampler.crop[1]}x{sampler.crop[0]}, {where}", file=sys.stderr)
    return sampler


def settle_blend(config: Config, model: Inpainter, sampler, monitor: Monitor, *,
                 verbose: bool) -> BlendChoice | None:
    """Sets the generator's `FlowKeep` and `SmoothShare` as `generator.flow_keep` and
    `generator.smooth_share` say (with "auto", measured together on held-out training holes and
    logged to the console and TensorBoard) and checkpoints them. Returns the measurement, None
    where nothing was measured."""
    generator = model.generator
    if flow_keep_layer(generator) is None and smooth_share_layer(generator) is None:
        return None
    fixed, choice = fixed_shares(generator, config.generator), None
    keep, share = fixed["keep"], fixed["share"]
    if None in (keep, share):
        choice = measure_blend(generator, sampler, config.data.prefill, config.train.seed,
                               on=config.data.held_out, **fixed)
        keep, share = choice.keep, choice.smooth
        if verbose:
            print(f"blend: {choice.describe()}", file=sys.stderr)
        monitor.log_keep(choice)
    set_blend(generator, keep=keep, share=share)
    monitor.checkpoints.save(again=True)
    return choice
