"""The loss terms behave as the paper defines them (eq. 2-5, 8-9)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.data import augment
from tfinpaint.fitting import losses
from tfinpaint.io.sample import make_sample
from tfinpaint.model import vgg
from tfinpaint.model.generator import network_input, to_signed

SEED = tf.constant([1, 2], tf.int64)


@pytest.fixture(scope="module")
def extractor():
    return vgg.build_feature_extractor(weights=None)


def _features(extractor):
    return lambda images: vgg.relu3_4(extractor, images)


def _random_features(batch=2, points=50, channels=16, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, points, channels)), tf.float32)


def _contextual(source, target, source_weight=None, target_weight=None):
    source_weight = tf.ones(source.shape[:2]) if source_weight is None else source_weight
    target_weight = tf.ones(target.shape[:2]) if target_weight is None else target_weight
    return float(losses.contextual_loss(source, target, source_weight, target_weight))


def test_contextual_loss_is_zero_for_identical_features():
    features = _random_features()
    assert _contextual(features, features) == pytest.approx(0.0, abs=1e-4)


def test_contextual_loss_is_zero_for_the_same_features_in_another_order():
    # Unaligned: a feature may find its match anywhere, on either side.
    source = _random_features()
    shuffled = tf.gather(source, np.random.default_rng(2).permutation(source.shape[1]), axis=1)
    assert _contextual(source, shuffled) == pytest.approx(0.0, abs=1e-4)
    assert _contextual(shuffled, source) == pytest.approx(0.0, abs=1e-4)


def test_contextual_loss_is_large_for_unrelated_features_and_ignores_the_target_order():
    source, target = _random_features(seed=0), _random_features(seed=1)
    plain = _contextual(source, target)
    assert plain > 1.0  # log(50) = 3.9 would be no match at all
    shuffled = tf.gather(target, np.random.default_rng(2).permutation(target.shape[1]), axis=1)
    assert _contextual(source, shuffled) == pytest.approx(plain, rel=1e-5)


def test_contextual_loss_asks_every_target_point_for_a_source_match():
    """Eq. 9 averages over target points j the best source point i: the form is asymmetric."""
    features = _random_features(points=50)
    extra = _random_features(points=150, seed=7)
    more = tf.concat([features, extra], axis=1)  # the 50 features and 150 unrelated ones
    # A source that holds every target point, and more besides: about 0.
    assert _contextual(more, features) == pytest.approx(0.0, abs=1e-4)
    # A target that holds every source point, and more besides: log(Q / P), the least that P
    # source points can reach against Q target points.
    assert _contextual(features, more) == pytest.approx(np.log(200 / 50), abs=1e-3)
    # Unrelated target points that do not count change nothing.
    counted = tf.concat([tf.ones([2, 50]), tf.zeros([2, 150])], axis=1)
    assert _contextual(features, more, target_weight=counted) == pytest.approx(0.0, abs=1e-4)


def test_contextual_loss_matches_only_counted_points_and_skips_examples_without_any():
    features = _random_features()
    # Forbidding half of the identical target points leaves their sources without a match.
    forbidden = tf.concat([tf.zeros([2, 25]), tf.ones([2, 25])], axis=1)
    assert _contextual(features, features, target_weight=forbidden) == pytest.approx(0.0, abs=1e-4)
    assert _contextual(features, features, source_weight=forbidden) > 0.1
    # An example with no source or no target point contributes nothing.
    other = _random_features(seed=5)
    only_first = _contextual(features[:1], other[:1])
    blocked = tf.constant([[1.0] * 50, [0.0] * 50])
    for side in ("source_weight", "target_weight"):
        assert _contextual(features, other, **{side: blocked}) == pytest.approx(only_first, rel=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("empty", ["none", "source", "target", "both"])
def test_contextual_loss_gradients_are_finite_and_empty_sides_give_zero(dtype, empty):
    source = tf.Variable(tf.cast(_random_features(seed=3), dtype))
    target = tf.cast(tf.concat([_random_features(seed=3)[:, :10], _random_features(seed=4)], 1),
                     dtype)
    source_weight = tf.zeros([2, 50]) if empty in ("source", "both") else tf.ones([2, 50])
    target_weight = tf.zeros([2, 60]) if empty in ("target", "both") else tf.ones([2, 60])
    with tf.GradientTape() as tape:
        loss = losses.contextual_loss(source, target, source_weight, target_weight)
    gradient = tape.gradient(loss, source)
    assert loss.dtype == tf.float32 and np.isfinite(float(loss))
    assert np.all(np.isfinite(tf.cast(gradient, tf.float32).numpy()))
    if empty == "none":
        assert float(loss) > 0 and float(tf.reduce_sum(tf.abs(tf.cast(gradient, tf.float32)))) > 0
    else:
        assert float(loss) == 0.0


def test_sample_positions_take_the_region_first_and_bound_the_count():
    region = np.zeros((2, 8, 10, 1), np.float32)
    region[0, 2:5, 3:7] = 1  # 12 positions
    region[1] = 1  # 80 positions
    positions = losses.sample_positions(tf.constant(region), 16, SEED).numpy()
    assert positions.shape == (2, 16)
    flat = region.reshape(2, -1)
    assert flat[0, positions[0]].sum() == 12 and flat[1, positions[1]].sum() == 16
    assert len(set(positions[1])) == 16
    assert losses.sample_positions(tf.constant(region), 1000, SEED).shape == (2, 80)


def _sample_frames(count=3, height=64, width=96):
    sample = make_sample(num_frames=12, height=height, width=width)
    return sample, to_signed(sample.truth[:count])


def _ambiguity(extractor, output, target, region, blocked, positions=512, target_positions=512):
    return losses.ambiguity_loss(output, target, region, blocked, features=_features(extractor),
                                 max_positions=positions, target_positions=target_positions,
                                 seed=SEED)


def test_ambiguity_loss_small_for_the_same_scene_larger_for_unrelated_images(extractor):
    _, frames = _sample_frames()
    region = tf.ones(frames.shape[:3] + (1,))
    nothing = tf.zeros_like(region)
    # 64x96 frames have 16x24 = 384 feature positions: with 512 both sides take all of them.
    same = float(_ambiguity(extractor, frames, frames, region, nothing))
    # The same scene, unaligned: a later frame of the panning camera.
    later = to_signed(make_sample(num_frames=12, height=64, width=96).truth[3:6])
    moved = float(_ambiguity(extractor, frames, later, region, nothing))
    noise = tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0)
    unrelated = float(_ambiguity(extractor, frames, noise, region, nothing))
    assert same == pytest.approx(0.0, abs=1e-4)
    assert same < moved < unrelated


def test_ambiguity_loss_matches_the_hole_anywhere_in_the_other_frame(extractor):
    """The source is the output inside M'_t; the target is the whole other frame outside M_t."""
    _, frames = _sample_frames()
    region = np.zeros(frames.shape[:3] + (1,), np.float32)
    region[:, 16:48, 16:48] = 1  # 8x8 feature positions
    region = tf.constant(region)
    nothing = tf.zeros_like(region)
    # The output is the frame itself, and the target holds that region among the rest: the loss
    # sits at its floor log(Q / P) (see contextual_loss), 384 target against 64 source positions.
    at_floor = float(_ambiguity(extractor, frames, frames, region, nothing))
    assert at_floor == pytest.approx(np.log(384 / 64), abs=0.05)
    # Blocking the target there (its own object mask M_t) removes the exact match.
    blocked = float(_ambiguity(extractor, frames, frames, region, region))
    assert blocked > at_floor
    # Moving the hole's content elsewhere in the target frame still finds it (unaligned).
    shifted = tf.roll(frames, shift=[24, 40], axis=[1, 2])
    moved = float(_ambiguity(extractor, frames, shifted, region, nothing))
    assert moved < blocked


