"""The loss terms behave as the paper defines them (eq. 2-5, 8-9)."""

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint import losses, vgg
from tfinpaint.data import augment
from tfinpaint.generator import network_input, to_signed
from tfinpaint.sample_clip import make_sample

SEED = tf.constant([1, 2], tf.int64)


@pytest.fixture(scope="module")
def extractor():
    return vgg.build_feature_extractor(weights=None)


def _features(extractor):
    return lambda images: vgg.relu3_4(extractor, images)


def _random_features(batch=2, points=50, channels=16, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, points, channels)), tf.float32)


def test_contextual_loss_is_zero_for_identical_features():
    features = _random_features()
    ones = tf.ones(features.shape[:2])
    assert float(losses.contextual_loss(features, features, ones, ones)) == pytest.approx(0.0, abs=1e-5)


def test_contextual_loss_ignores_the_order_of_target_points():
    source, target = _random_features(seed=0), _random_features(seed=1)
    ones = tf.ones(source.shape[:2])
    order = np.random.default_rng(2).permutation(target.shape[1])
    shuffled = tf.gather(target, order, axis=1)
    plain = float(losses.contextual_loss(source, target, ones, ones))
    assert plain > 0.1
    assert float(losses.contextual_loss(source, shuffled, ones, ones)) == pytest.approx(plain, rel=1e-5)


def test_contextual_loss_matches_only_allowed_targets_and_skips_examples_without_any():
    features = _random_features()
    ones = tf.ones(features.shape[:2])
    # Forbidding the identical target points leaves a positive distance.
    forbidden = tf.concat([tf.zeros([2, 25]), tf.ones([2, 25])], axis=1)
    assert float(losses.contextual_loss(features, features, ones, forbidden)) > 0.1
    # An example with no target point at all contributes nothing.
    blocked = tf.constant([[1.0] * 50, [0.0] * 50])
    other = _random_features(seed=5)
    only_first = losses.contextual_loss(features[:1], other[:1], ones[:1], ones[:1])
    both = losses.contextual_loss(features, other, ones, blocked)
    assert float(both) == pytest.approx(float(only_first), rel=1e-5)


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


def test_ambiguity_loss_small_for_the_same_scene_larger_for_unrelated_images(extractor):
    sample, frames = _sample_frames()
    region = tf.ones(frames.shape[:3] + (1,))
    nothing = tf.zeros_like(region)
    kwargs = dict(features=_features(extractor), max_positions=256, seed=SEED)
    same = float(losses.ambiguity_loss(frames, frames, region, nothing, **kwargs))
    # The same scene, unaligned: a later frame of the panning camera.
    later = to_signed(make_sample(num_frames=12, height=64, width=96).truth[3:6])
    moved = float(losses.ambiguity_loss(frames, later, region, nothing, **kwargs))
    noise = tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0)
    unrelated = float(losses.ambiguity_loss(frames, noise, region, nothing, **kwargs))
    assert same == pytest.approx(0.0, abs=1e-4)
    assert same < moved < unrelated


def test_ambiguity_loss_is_zero_without_a_region_and_finite_for_a_tiny_one(extractor):
    _, frames = _sample_frames()
    nothing = tf.zeros(frames.shape[:3] + (1,))
    kwargs = dict(features=_features(extractor), max_positions=64, seed=SEED)
    noise = tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0)
    assert float(losses.ambiguity_loss(frames, noise, nothing, nothing, **kwargs)) == 0.0
    region = np.zeros(frames.shape[:3] + (1,), np.float32)
    region[:, 20:28, 40:48] = 1
    value = float(losses.ambiguity_loss(frames, noise, tf.constant(region), nothing, **kwargs))
    assert np.isfinite(value) and value > 0


def test_ambiguity_gradients_reach_the_output_and_vgg_is_frozen(extractor):
    _, frames = _sample_frames()
    output = tf.Variable(tf.random.stateless_uniform(frames.shape, SEED, -1.0, 1.0))
    region = tf.ones(frames.shape[:3] + (1,))
    assert extractor.trainable_weights == [] and not extractor.trainable
    with tf.GradientTape() as tape:
        loss = losses.ambiguity_loss(output, frames, region, tf.zeros_like(region),
                                     features=_features(extractor), max_positions=128, seed=SEED)
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, output)))) > 0


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
