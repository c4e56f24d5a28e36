"""The resize every path shares (`tfinpaint.fill.resample`): known values, OpenCV agreement, ONNX."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.fill import resample
from tfinpaint.io.clip import resize_frames, resize_masks


def _random(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("size", [(240, 432), (480, 854), (600, 1000), (17, 900)])
def test_constant_image_stays_constant(size):
    image = np.full((1, 480, 854, 3), 173, np.uint8)
    resized = resample.resize_images(image, size).numpy()
    assert resized.shape == (1, *size, 3)
    np.testing.assert_allclose(resized, 173.0, atol=1e-3)


def test_halving_by_area_is_2x2_average_pooling():
    images = _random((2, 40, 60, 3))
    pooled = tf.nn.avg_pool2d(tf.cast(images, tf.float32), 2, 2, "VALID").numpy()
    np.testing.assert_allclose(resample.resize_images(images, (20, 30)).numpy(), pooled, atol=1e-4)


def test_equal_size_is_the_identity_bit_for_bit():
    images = _random((2, 37, 53, 3))
    np.testing.assert_array_equal(resample.resize_uint8(images, (37, 53)).numpy(), images)


def test_area_matches_opencv_inter_area_within_one_level():
    frames = _random((2, 480, 854, 3), seed=1)
    ours = resample.resize_uint8(frames, (240, 432)).numpy().astype(int)
    theirs = np.stack([cv2.resize(f, (432, 240), interpolation=cv2.INTER_AREA) for f in frames])
    assert np.abs(ours - theirs).max() <= 1
    assert (ours != theirs).mean() < 0.01  # float rounding at .5, not a different filter


def test_growing_matches_opencv_inter_cubic_within_one_level():
    small = _random((1, 240, 432, 3), seed=2)
    ours = resample.resize_uint8(small, (480, 854)).numpy().astype(int)
    theirs = cv2.resize(small[0], (854, 480), interpolation=cv2.INTER_CUBIC)[None]
    assert np.abs(ours - theirs).max() <= 1


def test_hole_keeps_every_touched_pixel():
    masks = np.zeros((1, 480, 854, 1), np.uint8)
    masks[0, 101, 203] = 1  # one native pixel, straddling two working pixels horizontally
    small = resize_masks(masks, 240, 432)
    assert np.argwhere(small[0, ..., 0]).tolist() == [[50, 102], [50, 103]]
    reference = cv2.resize(masks[0, ..., 0].astype(np.float32), (432, 240),
                           interpolation=cv2.INTER_AREA) > 0
    np.testing.assert_array_equal(small[0, ..., 0] > 0, reference)


def test_clip_resize_is_the_graph_resize_eagerly_and_in_a_dataset():
    frames = _random((3, 48, 80, 3), seed=3)
    expected = resize_frames(frames, 24, 40)
    mapped = tf.data.Dataset.from_tensors(frames).map(lambda f: resample.resize_uint8(f, (24, 40)))
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), expected)


def test_onnx_conversion_of_the_resize_agrees_with_tensorflow():
    import onnxruntime
    import tf2onnx

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
                                  tf.TensorSpec([2], tf.int32, name="size")])
    def resize(images, size):
        return resample.resize_uint8(images, (size[0], size[1]))

    model, _ = tf2onnx.convert.from_function(resize, input_signature=resize.input_signature,
                                             opset=17)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    images = _random((2, 48, 85, 3), seed=4)
    for size in [(24, 43), (48, 85), (96, 170), (30, 170)]:
        expected = resize(images, tf.constant(size)).numpy()
        got = session.run(None, {"images": images, "size": np.array(size, np.int32)})[0]
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected).max() <= 1
