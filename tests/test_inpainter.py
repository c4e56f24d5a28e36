"""Inpainter.train_step with the regularisers: terms from config, logged, frozen VGG, resume."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import copy_run
from tfinpaint import config as config_lib
from tfinpaint import train
from tfinpaint.config import DataConfig
from tfinpaint.data.samplers import MaskSampler, sampling_from
from tfinpaint.errors import InputError
from tfinpaint.fitting.inpainter import Inpainter
from tfinpaint.fitting.loop import build_inpainter
from tfinpaint.io.sample import make_sample
from tfinpaint.model import vgg
from tfinpaint.model.generator import build_generator


def _batches(batch_size=3):
    sample = make_sample(num_frames=6, height=32, width=48)
    return MaskSampler(sample.frames, sample.masks, sampling_from(DataConfig())).dataset(batch_size=batch_size, seed=0)


def _inpainter(**weights):
    keras.utils.set_random_seed(0)
    generator = build_generator("coarse_to_fine", channels=8, padding="zero", in_channels=4)
    extractor = vgg.build_feature_extractor(weights=None) if weights.get("ambiguity") else None
    model = Inpainter(generator, feature_extractor=extractor, ambiguity_positions=64, **weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.mark.slow
def test_a_tiny_fit_with_both_regularisers_logs_every_term_finite_and_leaves_vgg_alone():
    model = _inpainter(ambiguity=0.1, stabilization=0.2)
    frozen = [w.numpy().copy() for w in model.feature_extractor.weights]
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    history = model.fit(_batches(), steps_per_epoch=2, epochs=1, verbose=0).history
    assert set(history) == {"total", "reconstruction", "ambiguity", "stabilization"}
    assert all(np.isfinite(values[-1]) for values in history.values())
    assert history["ambiguity"][-1] > 0 and history["stabilization"][-1] > 0
    for weight, old in zip(model.feature_extractor.weights, frozen):
        np.testing.assert_array_equal(weight.numpy(), old)
    changed = [not np.array_equal(w.numpy(), old)
               for w, old in zip(model.generator.trainable_weights, before)]
    assert all(changed)
    batch = next(iter(_batches(2)))
    assert np.isfinite(float(model.selfcheck(batch)["psnr"]))


def _one_step(model):
    """The logs of one train_step, run eagerly: the terms and their weights are the same
    compiled, where the test above and every fit (reconstruction only by default) run them."""
    logs = model.train_step(next(iter(_batches(2))))
    return {name: float(value) for name, value in logs.items()}


def test_reconstruction_only_tracks_and_computes_nothing_else():
    model = _inpainter()
    assert [m.name for m in model.metrics] == ["total", "reconstruction"]
    assert model.feature_extractor is None
    logs = _one_step(model)
    assert set(logs) == {"total", "reconstruction"}
    assert logs["total"] == pytest.approx(logs["reconstruction"])


def test_each_regulariser_alone_adds_its_weighted_term():
    model = _inpainter(stabilization=0.5, stabilization_examples=1)  # a part of the batch
    logs = _one_step(model)
    assert set(logs) == {"total", "reconstruction", "stabilization"}
    assert logs["total"] == pytest.approx(logs["reconstruction"] + 0.5 * logs["stabilization"], rel=1e-4)


def test_ambiguity_without_vgg_weights_fails_before_fitting_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))

    def offline(cache_dir):
        raise OSError("URL fetch failure: Name or service not known")

    monkeypatch.setattr(vgg, "_download", offline)
    config = config_lib.load_config(overrides=["losses.ambiguity=0.1", "generator.channels=8"])
    with pytest.raises(InputError) as error:
        build_inpainter(config)
    message = str(error.value)
    assert "\n" not in message and vgg.WEIGHTS_FILE in message
    assert str(tmp_path / "empty_keras_home" / "models") in message
    config = config_lib.load_config(overrides=["losses.ambiguity=0.1",
                                               f"losses.vgg_weights={tmp_path / 'none.h5'}"])
    with pytest.raises(InputError, match="none.h5"):
        build_inpainter(config)
    # Off by default: no weights needed.
    assert build_inpainter(config_lib.load_config(
        overrides=["generator.channels=8"])).feature_extractor is None


def _scalar_tags(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in logdir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        tags |= set(accumulator.Tags().get("tensors", [])) | set(accumulator.Tags().get("scalars", []))
    return tags


@pytest.mark.slow
def test_resume_adds_the_regularisers_to_a_finished_fit(finished_fit, tmp_path):
    weights = tmp_path / "vgg19_random.weights.h5"
    keras.applications.VGG19(include_top=False, weights=None).save_weights(weights)
    run = copy_run(finished_fit, tmp_path)
    assert train.main(["--run-dir", str(run), "--resume", "--steps", "4", "--quiet",
                       "--set", "losses.ambiguity=0.1", "--set", "losses.stabilization=0.2",
                       "--set", f"losses.vgg_weights={weights}"]) == 0
    saved = config_lib.config_from_dict(
        __import__("yaml").safe_load((run / "config.yaml").read_text()))
    assert saved.losses.ambiguity == 0.1 and saved.losses.stabilization == 0.2
    assert saved.train.steps == 4
    tags = _scalar_tags(run / "logs")
    assert {"loss/reconstruction", "loss/ambiguity", "loss/stabilization"} <= tags


def test_at_batch_1_the_anti_ambiguity_target_is_another_frame(monkeypatch):
    # Frames of one flat colour each: frame k is k * 20 everywhere, so a frame names itself.
    count, height, width = 6, 32, 48
    frames = np.stack([np.full((height, width, 3), 20 * k, np.uint8) for k in range(count)])
    masks = np.zeros((count, height, width, 1), np.uint8)
    masks[:, 8:20, 10:26] = 1
    sampler = MaskSampler(frames, masks, sampling_from(DataConfig()))
    seen = []

    def spy(output, target_frames, *args, **kwargs):
        seen.append(target_frames)
        return tf.reduce_mean(tf.cast(output, tf.float32)) * 0.0

    monkeypatch.setattr("tfinpaint.fitting.losses.ambiguity_loss", spy)
    model = _inpainter(ambiguity=0.1)
    model.fit(sampler.dataset(batch_size=1, seed=0), steps_per_epoch=1, epochs=1, verbose=0)
    assert seen  # traced once
    # The step's own frame and its target, over many batches of one: never the same frame.
    for batch in sampler.dataset(batch_size=1, seed=0).take(30):
        own = int(batch["frames"][0, 0, 0, 0]) // 20
        target = int(batch["target_frames"][0, 0, 0, 0]) // 20
        assert own != target
        np.testing.assert_array_equal(batch["target_masks"][0], masks[target])
    # ... and the step reads its target from the batch, not from the batch's other examples
    # (the same model's step, run eagerly, calls the loss it finds now: this spy).
    step_batch = next(iter(sampler.dataset(batch_size=1, seed=1)))
    captured = []
    monkeypatch.setattr("tfinpaint.fitting.losses.ambiguity_loss",
                        lambda output, target_frames, *a, **k: captured.append(target_frames)
                        or tf.reduce_mean(tf.cast(output, tf.float32)) * 0.0)
    model.train_step(step_batch)
    expected = tf.cast(step_batch["target_frames"], tf.float32) / 127.5 - 1.0
    np.testing.assert_allclose(captured[0], expected)
