"""How much of the flow fill and of a smooth fill the result takes (`generator.flow_keep`,
`generator.smooth_share`): the least-squares choice (`tfinpaint.fitting.blend.best_blend`), the
`FlowKeep` and `SmoothShare` layers that apply it inside the generator, the smooth fill itself,
their config, and a real fit that measures both on held-out training holes, logs them,
checkpoints them and renders with them."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, fit_run
from tfinpaint.config import config_from_dict, load_config
from tfinpaint.errors import InputError
from tfinpaint.fill.prefill import pyramid_fill
from tfinpaint.fitting.blend import best_blend
from tfinpaint.model.generator import (FlowKeep, SmoothShare, build_generator, flow_keep_layer,
                                       generator_from, smooth_share_layer)


def _images(seed, shape=(3, 17, 23, 3)):
    return np.random.default_rng(seed).uniform(0, 255, shape)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.77, 1.0])
def test_best_blend_recovers_the_keep_that_made_the_truth(keep):
    network, flow = _images(0), _images(1)
    truth = keep * flow + (1 - keep) * network
    where = np.random.default_rng(2).uniform(size=truth.shape[:-1]) < 0.4
    choice = best_blend(network, flow, truth, where)
    assert choice.smooth == 0.0 and choice.psnr_smooth is None  # no smooth fill, no share
    assert choice.keep == pytest.approx(keep, abs=0.005)
    assert choice.psnr > 60  # exact but for the keep's rounding to 0.01
    assert choice.psnr >= max(choice.psnr_network, choice.psnr_flow)


def test_best_blend_is_clipped_to_the_unit_interval_and_reads_only_where_it_is_told():
    network, flow = _images(0), _images(1)
    where = np.zeros(network.shape[:-1], bool)
    where[:, 3:9, 4:12] = True
    beyond = flow + 2.0 * (flow - network)  # the truth lies past the flow fill
    assert best_blend(network, flow, beyond, where).keep == 1.0
    assert best_blend(network, flow, network - (flow - network), where).keep == 0.0
    # pixels outside `where` (here: anything at all) change nothing
    scrambled = np.where(where[..., None], beyond, _images(5))
    assert best_blend(network, flow, scrambled, where[..., None]) == best_blend(
        network, flow, beyond, where)
    # PSNRs of each end as a direct computation gives them
    error = (flow - beyond)[where]
    assert best_blend(network, flow, beyond, where).psnr_flow == pytest.approx(
        10 * np.log10(255 ** 2 / np.mean(error ** 2)))


@pytest.mark.parametrize("keep, share", [(0.0, 0.0), (0.4, 0.3), (0.9, 0.05), (0.0, 0.61),
                                         (1.0, 1.0)])
def test_best_blend_recovers_both_shares_that_made_the_truth(keep, share):
    network, flow, smooth = _images(0), _images(1), _images(3)
    truth = (1 - share) * (keep * flow + (1 - keep) * network) + share * smooth
    where = np.random.default_rng(2).uniform(size=truth.shape[:-1]) < 0.4
    choice = best_blend(network, flow, truth, where, smooth=smooth)
    assert choice.smooth == pytest.approx(share, abs=0.005)
    if share < 1.0:  # with all of the smooth fill, any keep is as good
        assert choice.keep == pytest.approx(keep, abs=0.005)
    assert choice.psnr > 55
    assert choice.psnr >= max(choice.psnr_network, choice.psnr_flow, choice.psnr_smooth)
    error = (smooth - truth)[where]  # exact at share 1: PSNR capped at an MSE of 1e-10
    assert choice.psnr_smooth == pytest.approx(
        10 * np.log10(255 ** 2 / max(np.mean(error ** 2), 1e-10)))


def test_best_blend_takes_fixed_shares_and_chooses_the_other_given_them():
    network, flow, smooth = _images(0), _images(1), _images(3)
    truth = 0.7 * (0.5 * flow + 0.5 * network) + 0.3 * smooth
    assert best_blend(network, flow, truth, smooth=smooth, share=0.3).keep == 0.5
    assert best_blend(network, flow, truth, smooth=smooth, keep=0.5).smooth == 0.3
    fixed = best_blend(network, flow, truth, smooth=smooth, keep=0.2, share=0.6)
    assert (fixed.keep, fixed.smooth) == (0.2, 0.6)
    assert fixed.psnr < best_blend(network, flow, truth, smooth=smooth).psnr
    # without the smooth share the keep is the one the flow fill and the network alone give
    alone = best_blend(network, flow, truth, smooth=smooth, share=0.0)
    assert alone.smooth == 0.0 and alone.keep == best_blend(network, flow, truth).keep


def test_the_smooth_fill_keeps_known_pixels_mixes_them_and_nears_the_harmonic_fill():
    # a colour plane is harmonic: a hole cut from it is refilled with the plane itself, to the
    # extent the relaxation has converged, where plain push-pull leaves a blocky average
    height, width = 37, 53  # odd sizes, not multiples of 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    plane = np.stack([2 * x + y, 200 - 3 * y, x + 40], -1)[None]
    hole = np.zeros((1, height, width, 1), np.float32)
    hole[:, 6:31, 10:45] = 1
    inside = hole[..., 0] > 0
    errors = []
    for smoothing in (0, 8, 64, 256):
        filled = pyramid_fill(tf.constant(plane * (1 - hole)), tf.constant(hole),
                              smoothing=smoothing).numpy()
        np.testing.assert_array_equal(filled[~inside], plane[~inside])
        # a convex mix of known pixels: within their range
        known = plane[~inside]
        assert (filled[inside] >= known.min(0) - 1e-3).all()
        assert (filled[inside] <= known.max(0) + 1e-3).all()
        errors.append(float(np.sqrt(np.mean((filled - plane)[inside] ** 2))))
    # RMS error in levels of 0-255: 13.1 with push-pull, 3.3 after 8 steps a level, 0.3 at 256
    assert errors[1] < 0.3 * errors[0] and errors == sorted(errors, reverse=True)
    assert errors[3] < 0.5


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (2, 1, 7, 3), (1, 5, 1, 3), (1, 3, 3, 1)])
def test_the_smooth_fill_of_tiny_and_empty_frames_is_finite(shape):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, shape), tf.float32)
    hole = np.zeros(shape[:-1] + (1,), np.float32)
    hole.flat[0] = 1
    filled = pyramid_fill(images, tf.constant(hole), smoothing=8).numpy()
    assert np.isfinite(filled).all()
    every = pyramid_fill(images, tf.ones(shape[:-1] + (1,)), smoothing=8).numpy()
    np.testing.assert_array_equal(every, 0.0)  # no known pixel: zeros, as push-pull gives


def test_smooth_share_layer_blends_its_fill_in_the_hole_only_and_round_trips(tmp_path):
    generator = build_generator("base", channels=8, in_channels=7, flow_channels=True,
                                flow_keep=True, smooth_share=True)
    layer = smooth_share_layer(generator)
    assert isinstance(layer, SmoothShare) and layer.trainable_weights == []
    assert generator.layers[-1] is layer  # after FlowKeep: its share is of the kept result
    rng = np.random.default_rng(0)
    hole = np.zeros((2, 21, 30, 1), np.float32)
    hole[:, 4:15, 6:22] = 1
    frame = rng.uniform(-1, 1, (2, 21, 30, 3)).astype(np.float32)
    inputs = np.concatenate([frame * (1 - hole), hole, rng.uniform(-1, 1, (2, 21, 30, 3))],
                            -1).astype(np.float32)
    flow_keep_layer(generator).keep.assign(0.5)
    kept = generator(inputs)[-1].numpy()  # share starts at 0: the kept result as it is
    layer.share.assign(0.25)
    blended = generator(inputs)[-1].numpy()
    # the smooth fill of the frame's known pixels, at the size the generator pads to (24x32)
    padded = np.pad(inputs, ((0, 0), (0, 3), (0, 2), (0, 0)), mode="reflect")
    smooth = pyramid_fill(tf.constant(padded[..., :3]), tf.constant(padded[..., 3:4]),
                          smoothing=layer.smoothing).numpy()[:, :21, :30]
    expected = np.where(hole > 0, 0.25 * smooth + 0.75 * kept, kept)
    np.testing.assert_allclose(blended, expected, atol=1e-5)
    layer.share.assign(0.0)
    flow_keep_layer(generator).keep.assign(0.0)
    network = generator(inputs)[-1].numpy()
    layer.share.assign(0.25)
    # in training the network's output passes as it is, whatever the shares
    np.testing.assert_allclose(generator(inputs, training=True)[-1].numpy(), network, atol=1e-6)
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    assert float(smooth_share_layer(loaded).share.numpy()) == 0.25
    assert smooth_share_layer(loaded).smoothing == layer.smoothing
    np.testing.assert_allclose(loaded(inputs)[-1].numpy(), generator(inputs)[-1].numpy(),
                               atol=1e-6)
    assert keras.saving.get_registered_object("tfinpaint>SmoothShare") is SmoothShare


def test_flow_keep_layer_blends_in_the_hole_only_and_round_trips(tmp_path):
    generator = build_generator("base", channels=8, in_channels=7, flow_channels=True,
                                flow_keep=True)
    layer = flow_keep_layer(generator)
    assert isinstance(layer, FlowKeep) and layer.trainable_weights == []
    rng = np.random.default_rng(0)
    hole = (rng.uniform(size=(2, 21, 30, 1)) < 0.5).astype(np.float32)
    inputs = np.concatenate([rng.uniform(-1, 1, (2, 21, 30, 3)), hole,
                             rng.uniform(-1, 1, (2, 21, 30, 3))], -1).astype(np.float32)
    network = generator(inputs)[-1].numpy()  # keep starts at 0: the network's output
    layer.keep.assign(0.25)
    blended = generator(inputs)[-1].numpy()
    expected = np.where(hole > 0, 0.25 * inputs[..., 4:7] + 0.75 * network, network)
    np.testing.assert_allclose(blended, expected, atol=1e-6)
    # in training the network's output passes as it is: it learns alone, whatever the share
    np.testing.assert_allclose(generator(inputs, training=True)[-1].numpy(), network, atol=1e-6)
    # a saved generator keeps the layer and its weight
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    assert float(flow_keep_layer(loaded).keep.numpy()) == 0.25
    np.testing.assert_allclose(loaded(inputs)[-1].numpy(), blended, atol=1e-6)
    assert keras.saving.get_registered_object("tfinpaint>FlowKeep") is FlowKeep


@pytest.mark.parametrize("prefill, setting, has_layer", [
    ("flow", "auto", True), ("pyramid+flow", 0.5, True), ("flow", "none", False),
    ("pyramid", "auto", False), ("none", "auto", False)])
def test_the_generator_has_the_layer_only_with_a_flow_fill_and_a_keep(prefill, setting, has_layer):
    config = load_config((), [f"generator.flow_keep={setting}", "generator.channels=8"])
    generator = generator_from(config.generator, prefill=prefill)
    assert (flow_keep_layer(generator) is not None) == has_layer


@pytest.mark.parametrize("prefill, setting, has_layer", [
    ("pyramid+flow", "auto", True), ("flow", 0.3, True), ("pyramid+flow", "none", False),
    ("pyramid", "auto", False), ("none", "auto", False)])
def test_the_generator_has_the_smooth_layer_only_with_a_flow_fill_and_a_share(prefill, setting,
                                                                             has_layer):
    config = load_config((), [f"generator.smooth_share={setting}", "generator.channels=8"])
    generator = generator_from(config.generator, prefill=prefill)
    assert (smooth_share_layer(generator) is not None) == has_layer


def test_smooth_share_config_takes_auto_none_or_a_share_and_old_runs_read_none():
    assert load_config().generator.smooth_share == "auto"
    assert load_config((), ["generator.smooth_share=0.2"]).generator.smooth_share == 0.2
    assert load_config((), ["generator.smooth_share=none"]).generator.smooth_share == "none"
    for bad in ("1.01", "-0.5", "often"):
        with pytest.raises(InputError, match="smooth_share"):
            load_config((), [f"generator.smooth_share={bad}"])
    # a run folder saved before the key existed: no such layer, so its checkpoints restore
    saved = config_from_dict({"generator": {"channels": 8, "flow_keep": "auto"}})
    assert saved.generator.smooth_share == "none"
    assert smooth_share_layer(generator_from(saved.generator, prefill="pyramid+flow")) is None


def test_flow_keep_config_takes_auto_none_or_a_share_and_old_runs_read_none():
    assert load_config().generator.flow_keep == "auto"
    assert load_config((), ["generator.flow_keep=0.4"]).generator.flow_keep == 0.4
    assert load_config((), ["generator.flow_keep=none"]).generator.flow_keep == "none"
    for bad in ("1.5", "-0.1", "sometimes"):
        with pytest.raises(InputError, match="flow_keep"):
            load_config((), [f"generator.flow_keep={bad}"])
    # a run folder saved before the key existed rendered the network's output as it was
    assert config_from_dict({"generator": {"channels": 8}}).generator.flow_keep == "none"


@pytest.mark.slow
def test_a_fit_measures_the_keep_logs_it_checkpoints_it_and_renders_with_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tfinpaint.fill.render import load_generator
    from tfinpaint.io.rundir import RunDir

    run = fit_run(tmp_path / "run", ["--video", "sample"], 4,
                  [*TINY, "data.working_height=48", "data.working_width=64",
                   "data.prefill=pyramid+flow", "generator.prefill_gate=false",
                   "data.translated_tube=true", "flow.preset=ultrafast"])
    summary = json.loads((run / "result" / "summary.json").read_text())
    choice = summary["flow_keep"]
    assert 0.0 <= choice["keep"] <= 1.0 and 0.0 <= choice["smooth"] <= 1.0
    # the chosen shares do at least as well on the held-out holes as any fill alone (0.01 rounding)
    assert choice["psnr"] >= max(choice["psnr_network"], choice["psnr_flow"],
                                 choice["psnr_smooth"]) - 0.05
    # four steps of a tiny network lose to the sample's near-exact flow fill: the fit keeps it
    assert choice["psnr_flow"] > choice["psnr_network"] and choice["keep"] > 0.5
    generator = load_generator(RunDir(run), in_channels=4)
    assert float(flow_keep_layer(generator).keep.numpy()) == pytest.approx(choice["keep"])
    assert float(smooth_share_layer(generator).share.numpy()) == pytest.approx(choice["smooth"])
    logged = {}
    for events in (run / "logs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        for tag in accumulator.Tags().get("tensors", []):
            if tag.startswith("flow_keep/"):
                logged[tag] = float(tf.make_ndarray(accumulator.Tensors(tag)[-1].tensor_proto))
    assert logged["flow_keep/keep"] == pytest.approx(choice["keep"])
    assert logged["flow_keep/psnr_flow"] == pytest.approx(choice["psnr_flow"], abs=1e-3)
    assert logged["flow_keep/smooth"] == pytest.approx(choice["smooth"])
    assert logged["flow_keep/psnr_smooth"] == pytest.approx(choice["psnr_smooth"], abs=1e-3)
