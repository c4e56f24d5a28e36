"""Debug numerics (`train.debug_numerics`): name the first non-finite tensor of a fitting step.

A NaN in the logged loss says only that something broke, one or more steps earlier. With the
flag on, every step checks, in the order they are computed, each stage's output (coarse y1,
refined y2), each loss term and the total, the gradients, and the weights after the update, and
returns the index of the first one holding a NaN or an inf (`step_report`, traced into
`Inpainter.train_step`); `NumericsLog` turns that into one line naming the tensor (and, for
gradients, the variable nearest the loss whose gradient broke), logs the gradients' global norm
to TensorBoard every step (`numerics/grad_norm`) and keeps its largest value and its spikes.

Cost: one `is_finite` reduction per checked tensor and one global norm per step, a few
milliseconds against a step of hundreds; nothing at all with the flag off (the choice is made in
Python when the step is traced).
"""

from __future__ import annotations

import sys

import tensorflow as tf

PREFIX = "numerics/"
# A step whose gradient norm exceeds this multiple of the running average of the norms before it
# is reported as a spike.
SPIKE_FACTOR = 5.0
MAX_SPIKES = 20


def checked_names(stage_count: int, loss_names: list[str]) -> list[str]:
    """The tensors `step_report` checks, in the order a step computes them."""
    stages = ["y1 (coarse output)", "y2 (refined output)"] if stage_count == 2 else [
        f"stage {i + 1} output" for i in range(stage_count)]
    return [*stages, *(f"loss {name}" for name in loss_names), "loss total", "gradients",
            "weights after the update"]


def _finite(tensor) -> tf.Tensor:
    return tf.reduce_all(tf.math.is_finite(tf.cast(tensor, tf.float32)))


def step_report(stages, losses: dict, total, gradients, weights) -> dict[str, tf.Tensor]:
    """Logs for one step: the gradients' global norm, the index in `checked_names` of the first
    non-finite tensor (-1 if none), and which variables' gradients are finite."""
    gradient_finite = tf.stack([_finite(g) for g in gradients])
    checks = tf.stack([*(_finite(y) for y in stages), *(_finite(v) for v in losses.values()),
                       _finite(total), tf.reduce_all(gradient_finite),
                       tf.reduce_all(tf.stack([_finite(w) for w in weights]))])
    broken = tf.where(tf.logical_not(checks))[:, 0]
    first = tf.cond(tf.size(broken) > 0, lambda: tf.cast(broken[0], tf.int32),
                    lambda: tf.constant(-1, tf.int32))
    # The global norm in float32 from float32 squares: no bfloat16 sum of millions of terms.
    norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in gradients])
    return {f"{PREFIX}grad_norm": norm, f"{PREFIX}first_nonfinite": first,
            f"{PREFIX}gradient_finite": tf.cast(gradient_finite, tf.float32)}


class NumericsLog:
    """Reads `step_report`'s logs after each step (`Monitor` calls `check`).

    Args:
        names: `checked_names` of the model's step.
        variable_names: the trainable variables' paths, in the order of the gradients.
        writer: a TensorBoard summary writer.
        verbose: print spikes as they happen and the summary at the end.
    """

    def __init__(self, names: list[str], variable_names: list[str], writer, verbose: bool = True):
        self.names = names
        self.variable_names = variable_names
        self.writer = writer
        self.verbose = verbose
        self.max_norm, self.max_step = 0.0, -1
        self.average = None  # running (exponential) average of the finite norms so far
        self.spikes: list[tuple[int, float, float]] = []  # (step, norm, average before it)

    def check(self, step: int, logs: dict) -> str:
        """Records this step's norm; returns "" or the line naming the first non-finite tensor."""
        norm = float(logs[f"{PREFIX}grad_norm"])
        with self.writer.as_default(step=step):
            tf.summary.scalar(f"{PREFIX}grad_norm", norm)
        first = int(logs[f"{PREFIX}first_nonfinite"])
        if first >= 0:
            return self.describe(step, first, norm, logs[f"{PREFIX}gradient_finite"])
        if norm > self.max_norm:
            self.max_norm, self.max_step = norm, step
        if self.average is not None and norm > SPIKE_FACTOR * self.average:
            self.spikes.append((step, norm, self.average))
            if self.verbose and len(self.spikes) <= MAX_SPIKES:
                print(f"numerics: gradient norm spike {norm:.3g} at step {step} "
                      f"(running average {self.average:.3g})", file=sys.stderr)
        self.average = norm if self.average is None else 0.98 * self.average + 0.02 * norm
        return ""

    def describe(self, step: int, first: int, norm: float, gradient_finite) -> str:
        what = self.names[first]
        if what == "gradients":
            broken = [name for name, ok in zip(self.variable_names, list(gradient_finite))
                      if not ok]
            # Backpropagation runs from the loss back to the input: of the broken gradients, the
            # variable listed last (nearest the output) is where the non-finite value entered.
            what += (f" ({len(broken)} of {len(self.variable_names)} variables, nearest the "
                     f"loss: {broken[-1]})" if broken else "")
        return (f"first non-finite value at step {step}: {what}; gradient global norm "
                f"{norm:.4g}; {self.summary()}")

    def summary(self) -> str:
        if self.max_step < 0:
            return "no finite gradient norm recorded"
        spikes = ", ".join(f"{s}:{n:.3g}" for s, n, _ in self.spikes[:MAX_SPIKES])
        return (f"largest gradient global norm {self.max_norm:.4g} at step {self.max_step}; "
                f"{len(self.spikes)} spikes above {SPIKE_FACTOR:g}x the running average"
                + (f" ({spikes})" if spikes else ""))


def is_numerics_log(name: str) -> bool:
    return name.startswith(PREFIX)
