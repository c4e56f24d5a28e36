"""The frozen VGG-19 feature extractor of the anti-ambiguity loss (paper eq. 8, Appendix A.3).

The loss compares `relu3_4` features (the output of Keras' `block3_conv4`, whose activation is the
ReLU). Only blocks 1-3 are built and run. ImageNet weights come from Keras' cache
(`$KERAS_HOME/models/`, by default `~/.keras/models/`), are downloaded there where a network is
reachable, or are read from a file given as `losses.vgg_weights`.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from tfinpaint.errors import InputError

FEATURE_LAYER = "block3_conv4"  # relu3_4: Keras' VGG convolutions carry their ReLU
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + WEIGHTS_FILE)
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"  # as keras.applications.vgg19 checks it
STRIDE = 4  # relu3_4 is at 1/4 of the input resolution


def keras_cache_dir() -> Path:
    """Keras' cache folder, read at call time: `$KERAS_HOME`, else `~/.keras` (or `/tmp/.keras`)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp") / ".keras"


def _download(cache_dir: Path) -> str:
    return keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models",
                                file_hash=WEIGHTS_MD5, cache_dir=str(cache_dir))


def resolve_weights(path: str = "") -> str:
    """The local file of VGG-19 ImageNet weights (no top), fetching it into Keras' cache if needed.

    Args:
        path: `losses.vgg_weights`; "" means Keras' cache, downloading where a network is reachable.

    Raises:
        InputError: one line naming the file and where to put it, when no weights can be had.
    """
    if path:
        if not Path(path).is_file():
            raise InputError(f"losses.vgg_weights={path}: no such file (expected {WEIGHTS_FILE}, "
                             f"VGG-19 ImageNet weights without the top)")
        return path
    cache_dir = keras_cache_dir()
    cached = cache_dir / "models" / WEIGHTS_FILE
    if cached.is_file():
        return str(cached)
    try:
        return _download(cache_dir)
    except Exception:  # noqa: BLE001 - any failure to fetch means the same thing to the user
        raise InputError(
            f"the anti-ambiguity loss needs VGG-19 weights {WEIGHTS_FILE}, which is not in "
            f"{cached.parent}/ and could not be downloaded from {WEIGHTS_URL}: put the file there "
            f"(or set KERAS_HOME), pass --set losses.vgg_weights=PATH, or turn the loss off with "
            f"--set losses.ambiguity=0") from None


def build_feature_extractor(weights: str | None = "imagenet") -> keras.Model:
    """A frozen model from RGB images in [0, 255] to VGG-19 `relu3_4` features at 1/4 resolution.

    Args:
        weights: None (random, for tests), "imagenet" (see `resolve_weights`) or a weights file.

    The input preprocessing is `keras.applications.vgg19.preprocess_input` (RGB to BGR, ImageNet
    mean subtracted), applied inside the model. The model follows the global dtype policy, so under
    mixed precision its convolutions run in bfloat16/float16 like the generator's.
    """
    if weights == "imagenet":
        weights = resolve_weights("")
    vgg = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
    images = keras.Input((None, None, 3), name="rgb_0_255")
    features = keras.applications.vgg19.preprocess_input(images)
    for layer in vgg.layers[1:]:  # the VGG's own layers, so its weights are shared, not copied
        features = layer(features)
        if layer.name == FEATURE_LAYER:
            break
    extractor = keras.Model(images, features, name="vgg19_relu3_4")
    extractor.trainable = False
    return extractor


def relu3_4(extractor: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """float32 features [B, H/4, W/4, 256] of images in [-1, 1] (the generator's range)."""
    rgb = (tf.cast(images, tf.float32) + 1.0) * 127.5
    return tf.cast(extractor(rgb, training=False), tf.float32)
