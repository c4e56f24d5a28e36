"""Watching a fit: the console progress, TensorBoard, the self-check, recoveries from
non-finite steps, early stop and the time budget."""

from __future__ import annotations

import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfinpaint.config import Config
from tfinpaint.fitting.checkpoints import Checkpoints
from tfinpaint.fitting.inpainter import Inpainter
from tfinpaint.fitting.numerics import NumericsLog, is_numerics_log
from tfinpaint.fitting.schedule import budget_spent
from tfinpaint.io.progress import Progress, clock
from tfinpaint.io.rundir import RunDir
from tfinpaint.model.generator import to_uint8


class FitProgress(keras.callbacks.Callback):
    """The fit's progress on the console (`tfinpaint.io.progress.Progress`): the fraction of the
    steps or of the time budget, whichever the fit will end on (the larger), the time left, steps
    per second, the current loss and the last self-check PSNR (read from `monitor.history`).

    On a terminal, one line redrawn in place; elsewhere, a line every `train.log_every` steps.
    """

    def __init__(self, config: Config, monitor: Monitor, stream=None):
        super().__init__()
        self.train = config.train
        self.monitor = monitor
        # Without logging (log_every 0) a log gets the first and the last line only.
        every = config.train.log_every or max(config.train.steps, 1)
        self.progress = Progress("fitting", unit="step", every=every, stream=stream)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        budget = self.train.time_budget_minutes * 60.0
        seconds = float(self.model.fit_seconds.numpy())
        by_steps = step / self.train.steps if self.train.steps else 1.0
        by_time = seconds / budget if budget else 0.0
        if by_time > by_steps:
            where = f"step {step}, {clock(seconds)} of {clock(budget)}"
        else:
            where = f"step {step}/{self.train.steps}"
        details = [where, *_loss_text(logs or {})]
        if self.monitor.history:
            details.append(f"self-check {self.monitor.history[-1][2]:.2f} dB")
        self.progress.update(step, max(by_steps, by_time), " | ".join(details))

    def on_train_end(self, logs=None):
        self.progress.finish()


def _loss_text(logs: dict) -> list[str]:
    """`loss 0.0312` (the total), with the terms beside it when there is more than one."""
    values = {name: float(value) for name, value in logs.items() if not is_numerics_log(name)}
    total = values.pop("total", None)
    if total is None:
        return [f"{name} {value:.4f}" for name, value in values.items()]
    if list(values) in ([], ["reconstruction"]):
        return [f"loss {total:.4f}"]
    return [f"loss {total:.4f} (" + ", ".join(f"{k} {v:.4f}" for k, v in values.items()) + ")"]


def _grid(images: list[tf.Tensor], rows: int) -> tf.Tensor:
    """Side by side, for TensorBoard: [rows, H, W * len(images), 3] uint8."""
    return to_uint8(tf.concat([image[:rows] for image in images], axis=2))


class ScalarLog(keras.callbacks.Callback):
    """Every `log_every` steps: the tracked losses as `loss/<name>`, the learning rate and
    steps per second to TensorBoard; then the trackers restart. (The console's progress line is
    `FitProgress`'s, or `PropagationMonitor`'s.)

    The base of every fit's monitor (`Monitor`, `masking.spread.PropagationMonitor`).
    """

    def __init__(self, *, logdir, log_every: int, verbose: bool):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(logdir)) if logdir else None
        self.log_every = log_every
        self.verbose = verbose  # whether the fit may write to the console

    def step(self) -> int:
        """The optimizer's step: the fit's, across resumes."""
        return int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.last_time, self.last_step = self.start, self.step()

    def log_scalars(self, step: int, logs: dict) -> None:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        if self.writer:
            with self.writer.as_default(step=step):
                for name, value in logs.items():
                    tf.summary.scalar(f"loss/{name}", float(value))
                tf.summary.scalar("train/learning_rate",
                                  float(np.asarray(self.model.optimizer.learning_rate)))
                tf.summary.scalar("train/steps_per_second", rate)
        self.model.reset_metrics()


