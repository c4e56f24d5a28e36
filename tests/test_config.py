import ast
from pathlib import Path

import pytest

from tfinpaint import config as config_lib
from tfinpaint.errors import InputError
from tfinpaint.io.rundir import save_config


def test_no_config_is_default_yaml():
    assert config_lib.load_config() == config_lib.load_config([config_lib.CONFIG_DIR / "default.yaml"])
    assert config_lib.load_config() == config_lib.Config()


def test_paper_yaml_is_the_papers_schedule():
    config = config_lib.load_config([config_lib.CONFIG_DIR / "paper.yaml"])
    assert config.generator.arch == "coarse_to_fine" and config.generator.channels == 48
    assert config.train.learning_rate == 2e-4 and config.train.batch_size == 5
    assert config.train.final_lr_fraction == 1.0 and config.train.time_budget_minutes == 0
    assert (config.train.beta_1, config.train.beta_2) == (0.9, 0.999)
    assert config.data.prefill == "none" and not config.generator.prefill_gate


def test_a_saved_config_lacking_a_later_key_reads_as_it_ran(tmp_path):
    # a run folder from before data.prefill and generator.prefill_gate existed: zeros, no gate
    saved = config_lib.to_dict(config_lib.load_config([config_lib.CONFIG_DIR / "paper.yaml"]))
    del saved["data"]["prefill"], saved["generator"]["prefill_gate"]
    config = config_lib.config_from_dict(saved)
    assert (config.data.prefill, config.generator.prefill_gate) == ("none", False)
    # from before data.mover_weight existed: training holes drawn uniformly, not the default 64
    del saved["data"]["mover_weight"]
    assert config_lib.config_from_dict(saved).data.mover_weight == 1.0
    # every key the defaults moved away from the paper's reads as before when absent
    assert config_lib.config_from_dict({}) == config_lib.load_config(
        [], [f"{section}.{key}={value}" for section, values in config_lib.SAVED_CONFIG_GAPS.items()
             for key, value in values.items()])
    # a saved config that has the keys is read as written
    written = config_lib.load_config([], ["train.steps=7"])
    assert config_lib.config_from_dict(config_lib.to_dict(written)) == written


def test_shipped_configs_are_short_on_comments():
    # a config file opens with its run command and what to expect, then at most one comment line
    # per setting on average; the why lives in docs/configuration.md
    def settings(node):
        return sum(settings(value) if isinstance(value, dict) else 1 for value in node.values())

    for path in sorted(config_lib.CONFIG_DIR.glob("*.yaml")):
        lines = path.read_text().splitlines()
        comments = sum(line.lstrip().startswith("#") for line in lines)
        assert lines[0].startswith("#") and "python " in "\n".join(lines[:10]), path.name
        assert comments <= settings(config_lib.read_yaml(path)), path.name


def test_each_name_is_defined_once():
    tree = ast.parse(Path(config_lib.__file__).read_text())
    names = [target.id for node in tree.body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)]
    names += [node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []


def test_yaml_then_overrides_apply_in_order(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("train:\n  steps: 10\n  learning_rate: 1.0e-3\ngenerator:\n  padding: reflect\n")
    config = config_lib.load_config([path], ["train.steps=20", "data.translation=boundary"])
    assert config.train.steps == 20
    assert config.train.learning_rate == pytest.approx(1e-3)
    assert config.generator.padding == "reflect"
    assert config.data.translation == "boundary"


@pytest.mark.parametrize("override, words", [
    ("train.stepz=3", "unknown key 'train.stepz'"),
    ("nothing.steps=3", "unknown key 'nothing'"),
    ("train.steps=many", "expected int"),
    ("generator.arch=unet", "not one of"),
    ("train", "expected key=value"),
])
def test_bad_overrides_are_one_clear_error(override, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        config_lib.load_config([], [override])


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml"):
        config_lib.load_config([path])


def test_save_round_trip_and_diff(tmp_path):
    config = config_lib.load_config([], ["train.steps=7", "losses.stabilization=0.2"])
    save_config(config, tmp_path / "config.yaml")
    loaded = config_lib.config_from_dict(config_lib.read_yaml(tmp_path / "config.yaml"))
    assert loaded == config
    assert config_lib.diff(config, config_lib.load_config()) == ["losses.stabilization", "train.steps"]


def test_shipped_configs_load():
    for path in sorted(config_lib.CONFIG_DIR.glob("*.yaml")):
        config_lib.load_config([path])


def test_a_run_folders_retired_key_still_loads(tmp_path, capsys):
    # run folders made before progressive.min_hole_pixels replaced min_hole_pixels_4k
    path = tmp_path / "config.yaml"
    path.write_text("progressive:\n  stages: 2\n  min_hole_pixels_4k: 1000\n")
    config = config_lib.config_from_dict(config_lib.read_yaml(path))
    assert config.progressive.stages == 2
    assert config.progressive.min_hole_pixels == 1000  # the paper's, per 960x540 patch
    assert "min_hole_pixels_4k" in capsys.readouterr().err
    assert "min_hole_pixels_4k" not in config_lib.to_yaml(config)
