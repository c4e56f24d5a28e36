"""train.debug_numerics: each step names the first non-finite tensor and logs the gradient norm."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import copy_run, tiny_args
from tfinpaint import train
from tfinpaint.config import DataConfig
from tfinpaint.data.samplers import MaskSampler, sampling_from
from tfinpaint.fitting import losses, numerics
from tfinpaint.fitting.inpainter import Inpainter
from tfinpaint.io.sample import make_sample
from tfinpaint.model.generator import build_generator


def _batches():
    sample = make_sample(num_frames=4, height=32, width=48)
    return MaskSampler(sample.frames, sample.masks, sampling_from(DataConfig())).dataset(batch_size=2, seed=0)


def _model(debug_numerics=True):
    keras.utils.set_random_seed(0)
    generator = build_generator("coarse_to_fine", channels=8, in_channels=4)
    model = Inpainter(generator, debug_numerics=debug_numerics)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _first_nonfinite(model) -> str:
    logs = model.train_step(next(iter(_batches())))
    first = int(logs["numerics/first_nonfinite"])
    return "" if first < 0 else model.numerics_names()[first]


def _gradient_is(value):
    """A loss term whose value is finite and whose gradient is `value` (NaN, inf)."""
    reconstruction = losses.reconstruction_loss

    @tf.custom_gradient
    def broken(x):
        return tf.identity(x), lambda upstream: upstream * value
    return lambda *args, **kwargs: broken(reconstruction(*args, **kwargs))


def test_a_healthy_step_reports_a_finite_gradient_norm_and_nothing_broken():
    model = _model()
    logs = model.train_step(next(iter(_batches())))
    assert int(logs["numerics/first_nonfinite"]) == -1
    assert 0 < float(logs["numerics/grad_norm"]) < np.inf
    assert np.all(logs["numerics/gradient_finite"].numpy() == 1)
    names = model.numerics_names()
    assert names[0] == "coarse_conv1" and "coarse_out" in names and "refine_head_up5" in names
    assert names.index("coarse_out") + 1 == names.index("y1 (coarse output)")
    assert names[-6:] == ["refine_out", "y2 (refined output)", "loss reconstruction",
                          "loss total", "gradients", "weights after the update"]
    assert len(logs["numerics/activation_max"]) == len(names) - 4
    assert all(0 < a < np.inf for a in logs["numerics/activation_max"].numpy())


def test_off_by_default_the_step_logs_only_the_losses():
    logs = _model(debug_numerics=False).train_step(next(iter(_batches())))
    assert set(logs) == {"total", "reconstruction"}


@pytest.mark.parametrize("layer, named", [("coarse_out", "coarse_out"),
                                          ("refine_head_conv1", "refine_head_conv1")])
def test_a_broken_stage_is_named_before_the_losses_it_breaks(layer, named):
    model = _model()
    kernel = model.generator.get_layer(layer).conv.kernel
    # inf weights: this block is the first whose output is not finite
    kernel.assign(tf.fill(kernel.shape, float("inf")))
    assert _first_nonfinite(model) == named


def test_a_finite_loss_with_a_non_finite_gradient_names_the_gradients(monkeypatch):
    monkeypatch.setattr(losses, "reconstruction_loss", _gradient_is(float("inf")))
    model = _model()
    logs = model.train_step(next(iter(_batches())))
    assert np.isfinite(float(logs["reconstruction"]))
    assert model.numerics_names()[int(logs["numerics/first_nonfinite"])] == "gradients"
    assert not np.isfinite(float(logs["numerics/grad_norm"]))


def test_numerics_log_names_the_variable_nearest_the_loss_and_keeps_the_largest_norm():
    log = numerics.NumericsLog(["y1", "loss total", "gradients"], ["a/kernel", "b/kernel",
                               "c/kernel"], tf.summary.create_noop_writer(), verbose=False)
    for step, norm in enumerate([1.0, 1.2, 0.9, 30.0, 1.1], start=1):
        assert log.check(step, {"numerics/grad_norm": norm, "numerics/first_nonfinite": -1}) == ""
    assert (log.max_norm, log.max_step) == (30.0, 4)
    assert [step for step, _, _ in log.spikes] == [4]
    line = log.check(6, {"numerics/grad_norm": float("nan"), "numerics/first_nonfinite": 2,
                         "numerics/gradient_finite": np.array([0.0, 0.0, 1.0])})
    assert "step 6: gradients (2 of 3 variables, nearest the loss: b/kernel)" in line
    assert "largest gradient global norm 30 at step 4" in line


@pytest.mark.slow
def test_a_fit_with_debug_numerics_stops_naming_the_tensor(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(losses, "reconstruction_loss", _gradient_is(float("nan")))
    run = tmp_path / "run"
    code = train.main(["--video", "sample", "--run-dir", str(run), "--steps", "4",
                       "--set", "train.debug_numerics=true", *tiny_args()])
    err = capsys.readouterr().err
    assert code == 2, err[-3000:]
    assert "first non-finite value at step 1: gradients" in err
    assert not list((run / "checkpoints").glob("ckpt-*.index"))


def test_clip_global_norm_reaches_adam():
    from tfinpaint import config as config_lib
    from tfinpaint.fitting.loop import build_inpainter

    config = config_lib.load_config([], ["generator.channels=8", "train.clip_global_norm=1.5"])
    assert build_inpainter(config).optimizer.global_clipnorm == 1.5
    assert build_inpainter(config_lib.load_config([], ["generator.channels=8"])
                           ).optimizer.global_clipnorm is None


@pytest.mark.slow
def test_debug_numerics_can_be_switched_on_when_resuming(finished_fit, tmp_path, capsys):
    # A reported NaN is replayed from its last good checkpoint with the check on: resuming
    # draws the same samples an uninterrupted fit would have.
    run = copy_run(finished_fit, tmp_path)
    assert train.main(["--run-dir", str(run), "--resume", "--steps", "4",
                       "--set", "train.debug_numerics=true"]) == 0
    err = capsys.readouterr().err
    assert "fitting steps 2..4" in err and "numerics: largest gradient global norm" in err