class Recovery:
    """The fit's last good state, kept in memory, and the recoveries made from it.

    `Inpainter.train_step` skips a step whose loss or gradients are not finite and counts it;
    the monitor sees the count rise. A lone step whose gradients alone were not finite (the loss
    was) is left at that: its update was skipped, the weights and Adam's moments are as they
    were, and nothing says the fit is diverging (bf16 CPU fits meet such steps now and then;
    docs/flow_fill.md). Otherwise (the loss not finite, or a second such step within
    `snapshot_every` steps of the last) the fit rolls back to the state kept at the last
    `snapshot_every` boundary (weights, Adam's moments, the step: what a checkpoint holds, in
    memory, so at most `snapshot_every` steps are lost) and goes on at a lower learning rate.
    """

    def __init__(self, model: Inpainter):
        self.model = model
        self.variables = [*model.generator.weights, *model.optimizer.variables]
        self.state: list[np.ndarray] = []
        self.step = 0
        self.skipped = int(model.skipped_steps.numpy())
        self.events: list[dict] = []  # recoveries
        self.skips: list[dict] = []  # lone steps skipped without a recovery

    def keep(self, step: int) -> None:
        self.state = [variable.numpy() for variable in self.variables]
        self.step = step

    def nonfinite(self) -> tuple[str, int]:
        """What the last skipped step found not finite and how many steps were skipped since
        the last call; ("", 0) if none was."""
        skipped = int(self.model.skipped_steps.numpy())
        new, self.skipped = skipped - self.skipped, skipped
        if not new:
            return "", 0
        return ("the loss" if int(self.model.last_nonfinite.numpy()) == 1 else "the gradients",
                new)

    def lone(self, step: int, what: str, count: int, window: int) -> bool:
        """Whether step `step`, skipped for `what` (`count` steps skipped since the monitor last
        looked), is a lone skip of non-finite gradients: the only one, with a finite loss, and
        more than `window` steps after the last such skip (and any recovery)."""
        if what != "the gradients" or count != 1:
            return False
        earlier = [event["step"] for event in (*self.skips, *self.events)]
        return not earlier or step - max(earlier) > window

    def roll_back(self) -> None:
        for variable, value in zip(self.variables, self.state):
            variable.assign(value)