def test_ambiguity_loss_is_zero_without_a_region_and_finite_for_a_tiny_one(extractor):
    _, frames = _sample_frames()
    nothing = tf.zeros(frames.shape[:3] + (1,))
    everything = tf.ones_like(nothing)
    noise = tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0)
    assert float(_ambiguity(extractor, frames, noise, nothing, nothing, 64, 256)) == 0.0
    # A target blocked everywhere has nothing to match: 0 as well.
    assert float(_ambiguity(extractor, frames, noise, everything, everything, 64, 256)) == 0.0
    region = np.zeros(frames.shape[:3] + (1,), np.float32)
    region[:, 20:28, 40:48] = 1
    value = float(_ambiguity(extractor, frames, noise, tf.constant(region), nothing, 64, 256))
    assert np.isfinite(value) and value > 0


def test_ambiguity_gradients_reach_the_output_and_vgg_is_frozen(extractor):
    _, frames = _sample_frames()
    output = tf.Variable(tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0))
    region = tf.ones(frames.shape[:3] + (1,))
    assert extractor.trainable_weights == [] and not extractor.trainable
    with tf.GradientTape() as tape:
        loss = _ambiguity(extractor, output, frames, region, tf.zeros_like(region), 128, 256)
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, output)))) > 0


@pytest.mark.parametrize("empty", ["none", "region", "target"])
def test_ambiguity_gradients_are_finite_under_mixed_bfloat16(empty):
    _, frames = _sample_frames()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        extractor = vgg.build_feature_extractor(weights=None)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    output = tf.Variable(tf.cast(tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0),
                                 tf.bfloat16))
    region = np.zeros(frames.shape[:3] + (1,), np.float32)
    region[:, 16:48, 16:48] = 1
    region = tf.zeros_like(region) if empty == "region" else tf.constant(region)
    blocked = tf.ones_like(region) if empty == "target" else tf.zeros_like(region)
    with tf.GradientTape() as tape:
        loss = tf.function(_ambiguity, autograph=False)(extractor, output, frames, region, blocked)
    gradient = tf.cast(tape.gradient(loss, output), tf.float32).numpy()
    assert loss.dtype == tf.float32 and np.isfinite(float(loss))
    assert np.all(np.isfinite(gradient))
    assert (float(loss) > 0 and np.abs(gradient).sum() > 0) if empty == "none" else float(loss) == 0


