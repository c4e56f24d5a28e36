"""The learning-rate schedule that anneals by the time budget, and the fit clock it reads."""

import math

import keras
import pytest
import tensorflow as tf

from tfinpaint import config as config_lib
from tfinpaint.fitting.loop import fit
from tfinpaint.fitting.schedule import CosineDecayToBudget, learning_rate
from tfinpaint.io.rundir import RunDir
from tfinpaint.io.sample import make_sample

TINY = [
    "generator.arch=base", "generator.channels=4", "train.batch_size=1", "train.precision=float32",
    "train.checkpoint_every=0", "train.log_every=0", "train.selfcheck_every=0",
    "train.image_every=0", "train.selfcheck_frames=1", "train.learning_rate=1e-3",
    "train.final_lr_fraction=0.1",
]


def cosine(progress: float, initial: float = 1e-3, alpha: float = 0.1) -> float:
    return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) + alpha)


def test_without_a_budget_it_is_keras_cosine_decay():
    ours = CosineDecayToBudget(1e-3, 100, alpha=0.1)
    keras_schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100, alpha=0.1)
    for step in (0, 1, 37, 50, 99, 100, 250):
        assert float(ours(step)) == pytest.approx(float(keras_schedule(step)), rel=1e-5), step


def test_with_a_budget_the_further_of_steps_and_time_sets_the_rate():
    clock = tf.Variable(0.0, dtype=tf.float64)
    schedule = CosineDecayToBudget(1e-3, 100, alpha=0.1, budget_seconds=60.0, clock=clock)
    assert float(schedule(0)) == pytest.approx(1e-3)
    clock.assign(30.0)  # half the budget, a tenth of the steps: time leads
    assert float(schedule(10)) == pytest.approx(cosine(0.5), rel=1e-5)
    assert float(schedule(80)) == pytest.approx(cosine(0.8), rel=1e-5)  # steps lead
    clock.assign(90.0)  # past the budget: the floor, not a second cycle
    assert float(schedule(10)) == pytest.approx(1e-4, rel=1e-5)


def test_config_picks_constant_or_budgeted_decay():
    constant = config_lib.load_config([], ["train.final_lr_fraction=1.0"])
    assert [float(learning_rate(constant)(step)) for step in (0, 1000, 10**6)] == pytest.approx(
        [constant.train.learning_rate] * 3)
    budgeted = config_lib.load_config([], [*TINY, "train.steps=50", "train.time_budget_minutes=2"])
    schedule = learning_rate(budgeted, tf.Variable(60.0, dtype=tf.float64))
    assert float(schedule(0)) == pytest.approx(cosine(0.5), rel=1e-5)


def test_fitting_time_is_checkpointed_and_the_budget_spans_resumes(tmp_path, capsys):
    sample = make_sample(num_frames=4, height=48, width=64)
    run = RunDir(tmp_path / "run")
    config = config_lib.load_config([], [*TINY, "train.steps=6"])
    run.create(config, overwrite=False)
    first = fit(config, sample.frames, sample.masks, run, verbose=False)
    fitted = float(first.model.fit_seconds.numpy())
    assert first.steps == 6 and 0.0 < fitted <= first.seconds
    # The learning rate the optimizer used last follows the step count (no budget).
    assert float(first.model.optimizer.learning_rate) == pytest.approx(cosine(6 / 6), rel=1e-4)

    # A resume with more steps and a budget it has already spent: the clock was restored, so
    # it does not fit on, and says why.
    spent = config_lib.load_config([], [*TINY, "train.steps=12",
                                        f"train.time_budget_minutes={fitted / 120}"])
    again = fit(spent, sample.frames, sample.masks, run, verbose=True)
    assert again.steps == 6
    assert float(again.model.fit_seconds.numpy()) == pytest.approx(fitted)
    assert "time budget of" in capsys.readouterr().err

    # A larger budget fits on, and the clock keeps counting from where it was.
    longer = config_lib.load_config([], [*TINY, "train.steps=12", "train.time_budget_minutes=10"])
    resumed = fit(longer, sample.frames, sample.masks, run, verbose=False)
    assert resumed.steps == 12
    assert float(resumed.model.fit_seconds.numpy()) > fitted


