"""`Inpainter`: the generator plus the paper's training objective (eq. 7) in a custom `train_step`."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfinpaint import losses, numerics, vgg
from tfinpaint.data import augment
from tfinpaint.data.prefill import apply_prefill


def to_signed(frames: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(frames, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """float [-1, 1] -> uint8, rounded."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def network_input(frames: tf.Tensor, hole: tf.Tensor, prior: tf.Tensor | None = None,
                  prefill: str = "none") -> tf.Tensor:
    """The generator's input: the frame with the hole blanked, and the hole mask (4 channels),
    then, in the later stages of progressive fitting (Sec. 4.1), the previous stage's upsampled
    result, the prior, in [-1, 1] (3 more channels).

    `prefill` (`data.prefill`): "none" blanks the hole (zeros, the paper's input); "pyramid"
    fills it with a push-pull average of the known pixels around it (`tfinpaint.data.prefill`),
    so the network refines a cheap fill instead of inventing one from grey. Same channels."""
    parts = [apply_prefill(frames, hole, prefill), hole] + ([] if prior is None else [prior])
    return tf.concat(parts, axis=-1)


def composite(output: tf.Tensor, frames: tf.Tensor, hole: tf.Tensor) -> tf.Tensor:
    """The network's output inside the hole, the frame outside it."""
    return hole * tf.cast(output, tf.float32) + (1.0 - hole) * frames