def _stabilization(network, frames, object_mask, translated_mask, g):
    perturbed_frames = augment.perturb_images(frames, g)
    perturbed_object = augment.perturb_masks(object_mask, g)
    perturbed_hole = tf.maximum(perturbed_object, augment.perturb_masks(translated_mask, g))
    outputs = network(network_input(frames, tf.maximum(object_mask, translated_mask)))
    perturbed = network(network_input(perturbed_frames, perturbed_hole))
    outside = 1.0 - tf.maximum(object_mask, perturbed_object)
    return float(losses.stabilization_loss(outputs, perturbed, frames, perturbed_frames, outside))


def test_stabilization_loss_is_zero_for_a_network_that_commutes_with_g():
    sample, frames = _sample_frames()
    object_mask = tf.constant(sample.masks[:3], tf.float32)
    g = augment.draw(SEED, 3, 64, 96)
    identity = lambda inputs: [inputs[..., :3], inputs[..., :3]]  # noqa: E731 - two "stages"
    assert _stabilization(identity, frames, object_mask, tf.zeros_like(object_mask), g) == \
        pytest.approx(0.0, abs=1e-6)
    constant = lambda inputs: [tf.zeros_like(inputs[..., :3])]  # noqa: E731 - ignores its input
    assert _stabilization(constant, frames, object_mask, tf.zeros_like(object_mask), g) > 0.01
