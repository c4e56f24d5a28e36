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
                    target_weight: tf.Tensor, *, bandwidth: float = 0.5,
                    epsilon: float = 1e-5) -> tf.Tensor:
    """Eq. 8-9, the contextual loss of Mechrez et al. (ECCV 2018) between two sets of features.

    Args:
        source: float [B, P, C] feature points s_i (of the output frame).
        target: float [B, Q, C] feature points t_j (of another frame).
        source_weight: [B, P] in {0, 1}, which source points count.
        target_weight: [B, Q] in {0, 1}, which target points count.
        bandwidth: h; epsilon: of the row normalisation (the paper's reference code: 0.5, 1e-5).

    Both sets are centred on the target's mean and normalised to unit length (eq. 8), and for all
    pairs

        d_ij  = 1 - s_i . t_j                            cosine distance
        d~_ij = d_ij / (min_k d_ik + epsilon)            relative to source i's nearest target
        CX_ij = exp((1 - d~_ij) / h) / sum_k exp((1 - d~_ik) / h)
        loss  = -log(1/Q sum_j max_i CX_ij)              eq. 9's 1/N sum_j min_i D_ij

    averaged over the examples that have both source and target points (an example with none on
    either side, the paper's "blocked frame", contributes nothing; all blocked gives 0).

    The form is asymmetric, as eq. 9 is: every target point asks whether some source point has it
    as its distinct nearest neighbour. A source that contains every target point gives 0 whatever
    else it holds; a target that holds P source points plus unrelated ones gives log(Q / P), which
    is also the least any P source points can reach against Q target points (each source row of
    CX sums to 1). So with Q > P the value has that floor; its gradient is unaffected.

    Distances, exponentials and sums are float32 whatever the inputs' dtype. The all-pairs tensors
    are [B, P, Q] float32: bound P and Q (see `ambiguity_loss`).
    """
    source = tf.cast(source, tf.float32)
    target = tf.cast(target, tf.float32)
    source_weight = tf.cast(source_weight, tf.float32)
    target_weight = tf.cast(target_weight, tf.float32)
    target_count = tf.reduce_sum(target_weight, axis=-1, keepdims=True)  # [B, 1]
    mean = (tf.reduce_sum(target * target_weight[..., None], axis=1, keepdims=True)
            / tf.maximum(target_count, 1.0)[..., None])
    source = tf.math.l2_normalize(source - mean, axis=-1, epsilon=1e-12)
    target = tf.math.l2_normalize(target - mean, axis=-1, epsilon=1e-12)
    distance = 1.0 - tf.matmul(source, target, transpose_b=True)  # [B, P, Q], in [0, 2]
    allowed = target_weight[:, None, :] > 0
    # Cosine distances lie in [0, 2]: a target point that does not count is pushed beyond them
    # for the minimum, and out of the normalisation below.
    nearest = tf.reduce_min(tf.where(allowed, distance, 4.0), axis=-1, keepdims=True)
    relative = distance / (nearest + epsilon)
    logits = tf.where(allowed, (1.0 - relative) / bandwidth, -1e30)
    similarity = tf.nn.softmax(logits, axis=-1) * source_weight[..., None]  # CX_ij, [B, P, Q]
    best = tf.reduce_max(similarity, axis=1)  # [B, Q], max over sources i
    context = tf.reduce_sum(best * target_weight, axis=-1) / tf.maximum(target_count[:, 0], 1.0)
    counted = tf.cast((tf.reduce_sum(source_weight, axis=-1) > 0) & (target_count[:, 0] > 0),
                      tf.float32)
    # An example that does not count takes log(1) = 0, so no NaN reaches the gradient either.
    per_example = -tf.math.log(tf.where(counted > 0, tf.maximum(context, 1e-30), 1.0))
    return tf.reduce_sum(per_example * counted) / tf.maximum(tf.reduce_sum(counted), 1.0)


def _to_features(mask: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """A [B, H, W, 1] mask as the fraction of each feature cell it covers."""
    return tf.image.resize(tf.cast(mask, tf.float32), size, method="area")


def ambiguity_loss(output: tf.Tensor, target_frames: tf.Tensor, region: tf.Tensor,
                   target_blocked: tf.Tensor, *, features, max_positions: int,
                   target_positions: int, seed: tf.Tensor,
                   target_features: tf.Tensor | None = None) -> tf.Tensor:
    """Eq. 3, 8-9: contextual loss between VGG-19 relu3_4 features of the output frame inside the
    translated mask `M'_t` (source: where the network invents) and those of another frame
    anywhere outside that frame's own object mask `M_t` (target), so that a source feature may
    find its match anywhere in the other frame: the comparison is unaligned.

    Args:
        output: [B, H, W, 3] in [-1, 1], the output frame (source).
        target_frames: [B, H, W, 3] in [-1, 1], another frame of the video per example (target).
        region: [B, H, W, 1], the translated mask M'_t.
        target_blocked: [B, H, W, 1], the target frame's own object mask M_t: its pixels there
            are the object being removed and are never matched.
        features: images in [-1, 1] -> float32 [B, H/4, W/4, C] (see `tfinpaint.model.vgg.relu3_4`).
        max_positions: P, at most this many source positions per example, drawn at random
            inside the region (`losses.ambiguity_positions`).
        target_positions: Q, at most this many target positions per example, drawn at random
            outside the target's object mask (`losses.ambiguity_target_positions`). The distance
            matrix is [B, P, Q] float32 at any resolution: 16 MiB per example for 1024 x 4096,
            where all pairs of a 480p frame could reach gigabytes.
        seed: stateless seed [2] for the sampled positions.
        target_features: the target's features if already computed (they take no gradient).

    Returns:
        The scalar loss; 0 where the region is empty or the target wholly blocked.
    """
    source_features = features(output)
    if target_features is None:
        target_features = features(target_frames)
    target_features = tf.stop_gradient(target_features)
    size = tf.shape(source_features)[1:3]
    # A feature cell belongs to the region when the region covers most of it; it is blocked in
    # the target when the object touches it at all.
    inside = tf.cast(_to_features(region, size) > 0.5, tf.float32)
    unblocked = tf.cast(_to_features(target_blocked, size) <= 0.0, tf.float32)
    source_seed, target_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(source_features)[0]
    channels = tf.shape(source_features)[-1]

    def gather(tensor, positions, depth):
        return tf.gather(tf.reshape(tensor, [batch, -1, depth]), positions, batch_dims=1)

    sources = sample_positions(inside, max_positions, source_seed)
    targets = sample_positions(unblocked, target_positions, target_seed)
    return contextual_loss(
        gather(source_features, sources, channels), gather(target_features, targets, channels),
        gather(inside, sources, 1)[..., 0], gather(unblocked, targets, 1)[..., 0])
