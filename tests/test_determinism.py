"""Same seed, same machine, same result (CPU); the seed is written into the run's config.yaml."""

import numpy as np
import pytest
import yaml

from test_faults import listed_checkpoints, new_run_argv, read_checkpoint
from tfinpaint import train
from tfinpaint.io.video import read_video


def _fit(clip, run, *extra):
    assert train.main([*new_run_argv(clip, run, steps=4), *extra]) == 0
    return _fitted(run)


def _fitted(run):
    return read_checkpoint(listed_checkpoints(run)[-1]), read_video(run / "result" / "frames").frames


@pytest.mark.slow
def test_same_seed_same_weights_and_result_and_the_seed_is_saved(tmp_path, small_clip, small_fit):
    # the first fit is conftest's small_fit: the same command, fitted once for test_faults too
    first, first_frames = _fitted(small_fit)
    second, second_frames = _fit(small_clip, tmp_path / "b")
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    np.testing.assert_array_equal(first_frames, second_frames)
    saved = yaml.safe_load((small_fit / "config.yaml").read_text())
    assert saved["train"]["seed"] == 3

    other, _ = _fit(small_clip, tmp_path / "c", "--set", "train.seed=4")
    assert any(not np.array_equal(first[name], other[name]) for name in first)
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["train"]["seed"] == 4