class Monitor(ScalarLog):
    """TensorBoard scalars and images, the self-check, checkpoints, recoveries from non-finite
    steps, early stop and time budget."""

    def __init__(self, *, config: Config, run: RunDir, checkpoints: Checkpoints,
                 selfcheck_batch: dict, verbose: bool):
        super().__init__(logdir=run.logs, log_every=config.train.log_every, verbose=verbose)
        self.config = config
        self.train = config.train
        self.checkpoints = checkpoints
        self.selfcheck_batch = selfcheck_batch
        self.history: list[tuple[int, float, float]] = []  # (step, seconds, self-check PSNR)
        self.best = -math.inf
        self.since_best = 0
        self.stop_reason = ""
        self.diverged = ""  # why the loss went non-finite, if it did
        self._selfcheck = tf.function(self._selfcheck_images)
        self.numerics: NumericsLog | None = None  # set by fit with train.debug_numerics
        self.recovery: Recovery | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.recovery = Recovery(self.model)
        self.recovery.keep(self.step())

    def _selfcheck_images(self, batch):
        return self.model.selfcheck(batch)

    def _due(self, step: int, every: int) -> bool:
        spe = self.train.steps_per_execution
        return every > 0 and (step // every) != ((step - spe) // every)

    def on_train_batch_end(self, batch, logs=None):
        step = self.step()
        # A skipped step left the step count as it was: it was step + 1 that failed.
        what, count = self.recovery.nonfinite()
        attempted = step + 1 if what else step
        # debug numerics: stop at the first non-finite tensor, named (tfinpaint.fitting.numerics)
        if self.numerics is not None:
            self.diverged = self.numerics.check(attempted, logs)
            if self.diverged:
                self.model.stop_training = True
                return
        logs = {name: value for name, value in (logs or {}).items() if not is_numerics_log(name)}
        if what:
            if self.recovery.lone(attempted, what, count, self.train.snapshot_every):
                self.skip(attempted, what)
            else:
                self.recover(attempted, what)
            return
        if self._due(step, self.train.snapshot_every):
            self.recovery.keep(step)
        broken = {name: float(value) for name, value in (logs or {}).items()
                  if not math.isfinite(float(value))}
        if broken:
            # These weights are not saved: the checkpoint before them stays the newest.
            name, value = next(iter(broken.items()))
            self.diverged = f"loss {name} became {value} at step {step}"
            self.model.stop_training = True
            return
        if self._due(step, self.train.log_every):
            self.log_scalars(step, logs or {})
        if self._due(step, self.train.selfcheck_every):
            self.run_selfcheck(step, images=self._due(step, self.train.image_every))
        if self._due(step, self.train.checkpoint_every):
            self.checkpoints.save()
        if budget_spent(self.model, self.config):
            self.stop_reason = f"time budget of {self.train.time_budget_minutes:g} min spent"
            self.model.stop_training = True

    def skip(self, step: int, what: str) -> None:
        """Step `step` was skipped for non-finite gradients, alone: the fit goes on unchanged."""
        self.recovery.skips.append({"step": step, "not_finite": what})
        with self.writer.as_default(step=step):
            tf.summary.scalar("train/skipped_steps", len(self.recovery.skips))
        print(f"warning: {what} became non-finite at step {step} (the loss did not): the step "
              f"was skipped and the fit goes on unchanged; another within "
              f"{self.train.snapshot_every} steps rolls it back", file=sys.stderr)

    def recover(self, step: int, what: str) -> None:
        """Step `step` was skipped for a non-finite value: roll back to the last good state and
        lower the learning rate; past `max_recoveries`, save that state (at the lowered rate, so a
        resumed fit does not replay the same divergence) and stop."""
        recovery, model = self.recovery, self.model
        recovery.roll_back()
        model.rate_scale.assign(float(model.rate_scale.numpy()) * self.train.recovery_rate_factor)
        scale = float(model.rate_scale.numpy())
        event = {"step": step, "not_finite": what, "rolled_back_to": recovery.step,
                 "learning_rate_scale": scale}
        recovery.events.append(event)
        with self.writer.as_default(step=recovery.step):
            tf.summary.scalar("train/recoveries", len(recovery.events))
            tf.summary.scalar("train/learning_rate_scale", scale)
        self.model.reset_metrics()
        if len(recovery.events) > self.train.max_recoveries:
            self.checkpoints.save(again=True)
            self.diverged = (f"{what} became non-finite at step {step} after "
                             f"{self.train.max_recoveries} recoveries; the last good state (step "
                             f"{recovery.step}) is saved with the learning rate lowered to "
                             f"{scale:g}x; --resume goes on from there")
            self.model.stop_training = True
            return
        print(f"warning: {what} became non-finite at step {step}: the step was skipped, the fit "
              f"rolled back to step {recovery.step} and goes on at {scale:g}x the learning rate "
              f"(recovery {len(recovery.events)} of {self.train.max_recoveries})", file=sys.stderr)

    def run_selfcheck(self, step: int, images: bool = False) -> float:
        result = self._selfcheck(self.selfcheck_batch)
        psnr = float(result["psnr"])
        self.history.append((step, time.perf_counter() - self.start, psnr))
        with self.writer.as_default(step=step):
            tf.summary.scalar("selfcheck/psnr", psnr)
            if images:
                grid = _grid([result["input"], *result["stages"], result["composite"]], rows=2)
                tf.summary.image("selfcheck/input_coarse_refined_composite", grid, max_outputs=2)
        self.writer.flush()
        if psnr > self.best + self.train.early_stop_min_delta:
            self.best, self.since_best = psnr, 0
        else:
            self.since_best += 1
            if self.train.early_stop_patience and self.since_best >= self.train.early_stop_patience:
                self.stop_reason = f"self-check PSNR stopped improving at {self.best:.2f} dB"
                self.model.stop_training = True
        return psnr

    def log_keep(self, choice) -> None:
        """The measured `generator.flow_keep` and `smooth_share`
        (`tfinpaint.fitting.blend.BlendChoice`), at the last step: the shares and the held-out
        hole PSNRs with them, network alone, flow fill alone, smooth fill alone."""
        with self.writer.as_default(step=self.step()):
            tf.summary.scalar("flow_keep/keep", choice.keep)
            tf.summary.scalar("flow_keep/psnr", choice.psnr)
            tf.summary.scalar("flow_keep/psnr_network", choice.psnr_network)
            tf.summary.scalar("flow_keep/psnr_flow", choice.psnr_flow)
            if choice.psnr_smooth is not None:
                tf.summary.scalar("flow_keep/smooth", choice.smooth)
                tf.summary.scalar("flow_keep/psnr_smooth", choice.psnr_smooth)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if not self.diverged:
            self.checkpoints.save()
        self.writer.flush()
