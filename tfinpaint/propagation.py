"""Mask propagation from a single annotated frame (paper Sec. 4.2, Fig. 4).

Input and output of the inpainting formulation swap places: the object under the annotated mask
`M_0` is pasted at a random translation into its own frame `X_0`, giving `X'` and the pasted
object's mask `M'_0`, and the generator learns to map `X'` to `M'_0`. Having seen the object
anywhere in its own background, it finds the object in the other frames of the clip.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfinpaint.config import Config, PropagateConfig
from tfinpaint.data import masks as mask_ops
from tfinpaint.data.pipeline import seeded_batches
from tfinpaint.errors import InputError
from tfinpaint.fitting import choose_precision, choose_strategy
from tfinpaint.generator import MULTIPLE, build_generator, crop_to, pad_to_multiple
from tfinpaint.inpainter import network_input, to_signed

# Keeps log(0) out of the cross-entropy; the sigmoid head saturates in float32 well before it.
_EPSILON = 1e-6


def weighted_bce(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor, alpha: float) -> tf.Tensor:
    """Eq. 6: `-(y log p + alpha (1 - y) log(1 - p))`, averaged over the pixels where `weight` is 1.

    With alpha < 1, a background pixel called object costs less than a missed object pixel.
    """
    p = tf.clip_by_value(tf.cast(prediction, tf.float32), _EPSILON, 1.0 - _EPSILON)
    per_pixel = -(target * tf.math.log(p) + alpha * (1.0 - target) * tf.math.log(1.0 - p))
    return tf.reduce_sum(per_pixel * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def check_config(propagate: PropagateConfig) -> None:
    """The ranges the dataclass types cannot say; raises InputError naming the key."""
    p = propagate
    rules = {
        "steps >= 0": p.steps >= 0, "batch_size >= 1": p.batch_size >= 1,
        "learning_rate > 0": p.learning_rate > 0, "alpha > 0": p.alpha > 0,
        "0 < scale_min <= scale_max": 0 < p.scale_min <= p.scale_max,
        "0 <= flip <= 1": 0 <= p.flip <= 1, "0 < threshold < 1": 0 < p.threshold < 1,
        "image_frames >= 1": p.image_frames >= 1,
        "log_every >= 0 and image_every >= 0": p.log_every >= 0 and p.image_every >= 0,
    }
    broken = [rule for rule, ok in rules.items() if not ok]
    if broken:
        raise InputError(f"config propagate: {', '.join(broken)} required")


class PasteSampler:
    """Draws training examples from the annotated frame: the object pasted somewhere else in it.

    Element `e` of the stream is a pure function of `(seed, e)`, as in
    `tfinpaint.data.pipeline.MaskSampler`, so the samples are drawn on the device and reproducible.

    Args:
        frame: uint8 [H, W, 3], the annotated frame `X_0` at working resolution.
        mask: uint8 [H, W, 1], its object mask `M_0` (1 = object).
        scale_range: (low, high) scale factors of the pasted object.
        flip: probability that the pasted object is mirrored left to right.
    """

    def __init__(self, frame: np.ndarray, mask: np.ndarray, *, scale_range: tuple[float, float],
                 flip: float):
        self.height, self.width = frame.shape[:2]
        self.frame = tf.constant(frame, tf.uint8)
        self.mask = tf.constant(mask, tf.uint8)
        self.scale_range = scale_range
        self.flip = flip

    def sample(self, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """`pasted_frame` (X') uint8 [H, W, 3], `pasted_mask` (M'_0) and `object_mask` (M_0) [H, W, 1]."""
        seeds = tf.random.experimental.stateless_split(seed, 3)
        frame = tf.cast(self.frame, tf.float32)
        mask = tf.cast(self.mask, tf.float32)
        # mirrored, then scaled about the frame centre: the whole frame moves with the object
        mirrored = tf.random.stateless_uniform([], seeds[0]) < self.flip
        frame = tf.where(mirrored, tf.reverse(frame, axis=[1]), frame)
        mask = tf.where(mirrored, tf.reverse(mask, axis=[1]), mask)
        low, high = self.scale_range
        scale = tf.random.stateless_uniform([], seeds[1], low, high)
        size = tf.cast(tf.round(scale * tf.constant([self.height, self.width], tf.float32)), tf.int32)
        frame = tf.image.resize_with_crop_or_pad(tf.image.resize(frame, size), self.height, self.width)
        mask = tf.image.resize_with_crop_or_pad(
            tf.image.resize(mask, size, method="nearest"), self.height, self.width)
        # translated, circularly as the inpainting's translated masks
        offset = mask_ops.uniform_offset(seeds[2], self.height, self.width)
        pasted_mask = mask_ops.translate(mask, offset)
        pasted_object = mask_ops.translate(frame, offset)
        pasted_frame = pasted_mask * pasted_object + (1.0 - pasted_mask) * tf.cast(self.frame, tf.float32)
        return {
            "pasted_frame": tf.cast(tf.round(tf.clip_by_value(pasted_frame, 0.0, 255.0)), tf.uint8),
            "pasted_mask": tf.cast(pasted_mask > 0.5, tf.uint8),
            "object_mask": self.mask,
        }

    def dataset(self, *, batch_size: int, seed: int) -> tf.data.Dataset:
        """An endless stream of batches."""
        return seeded_batches(self.sample, batch_size=batch_size, seed=seed, stream=2)


class MaskPropagator(keras.Model):
    """A generator with a one-channel sigmoid head, fitted to segment one object (paper Sec. 4.2).

    Args:
        generator: from `tfinpaint.generator.build_generator(..., out_channels=1,
            out_activation="sigmoid")`, returning a list of stage outputs.
        alpha: weight of the background term of the weighted cross-entropy (eq. 6).

    Call arguments:
        frames: float [B, H, W, 3] in [-1, 1], any H and W. The generator sees the usual 4-channel
            input with an empty hole: the whole frame is known.

    Returns the list of per-stage object probabilities [B, H, W, 1] (the last is the result).
    Batches for `train_step` are `PasteSampler` dicts.
    """

    def __init__(self, generator: keras.Model, *, alpha: float = 0.8, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.alpha = alpha
        self.trackers = {"segmentation": keras.metrics.Mean(name="segmentation")}

    def call(self, frames, training=False):
        no_hole = tf.zeros_like(frames[..., :1])
        padded, size = pad_to_multiple(network_input(frames, no_hole), MULTIPLE, mode="SYMMETRIC")
        return [crop_to(output, size) for output in self.generator(padded, training=training)]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, batch):
        pasted_frame = to_signed(batch["pasted_frame"])  # X'
        pasted_mask = tf.cast(batch["pasted_mask"], tf.float32)  # M'_0
        object_mask = tf.cast(batch["object_mask"], tf.float32)  # M_0
        # The object still stands at its original place in X': that region is left unscored.
        scored = 1.0 - object_mask

        with tf.GradientTape() as tape:
            outputs = self(pasted_frame, training=True)
            # segmentation (eq. 6), on every stage
            segmentation = tf.add_n([weighted_bce(output, pasted_mask, scored, self.alpha)
                                     for output in outputs])
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(segmentation / replicas)

        gradients = tape.gradient(scaled, self.generator.trainable_weights)
        self.optimizer.apply(gradients, self.generator.trainable_weights)
        self.trackers["segmentation"].update_state(segmentation)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def probabilities(self, frames: tf.Tensor) -> tf.Tensor:
        """uint8 frames [B, H, W, 3] -> float32 object probabilities [B, H, W, 1]."""
        return tf.cast(self(to_signed(frames), training=False)[-1], tf.float32)


def build_propagator(propagate: PropagateConfig, *, padding: str) -> MaskPropagator:
    """The propagator, compiled with Adam as configured (call in strategy scope)."""
    generator = build_generator(propagate.arch, channels=propagate.channels, padding=padding,
                                out_channels=1, out_activation="sigmoid", name="mask_propagator")
    model = MaskPropagator(generator, alpha=propagate.alpha)
    optimizer = keras.optimizers.Adam(propagate.learning_rate)
    model.compile(optimizer=optimizer)
    optimizer.build(generator.trainable_variables)
    return model


def predict_probabilities(model: MaskPropagator, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """Object probabilities float32 [N, H, W, 1] for uint8 frames [N, H, W, 3]."""
    predict = tf.function(model.probabilities, autograph=False)
    return np.concatenate([predict(tf.constant(frames[start:start + batch_size])).numpy()
                           for start in range(0, len(frames), batch_size)])


def overlay(frames: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    """For TensorBoard: frames tinted red by the predicted mask above the probability maps,
    the frames side by side: uint8 [1, 2H, N * W, 3]."""
    frames = tf.cast(frames, tf.float32)
    red = tf.constant([255.0, 0.0, 0.0])
    tinted = frames + 0.5 * probabilities * (red - frames)
    grey = tf.repeat(probabilities * 255.0, 3, axis=-1)
    rows = [tf.concat(tf.unstack(images), axis=1) for images in (tinted, grey)]
    return tf.cast(tf.round(tf.concat(rows, axis=0)), tf.uint8)[None]


class PropagationMonitor(keras.callbacks.Callback):
    """TensorBoard: `loss/segmentation` and the predicted masks over frames spread across the clip."""

    def __init__(self, *, propagate: PropagateConfig, frames: np.ndarray, logdir, verbose: bool):
        super().__init__()
        self.propagate = propagate
        count = min(propagate.image_frames, len(frames))
        self.frames = tf.constant(frames[np.linspace(0, len(frames) - 1, count).round().astype(int)])
        self.writer = tf.summary.create_file_writer(str(logdir)) if logdir else None
        self.verbose = verbose
        self._probabilities = None

    def on_train_begin(self, logs=None):
        self._probabilities = tf.function(self.model.probabilities, autograph=False)
        self.last_time, self.last_step = time.perf_counter(), 0

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if self.propagate.log_every and step % self.propagate.log_every == 0:
            now = time.perf_counter()
            rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
            self.last_time, self.last_step = now, step
            loss = float((logs or {}).get("segmentation", float("nan")))
            if self.writer:
                with self.writer.as_default(step=step):
                    tf.summary.scalar("loss/segmentation", loss)
                    tf.summary.scalar("train/steps_per_second", rate)
            self.model.reset_metrics()
            if self.verbose:
                print(f"propagation step {step}/{self.propagate.steps} segmentation={loss:.4f} "
                      f"{rate:.2f} steps/s", file=sys.stderr)
        if self.propagate.image_every and step % self.propagate.image_every == 0:
            self.log_masks(step)

    def log_masks(self, step: int) -> None:
        if not self.writer:
            return
        with self.writer.as_default(step=step):
            tf.summary.image("propagation/masks_over_frames",
                             overlay(self.frames, self._probabilities(self.frames)))
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.log_masks(self._step())
        if self.writer:
            self.writer.flush()


@dataclass
class Propagation:
    """Attributes:
        masks: uint8 [N, H, W, 1] 0/1 at the frames' resolution, not dilated.
        steps: fitting steps done.
        seconds: fitting time (prediction excluded).
    """

    masks: np.ndarray
    steps: int
    seconds: float


def propagate_masks(config: Config, frames: np.ndarray, frame: int, mask: np.ndarray,
                    working_size: tuple[int, int], *, logdir=None, verbose: bool = True) -> Propagation:
    """Fits a propagator to the annotated `frames[frame]` and `mask` (uint8 [H, W, 1], 1 = object)
    at `working_size`, and predicts every frame's object mask at the frames' own resolution.

    The annotated frame's result always includes the given mask.
    """
    from tfinpaint.inference import resize_frames, resize_masks

    check_config(config.propagate)
    p = config.propagate
    small_frames = resize_frames(frames, *working_size)
    small_mask = resize_masks(mask[None], *working_size)[0]

    keras.mixed_precision.set_global_policy(choose_precision(config.train.precision))
    keras.utils.set_random_seed(config.train.seed)
    with choose_strategy().scope():
        model = build_propagator(p, padding=config.generator.padding)
    sampler = PasteSampler(small_frames[frame], small_mask, scale_range=(p.scale_min, p.scale_max),
                           flip=p.flip)
    monitor = PropagationMonitor(propagate=p, frames=small_frames, logdir=logdir, verbose=verbose)
    began = time.perf_counter()
    if p.steps:
        model.fit(sampler.dataset(batch_size=p.batch_size, seed=config.train.seed), epochs=1,
                  steps_per_epoch=p.steps, callbacks=[monitor], verbose=0)
    seconds = time.perf_counter() - began

    probabilities = predict_probabilities(model, small_frames, batch_size=config.infer.batch_size)
    height, width = frames.shape[1:3]
    masks = np.empty((len(frames), height, width, 1), np.uint8)
    for index, probability in enumerate(probabilities[..., 0]):
        if probability.shape != (height, width):
            probability = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
        masks[index, ..., 0] = probability > p.threshold
    masks[frame] |= mask
    return Propagation(masks=masks, steps=int(model.optimizer.iterations.numpy()), seconds=seconds)
