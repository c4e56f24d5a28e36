"""Faults during a fit: SIGKILL at random points, corrupt checkpoints, a full disk, a NaN loss.

Every fit here is a tiny one (a 4-frame 64x48 clip, the base network with 4 channels, float32),
so that a fit in a fresh process costs seconds: the behaviour, not the quality, is under test.
"""

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint import train
from tfinpaint.fitting import losses
from tfinpaint.io.sample import make_sample
from tfinpaint.io.video import read_video, write_frames

ROOT = Path(__file__).resolve().parent.parent
NUM_FRAMES = 4
STEPS = 8
SMALL = [
    "generator.arch=base", "generator.channels=4", "losses.ambiguity=0", "train.batch_size=1",
    "train.precision=float32", "train.seed=3", "train.checkpoint_every=2", "train.log_every=2",
    "train.selfcheck_every=0", "train.image_every=0", "train.selfcheck_frames=1",
    "train.early_stop_patience=0",
]
# oneDNN's float32 kernels may sum in a different order from one run to the next; with them off
# (and TF's deterministic ops) a resumed fit can be compared with an uninterrupted one bit for bit.
ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
           TF_DETERMINISTIC_OPS="1")

# Runs the train command with a SIGKILL armed: on the Nth call of the named function, a timer
# kills the process `delay` seconds later (so it lands inside whatever runs then).
KILLER = """
import os, signal, sys, threading
from tfinpaint import train
from tfinpaint.fitting.checkpoints import Checkpoints
from tfinpaint.fitting.monitor import Monitor
from tfinpaint.io import clip
where, nth, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
owner, name = {"step": (Monitor, "on_train_batch_end"),
               "checkpoint": (Checkpoints, "save"),
               "result": (clip, "write_result")}[where]
original, calls = getattr(owner, name), [0]
def armed(*args, **kwargs):
    calls[0] += 1
    if calls[0] == nth:
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    return original(*args, **kwargs)
setattr(owner, name, armed)
sys.exit(train.main(sys.argv[4:]))
"""


def small_args(*extra: str) -> list[str]:
    args = []
    for pair in SMALL:
        args += ["--set", pair]
    return args + list(extra)


def make_clip(folder: Path) -> tuple[str, str]:
    sample = make_sample(num_frames=NUM_FRAMES, height=48, width=64)
    names = [f"f{i}" for i in range(NUM_FRAMES)]
    write_frames(folder / "frames", sample.frames, names)
    write_frames(folder / "masks", np.repeat(sample.masks * 255, 3, axis=-1), names)
    return str(folder / "frames"), str(folder / "masks")


def new_run_argv(clip: tuple[str, str], run: Path, steps: int = STEPS) -> list[str]:
    return ["--video", clip[0], "--masks", clip[1], "--run-dir", str(run), "--steps", str(steps),
            "--quiet", *small_args()]


def command(argv: list[str], kill: tuple[str, int, float] | None = None) -> list[str]:
    if kill is None:
        return [sys.executable, "-m", "tfinpaint.train", *argv]
    return [sys.executable, "-c", KILLER, kill[0], str(kill[1]), str(kill[2]), *argv]


def run_command(argv, kill=None, preexec_fn=None, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(command(argv, kill), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)


def listed_checkpoints(run: Path) -> list[str]:
    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    return list(state.all_model_checkpoint_paths) if state else []


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint (raises if any is unreadable), without the save counter and
    the fit clock (wall-clock seconds, which differ between any two fits)."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH", "fit_seconds"))}


def step_of(prefix: str) -> int:
    return int(prefix.rsplit("-", 1)[1])


def assert_nothing_truncated(run: Path) -> None:
    """Every checkpoint the index lists is whole, and a result folder, if any, is complete."""
    for prefix in listed_checkpoints(run):
        read_checkpoint(prefix)
    result = run / "result"
    if result.exists():
        assert len(read_video(result / "frames").frames) == NUM_FRAMES
        assert len(read_video(result / "video.mp4").frames) == NUM_FRAMES
        assert json.loads((result / "summary.json").read_text())["steps"] == STEPS


def newest_readable_step(run: Path) -> int:
    """The step a resume must start from: the newest checkpoint on disk that reads whole (a kill
    may have cut the newest one short, or left it unlisted in the index); 0 without any."""
    steps = [0]
    for index in (run / "checkpoints").glob("ckpt-*.index"):
        prefix = str(index.with_suffix(""))
        try:
            read_checkpoint(prefix)
        except Exception:  # noqa: BLE001 - unreadable in any way: the resume falls back past it
            continue
        steps.append(step_of(prefix))
    return max(steps)


