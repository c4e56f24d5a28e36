"""`run_layer_test`: what every Keras layer of the package must do, checked in one call (after
keras-hub's `TestCase.run_layer_test`)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def run_layer_test(layer_cls, init_kwargs: dict, input_shape: tuple, expected_output_shape: tuple,
                   expected_num_trainable_weights: int, expected_num_params: int) -> None:
    """Builds `layer_cls(**init_kwargs)` on inputs of `input_shape` and checks:

    - the config round trip (`from_config(get_config())` gives the same config and output), every
      `__init__` argument kept as an attribute, and registration under `tfinpaint>`;
    - the output shape eagerly, under `tf.function` with unknown height and width, and from
      `compute_output_shape`;
    - the trainable weight and parameter counts;
    - one optimizer step of a model holding the layer changes every trainable weight;
    - under `mixed_bfloat16`: bfloat16 outputs, float32 weights.
    """
    inputs = tf.random.stateless_uniform(input_shape, seed=(1, 2), minval=-1.0, maxval=1.0)
    layer = layer_cls(**init_kwargs)
    output = layer(inputs)
    assert tuple(output.shape) == expected_output_shape

    # config round trip and registration
    config = layer.get_config()
    for name, value in init_kwargs.items():
        assert getattr(layer, name) == value, name
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(inputs), output, atol=1e-6)
    assert keras.saving.get_registered_object(f"tfinpaint>{layer_cls.__name__}") is layer_cls

    # traced with unknown spatial size
    traced = tf.function(layer, input_signature=[
        tf.TensorSpec([None, None, None, input_shape[-1]], tf.float32)])
    assert tuple(traced(inputs).shape) == expected_output_shape
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape

    # weights
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert layer.count_params() == expected_num_params

    # one fit step
    model = keras.Sequential([keras.Input(input_shape[1:]), layer_cls(**init_kwargs)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    target = np.zeros(expected_output_shape, np.float32) + 0.5
    model.fit(inputs.numpy(), target, epochs=1, batch_size=input_shape[0], verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

    # mixed precision
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = layer_cls(**init_kwargs)
        assert mixed(inputs).dtype == tf.bfloat16
        assert all(weight.dtype == "float32" for weight in mixed.weights)
    finally:
        keras.mixed_precision.set_global_policy(previous)
