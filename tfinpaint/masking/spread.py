"""Mask propagation from a single annotated frame (paper Sec. 4.2, Fig. 4).

`propagate_masks` finds the object of the annotated frame in every frame as `propagate.method`
says: "network" (the paper's propagator, fitted to the object pasted at random translations into
its own frame, segmenting each frame on its own), "warp" (`masking.warp`), "warp_network" (the
propagator correcting the flow warp of its previous result), "track" (`masking.track` on the
propagator's maps) or "motion" (the default, no fit: `masking.track` on `masking.motion`'s maps). Then
`propagate.background_passes` redraws each mask as what differs from the background
(`masking.background`) and `propagate.refine` (off by default) by colour (`masking.refine`).

Masks come back at the frames' own resolution, undilated; the annotated frame keeps the user's
mask. How each method works and what was measured: docs/mask_propagation.md.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfinpaint.io import video as video_io
from tfinpaint.io.clip import (Annotation, Clip, check_size, resize_frames, resize_masks, working_size,
                               write_masks)
from tfinpaint.config import Config, PropagateConfig
from tfinpaint.data.samplers import PasteSampler, PriorJitter
from tfinpaint.fill.flow import FlowFields, flow_fields
from tfinpaint.fitting.device import choose_precision, choose_strategy
from tfinpaint.fitting.losses import weighted_bce
from tfinpaint.fitting.monitor import ScalarLog
from tfinpaint.fitting.schedule import CosineDecayToBudget, FitClock
from tfinpaint.io.progress import Progress, clock
from tfinpaint.masking.background import subtract_background
from tfinpaint.masking.motion import flows_towards, motion_maps
from tfinpaint.masking.refine import refine_masks
from tfinpaint.io.video import hole_disc
from tfinpaint.masking.shapes import fill_holes, keep_near
from tfinpaint.masking.track import track_masks
from tfinpaint.masking.warp import warp_masks, warp_step
from tfinpaint.model.generator import MULTIPLE, build_generator, crop_to, network_input, pad_to_multiple, to_signed


class MaskPropagator(keras.Model):
    """A generator with a one-channel sigmoid head, fitted to segment one object (paper Sec. 4.2).

    Args:
        generator: from `tfinpaint.model.generator.build_generator(..., out_channels=1,
            out_activation="sigmoid")`, returning a list of stage outputs.
        alpha: weight of the background term of the weighted cross-entropy (eq. 6).

        with_prior: the generator takes a fifth input channel, the prior (the mask warped by
            the flow from the previous frame's result), and learns to correct it.

    Call arguments:
        frames: float [B, H, W, 3] in [-1, 1], any H and W. The generator sees the usual 4-channel
            input with an empty hole: the whole frame is known.
        prior: float [B, H, W, 1] 0/1, the flow-warped mask (only `with_prior`).

    Returns the list of per-stage object probabilities [B, H, W, 1] (the last is the result).
    Batches for `train_step` are `PasteSampler` dicts (with `prior` when `with_prior`).
    """

    def __init__(self, generator: keras.Model, *, alpha: float = 0.8, with_prior: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.alpha = alpha
        self.with_prior = with_prior
        self.trackers = {"segmentation": keras.metrics.Mean(name="segmentation")}

    def call(self, frames, prior=None, training=False):
        no_hole = tf.zeros_like(frames[..., :1])
        inputs = network_input(frames, no_hole)
        if self.with_prior:
            inputs = tf.concat([inputs, tf.cast(prior, inputs.dtype)], axis=-1)
        padded, size = pad_to_multiple(inputs, MULTIPLE, mode="SYMMETRIC")
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

        prior = tf.cast(batch["prior"], tf.float32) if self.with_prior else None
        with tf.GradientTape() as tape:
            outputs = self(pasted_frame, prior, training=True)
            # segmentation (eq. 6), on every stage
            segmentation = tf.add_n([weighted_bce(output, pasted_mask, scored, self.alpha)
                                     for output in outputs])
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(segmentation / replicas)

        gradients = tape.gradient(scaled, self.generator.trainable_weights)
        self.optimizer.apply(gradients, self.generator.trainable_weights)
        self.trackers["segmentation"].update_state(segmentation)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def probabilities(self, frames: tf.Tensor, prior: tf.Tensor | None = None) -> tf.Tensor:
        """uint8 frames [B, H, W, 3] (and 0/1 priors [B, H, W, 1]) -> float32 object
        probabilities [B, H, W, 1]."""
        if self.with_prior and prior is None:
            prior = tf.zeros_like(frames[..., :1])
        return tf.cast(self(to_signed(frames), prior, training=False)[-1], tf.float32)


def build_propagator(propagate: PropagateConfig, *, padding: str) -> MaskPropagator:
    """The propagator, compiled with Adam whose rate decays over the steps and the time budget
    (call in strategy scope)."""
    with_prior = propagate.method == "warp_network"
    generator = build_generator(propagate.arch, channels=propagate.channels, padding=padding,
                                in_channels=5 if with_prior else 4, out_channels=1,
                                out_activation="sigmoid", name="mask_propagator")
    model = MaskPropagator(generator, alpha=propagate.alpha, with_prior=with_prior)
    model.fit_seconds = tf.Variable(0.0, trainable=False, dtype=tf.float64, name="fit_seconds")
    rate = CosineDecayToBudget(propagate.learning_rate, max(propagate.steps, 1),
                               alpha=propagate.final_lr_fraction,
                               budget_seconds=propagate.time_budget_minutes * 60.0,
                               clock=model.fit_seconds)
    optimizer = keras.optimizers.Adam(rate)
    model.compile(optimizer=optimizer)
    optimizer.build(generator.trainable_variables)
    return model


def predict_probabilities(model: MaskPropagator, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """Object probabilities float32 [N, H, W, 1] for uint8 frames [N, H, W, 3] (no prior)."""
    predict = tf.function(model.probabilities, autograph=False)
    return np.concatenate([predict(tf.constant(frames[start:start + batch_size])).numpy()
                           for start in range(0, len(frames), batch_size)])


def correct_warp(model: MaskPropagator, frames: np.ndarray, frame: int, mask: np.ndarray,
                 fields: FlowFields, *, threshold: float, interior: int, near: int,
                 search: int, lost_search: int) -> tuple[np.ndarray, np.ndarray]:
    """From the annotated `frames[frame]` outwards, each frame's prior is the previous frame's
    result warped by the flow (`warp.warp_step`), and the network corrects it.

    The network's mask is kept within `search` px of the prior (the object cannot have jumped
    farther than the flow's error; the network alone also fires on look-alike background), and
    only its components touching the prior. Where it finds nothing there, the components within
    `lost_search` px are kept (the object reappearing beside an occluder); where none is, the
    prior stands (the object is behind the occluder); with no prior left, all the network finds
    is kept, so that the chain can pick the object up again. Returns the masks uint8 [N, H, W]
    0/1 (holes filled) and the probabilities float32 [N, H, W].
    """
    predict = tf.function(model.probabilities, autograph=False)
    kernels = [hole_disc(r) for r in (search, lost_search)]
    num_frames = len(frames)
    masks = np.zeros(frames.shape[:3], np.uint8)
    probabilities = np.zeros(frames.shape[:3], np.float32)
    masks[frame] = mask
    probabilities[frame] = mask
    hops = [(t, t - 1, fields.backward[t], fields.backward_reliable[t, ..., 0])
            for t in range(frame + 1, num_frames)]
    hops += [(t, t + 1, fields.forward[t], fields.forward_reliable[t, ..., 0])
             for t in range(frame - 1, -1, -1)]
    for t, previous, flow, reliable in hops:
        prior, _ = warp_step(masks[previous], flow, reliable, interior=interior, near=near)
        probability = predict(tf.constant(frames[t:t + 1]),
                              tf.constant(prior[None, ..., None], tf.float32)).numpy()[0, ..., 0]
        found = fill_holes((probability > threshold).astype(np.uint8))
        probabilities[t] = probability
        masks[t] = found
        for kernel, touching in zip(kernels, (near, lost_search)):
            near_prior = keep_near(found & cv2.dilate(prior, kernel), prior, touching)
            if near_prior.any():
                masks[t] = near_prior
                break
    return masks, probabilities


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
    when verbose, the fit's progress on the console (`tfinpaint.io.progress.Progress`, a line every
    `log_every` steps where the console is not a terminal)."""

    def __init__(self, *, propagate: PropagateConfig, frames: np.ndarray, logdir, verbose: bool,
                 stream=None):
        super().__init__(logdir=logdir, log_every=propagate.log_every, verbose=verbose)
        self.propagate = propagate
        self.progress = Progress("propagating", unit="step",
                                 every=propagate.log_every or propagate.steps, stream=stream)
        count = min(propagate.image_frames, len(frames))
        self.frames = tf.constant(frames[np.linspace(0, len(frames) - 1, count).round().astype(int)])
        self._probabilities = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # on TensorBoard the network's masks without a prior: what it finds by the object's looks
        self._probabilities = tf.function(self.model.probabilities, autograph=False)

    def on_train_batch_end(self, batch, logs=None):
        step = self.step()
        budget = self.propagate.time_budget_minutes * 60.0
        seconds = float(self.model.fit_seconds.numpy())
        if budget and seconds >= budget:
            self.model.stop_training = True
        if self.verbose:
            by_steps = step / self.propagate.steps if self.propagate.steps else 1.0
            by_time = seconds / budget if budget else 0.0
            where = (f"step {step}, {clock(seconds)} of {clock(budget)}" if by_time > by_steps
                     else f"step {step}/{self.propagate.steps}")
            loss = (logs or {}).get("segmentation")
            self.progress.update(step, min(1.0, max(by_steps, by_time)), where + (
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
        confidence: float [N], each frame's mean object probability inside its mask (the flow
            warp's bilinear value for `method: warp`); 1 on the annotated frame.
        steps: fitting steps done.
        seconds: fitting time (prediction excluded).
        total_seconds: flow, fitting and prediction.
    """

    masks: np.ndarray
    confidence: np.ndarray
    steps: int
    seconds: float
    total_seconds: float


def propagation_size(native: tuple[int, int], config: Config) -> tuple[int, int]:
    """The propagation's working (H, W): propagate.working_* (data.working_* where 0), never
    above the video's own."""
    p = config.propagate
    height, width = working_size(native, (p.working_height or config.data.working_height,
                                          p.working_width or config.data.working_width))
    return min(height, native[0]), min(width, native[1])


def propagate_masks(config: Config, frames: np.ndarray, frame: int, mask: np.ndarray,
                    working_size: tuple[int, int], *, logdir=None, verbose: bool = True) -> Propagation:
    """Finds the object of `mask` (uint8 [H, W, 1], 1 = object) on the annotated
    `frames[frame]` in every frame at `working_size` as `propagate.method` says (see the
    module's docstring), applies the background passes and the refinement the config asks for,
    and returns the masks at the frames' own resolution. The annotated frame's is the given mask.
    """
    p = config.propagate
    began = time.perf_counter()
    small_frames = resize_frames(frames, *working_size)
    small_mask = resize_masks(mask[None], *working_size)[0]
    fields = None
    if p.method in ("warp", "warp_network"):
        fields = flow_fields(small_frames, np.zeros(small_frames.shape[:3], np.uint8),
                             preset=p.flow_preset, margin=0, check=True)
    steps, seconds = 0, 0.0
    flows = None  # motion.flows_towards, where measured: the refinement's motion cue reuses it
    if p.method == "motion":
        flows = flows_towards(frames, frame)
        probabilities = motion_maps(frames, frame, working_size, flows)
        small_masks = _track(p, probabilities, frame, small_mask[..., 0])
    elif p.method == "warp":
        warp = warp_masks(small_frames, frame, small_mask, interior=p.warp_interior,
                          near=p.warp_near, fields=fields)
        small_masks, probabilities = warp.masks[..., 0], warp.soft[..., 0]
    else:
        keras.mixed_precision.set_global_policy(choose_precision(config.train.precision))
        keras.utils.set_random_seed(config.train.seed)
        with choose_strategy().scope():
            model = build_propagator(p, padding=config.generator.padding)
        jitter = (PriorJitter(shift=p.prior_shift, grow=p.prior_grow, occlusion=p.prior_occlusion,
                              empty=p.prior_empty) if model.with_prior else None)
        sampler = PasteSampler(small_frames[frame], small_mask, scale_range=(p.scale_min, p.scale_max),
                               flip=p.flip, prior=jitter)
        monitor = PropagationMonitor(propagate=p, frames=small_frames, logdir=logdir, verbose=verbose)
        fit_began = time.perf_counter()
        if p.steps:
            model.fit(sampler.dataset(batch_size=p.batch_size, seed=config.train.seed), epochs=1,
                      steps_per_epoch=p.steps, callbacks=[FitClock(), monitor], verbose=0,
                      shuffle=False)
        seconds = time.perf_counter() - fit_began
        steps = int(model.optimizer.iterations.numpy())
        if model.with_prior:
            small_masks, probabilities = correct_warp(
                model, small_frames, frame, small_mask[..., 0], fields, threshold=p.threshold,
                interior=p.warp_interior, near=p.warp_near, search=p.search_radius,
                lost_search=p.lost_search_radius)
        else:
            probabilities = predict_probabilities(model, small_frames,
                                                  batch_size=config.infer.batch_size)[..., 0]
            small_masks = None
            if p.method == "track":
                small_masks = _track(p, probabilities, frame, small_mask[..., 0])

    height, width = frames.shape[1:3]
    masks = np.empty((len(frames), height, width, 1), np.uint8)
    confidence = np.ones(len(frames), np.float32)
    for index, probability in enumerate(probabilities):
        small = probability > p.threshold if small_masks is None else small_masks[index] > 0
        inside = probability[small]
        confidence[index] = float(inside.mean()) if inside.size else 0.0
        if small.shape != (height, width):
            small = cv2.resize(small.astype(np.float32), (width, height),
                               interpolation=cv2.INTER_LINEAR) > 0.5
        masks[index, ..., 0] = small
    if p.background_passes:
        separating = (Progress("separating from the background", unit="frame",
                               every=len(frames)) if verbose else None)
        masks[..., 0] = subtract_background(
            frames, masks[..., 0], keep=frame, settings=config.flow, reach=p.background_reach,
            threshold=p.background_threshold, passes=p.background_passes,
            fine_side=p.background_fine_side,
            progress=(lambda done: separating.update(done * len(frames), done / p.background_passes))
            if separating else None)
    if p.refine:
        refining = Progress("refining masks", total=len(frames), unit="frame") if verbose else None
        masks[..., 0] = refine_masks(frames, masks[..., 0], keep=frame, core=p.refine_core,
                                     band=p.refine_band, iterations=p.refine_iterations,
                                     motion=p.refine_motion, flows=flows,
                                     progress=refining.update if refining else None)
    masks[frame] = mask > 0  # the user's own mask, not its trip to the working size and back
    confidence[frame] = 1.0
    return Propagation(masks=masks, confidence=confidence, steps=steps, seconds=seconds,
                       total_seconds=time.perf_counter() - began)


def _track(p: PropagateConfig, probabilities: np.ndarray, frame: int,
           mask: np.ndarray) -> np.ndarray:
    """`track.track_masks` with the config's settings: uint8 [N, h, w] masks."""
    return track_masks(probabilities, frame, mask, threshold=p.threshold, search=p.track_search,
                       grow=p.track_grow, ring=p.track_ring, lost=p.track_lost,
                       partial=p.track_partial, memory=p.track_memory, widen=p.track_widen,
                       max_search=p.track_max_search, near=p.track_near, low=p.track_low,
                       low_reach=p.track_low_reach).masks


def propagate(config: Config, annotation: Annotation, *, out: Path, logdir: Path | None,
              dilation: int, verbose: bool = True):
    """Propagates, dilates every frame's mask by `dilation` px and writes it to `out`, with
    `confidence.json` beside the masks (per frame name, the mean object probability inside it).

    Returns the written masks (uint8 [N, H, W, 1], 0/1) and the `Propagation`.
    """
    frames = annotation.video.frames
    check_size(frames.shape[1:3], config, "video")
    size = propagation_size(frames.shape[1:3], config)
    result = propagate_masks(config, frames, annotation.frame, annotation.mask, size,
                             logdir=logdir, verbose=verbose)
    masks = video_io.dilate_masks(result.masks, dilation)
    write_masks(Path(out), masks, annotation.video.names)
    confidence = {name: round(float(value), 4)
                  for name, value in zip(annotation.video.names, result.confidence)}
    (Path(out) / "confidence.json").write_text(json.dumps(confidence, indent=1))
    return masks, result


def propagate_for_inpainting(config: Config, clip: Clip, frame: int, folder: Path, *,
                             verbose: bool = True) -> tuple[str, np.ndarray]:
    """`train --first-mask`: propagates `clip.masks[frame]` to every frame of `clip` (a
    `tfinpaint.io.clip.Clip`) into `folder` (masks/ and logs/).

    The masks are saved undilated, so that `--resume` reads them as any mask folder; returns
    that folder and the masks dilated by data.mask_dilation, ready to inpaint.
    """
    annotation = Annotation(video=video_io.Video(frames=clip.frames, fps=clip.fps, names=clip.names),
                            frame=frame, mask=clip.masks[frame])
    masks, result = propagate(config, annotation, out=folder / "masks", logdir=folder / "logs",
                              dilation=0, verbose=verbose)
    if verbose:
        fitted = (f"; fitted {result.steps} steps in {result.seconds:.0f} s"
                  if result.steps else "")
        print(f"propagated the mask of frame {frame} in {result.total_seconds:.0f} s "
              f"({config.propagate.method}{fitted}): {folder / 'masks'}", file=sys.stderr)
    return str(folder / "masks"), video_io.dilate_masks(masks, config.data.mask_dilation)
