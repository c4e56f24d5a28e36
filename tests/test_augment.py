"""The stabilisation loss's perturbation g: ranges, binary masks, eager and tf.data/tf.function."""

import numpy as np
import tensorflow as tf

from tfinpaint.config import PerturbationConfig
from tfinpaint.data import augment

SEED = tf.constant([3, 7], tf.int64)


def _images(batch=4, height=32, width=48):
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(-1, 1, (batch, height, width, 3)), tf.float32)


def _masks(batch=4, height=32, width=48):
    masks = np.zeros((batch, height, width, 1), np.float32)
    masks[:, 10:20, 15:30] = 1.0
    return tf.constant(masks)


def test_geometry_stays_within_the_papers_ranges():
    forward = augment.forward_matrices(SEED, 256, 32, 48).numpy()
    linear = forward[:, :2, :2]
    determinant = np.linalg.det(linear)
    # Rotation and shear keep the area; scale 0.95-1.05 sets it.
    assert np.all((determinant > 0.95 ** 2 - 1e-4) & (determinant < 1.05 ** 2 + 1e-4))
    centre = np.array([23.5, 15.5, 1.0])
    moved = forward @ centre
    assert np.all(np.abs(moved[:, :2] - centre[:2]) <= 3.0 + 1e-4)  # translation ±3 px
    assert np.abs(moved[:, :2] - centre[:2]).max() > 1.0  # and it does move
    np.testing.assert_allclose(forward[:, 2], np.tile([0.0, 0.0, 1.0], (256, 1)), atol=1e-6)


def test_zero_ranges_are_the_identity_on_masks():
    still = PerturbationConfig(translation=0, rotation=0, scale=0, shear=0, intensity=0)
    g = augment.draw(SEED, 4, 32, 48, still)
    masks = _masks()
    np.testing.assert_array_equal(augment.perturb_masks(masks, g).numpy(), masks.numpy())


def test_masks_stay_binary_and_move_with_the_image():
    g = augment.draw(SEED, 4, 32, 48)
    warped = augment.perturb_masks(_masks(), g).numpy()
    assert set(np.unique(warped)) <= {0.0, 1.0}
    area = _masks().numpy().sum(axis=(1, 2, 3))
    assert np.all(np.abs(warped.sum(axis=(1, 2, 3)) - area) < 0.2 * area)
    # The image takes the same geometry: a white square warps where its mask does.
    image = augment.warp(_masks() * 2.0 - 1.0, g.transforms, "BILINEAR").numpy()
    agree = (image > 0) == (warped > 0.5)
    assert agree.mean() > 0.97


def test_images_stay_in_range_and_change_a_little():
    images = _images()
    g = augment.draw(SEED, 4, 32, 48)
    perturbed = augment.perturb_images(images, g).numpy()
    assert perturbed.min() >= -1.0 and perturbed.max() <= 1.0
    assert 0.0 < np.abs(perturbed - images.numpy()).mean() < 1.0
    # A flat image only feels the intensity gain.
    flat = tf.zeros([4, 32, 48, 3])
    gained = augment.perturb_images(flat, g).numpy()
    np.testing.assert_allclose(gained[:, 5, 5, 0], g.gains.numpy() - 1.0, atol=1e-5)


def test_same_seed_same_g_in_eager_tf_function_and_tf_data():
    images, masks = _images(), _masks()

    def perturb(images, masks):
        g = augment.draw(SEED, tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2])
        return augment.perturb_images(images, g), augment.perturb_masks(masks, g)

    eager = perturb(images, masks)
    compiled = tf.function(perturb)(images, masks)
    dataset = tf.data.Dataset.from_tensors((images, masks)).map(perturb)
    (mapped_images, mapped_masks), = list(dataset)
    for other_images, other_masks in (compiled, (mapped_images, mapped_masks)):
        np.testing.assert_allclose(other_images.numpy(), eager[0].numpy(), atol=1e-5)
        np.testing.assert_array_equal(other_masks.numpy(), eager[1].numpy())
