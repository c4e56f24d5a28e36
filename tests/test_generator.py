"""Generators: parameter counts pin the reference layer lists; shapes, saving, training, dtypes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.model.generator import (ARCHITECTURES, EDGE_PAD_MODE, MULTIPLE, build_generator,
                                       crop_to, pad_to_multiple)

SMALL = 8  # channels for every test that runs the network


def _inputs(batch, height, width, in_channels=4, seed=0):
    rng = np.random.default_rng(seed)
    frame = rng.uniform(-1, 1, (batch, height, width, 3)).astype("float32")
    hole = np.zeros((batch, height, width, 1), "float32")
    hole[:, height // 4: height // 2, width // 4: width // 2] = 1.0
    extra = rng.uniform(-1, 1, (batch, height, width, in_channels - 4)).astype("float32")
    return np.concatenate([frame * (1 - hole), hole, extra], axis=-1)


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("arch, count", [
    ("base", 1_629_951), ("stacked", 2_895_390), ("coarse_to_fine", 4_051_278)])
def test_parameter_counts_match_reference(arch, count):
    assert _trainable_count(build_generator(arch, channels=48, in_channels=4)) == count


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_output_shapes_eager_and_traced(arch):
    model = build_generator(arch, channels=SMALL)
    x = _inputs(2, 16, 24)
    stages = 1 if arch == "base" else 2

    outputs = model(x)
    assert isinstance(outputs, list) and len(outputs) == stages
    for y in outputs:
        assert y.shape == (2, 16, 24, 3) and y.dtype == tf.float32
        assert np.all(np.abs(y) <= 1.0)

    traced = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([None, None, None, 4])])
    for y, y_traced in zip(outputs, traced(tf.constant(x))):
        np.testing.assert_allclose(y, y_traced, atol=1e-5)
    assert traced(tf.constant(_inputs(1, 8, 12)))[-1].shape == (1, 8, 12, 3)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("padding", ["zero", "reflect"])
def test_any_size_pads_once_at_the_edge_and_crops_every_stage(arch, padding):
    # 101 x 75: neither divides 4. Every stage, the refiner's composite included, runs at the
    # size padded once at the input, so each output is the crop of the padded input's output.
    model = build_generator(arch, channels=SMALL, padding=padding)
    x = _inputs(1, 101, 75)
    padded, size = pad_to_multiple(x)
    assert padded.shape == (1, 104, 76, 4) and size == (101, 75)
    outputs = model(x)
    for y, y_padded in zip(outputs, model(padded), strict=True):
        assert y.shape == (1, 101, 75, 3)
        np.testing.assert_array_equal(y, crop_to(y_padded, size))

    traced = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([None, None, None, 4])])
    for y, y_traced in zip(outputs, traced(tf.constant(x)), strict=True):
        np.testing.assert_allclose(y, y_traced, atol=1e-5)


def test_symbolic_call_at_an_odd_size_reports_the_input_size():
    model = build_generator("coarse_to_fine", channels=SMALL)
    inputs = keras.Input((101, 75, 4))
    outer = keras.Model(inputs, model(inputs))
    assert [tuple(y.shape) for y in outer.outputs] == [(None, 101, 75, 3)] * 2
    assert outer(_inputs(1, 101, 75))[-1].shape == (1, 101, 75, 3)


def test_reflect_padding_with_smallest_size_for_dilation_16():
    # Dilation 16 runs at a quarter of the input: reflection needs 17 px there, 68 at the input.
    model = build_generator("coarse_to_fine", channels=SMALL, padding="reflect")
    y1, y2 = model(_inputs(1, 68, 76))
    assert y1.shape == y2.shape == (1, 68, 76, 3)
    with pytest.raises(Exception):
        model(_inputs(1, 64, 76))


def test_prior_channels_and_mask_head():
    model = build_generator("stacked", channels=SMALL, in_channels=7, out_channels=1,
                            out_activation="sigmoid")
    y1, y2 = model(_inputs(1, 16, 16, in_channels=7))
    assert y1.shape == y2.shape == (1, 16, 16, 1)
    assert np.all((y2 >= 0) & (y2 <= 1))
    # Only the first stage sees the extra channels: the refiner's first layer has 3 inputs.
    assert model.get_layer("refine_b_conv1").conv.kernel.shape[2] == 3
    assert model.get_layer("coarse_conv1").conv.kernel.shape[2] == 7


def test_save_and_reload_gives_identical_outputs(tmp_path):
    model = build_generator("coarse_to_fine", channels=4, padding="reflect")
    path = tmp_path / "generator.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded, type(model))
    x = _inputs(1, 68, 68)  # reflection with dilation 16 needs 68 px
    outputs, reloaded_outputs = model(x), reloaded(x)
    assert len(outputs) == len(reloaded_outputs) == 2
    for y, y_reloaded in zip(outputs, reloaded_outputs):
        np.testing.assert_array_equal(y, y_reloaded)


@pytest.mark.parametrize("arch, run_eagerly", [
    ("coarse_to_fine", True), ("coarse_to_fine", False), ("base", False)])
def test_one_fit_step_changes_weights(arch, run_eagerly):
    keras.utils.set_random_seed(0)
    model = build_generator(arch, channels=SMALL)
    model.compile(optimizer="adam", loss="mae", run_eagerly=run_eagerly)
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = _inputs(2, 32, 32)
    target = np.tanh(x[..., :3])
    model.fit(x, [target] * len(model.outputs), epochs=1, batch_size=2, verbose=0)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed)


def test_gradient_reaches_first_layer():
    model = build_generator("coarse_to_fine", channels=SMALL)
    x = tf.constant(_inputs(1, 16, 16))
    first = model.get_layer("coarse_conv1").conv.kernel
    with tf.GradientTape() as tape:
        loss = sum(tf.reduce_mean(tf.abs(y)) for y in model(x))
    gradient = tape.gradient(loss, first)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0


def test_mixed_bfloat16_outputs_float32(mixed_bfloat16):
    model = build_generator("coarse_to_fine", channels=SMALL)
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.get_layer("coarse_conv1").compute_dtype == "bfloat16"
    traced = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([None, None, None, 4])])
    for y in traced(tf.constant(_inputs(1, 16, 16))):
        assert y.dtype == tf.float32 and y.shape == (1, 16, 16, 3)
        assert np.all(np.isfinite(y))


@pytest.mark.parametrize("arch", ["base", "coarse_to_fine"])
def test_prefill_gate_keeps_the_prefill_where_the_gate_opens(arch, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_generator(arch, channels=SMALL, prefill_gate=True)
    assert _trainable_count(model) > _trainable_count(build_generator(arch, channels=SMALL))
    x = _inputs(2, 41, 54)  # odd size: the gate is padded and cropped like every output
    x[..., :3] = np.where(x[..., 3:4] > 0, 0.7, x[..., :3])  # a prefill in the hole
    final = model(x)[-1].numpy()
    # the stage's own colour and gate, from the layers that make them, at the padded size
    padded, _ = pad_to_multiple(tf.constant(x), MULTIPLE, mode=EDGE_PAD_MODE)
    stage = "coarse" if arch == "base" else "refine"
    parts = keras.Model(model.inputs, [model.get_layer(f"{stage}_output").output,
                                       model.get_layer(f"{stage}_gate_output").output])
    colour, gate = (crop_to(t, (41, 54)).numpy() for t in parts(padded))
    assert 0.0 < gate.min() and gate.max() < 1.0
    hole = x[..., 3:4]
    want = hole * (gate * x[..., :3] + (1 - gate) * colour) + (1 - hole) * colour
    np.testing.assert_allclose(final, want, atol=1e-6)
    # a gate pushed fully open returns the prefill in the hole exactly, the colour outside it
    model.get_layer(f"{stage}_gate").conv.bias.assign([50.0])
    opened = model(x)[-1].numpy()
    inside = x[..., 3] > 0
    np.testing.assert_allclose(opened[inside], 0.7, atol=1e-6)
    np.testing.assert_allclose(opened[~inside], colour[~inside], atol=1e-6)
    model.save(tmp_path / "gated.keras")
    reloaded = keras.models.load_model(tmp_path / "gated.keras")
    np.testing.assert_array_equal(reloaded(x)[-1], opened)
    with pytest.raises(ValueError, match="prefill_gate"):
        build_generator(arch, channels=SMALL, out_channels=1, prefill_gate=True)


def test_with_flow_channels_the_gate_keeps_the_flow_fill_not_the_push_pull_one():
    keras.utils.set_random_seed(1)
    model = build_generator("coarse_to_fine", channels=SMALL, in_channels=7, prefill_gate=True,
                            flow_channels=True)
    x = np.concatenate([_inputs(2, 41, 54), np.full((2, 41, 54, 3), -0.4, np.float32)], -1)
    x[..., :3] = np.where(x[..., 3:4] > 0, 0.7, x[..., :3])  # the push-pull fill: not kept
    model.get_layer("refine_gate").conv.bias.assign([50.0])
    opened = model(x)[-1].numpy()
    inside = x[..., 3] > 0
    np.testing.assert_allclose(opened[inside], -0.4, atol=1e-6)
    with pytest.raises(ValueError, match="flow_channels"):
        build_generator("base", channels=SMALL, in_channels=4, flow_channels=True)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="arch"):
        build_generator("unet")
    with pytest.raises(ValueError, match="channels"):
        build_generator("base", channels=6)
    with pytest.raises(ValueError, match="padding"):
        build_generator("base", channels=SMALL, padding="same")


@pytest.mark.parametrize("height, width", [(13, 18), (16, 16), (5, 7)])
def test_pad_to_multiple_and_crop_round_trip(height, width):
    x = tf.random.uniform((2, height, width, 3))
    padded, size = pad_to_multiple(x)
    assert padded.shape[1] % MULTIPLE == 0 and padded.shape[2] % MULTIPLE == 0
    assert padded.shape[1] - height < MULTIPLE and padded.shape[2] - width < MULTIPLE
    assert size == (height, width)
    np.testing.assert_array_equal(crop_to(padded, size), x)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3])])
    def round_trip(images):
        padded, size = pad_to_multiple(images)
        tf.debugging.assert_equal(tf.shape(padded)[1:3] % MULTIPLE, 0)
        return crop_to(padded, size)

    np.testing.assert_array_equal(round_trip(x), x)


def test_pad_to_multiple_leaves_a_fitting_static_size_alone():
    x = tf.zeros((1, 16, 24, 3))
    padded, size = pad_to_multiple(x)
    assert padded is x and size == (16, 24)
    assert crop_to(x, size) is x