class Inpainter(keras.Model):
    """Fits a generator to one video with translated masks and the paper's regularisers (eq. 7).

    Args:
        generator: a network from `tfinpaint.generator.build_generator`, returning a list of stage
            outputs (coarse first, refined last).
        reconstruction: weight of the reconstruction loss (eq. 2).
        ambiguity: lambda_a, weight of the anti-ambiguity loss (eq. 3, 8-9); needs
            `feature_extractor`.
        stabilization: lambda_s, weight of the stabilisation loss (eq. 4-5).
        feature_extractor: the frozen VGG-19 of `tfinpaint.vgg.build_feature_extractor`.
        ambiguity_positions: at most this many feature positions per example enter the
            anti-ambiguity loss (see `losses.ambiguity_loss`).
        perturbation: the ranges of the stabilisation loss's random perturbation g.
        stabilization_examples: the stabilisation loss perturbs the first n examples of each batch
            (0 = all). Examples are drawn at random, so the loss is the same in expectation, and
            the extra generator pass costs n / batch of a step instead of a whole step.
        seed: with the optimizer's step, seeds g and the sampled positions, so that a resumed fit
            draws what an uninterrupted one would have.
        prefill: what the network sees inside the hole, "none" (zeros) or "pyramid" (a push-pull
            fill); see `network_input`. Inference must use the same (`data.prefill`).
        debug_numerics: each step also returns `tfinpaint.numerics.step_report`'s logs (the
            first non-finite tensor, the gradients' global norm); off, the step has no check.

    Call arguments:
        inputs: float [B, H, W, 4], see `network_input`.

    Batches are dicts of uint8 tensors: `frames` [B, H, W, 3], `masks` (M_i) and `translated`
    (M'_t) [B, H, W, 1] with 1 = hole, as `tfinpaint.data.pipeline.MaskSampler` yields them.
    A term whose weight is 0 is neither computed nor tracked: the choice is made in Python when
    the step is traced, so a reconstruction-only fit pays nothing for the regularisers.
    """

    def __init__(self, generator: keras.Model, *, reconstruction: float = 1.0,
                 ambiguity: float = 0.0, stabilization: float = 0.0,
                 feature_extractor: keras.Model | None = None, ambiguity_positions: int = 1024,
                 perturbation: augment.Perturbation = augment.Perturbation(),
                 stabilization_examples: int = 0, seed: int = 0, prefill: str = "none",
                 debug_numerics: bool = False, **kwargs):
        super().__init__(**kwargs)
        if ambiguity > 0 and feature_extractor is None:
            raise ValueError("the anti-ambiguity loss needs a feature_extractor (tfinpaint.vgg)")
        self.generator = generator
        self.reconstruction = reconstruction
        self.ambiguity = ambiguity
        self.stabilization = stabilization
        self.feature_extractor = feature_extractor
        self.ambiguity_positions = ambiguity_positions
        self.perturbation = perturbation
        self.stabilization_examples = stabilization_examples
        self.sampling_seed = seed
        self.prefill = prefill
        self.debug_numerics = debug_numerics
        if debug_numerics:
            # the generator with every block's output, sharing its weights (tfinpaint.numerics)
            self.probe, self.block_names, self.stage_blocks = numerics.probe(generator)
        self.weights_by_term = {name: weight for name, weight in (
            ("reconstruction", reconstruction), ("ambiguity", ambiguity),
            ("stabilization", stabilization)) if weight > 0}
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("total", *self.weights_by_term)}

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
        frames = to_signed(batch["frames"])
        object_mask = tf.cast(batch["masks"], tf.float32)  # M_i
        translated_mask = tf.cast(batch["translated"], tf.float32)  # M'_t
        # translated mask: the network sees neither M_i nor M'_t, and is scored on 1 - M_i
        hole = tf.maximum(object_mask, translated_mask)
        known = 1.0 - object_mask
        # prior: an optional `prior` key (uint8 [B, H, W, 3]) from progressive fitting
        prior = to_signed(batch["prior"]) if "prior" in batch else None
        inputs = network_input(frames, hole, prior, self.prefill)
        seeds = self._step_seeds(2)
        terms = self.weights_by_term

        if "stabilization" in terms:
            # stabilization, the perturbed input: g(X_i) seen through g(M_i) ∪ g(M'_t)
            count = self.stabilization_examples or tf.shape(frames)[0]
            chosen = slice(0, count)
            shape = tf.shape(frames[chosen])
            g = augment.draw(seeds[0], shape[0], shape[1], shape[2], self.perturbation)
            perturbed_frames = augment.perturb_images(frames[chosen], g, self.perturbation)
            perturbed_object = augment.perturb_masks(object_mask[chosen], g)
            perturbed_hole = tf.maximum(perturbed_object,
                                        augment.perturb_masks(translated_mask[chosen], g))
            outside = 1.0 - tf.maximum(object_mask[chosen], perturbed_object)
            # One generator call on both batches: f(x) and f(g(x)) share the pass.
            perturbed_prior = (None if prior is None
                               else augment.perturb_images(prior[chosen], g, self.perturbation))
            inputs = tf.concat([inputs, network_input(perturbed_frames, perturbed_hole,
                                                      perturbed_prior, self.prefill)], axis=0)
        if "ambiguity" in terms:
            # anti-ambiguity target: another random frame X_t, the next example's (batches hold
            # frames drawn at random from the video); its features take no gradient.
            target_frames = tf.roll(frames, shift=1, axis=0)
            target_blocked = tf.roll(object_mask, shift=1, axis=0)
            target_features = vgg.relu3_4(self.feature_extractor, target_frames)

        with tf.GradientTape() as tape:
            if self.debug_numerics:
                blocks = self.probe(inputs, training=True)
                outputs = [blocks[i] for i in self.stage_blocks]
            else:
                outputs = self.generator(inputs, training=True)
            if "stabilization" in terms:
                batch_size = tf.shape(frames)[0]
                perturbed_outputs = [output[batch_size:] for output in outputs]
                outputs = [output[:batch_size] for output in outputs]
            values = {}
            # reconstruction (eq. 1-2)
            if "reconstruction" in terms:
                values["reconstruction"] = losses.reconstruction_loss(outputs, frames, known)
            # anti-ambiguity (eq. 3, 8-9)
            if "ambiguity" in terms:
                values["ambiguity"] = losses.ambiguity_loss(
                    outputs[-1], target_frames, translated_mask, target_blocked,
                    features=lambda images: vgg.relu3_4(self.feature_extractor, images),
                    max_positions=self.ambiguity_positions, seed=seeds[1],
                    target_features=target_features)
            # stabilization (eq. 4-5)
            if "stabilization" in terms:
                values["stabilization"] = losses.stabilization_loss(
                    [output[chosen] for output in outputs], perturbed_outputs, frames[chosen],
                    perturbed_frames, outside)
            total = tf.add_n([terms[name] * value for name, value in values.items()])
            # Gradients are summed over replicas, so each replica's share is averaged here.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(total / replicas)

        gradients = tape.gradient(scaled, self.generator.trainable_weights)
        self.optimizer.apply(gradients, self.generator.trainable_weights)

        self.trackers["total"].update_state(total)
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if self.debug_numerics:
            # debug: this step's tensors, in the order computed (tfinpaint.numerics)
            logs.update(numerics.step_report(blocks, values, total, gradients,
                                             self.generator.trainable_weights))
        return logs

    def numerics_names(self) -> list[str]:
        """What `numerics.step_report` checks in this model's step, in order."""
        return numerics.checked_names(self.block_names, list(self.weights_by_term))

    def selfcheck(self, batch) -> dict[str, tf.Tensor]:
        """Reconstruction PSNR on known pixels hidden by translated masks (how well holes will fill).

        Returns the PSNR and the images for TensorBoard: input, each stage, and the composite.
        """
        frames = to_signed(batch["frames"])
        object_mask = tf.cast(batch["masks"], tf.float32)
        translated_mask = tf.cast(batch["translated"], tf.float32)
        hole = tf.maximum(object_mask, translated_mask)
        prior = to_signed(batch["prior"]) if "prior" in batch else None
        outputs = self.generator(network_input(frames, hole, prior, self.prefill), training=False)
        scored = translated_mask * (1.0 - object_mask)
        return {
            "psnr": losses.masked_psnr(outputs[-1], frames, scored),
            "input": apply_prefill(frames, hole, self.prefill),
            "stages": [tf.cast(output, tf.float32) for output in outputs],
            "composite": composite(outputs[-1], frames, hole),
        }
