"""`Inpainter`: the generator plus the paper's training objective (eq. 7) in a custom `train_step`."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfinpaint.config import PerturbationConfig
from tfinpaint.data import augment
from tfinpaint.evaluation import metrics
from tfinpaint.fill.prefill import apply_prefill
from tfinpaint.fitting import losses, numerics
from tfinpaint.model import vgg
from tfinpaint.model.generator import (EDGE_PAD_MODE, MULTIPLE, composite, crop_to, network_input,
                                       pad_to_multiple, to_signed)


class Inpainter(keras.Model):
    """Fits a generator to one video with translated masks and the paper's regularisers (eq. 7).

    Args:
        generator: a network from `tfinpaint.model.generator.build_generator`, returning a list of stage
            outputs (coarse first, refined last).
        reconstruction: weight of the reconstruction loss (eq. 2).
        ambiguity: lambda_a, weight of the anti-ambiguity loss (eq. 3, 8-9); needs
            `feature_extractor`.
        stabilization: lambda_s, weight of the stabilisation loss (eq. 4-5).
        feature_extractor: the frozen VGG-19 of `tfinpaint.model.vgg.build_feature_extractor`.
        ambiguity_positions: at most this many feature positions of the output inside the
            translated mask per example enter the anti-ambiguity loss (see `losses.ambiguity_loss`).
        ambiguity_target_positions: likewise, of the other frame outside its object mask.
        perturbation: the ranges of the stabilisation loss's random perturbation g.
        stabilization_examples: the stabilisation loss perturbs the first n examples of each batch
            (0 = all). Examples are drawn at random, so the loss is the same in expectation, and
            the extra generator pass costs n / batch of a step instead of a whole step.
        seed: with the optimizer's step, seeds g and the sampled positions, so that a resumed fit
            draws what an uninterrupted one would have.
        prefill: what the network sees inside the hole, "none" (zeros), "pyramid" (a push-pull
            fill) or "flow" (the batch's `prefilled`, uint8, flow-propagated from the other
            frames by the sampler); see `network_input`. Inference must use the same (`data.prefill`).
        debug_numerics: each step also returns `tfinpaint.fitting.numerics.step_report`'s logs (the
            first non-finite tensor, the gradients' global norm); off, the step has no check.

    Call arguments:
        inputs: float [B, H, W, 4], see `network_input`.

    Batches are dicts of uint8 tensors, as the samplers of `tfinpaint.data.samplers` yield them:
    `frames` (X_i) [B, H, W, 3], `masks` (M_i) and `translated` (M'_t) [B, H, W, 1] with 1 = hole,
    and the other frame t whose mask was borrowed, `target_frames` (X_t) and `target_masks`
    (M_t), the anti-ambiguity loss's target.
    A term whose weight is 0 is neither computed nor tracked: the choice is made in Python when
    the step is traced, so a reconstruction-only fit pays nothing for the regularisers.
    """

    def __init__(self, generator: keras.Model, *, reconstruction: float = 1.0,
                 ambiguity: float = 0.0, stabilization: float = 0.0,
                 feature_extractor: keras.Model | None = None, ambiguity_positions: int = 1024,
                 ambiguity_target_positions: int = 4096,
                 perturbation: PerturbationConfig = PerturbationConfig(),
                 stabilization_examples: int = 0, seed: int = 0, prefill: str = "none",
                 debug_numerics: bool = False, **kwargs):
        super().__init__(**kwargs)
        if ambiguity > 0 and feature_extractor is None:
            raise ValueError("the anti-ambiguity loss needs a feature_extractor (tfinpaint.model.vgg)")
        self.generator = generator
        self.reconstruction = reconstruction
        self.ambiguity = ambiguity
        self.stabilization = stabilization
        self.feature_extractor = feature_extractor
        self.ambiguity_positions = ambiguity_positions
        self.ambiguity_target_positions = ambiguity_target_positions
        self.perturbation = perturbation
        self.stabilization_examples = stabilization_examples
        self.sampling_seed = seed
        self.prefill = prefill
        self.debug_numerics = debug_numerics
        if debug_numerics:
            # the generator with every block's output, sharing its weights (tfinpaint.fitting.numerics)
            self.probe, self.block_names, self.stage_blocks = numerics.probe(generator)
        self.weights_by_term = {name: weight for name, weight in (
            ("reconstruction", reconstruction), ("ambiguity", ambiguity),
            ("stabilization", stabilization)) if weight > 0}
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("total", *self.weights_by_term)}
        # Seconds fitted so far (`schedule.FitClock`), read by the learning-rate schedule and the
        # time budget; checkpointed with the weights, so both span resumes.
        self.fit_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="fit_seconds")
        # Where the learning-rate decay's current segment starts and ends (see
        # `schedule.begin_segment`); checkpointed, so an extended fit decays on from where it was.
        self.decay_segment = tf.Variable(tf.zeros([6], tf.float64), trainable=False,
                                         name="decay_segment")
        # The factor recoveries from non-finite steps have lowered the learning rate by
        # (`monitor.Monitor`); checkpointed, so a resumed fit keeps the lower rate.
        self.rate_scale = tf.Variable(1.0, dtype=tf.float32, trainable=False,
                                      name="learning_rate_scale")
        # Steps skipped for a non-finite loss or gradient, and what the last one was.
        self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
        self.last_nonfinite = tf.Variable(0, dtype=tf.int32, trainable=False,
                                          name="last_nonfinite")

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _step_seeds(self, count: int) -> tf.Tensor:
        step = tf.cast(self.optimizer.iterations, tf.int64)
        return tf.random.experimental.stateless_split(
            tf.stack([tf.constant(self.sampling_seed, tf.int64) * 1000003 + 2, step]), count)

    def train_step(self, batch):
        frames = to_signed(batch["frames"])  # X_i
        object_mask = tf.cast(batch["masks"], tf.float32)  # M_i
        translated_mask = tf.cast(batch["translated"], tf.float32)  # M'_t
        # translated mask: the network sees neither M_i nor M'_t, and is scored on 1 - M_i
        hole = tf.maximum(object_mask, translated_mask)
        known = 1.0 - object_mask
        # prior: an optional `prior` key (uint8 [B, H, W, 3]) from progressive fitting
        prior = to_signed(batch["prior"]) if "prior" in batch else None
        # prefilled: X_i with M_i ∪ M'_t filled from the other frames (data.prefill: flow)
        prefilled = to_signed(batch["prefilled"]) if "prefilled" in batch else None
        seeds = self._step_seeds(2)
        terms = self.weights_by_term

        with tf.GradientTape() as tape:
            inputs = network_input(frames, hole, prior, self.prefill, prefilled)
            if self.debug_numerics:  # every block's output, for tfinpaint.fitting.numerics
                padded, size = pad_to_multiple(inputs, MULTIPLE, mode=EDGE_PAD_MODE)
                blocks = self.probe(padded, training=True)
                outputs = [crop_to(blocks[i], size) for i in self.stage_blocks]
            else:
                outputs = self.generator(inputs, training=True)
            values = {}
            # reconstruction (eq. 1-2)
            if "reconstruction" in terms:
                values["reconstruction"] = losses.reconstruction_loss(outputs, frames, known)
            # anti-ambiguity (eq. 3, 8-9): the output against another frame X_t of the video,
            # drawn by the sampler (t != i), away from its own object M_t
            if "ambiguity" in terms:
                values["ambiguity"] = losses.ambiguity_loss(
                    outputs[-1], to_signed(batch["target_frames"]), translated_mask,
                    tf.cast(batch["target_masks"], tf.float32),
                    features=lambda images: vgg.relu3_4(self.feature_extractor, images),
                    max_positions=self.ambiguity_positions,
                    target_positions=self.ambiguity_target_positions, seed=seeds[1])
            # stabilization (eq. 4-5): a small random g of the input must change the output as
            # it changes the input, outside M_i ∪ g(M_i)
            if "stabilization" in terms:
                values["stabilization"] = self._stabilization(
                    outputs, frames, object_mask, translated_mask, prior, prefilled, seeds[0])
            total = tf.add_n([terms[name] * value for name, value in values.items()])
            # Gradients are summed over replicas, so each replica's share is averaged here.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(total / replicas)

        gradients = tape.gradient(scaled, self.generator.trainable_weights)
        # A step whose loss or gradients are not finite is skipped (weights, Adam's moments and
        # the step count untouched) and counted; the fit's monitor recovers from it.
        finite = self._apply_if_finite(total, gradients)

        counted = tf.cast(finite, tf.float32)
        self.trackers["total"].update_state(tf.where(finite, total, 0.0), sample_weight=counted)
        for name, value in values.items():
            self.trackers[name].update_state(tf.where(finite, value, 0.0), sample_weight=counted)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if self.debug_numerics:
            # debug: this step's tensors, in the order computed (tfinpaint.fitting.numerics)
            logs.update(numerics.step_report(blocks, values, total, gradients,
                                             self.generator.trainable_weights))
        return logs

    def _apply_if_finite(self, total: tf.Tensor, gradients: list[tf.Tensor]) -> tf.Tensor:
        loss_finite = tf.math.is_finite(total)
        gradients_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
        finite = tf.logical_and(loss_finite, gradients_finite)

        def apply():
            self.optimizer.apply(gradients, self.generator.trainable_weights)
            return tf.constant(True)

        def skip():
            self.skipped_steps.assign_add(1)
            # 1: the loss itself was not finite; 2: only its gradients were
            self.last_nonfinite.assign(tf.where(loss_finite, 2, 1))
            return tf.constant(False)

        if tf.distribute.get_strategy().num_replicas_in_sync == 1:
            tf.cond(finite, apply, skip)
        else:  # an update in a branch cannot synchronise replicas: zero gradients instead
            tf.cond(finite, lambda: tf.constant(True), skip)
            self.optimizer.apply([tf.where(finite, g, tf.zeros_like(g)) for g in gradients],
                                 self.generator.trainable_weights)
        return finite

    def numerics_names(self) -> list[str]:
        """What `numerics.step_report` checks in this model's step, in order."""
        return numerics.checked_names(self.block_names, list(self.weights_by_term))

    def _stabilization(self, outputs, frames, object_mask, translated_mask, prior, prefilled,
                       seed):
        """Eq. 4-5 on the first `stabilization_examples` examples: f(g(x)) from a second
        generator pass on g(X_i) seen through g(M_i) ∪ g(M'_t), against f(x) = `outputs`."""
        count = self.stabilization_examples or tf.shape(frames)[0]
        chosen = slice(0, count)
        shape = tf.shape(frames[chosen])
        g = augment.draw(seed, shape[0], shape[1], shape[2], self.perturbation)
        perturbed_frames = augment.perturb_images(frames[chosen], g, self.perturbation)
        perturbed_object = augment.perturb_masks(object_mask[chosen], g)
        perturbed_hole = tf.maximum(perturbed_object,
                                    augment.perturb_masks(translated_mask[chosen], g))
        perturbed_prior = (None if prior is None
                           else augment.perturb_images(prior[chosen], g, self.perturbation))
        perturbed_prefilled = (None if prefilled is None
                               else augment.perturb_images(prefilled[chosen], g, self.perturbation))
        perturbed_outputs = self.generator(
            network_input(perturbed_frames, perturbed_hole, perturbed_prior, self.prefill,
                          perturbed_prefilled),
            training=True)
        outside = 1.0 - tf.maximum(object_mask[chosen], perturbed_object)
        return losses.stabilization_loss([output[chosen] for output in outputs], perturbed_outputs,
                                         frames[chosen], perturbed_frames, outside)

    def selfcheck(self, batch) -> dict[str, tf.Tensor]:
        """Reconstruction PSNR on known pixels hidden by translated masks (how well holes will fill).

        Returns the PSNR and the images for TensorBoard: input, each stage, and the composite.
        """
        frames = to_signed(batch["frames"])
        object_mask = tf.cast(batch["masks"], tf.float32)
        translated_mask = tf.cast(batch["translated"], tf.float32)
        hole = tf.maximum(object_mask, translated_mask)
        prior = to_signed(batch["prior"]) if "prior" in batch else None
        prefilled = to_signed(batch["prefilled"]) if "prefilled" in batch else None
        outputs = self.generator(network_input(frames, hole, prior, self.prefill, prefilled),
                                 training=False)
        scored = translated_mask * (1.0 - object_mask)
        return {
            "psnr": metrics.masked_psnr(outputs[-1], frames, scored),
            "input": apply_prefill(frames, hole, self.prefill, prefilled),
            "stages": [tf.cast(output, tf.float32) for output in outputs],
            "composite": composite(outputs[-1], frames, hole),
        }
