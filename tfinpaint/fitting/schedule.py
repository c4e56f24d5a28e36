"""The learning-rate schedule (cosine decay over steps and time budget) and the fit clock."""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tfinpaint.config import Config
from tfinpaint.fitting.inpainter import Inpainter


@keras.saving.register_keras_serializable(package="tfinpaint")
class CosineDecayToBudget(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay to `initial_learning_rate * alpha` over the fit's progress: the larger of
    the fraction of steps and the fraction of the time budget spent.

    With a time budget the decay ends when the budget does, whichever of steps and time runs
    out first, so a fit stopped by its budget has still annealed (on a slow machine the step
    count alone would stop it half-way down the curve, at a high learning rate). `clock` is a
    scalar variable holding the seconds fitted so far (`FitClock` keeps it).

    `segment` (float64 [6]: start step, start seconds, start rate, end step, end seconds, the
    configured rate; see `begin_segment`) lets an extended fit go on from where the schedule
    was: a fit resumed with a larger budget decays from the rate it had reached to the floor
    over the new part of the budget, instead of jumping back up the curve. Without a segment
    (or in the first one) this is Keras' `CosineDecay` from step 0, time 0 and
    `initial_learning_rate`.

    With `warmup_steps` the rate also rises linearly from `1 / warmup_steps` of itself over the
    first steps: Adam's first steps move every weight by about the learning rate whatever the
    gradient, and the unnormalised gated stack can saturate its tanh outputs there
    (`train.warmup_steps`; docs/flow_fill.md).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 budget_seconds: float = 0.0, clock: tf.Variable | None = None,
                 segment: tf.Variable | None = None, warmup_steps: int = 0,
                 scale: tf.Variable | None = None):
        self.warmup_steps = warmup_steps
        self.scale = scale
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.budget_seconds = budget_seconds
        self.clock = clock
        self.segment = segment

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        if self.segment is None:
            start_step, start_seconds = 0.0, 0.0
            start_rate, end_step = self.initial_learning_rate, float(self.decay_steps)
            end_seconds = self.budget_seconds
        else:
            start_step, start_seconds, start_rate, end_step, end_seconds = tf.unstack(
                tf.cast(self.segment[:5], tf.float32))
        progress = (step - start_step) / tf.maximum(end_step - start_step, 1.0)
        if self.budget_seconds > 0 and self.clock is not None:
            spent = tf.cast(self.clock, tf.float32) - start_seconds
            progress = tf.maximum(progress, spent / tf.maximum(end_seconds - start_seconds, 1e-3))
        cosine = 0.5 * (1.0 + tf.cos(math.pi * tf.clip_by_value(progress, 0.0, 1.0)))
        floor = self.initial_learning_rate * self.alpha
        rate = floor + (start_rate - floor) * cosine
        if self.warmup_steps:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        if self.scale is not None:  # lowered by recoveries from non-finite steps
            rate *= tf.cast(self.scale, tf.float32)
        return rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "budget_seconds": self.budget_seconds, "warmup_steps": self.warmup_steps}


def learning_rate(config: Config, clock: tf.Variable | None = None,
                  segment: tf.Variable | None = None, scale: tf.Variable | None = None):
    """The configured learning rate: cosine decay over the steps and time budget (constant when
    `train.final_lr_fraction` is 1), times `scale`."""
    train = config.train
    return CosineDecayToBudget(train.learning_rate, max(train.steps, 1),
                               alpha=min(train.final_lr_fraction, 1.0),
                               budget_seconds=train.time_budget_minutes * 60.0, clock=clock,
                               segment=segment, warmup_steps=train.warmup_steps, scale=scale)


def schedule_end(config: Config) -> list[float]:
    """What a decay segment decays towards: [end step, end seconds, configured rate]."""
    train = config.train
    return [float(train.steps), train.time_budget_minutes * 60.0, train.learning_rate]


def begin_segment(model: Inpainter, config: Config) -> bool:
    """After a restore: reconcile the schedule with the config. If the configured steps or budget
    differ from those the decay was heading for (the fit is extended, or shortened), a new segment
    of the decay starts at the current step, time and rate; if the learning rate itself was
    changed (`--set train.learning_rate=...`), it starts at that rate. Returns whether a segment
    began; a plain resume changes nothing."""
    end_step, end_seconds, configured = schedule_end(config)
    segment = model.decay_segment.numpy()
    if (segment[3], segment[4], segment[5]) == (end_step, end_seconds, configured):
        return False
    if segment[5] != configured:
        rate = configured
    else:  # the rate reached, before any recovery's scale
        rate = float(np.asarray(model.optimizer.learning_rate)) / float(model.rate_scale.numpy())
    step = float(model.optimizer.iterations.numpy())
    model.decay_segment.assign([step, float(model.fit_seconds.numpy()), rate, end_step,
                                end_seconds, configured])
    return True


class FitClock(keras.callbacks.Callback):
    """Adds the seconds spent inside `fit` to the model's `fit_seconds` variable.

    The variable is checkpointed, so the time budget and the schedule that follows it count the
    whole run's fitting time across resumes; time spent between `fit` calls is not counted.
    """

    def on_train_begin(self, logs=None):
        self.before = float(self.model.fit_seconds.numpy())
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.model.fit_seconds.assign(self.before + time.perf_counter() - self.start)


def budget_spent(model: Inpainter, config: Config) -> bool:
    """Whether the run's fitting time (FitClock's, across resumes) has reached the budget."""
    budget = config.train.time_budget_minutes * 60.0
    return bool(budget) and float(model.fit_seconds.numpy()) >= budget