def _built(steps: int, budget_minutes: float = 0.0):
    from tfinpaint.fitting.loop import build_inpainter

    config = config_lib.load_config([], TINY + [f"train.steps={steps}",
                                                f"train.time_budget_minutes={budget_minutes}"])
    return config, build_inpainter(config)


def test_an_extended_fit_decays_on_from_the_rate_it_had_reached():
    from tfinpaint.fitting.schedule import begin_segment

    config, model = _built(steps=100)
    model.optimizer.iterations.assign(50)
    reached = float(model.optimizer.learning_rate)
    assert reached == pytest.approx(cosine(0.5), rel=1e-5)
    # A plain resume with the same schedule changes nothing.
    assert not begin_segment(model, config)
    # Extended to 300 steps: no jump back up the curve; the new part decays to the same floor.
    longer = config_lib.with_overrides(config, ["train.steps=300"])
    assert begin_segment(model, longer)
    rates = []
    for step in (50, 100, 175, 250, 300, 400):
        model.optimizer.iterations.assign(step)
        rates.append(float(model.optimizer.learning_rate))
    assert rates[0] == pytest.approx(reached, rel=1e-5)
    assert all(later < earlier for earlier, later in zip(rates[:4], rates[1:5]))
    assert rates[2] == pytest.approx(1e-4 + (reached - 1e-4) * 0.5, rel=1e-5)  # half-way
    assert rates[4] == pytest.approx(1e-4, rel=1e-5) and rates[5] == pytest.approx(1e-4, rel=1e-5)


def test_an_extended_time_budget_decays_on_from_the_floor_it_had_reached():
    from tfinpaint.fitting.schedule import begin_segment

    config, model = _built(steps=20000, budget_minutes=10)
    model.optimizer.iterations.assign(500)
    model.fit_seconds.assign(600.0)  # the 10-minute budget is spent: at the floor
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-5)
    # The README's phase 2: --resume --time-budget 20. Without a segment the rate would go back to
    # cosine(0.5) = 5.5e-4, undoing the annealing.
    assert begin_segment(model, config_lib.with_overrides(config, ["train.time_budget_minutes=20"]))
    for seconds in (600.0, 900.0, 1200.0):
        model.fit_seconds.assign(seconds)
        assert float(model.optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-5)


def test_the_segment_is_checkpointed_so_a_resumed_extension_stays_on_it(tmp_path):
    config = config_lib.load_config([], TINY + ["train.steps=6", "train.checkpoint_every=3"])
    sample = make_sample(num_frames=4, height=48, width=64)
    first = fit(config, sample.frames, sample.masks, RunDir(tmp_path), verbose=False)
    assert float(first.model.optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-5)
    longer = config_lib.with_overrides(config, ["train.steps=12"])
    resumed = fit(longer, sample.frames, sample.masks, RunDir(tmp_path), verbose=False)
    assert resumed.steps == 12
    segment = resumed.model.decay_segment.numpy()
    assert segment[0] == 6 and segment[2] == pytest.approx(1e-4, rel=1e-5) and segment[3] == 12
    assert float(resumed.model.optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-5)


def test_warmup_raises_the_rate_linearly_then_leaves_the_schedule_alone():
    warm = CosineDecayToBudget(1e-3, 100, alpha=0.1, warmup_steps=10)
    cold = CosineDecayToBudget(1e-3, 100, alpha=0.1)
    assert float(warm(0)) == pytest.approx(float(cold(0)) / 10, rel=1e-5)
    assert float(warm(4)) == pytest.approx(float(cold(4)) / 2, rel=1e-5)
    for step in (9, 50, 100):
        assert float(warm(step)) == pytest.approx(float(cold(step)), rel=1e-5)
    # a constant rate (final_lr_fraction 1) with a warmup is a schedule too
    config = config_lib.load_config([], ["train.final_lr_fraction=1.0", "train.warmup_steps=4"])
    schedule = learning_rate(config)
    assert [round(float(schedule(s)) / config.train.learning_rate, 4) for s in (0, 3, 50)] == [
        0.25, 1.0, 1.0]
    assert float(learning_rate(config_lib.load_config([], [
        "train.final_lr_fraction=1.0", "train.learning_rate=2e-4"]))(50)) == pytest.approx(2e-4)