def assert_resumed_from(stderr: str, step: int) -> None:
    if step < STEPS:
        assert f"fitting steps {step}..{STEPS}" in stderr, stderr[-3000:]
    else:
        assert f"already fitted to step {step}" in stderr, stderr[-3000:]


def files_of(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def one_error_line(stderr: str, *words: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), stderr[-3000:]
    assert all(word in lines[-1] for word in words), lines[-1]
    return lines[-1]


@pytest.fixture
def clip(small_clip):
    return small_clip


@pytest.fixture
def base_run(small_fit):
    """conftest's finished 4-step fit (checkpoints at steps 2 and 4, its result); copy before use."""
    return small_fit


def copy_of(base_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    return run


# ----------------------------------------------------------------------------------------------
# interruption


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_fit(tmp_path, clip):
    rng = random.Random(9)
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    # The uninterrupted fit runs beside the first interrupted one, to bound the test's time.
    plain = subprocess.Popen(command(new_run_argv(clip, reference)), cwd=ROOT, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kills = [("step", rng.randint(1, 5), rng.uniform(0.0, 0.3)),
             ("checkpoint", rng.randint(1, 2), rng.uniform(0.0, 0.05)),
             ("result", 1, rng.uniform(0.0, 0.5))]
    resume = ["--run-dir", str(interrupted), "--resume"]  # not quiet: it says where it starts
    outcomes = []
    for i, kill in enumerate(kills):
        start = newest_readable_step(interrupted) if i else None
        done = run_command(new_run_argv(clip, interrupted) if i == 0 else resume, kill=kill)
        outcomes.append((kill, done.returncode))
        assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        if start is not None:  # each resume continues from the last checkpoint, not from 0
            assert_resumed_from(done.stderr, start)
        assert_nothing_truncated(interrupted)
    assert any(code == -signal.SIGKILL for _, code in outcomes), outcomes
    start = newest_readable_step(interrupted)
    final = run_command(resume)
    assert final.returncode == 0, final.stderr[-3000:]
    assert_resumed_from(final.stderr, start)
    assert plain.wait(timeout=240) == 0, plain.stderr.read()[-3000:]
    assert_nothing_truncated(interrupted)

    summary = json.loads((interrupted / "result" / "summary.json").read_text())
    assert summary["steps"] == STEPS
    ours, theirs = listed_checkpoints(interrupted)[-1], listed_checkpoints(reference)[-1]
    assert step_of(ours) == step_of(theirs) == STEPS
    ours, theirs = read_checkpoint(ours), read_checkpoint(theirs)
    assert ours.keys() == theirs.keys()
    for name in ours:  # bit-exact, not merely close
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    np.testing.assert_array_equal(read_video(interrupted / "result" / "frames").frames,
                                  read_video(reference / "result" / "frames").frames)


# ----------------------------------------------------------------------------------------------
# corrupt state


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, len(data) // 2, np.uint8)
    data[len(data) // 4: len(data) // 4 + len(noise)] = noise.tobytes()
    path.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated_data", "garbled_index", "deleted_data"])
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, base_run, capsys, damage):
    run = copy_of(base_run, tmp_path)
    latest = run / "checkpoints" / "ckpt-4"
    if damage == "truncated_data":
        _truncate(latest.with_suffix(".data-00000-of-00001"))
    elif damage == "garbled_index":
        _garble(latest.with_suffix(".index"))
    else:
        latest.with_suffix(".data-00000-of-00001").unlink()
    assert train.main(["--run-dir", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "ckpt-4" in err and "falling back" in err, err
    assert "fitting steps 2..4" in err, err
    assert json.loads((run / "result" / "summary.json").read_text())["steps"] == 4
    assert step_of(listed_checkpoints(run)[-1]) == 4
    read_checkpoint(str(latest))  # written again, whole


@pytest.mark.slow
def test_garbled_checkpoint_index_file_does_not_restart_from_zero(tmp_path, base_run, capsys):
    run = copy_of(base_run, tmp_path)
    (run / "checkpoints" / "checkpoint").write_bytes(b"\x00\xffnot a checkpoint state{{")
    assert train.main(["--run-dir", str(run), "--resume", "--steps", "6"]) == 0
    err = capsys.readouterr().err
    assert "fitting steps 4..6" in err, err


def test_no_readable_checkpoint_is_one_line(tmp_path, base_run, capsys):
    run = copy_of(base_run, tmp_path)
    for data in (run / "checkpoints").glob("*.data-*"):
        _truncate(data)
    before = files_of(run / "result")
    assert train.main(["--run-dir", str(run), "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err, "no readable checkpoint")
    assert str(run / "checkpoints") in line
    assert files_of(run / "result") == before


def test_resume_with_a_disagreeing_config_is_refused_naming_the_keys(tmp_path, base_run, capsys):
    run = copy_of(base_run, tmp_path)
    before = files_of(run)
    code = train.main(["--run-dir", str(run), "--resume", "--config",
                       str(ROOT / "configs" / "quick.yaml")])
    assert code == 2
    line = one_error_line(capsys.readouterr().err, "config.yaml disagrees", "generator.channels",
                          "generator.arch")
    assert str(run) in line
    assert files_of(run) == before


# ----------------------------------------------------------------------------------------------
# resource faults


def _file_size_limit(size: int):
    """For a child process: writes past `size` bytes fail with EFBIG (as a full disk would)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


@pytest.mark.slow
def test_disk_full_while_writing_a_checkpoint(tmp_path, base_run, capsys):
    run = copy_of(base_run, tmp_path)
    result_before = files_of(run / "result")
    checkpoint_size = (run / "checkpoints" / "ckpt-4.data-00000-of-00001").stat().st_size
    done = run_command(["--run-dir", str(run), "--resume", "--steps", "6"],
                       preexec_fn=_file_size_limit(checkpoint_size // 2))
    assert done.returncode == 2, done.stderr[-3000:]
    one_error_line(done.stderr, "checkpoint of step 6", "step 4", "intact")
    assert step_of(listed_checkpoints(run)[-1]) == 4
    assert read_checkpoint(listed_checkpoints(run)[-1]).keys()
    assert files_of(run / "result") == result_before

    # with room again (in this process, which has no limit), the fit resumes from step 4 and
    # completes
    assert train.main(["--run-dir", str(run), "--resume", "--steps", "6"]) == 0
    assert "fitting steps 4..6" in capsys.readouterr().err
    assert step_of(listed_checkpoints(run)[-1]) == 6


@pytest.mark.slow
@pytest.mark.parametrize("limit", [2_000, 60_000])  # fails on the first frame / on the report
def test_disk_full_while_writing_the_result_keeps_the_earlier_result(tmp_path, base_run, limit):
    run = copy_of(base_run, tmp_path)
    before = files_of(run / "result")
    done = run_command(["--run-dir", str(run), "--resume"], preexec_fn=_file_size_limit(limit))
    assert done.returncode == 2, done.stderr[-3000:]
    one_error_line(done.stderr, "file too large", "earlier files are intact")
    assert files_of(run / "result") == before


def poisoned(original, at_call: int, persistent: bool = False):
    """`original` (a loss function), returning NaN at its `at_call`-th call inside a fit's steps
    (and every call after it when `persistent`): a fault injected into the compiled step."""
    calls = tf.Variable(0, dtype=tf.int64, trainable=False)

    def loss(*args, **kwargs):
        value = original(*args, **kwargs)
        count = calls.assign_add(1)
        hit = count >= at_call if persistent else tf.equal(count, at_call)
        return tf.where(hit, tf.constant(float("nan")), value)

    return loss


@pytest.mark.slow
def test_a_nan_step_is_recovered_from_and_the_fit_writes_its_result(tmp_path, base_run, capsys,
                                                                   monkeypatch):
    from tfinpaint.evaluation.report import read_scalars

    run = copy_of(base_run, tmp_path)
    monkeypatch.setattr(losses, "reconstruction_loss",
                        poisoned(losses.reconstruction_loss, at_call=3))
    code = train.main(["--run-dir", str(run), "--resume", "--steps", "10",
                       "--set", "train.snapshot_every=2"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    # step 7 (the third step after the resume at 4) was skipped; back to the state of step 6
    assert "non-finite at step 7" in err and "rolled back to step 6" in err
    assert "0.5x the learning rate (recovery 1 of 3)" in err
    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["recoveries"] == [{"step": 7, "not_finite": "the loss", "rolled_back_to": 6,
                                      "learning_rate_scale": 0.5}]
    assert summary["steps"] == 9  # the epoch's ten batches, one of them skipped
    scalars = read_scalars(run / "logs")
    assert scalars["train/recoveries"] == [(6, 1.0)]
    assert scalars["train/learning_rate_scale"] == [(6, 0.5)]
    assert tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-9")).get_tensor(
        "learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 0.5


def poisoned_gradients(original, at_calls: tuple[int, ...]):
    """`original` (a loss function), its value unchanged but its gradient NaN at the listed calls
    inside a fit's steps: a step whose loss is finite and whose gradients are not."""
    calls = tf.Variable(0, dtype=tf.int64, trainable=False)

    def loss(*args, **kwargs):
        value = original(*args, **kwargs)
        count = calls.assign_add(1)
        hit = tf.reduce_any(tf.equal(count, tf.constant(at_calls, tf.int64)))

        @tf.custom_gradient
        def nan_gradient(x):
            return tf.identity(x), lambda upstream: tf.where(hit, float("nan"), upstream)

        return nan_gradient(value)

    return loss


def test_a_lone_step_of_non_finite_gradients_is_skipped_without_rolling_back(
        tmp_path, base_run, capsys, monkeypatch):
    from tfinpaint.evaluation.report import read_scalars

    run = copy_of(base_run, tmp_path)
    monkeypatch.setattr(losses, "reconstruction_loss",
                        poisoned_gradients(losses.reconstruction_loss, at_calls=(3,)))
    code = train.main(["--run-dir", str(run), "--resume", "--steps", "10",
                       "--set", "train.snapshot_every=2"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    assert "the gradients became non-finite at step 7 (the loss did not)" in err
    assert "rolled back" not in err
    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["recoveries"] == []
    assert summary["skipped_steps"] == [{"step": 7, "not_finite": "the gradients"}]
    assert summary["steps"] == 9  # ten batches, one skipped, none replayed
    assert read_scalars(run / "logs")["train/skipped_steps"] == [(7, 1.0)]
    assert tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-9")).get_tensor(
        "learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 1.0


def test_non_finite_gradients_that_come_back_soon_roll_the_fit_back(tmp_path, base_run, capsys,
                                                                    monkeypatch):
    run = copy_of(base_run, tmp_path)
    monkeypatch.setattr(losses, "reconstruction_loss",
                        poisoned_gradients(losses.reconstruction_loss, at_calls=(2, 4)))
    code = train.main(["--run-dir", str(run), "--resume", "--steps", "10",
                       "--set", "train.snapshot_every=3"])
    err = capsys.readouterr().err
    assert code == 0, err[-3000:]
    # step 6 is a lone skip; step 7 (the next attempt after it) is the second within 3 steps
    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["skipped_steps"] == [{"step": 6, "not_finite": "the gradients"}]
    assert summary["recoveries"] == [{"step": 7, "not_finite": "the gradients",
                                      "rolled_back_to": 6, "learning_rate_scale": 0.5}]
    assert "rolled back to step 6" in err


@pytest.mark.slow
def test_repeated_nan_stops_after_three_recoveries_and_keeps_the_good_state(tmp_path, base_run,
                                                                           capsys, monkeypatch):
    run = copy_of(base_run, tmp_path)
    result_before = files_of(run / "result")
    good = read_checkpoint(str(run / "checkpoints" / "ckpt-4"))
    monkeypatch.setattr(losses, "reconstruction_loss",
                        poisoned(losses.reconstruction_loss, at_call=1, persistent=True))
    code = train.main(["--run-dir", str(run), "--resume", "--steps", "8"])
    err = capsys.readouterr().err
    assert code == 2, err[-3000:]
    assert err.count("warning: the loss became non-finite at step 5") == 3
    one_error_line(err, "became non-finite at step 5 after 3 recoveries",
                   "last good state (step 4) is saved", "0.0625x", "--resume")
    assert [step_of(p) for p in listed_checkpoints(run)] == [2, 4]
    kept = read_checkpoint(str(run / "checkpoints" / "ckpt-4"))
    # The good weights, at a sixteenth of the rate: a resume does not replay the divergence.
    assert kept.pop("learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 0.0625
    assert good.pop("learning_rate_scale/.ATTRIBUTES/VARIABLE_VALUE") == 1.0
    # --steps 8 extended the fit: its schedule's new segment starts at step 4
    assert kept.pop("decay_segment/.ATTRIBUTES/VARIABLE_VALUE")[0] == 4
    good.pop("decay_segment/.ATTRIBUTES/VARIABLE_VALUE")
    assert kept.keys() == good.keys()
    for name, value in kept.items():
        np.testing.assert_array_equal(value, good[name], err_msg=name)
    assert files_of(run / "result") == result_before


def test_resume_applies_a_learning_rate_changed_with_set(tmp_path):
    from tfinpaint import config as config_lib
    from tfinpaint.fitting.checkpoints import Checkpoints
    from tfinpaint.fitting.loop import build_inpainter
    from tfinpaint.fitting.schedule import begin_segment

    def restored(learning_rate: float):
        config = config_lib.load_config([], [*SMALL, f"train.learning_rate={learning_rate}"])
        model = build_inpainter(config)
        checkpoints = Checkpoints(model, tmp_path / "checkpoints")
        step = checkpoints.restore_latest()
        begin_segment(model, config)  # as `fit` does after a restore
        return float(model.optimizer.learning_rate), step, checkpoints, model

    _, _, checkpoints, model = restored(2e-4)
    model.optimizer.iterations.assign(7)
    checkpoints.save()
    learning_rate, step, _, _ = restored(5e-5)
    assert step == 7 and learning_rate == pytest.approx(5e-5)
