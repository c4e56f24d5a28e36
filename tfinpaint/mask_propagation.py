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
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfinpaint import video as video_io
from tfinpaint.clip import Annotation, Clip, check_size, resize_frames, resize_masks, write_masks
from tfinpaint.config import Config, PropagateConfig
from tfinpaint.data.samplers import PasteSampler
from tfinpaint.fitting import ScalarLog, choose_precision, choose_strategy
from tfinpaint.generator import MULTIPLE, build_generator, crop_to, network_input, pad_to_multiple, to_signed
from tfinpaint.losses import weighted_bce
from tfinpaint.progress import Progress


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


class PropagationMonitor(ScalarLog):
    """TensorBoard: `loss/segmentation` and the predicted masks over frames spread across the clip;
    when verbose, the fit's progress on the console (`tfinpaint.progress.Progress`, a line every
    `log_every` steps where the console is not a terminal)."""

    def __init__(self, *, propagate: PropagateConfig, frames: np.ndarray, logdir, verbose: bool,
                 stream=None):
        super().__init__(logdir=logdir, log_every=propagate.log_every, verbose=verbose)
        self.propagate = propagate
        self.progress = Progress("propagating", total=propagate.steps, unit="step",
                                 every=propagate.log_every or propagate.steps, stream=stream)
        count = min(propagate.image_frames, len(frames))
        self.frames = tf.constant(frames[np.linspace(0, len(frames) - 1, count).round().astype(int)])
        self._probabilities = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._probabilities = tf.function(self.model.probabilities, autograph=False)

    def on_train_batch_end(self, batch, logs=None):
        step = self.step()
        if self.verbose:
            loss = (logs or {}).get("segmentation")
            self.progress.update(step, details=f"step {step}/{self.propagate.steps}" + (
                f" | loss {float(loss):.4f}" if loss is not None else ""))
        if self.propagate.log_every and step % self.propagate.log_every == 0:
            self.log_scalars(step, logs or {})
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
        self.progress.finish()
        self.log_masks(self.step())
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
                  steps_per_epoch=p.steps, callbacks=[monitor], verbose=0, shuffle=False)
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


def propagate(config: Config, annotation: Annotation, *, out: Path, logdir: Path | None,
              dilation: int, verbose: bool = True):
    """Fits, predicts every frame's mask, dilates it by `dilation` px and writes it to `out`.

    Returns the written masks (uint8 [N, H, W, 1], 0/1) and the `Propagation`.
    """
    frames = annotation.video.frames
    size = check_size(frames.shape[1:3], config, "video")
    result = propagate_masks(config, frames, annotation.frame, annotation.mask, size,
                             logdir=logdir, verbose=verbose)
    masks = video_io.dilate_masks(result.masks, dilation)
    write_masks(Path(out), masks, annotation.video.names)
    return masks, result


def propagate_for_inpainting(config: Config, clip: Clip, frame: int, folder: Path, *,
                             verbose: bool = True) -> tuple[str, np.ndarray]:
    """`train --first-mask`: propagates `clip.masks[frame]` to every frame of `clip` (a
    `tfinpaint.clip.Clip`) into `folder` (masks/ and logs/).

    The masks are saved undilated, so that `--resume` reads them as any mask folder; returns
    that folder and the masks dilated by data.mask_dilation, ready to inpaint.
    """
    annotation = Annotation(video=video_io.Video(frames=clip.frames, fps=clip.fps, names=clip.names),
                            frame=frame, mask=clip.masks[frame])
    masks, result = propagate(config, annotation, out=folder / "masks", logdir=folder / "logs",
                              dilation=0, verbose=verbose)
    if verbose:
        print(f"propagated the mask of frame {frame} in {result.seconds:.0f} s "
              f"({result.steps} steps): {folder / 'masks'}", file=sys.stderr)
    return str(folder / "masks"), video_io.dilate_masks(masks, config.data.mask_dilation)
