import os
import shutil

import keras
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tf2onnx 1.17 deep-copies the graph before each optimizer pass, to restore it if the pass
# raises; with this variable set (to anything: it reads only its presence) it does not, which
# takes a third off every ONNX export here (85 to 61 s). The converted model is the same; a pass
# that raises fails the export instead of being skipped, which a test should see anyway.
os.environ.setdefault("TF2ONNX_CATCH_ERRORS", "false")

# A tiny network and short schedule for CLI tests: the behaviour, not the quality, is under test.
TINY = [
    "generator.channels=8", "train.batch_size=2", "train.log_every=2", "train.selfcheck_every=2",
    "train.image_every=2", "train.checkpoint_every=2", "train.selfcheck_frames=2",
]


@pytest.fixture(autouse=True)
def _float32_policy():
    """Tests that set a mixed-precision policy must not leak it into the next test."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def mixed_bfloat16():
    """Runs a test under the mixed_bfloat16 policy (reset to float32 after it)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield


def set_args(settings) -> list[str]:
    """`--set KEY=VALUE` for each setting."""
    return [arg for setting in settings for arg in ("--set", setting)]


def tiny_args(*extra: str) -> list[str]:
    return set_args(TINY) + list(extra)


def fit_run(path, source: list[str], steps: int, settings, *, mask_dilation: int = 0) -> object:
    """Fits a run at `path` with `tfinpaint.train` (quiet, masks grown by `mask_dilation` px,
    undilated by default): `source` its --video (and --masks) arguments, then `settings` as
    --set pairs. Returns `path`."""
    from tfinpaint.train import main as train

    argv = [*source, "--steps", str(steps), "--run-dir", str(path), "--quiet",
            "--mask-dilation", str(mask_dilation), *set_args(settings)]
    assert train(argv) == 0
    return path


@pytest.fixture(scope="session")
def finished_fit(tmp_path_factory):
    """A finished 2-step fit of the sample clip (the TINY network at a 32x48 working size), for
    the tests that resume a finished fit with something switched on; copy it before use. With
    the push-pull prefill, so that its exports take frames and masks alone (test_export); the
    default's flow prefill and its three-input exports are test_export_flow's."""
    return fit_run(tmp_path_factory.mktemp("finished") / "run", ["--video", "sample"], 2,
                   [*TINY, "data.working_height=32", "data.working_width=48",
                    "data.prefill=pyramid", "generator.prefill_gate=false"])


def copy_run(run, tmp_path) -> object:
    """A copy of the run folder `run` at tmp_path / "run", to resume without changing `run`."""
    return shutil.copytree(run, tmp_path / "run")


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory):
    """test_faults' 4-frame 64x48 clip, as (frames folder, masks folder)."""
    from test_faults import make_clip

    return make_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def small_fit(tmp_path_factory, small_clip):
    """A finished 4-step fit of small_clip with test_faults' settings, in this process:
    checkpoints at steps 2 and 4, then the result (test_faults resumes copies of it;
    test_determinism fits it again to compare). Copy it before changing it."""
    from test_faults import listed_checkpoints, new_run_argv, step_of
    from tfinpaint import train

    run = tmp_path_factory.mktemp("base") / "run"
    assert train.main(new_run_argv(small_clip, run, steps=4)) == 0
    assert [step_of(p) for p in listed_checkpoints(run)] == [2, 4]
    return run
