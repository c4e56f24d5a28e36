"""`Inpainter`: the generator plus the paper's training objective (eq. 7) in a custom `train_step`."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfinpaint import losses


def to_signed(frames: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(frames, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """float [-1, 1] -> uint8, rounded."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def network_input(frames: tf.Tensor, hole: tf.Tensor) -> tf.Tensor:
    """The generator's input: the frame with the hole blanked, and the hole mask (4 channels)."""
    return tf.concat([frames * (1.0 - hole), hole], axis=-1)


def composite(output: tf.Tensor, frames: tf.Tensor, hole: tf.Tensor) -> tf.Tensor:
    """The network's output inside the hole, the frame outside it."""
    return hole * tf.cast(output, tf.float32) + (1.0 - hole) * frames


class Inpainter(keras.Model):
    """Fits a generator to one video with translated masks (paper Sec. 3).

    Args:
        generator: a network from `tfinpaint.generator.build_generator`, returning a list of stage
            outputs (coarse first, refined last).
        reconstruction: weight of the reconstruction loss (eq. 2).

    Call arguments:
        inputs: float [B, H, W, 4], see `network_input`.

    Batches are dicts of uint8 tensors: `frames` [B, H, W, 3], `masks` (M_i) and `translated`
    (M'_t) [B, H, W, 1] with 1 = hole, as `tfinpaint.data.pipeline.MaskSampler` yields them.
    """

    def __init__(self, generator: keras.Model, *, reconstruction: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.reconstruction = reconstruction
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("total", "reconstruction")}

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, batch):
        frames = to_signed(batch["frames"])
        object_mask = tf.cast(batch["masks"], tf.float32)  # M_i
        translated_mask = tf.cast(batch["translated"], tf.float32)  # M'_t
        # translated mask: the network sees neither M_i nor M'_t, and is scored on 1 - M_i
        hole = tf.maximum(object_mask, translated_mask)
        known = 1.0 - object_mask

        with tf.GradientTape() as tape:
            outputs = self.generator(network_input(frames, hole), training=True)
            # reconstruction (eq. 1-2)
            reconstruction = losses.reconstruction_loss(outputs, frames, known)
            total = self.reconstruction * reconstruction
            # Gradients are summed over replicas, so each replica's share is averaged here.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(total / replicas)

        gradients = tape.gradient(scaled, self.generator.trainable_weights)
        self.optimizer.apply(gradients, self.generator.trainable_weights)

        self.trackers["total"].update_state(total)
        self.trackers["reconstruction"].update_state(reconstruction)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def selfcheck(self, batch) -> dict[str, tf.Tensor]:
        """Reconstruction PSNR on known pixels hidden by translated masks (how well holes will fill).

        Returns the PSNR and the images for TensorBoard: input, each stage, and the composite.
        """
        frames = to_signed(batch["frames"])
        object_mask = tf.cast(batch["masks"], tf.float32)
        translated_mask = tf.cast(batch["translated"], tf.float32)
        hole = tf.maximum(object_mask, translated_mask)
        outputs = self.generator(network_input(frames, hole), training=False)
        scored = translated_mask * (1.0 - object_mask)
        return {
            "psnr": losses.masked_psnr(outputs[-1], frames, scored),
            "input": frames * (1.0 - hole),
            "stages": [tf.cast(output, tf.float32) for output in outputs],
            "composite": composite(outputs[-1], frames, hole),
        }
