"""How much of the flow fill the result keeps (`generator.flow_keep`): the closed-form choice
(`tfinpaint.fitting.blend.best_keep`), the `FlowKeep` layer that applies it inside the generator,
its config, and a real fit that measures it on held-out training holes, logs it, checkpoints it
and renders with it."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, fit_run
from tfinpaint.config import config_from_dict, load_config
from tfinpaint.errors import InputError
from tfinpaint.fitting.blend import best_keep
from tfinpaint.model.generator import FlowKeep, build_generator, flow_keep_layer, generator_from


def _images(seed, shape=(3, 17, 23, 3)):
    return np.random.default_rng(seed).uniform(0, 255, shape)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.77, 1.0])
def test_best_keep_recovers_the_mix_that_made_the_truth(keep):
    network, flow = _images(0), _images(1)
    truth = keep * flow + (1 - keep) * network
    where = np.random.default_rng(2).uniform(size=truth.shape[:-1]) < 0.4
    choice = best_keep(network, flow, truth, where)
    assert choice.keep == pytest.approx(keep, abs=0.005)
    assert choice.psnr > 60  # exact but for the keep's rounding to 0.01
    assert choice.psnr >= max(choice.psnr_network, choice.psnr_flow)


def test_best_keep_is_clipped_to_the_unit_interval_and_reads_only_where_it_is_told():
    network, flow = _images(0), _images(1)
    where = np.zeros(network.shape[:-1], bool)
    where[:, 3:9, 4:12] = True
    beyond = flow + 2.0 * (flow - network)  # the truth lies past the flow fill
    assert best_keep(network, flow, beyond, where).keep == 1.0
    assert best_keep(network, flow, network - (flow - network), where).keep == 0.0
    # pixels outside `where` (here: anything at all) change nothing
    scrambled = np.where(where[..., None], beyond, _images(5))
    assert best_keep(network, flow, scrambled, where[..., None]) == best_keep(network, flow,
                                                                              beyond, where)
    # PSNRs of each end as a direct computation gives them
    error = (flow - beyond)[where]
    assert best_keep(network, flow, beyond, where).psnr_flow == pytest.approx(
        10 * np.log10(255 ** 2 / np.mean(error ** 2)))


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
    assert 0.0 <= choice["keep"] <= 1.0
    # the chosen share does at least as well on the held-out holes as either end (0.01 rounding)
    assert choice["psnr"] >= max(choice["psnr_network"], choice["psnr_flow"]) - 0.05
    # four steps of a tiny network lose to the sample's near-exact flow fill: the fit keeps it
    assert choice["psnr_flow"] > choice["psnr_network"] and choice["keep"] > 0.5
    generator = load_generator(RunDir(run), in_channels=4)
    assert float(flow_keep_layer(generator).keep.numpy()) == pytest.approx(choice["keep"])
    logged = {}
    for events in (run / "logs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        for tag in accumulator.Tags().get("tensors", []):
            if tag.startswith("flow_keep/"):
                logged[tag] = float(tf.make_ndarray(accumulator.Tensors(tag)[-1].tensor_proto))
    assert logged["flow_keep/keep"] == pytest.approx(choice["keep"])
    assert logged["flow_keep/psnr_flow"] == pytest.approx(choice["psnr_flow"], abs=1e-3)
