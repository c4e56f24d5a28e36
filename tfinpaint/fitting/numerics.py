"""Debug numerics (`train.debug_numerics`): name the first non-finite tensor of a fitting step.

With the flag on, the step runs the generator through `probe`, which also returns every block's
output, and `step_report` (traced into `Inpainter.train_step`) checks, in the order they are
computed, each block's output (gated layers, pre-tanh `Out` convolutions, stage outputs y1 and
y2), each loss term and the total, the gradients, and the weights after the update, returning
the index of the first holding a NaN or an inf. `NumericsLog` turns that into one line naming the
tensor (for gradients, the variable nearest the loss whose gradient broke), logs the gradients'
global norm (`numerics/grad_norm`) and the largest activation (`numerics/max_activation`) every
step, and keeps their largest values and the gradient spikes. With the flag off the step has
no check at all (the choice is made in Python when the step is traced).
"""

from __future__ import annotations

import sys

import keras
import tensorflow as tf

from tfinpaint.model.layers import GatedConv2D, GatedUpConv2D, PaddedConv2D

PREFIX = "numerics/"
# A step whose gradient norm exceeds this multiple of the running average of the norms before it
# is reported as a spike.
SPIKE_FACTOR = 5.0
MAX_SPIKES = 20


_STAGES = {"coarse_output": "y1 (coarse output)", "refine_output": "y2 (refined output)"}


def probe(generator: keras.Model) -> tuple[keras.Model, list[str], list[int]]:
    """The generator with every block's output: (model, block names, where the stages are).

    The model shares the generator's weights; its outputs are the gated blocks, the `Out`
    convolutions (before tanh) and the stage outputs, in the order the network computes them.
    """
    blocks = [layer for layer in generator.layers if isinstance(
        layer, (GatedConv2D, GatedUpConv2D, PaddedConv2D, keras.layers.Activation))]
    names = [_STAGES.get(layer.name, layer.name) for layer in blocks]
    stages = [i for i, layer in enumerate(blocks) if isinstance(layer, keras.layers.Activation)]
    return keras.Model(generator.inputs, [layer.output for layer in blocks]), names, stages


def checked_names(block_names: list[str], loss_names: list[str]) -> list[str]:
    """The tensors `step_report` checks, in the order a step computes them."""
    return [*block_names, *(f"loss {name}" for name in loss_names), "loss total", "gradients",
            "weights after the update"]


def _finite(tensor) -> tf.Tensor:
    return tf.reduce_all(tf.math.is_finite(tf.cast(tensor, tf.float32)))


def step_report(blocks, losses: dict, total, gradients, weights) -> dict[str, tf.Tensor]:
    """Logs for one step: the gradients' global norm and per-variable norms, the index in
    `checked_names` of the first non-finite tensor (-1 if none), which variables' gradients are
    finite, and each block's largest absolute output."""
    gradient_finite = tf.stack([_finite(g) for g in gradients])
    checks = tf.stack([*(_finite(y) for y in blocks), *(_finite(v) for v in losses.values()),
                       _finite(total), tf.reduce_all(gradient_finite),
                       tf.reduce_all(tf.stack([_finite(w) for w in weights]))])
    broken = tf.where(tf.logical_not(checks))[:, 0]
    first = tf.cond(tf.size(broken) > 0, lambda: tf.cast(broken[0], tf.int32),
                    lambda: tf.constant(-1, tf.int32))
    # The global norm in float32 from float32 squares: no bfloat16 sum of millions of terms.
    norms = tf.stack([tf.norm(tf.cast(g, tf.float32)) for g in gradients])
    return {f"{PREFIX}grad_norm": tf.norm(norms), f"{PREFIX}first_nonfinite": first,
            f"{PREFIX}gradient_finite": tf.cast(gradient_finite, tf.float32),
            f"{PREFIX}gradient_norms": norms,
            f"{PREFIX}activation_max": tf.stack(
                [tf.reduce_max(tf.abs(tf.cast(y, tf.float32))) for y in blocks])}


class NumericsLog:
    """Reads `step_report`'s logs after each step (`Monitor` calls `check`).

    Args:
        names: `checked_names` of the model's step (the blocks first).
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
        self.max_variables = ""  # the variables with the largest gradients at the largest norm
        self.max_activation, self.activation_step, self.activation_block = 0.0, -1, ""
        self.average = None  # running (exponential) average of the finite norms so far
        self.spikes: list[tuple[int, float, float]] = []  # (step, norm, average before it)

    def check(self, step: int, logs: dict) -> str:
        """Records this step's norm; returns "" or the line naming the first non-finite tensor."""
        norm = float(logs[f"{PREFIX}grad_norm"])
        activations = [float(a) for a in logs.get(f"{PREFIX}activation_max", [])]
        largest = max(range(len(activations)), key=lambda i: activations[i], default=None)
        with self.writer.as_default(step=step):
            tf.summary.scalar(f"{PREFIX}grad_norm", norm)
            if largest is not None:
                tf.summary.scalar(f"{PREFIX}max_activation", activations[largest])
        if largest is not None and activations[largest] > self.max_activation:
            self.max_activation, self.activation_step = activations[largest], step
            self.activation_block = self.names[largest]
        first = int(logs[f"{PREFIX}first_nonfinite"])
        if first >= 0:
            return self.describe(step, first, norm, logs[f"{PREFIX}gradient_finite"])
        if norm > self.max_norm:
            self.max_norm, self.max_step = norm, step
            self.max_variables = self.largest(logs.get(f"{PREFIX}gradient_norms"))
        if self.average is not None and norm > SPIKE_FACTOR * self.average:
            self.spikes.append((step, norm, self.average))
            if self.verbose and len(self.spikes) <= MAX_SPIKES:
                print(f"numerics: gradient norm spike {norm:.3g} at step {step} "
                      f"(running average {self.average:.3g}; largest "
                      f"{self.largest(logs.get(f'{PREFIX}gradient_norms'))})", file=sys.stderr)
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

    def largest(self, norms, count: int = 3) -> str:
        """The `count` variables with the largest gradient norms, as `path=norm`."""
        if norms is None:
            return ""
        norms = [float(n) for n in norms]
        top = sorted(range(len(norms)), key=lambda i: -norms[i])[:count]
        return ", ".join(f"{self.variable_names[i]}={norms[i]:.3g}" for i in top)

    def summary(self) -> str:
        if self.max_step < 0:
            return "no finite gradient norm recorded"
        spikes = ", ".join(f"{s}:{n:.3g}" for s, n, _ in self.spikes[:MAX_SPIKES])
        return (f"largest gradient global norm {self.max_norm:.4g} at step {self.max_step}"
                + (f" ({self.max_variables})" if self.max_variables else "")
                + (f"; largest activation {self.max_activation:.4g} ({self.activation_block}) at "
                   f"step {self.activation_step}" if self.activation_step >= 0 else "") + "; "
                f"{len(self.spikes)} spikes above {SPIKE_FACTOR:g}x the running average"
                + (f" ({spikes})" if spikes else ""))


def is_numerics_log(name: str) -> bool:
    return name.startswith(PREFIX)
