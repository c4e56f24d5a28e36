"""Loss terms, one pure function each, masked and normalised by the mask's area.

Images are float in [-1, 1], masks float in {0, 1} with shape [B, H, W, 1].
"""

from __future__ import annotations

import tensorflow as tf

_EPS = 1e-6
# Keeps log(0) out of the cross-entropy; the sigmoid head saturates in float32 well before it.
_BCE_EPSILON = 1e-6


def masked_l1(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """Mean absolute error over the pixels where `weight` is 1 (per channel), 0 if there are none."""
    prediction = tf.cast(prediction, tf.float32)
    channels = tf.cast(tf.shape(prediction)[-1], tf.float32)
    total = tf.reduce_sum(tf.abs(prediction - target) * weight)
    return total / (tf.reduce_sum(weight) * channels + _EPS)


def reconstruction_loss(outputs: list[tf.Tensor], frames: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
    """Eq. 1-2: L1 between every stage's output and the frame, on the known pixels `1 - M_i` only.

    The pixels behind the translated mask `M'_t` are known, hidden from the network's input, and
    scored here: that is what teaches the network to fill. The truth behind `M_i` is never used.
    """
    return tf.add_n([masked_l1(output, frames, known) for output in outputs])


def weighted_bce(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor, alpha: float) -> tf.Tensor:
    """Eq. 6 (mask propagation): `-(y log p + alpha (1 - y) log(1 - p))`, averaged over the
    pixels where `weight` is 1.

    With alpha < 1, a background pixel called object costs less than a missed object pixel.
    """
    p = tf.clip_by_value(tf.cast(prediction, tf.float32), _BCE_EPSILON, 1.0 - _BCE_EPSILON)
    per_pixel = -(target * tf.math.log(p) + alpha * (1.0 - target) * tf.math.log(1.0 - p))
    return tf.reduce_sum(per_pixel * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def stabilization_loss(outputs: list[tf.Tensor], perturbed_outputs: list[tf.Tensor],
                       frames: tf.Tensor, perturbed_frames: tf.Tensor,
                       outside: tf.Tensor) -> tf.Tensor:
    """Eq. 4-5: the change of each stage's output under g must equal the change of the input.

    `Delta_s = (f(g(x)) - f(x)) - (g(X) - X)`, L1 over `outside = 1 - M_i ∪ g(M_i)`, summed over
    stages. `f(x)` is the unperturbed pass (the one the reconstruction loss scores) and `f(g(x))`
    the pass on the perturbed input; gradients flow through both, as eq. 4-5 state no stop-gradient.
    """
    change = perturbed_frames - frames
    return tf.add_n([
        masked_l1(tf.cast(perturbed, tf.float32) - tf.cast(output, tf.float32), change, outside)
        for output, perturbed in zip(outputs, perturbed_outputs)])


def sample_positions(region: tf.Tensor, count: int, seed: tf.Tensor) -> tf.Tensor:
    """int32 [B, k] flat indices of up to `count` positions drawn at random inside each example's
    `region` ([B, h, w, 1] in {0, 1}), with k = min(count, h * w); where the region holds fewer
    than k positions the rest are outside it (mask them with the region)."""
    flat = tf.reshape(region, [tf.shape(region)[0], -1])
    # Inside the region scores lie in [1, 2), outside in [0, 1): top-k takes the region first,
    # in random order.
    scores = flat + tf.random.stateless_uniform(tf.shape(flat), seed)
    k = tf.minimum(count, tf.shape(flat)[1])
    return tf.math.top_k(scores, k=k, sorted=False).indices


def contextual_loss(source: tf.Tensor, target: tf.Tensor, source_weight: tf.Tensor,
                    target_weight: tf.Tensor) -> tf.Tensor:
    """Eq. 8-9: mean over source features of the cosine distance to the nearest target feature.

    Args:
        source: float [B, P, C] feature points s_p (of the output frame).
        target: float [B, Q, C] feature points t_q (of another frame).
        source_weight: [B, P] in {0, 1}, which source points count.
        target_weight: [B, Q] in {0, 1}, which target points may be matched.

    Features are normalised to unit length (eq. 8) and `D = 1 - s . t` for all pairs; each source
    point takes its nearest target point (eq. 9). An example without any target point to match
    contributes nothing (the paper's "blocked frame"). The all-pairs matrix is [B, P, Q]: bound P
    and Q (see `ambiguity_loss`).
    """
    source = tf.math.l2_normalize(tf.cast(source, tf.float32), axis=-1, epsilon=1e-12)
    target = tf.math.l2_normalize(tf.cast(target, tf.float32), axis=-1, epsilon=1e-12)
    distance = 1.0 - tf.matmul(source, target, transpose_b=True)
    # Cosine distances lie in [0, 2]: a point that may not be matched is pushed beyond them.
    distance += 4.0 * (1.0 - target_weight[:, None, :])
    nearest = tf.reduce_min(distance, axis=-1)
    has_target = tf.cast(tf.reduce_any(target_weight > 0, axis=-1, keepdims=True), tf.float32)
    weight = source_weight * has_target
    return tf.reduce_sum(nearest * weight) / (tf.reduce_sum(weight) + _EPS)


def _to_features(mask: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """A [B, H, W, 1] mask as the fraction of each feature cell it covers."""
    return tf.image.resize(tf.cast(mask, tf.float32), size, method="area")


def ambiguity_loss(output: tf.Tensor, target_frames: tf.Tensor, region: tf.Tensor,
                   target_blocked: tf.Tensor, *, features, max_positions: int,
                   seed: tf.Tensor, target_features: tf.Tensor | None = None) -> tf.Tensor:
    """Eq. 3, 8-9: contextual loss between VGG-19 relu3_4 features of the output frame and of
    another frame, both restricted to the translated-mask region `M'_t`.

    Args:
        output: [B, H, W, 3] in [-1, 1], the output frame (source).
        target_frames: [B, H, W, 3] in [-1, 1], another frame of the video per example (target).
        region: [B, H, W, 1], the translated mask M'_t.
        target_blocked: [B, H, W, 1], the target frame's own object mask: its pixels there are the
            object being removed and are never matched.
        features: images in [-1, 1] -> float32 [B, H/4, W/4, C] (see `tfinpaint.vgg.relu3_4`).
        max_positions: K. Memory is bounded by sampling at most K feature positions inside the
            region per example, for the source and the target alike (the same positions: both
            images are restricted to the same region), so the distance matrix is [B, K, K] at any
            resolution: 4 MiB per example for K = 1024, where all pairs of a 480p frame's region
            could reach gigabytes.
        seed: stateless seed [2] for the sampled positions.
        target_features: the target's features if already computed (they take no gradient).

    Returns:
        The scalar loss; 0 where the region is empty.
    """
    source_features = features(output)
    if target_features is None:
        target_features = features(target_frames)
    target_features = tf.stop_gradient(target_features)
    size = tf.shape(source_features)[1:3]
    # A feature cell belongs to the region when the region covers most of it; it is blocked in
    # the target when the object touches it at all.
    inside = tf.cast(_to_features(region, size) > 0.5, tf.float32)
    blocked = tf.cast(_to_features(target_blocked, size) > 0.0, tf.float32)
    positions = sample_positions(inside, max_positions, seed)
    batch = tf.shape(source_features)[0]
    channels = tf.shape(source_features)[-1]

    def gather(tensor, depth):
        return tf.gather(tf.reshape(tensor, [batch, -1, depth]), positions, batch_dims=1)

    source_weight = gather(inside, 1)[..., 0]
    target_weight = source_weight * (1.0 - gather(blocked, 1)[..., 0])
    return contextual_loss(gather(source_features, channels), gather(target_features, channels),
                           source_weight, target_weight)
