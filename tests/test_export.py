"""Export round trips: a tiny fitted run -> SavedModel (+ ONNX) -> a fresh TF process, onnxruntime,
and the gRPC server with the client, each compared with the in-process Keras model."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.errors import InputError
from tfinpaint.export import cli as export_cli
from tfinpaint.export import exporter
from tfinpaint.export import onnx as onnx_export
from tfinpaint.export import savedmodel
from tfinpaint.export.savedmodel import InpaintModule, next_version
from tfinpaint.fill.render import fill_float_at_working_size, load_generator, make_fill_fn
from tfinpaint.io.rundir import RunDir
from tfinpaint.model.generator import MULTIPLE, build_generator

WORKING = (32, 48)  # the run's working size (conftest.finished_fit): a 4x frame is cheap to tile
ODD_SIZES = [(37, 53), (241, 433)]
MODEL = "clip"
FLOAT_TOLERANCE = 1e-4
UINT8_TOLERANCE = 1


@pytest.fixture(scope="module")
def run_dir(finished_fit):
    """conftest's tiny fit of the sample (coarse-to-fine, 8 channels, at WORKING): exports only
    read it, and what it learnt is not under test."""
    return finished_fit


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    assert export_cli.main(["--run", str(run_dir), "--out", str(base), "--onnx"]) == 0
    return base / "1"


@pytest.fixture(scope="module")
def generator(run_dir):
    return load_generator(RunDir(run_dir))


def _inputs(height, width, seed, frames=2):
    return onnx_export.random_inputs(height, width, frames=frames, seed=seed)


def _keras_float(generator, frames, masks):
    """The in-process Keras model on float inputs, padded and cropped here with NumPy."""
    hole = (masks > 0.5).astype(np.float32)
    height, width = frames.shape[1:3]
    signed = frames * 2.0 - 1.0
    x = np.concatenate([signed * (1.0 - hole), hole], axis=-1)
    x = np.pad(x, [(0, 0), (0, -height % MULTIPLE), (0, -width % MULTIPLE), (0, 0)], "reflect")
    output = np.asarray(generator(tf.constant(x), training=False)[-1])[:, :height, :width]
    return np.where(hole > 0, (output + 1.0) * 0.5, frames)


def _expected(generator, fill, height, width, seed):
    """What the export must answer: the in-process fill graphs at the run's working size."""
    frames, masks = _inputs(height, width, seed)
    float_frames, float_masks = frames.astype(np.float32) / 255.0, (masks > 0).astype(np.float32)
    in_process_float = fill_float_at_working_size(generator, tf.constant(float_frames),
                                                  tf.constant(float_masks > 0.5), WORKING).numpy()
    return dict(frames=frames, masks=masks, float_frames=float_frames, float_masks=float_masks,
                uint8=fill(frames, masks).numpy(), float=in_process_float)


def test_fill_graph_at_the_working_size_is_the_plain_network(generator):
    # frames already at the working size: no resizing, the NumPy-padded Keras model exactly
    frames, masks = _inputs(*WORKING, seed=9)
    float_frames, float_masks = frames.astype(np.float32) / 255.0, (masks > 0).astype(np.float32)
    got = fill_float_at_working_size(generator, tf.constant(float_frames),
                                     tf.constant(float_masks > 0.5), WORKING).numpy()
    np.testing.assert_allclose(got, _keras_float(generator, float_frames, float_masks),
                               atol=FLOAT_TOLERANCE)
    np.testing.assert_array_equal(make_fill_fn(generator, working_size=WORKING)(frames, masks),
                                  make_fill_fn(generator)(frames, masks))


def _assert_matches(got_uint8, got_float, expected):
    known = expected["masks"] == 0
    assert got_uint8.dtype == np.uint8 and got_uint8.shape == expected["frames"].shape
    assert np.abs(got_uint8.astype(int) - expected["uint8"]).max() <= UINT8_TOLERANCE
    assert np.array_equal(np.where(known, got_uint8, 0), np.where(known, expected["frames"], 0))
    assert got_float.dtype == np.float32 and got_float.shape == expected["frames"].shape
    assert np.abs(got_float - expected["float"]).max() < FLOAT_TOLERANCE
    assert np.array_equal(np.where(known, got_float, 0),
                          np.where(known, expected["float_frames"], 0))


FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    for name in sys.argv[2:]:
        data = np.load(name + ".npz")
        out = model.signatures["serving_default"](frames=tf.constant(data["frames"]),
                                                  masks=tf.constant(data["masks"]))
        out_float = model.signatures["serving_float"](frames=tf.constant(data["float_frames"]),
                                                      masks=tf.constant(data["float_masks"]))
        np.save(name + "_uint8.npy", out["inpainted"].numpy())
        np.save(name + "_float.npy", out_float["inpainted"].numpy())
    assert not any(m.split(".")[0] == "tfinpaint" for m in sys.modules), "imported tfinpaint"
""")


def test_export_layout_and_assets(exported, run_dir):
    assert (exported / "saved_model.pb").is_file() and (exported / "variables").is_dir()
    info = json.loads((exported / "assets" / "tfinpaint.json").read_text())
    assert (info["working_height"], info["working_width"]) == WORKING
    assert info["fills_at_working_size"] is True
    assert info["arch"] == "coarse_to_fine" and info["channels"] == 8
    assert info["onnx"] == {"serving_default": "assets.extra/model.onnx",
                            "serving_float": "assets.extra/model_float.onnx"}
    config = (exported / "assets" / "config.yaml").read_text()
    assert config == (run_dir / "config.yaml").read_text()
    for path in info["onnx"].values():
        assert (exported / path).is_file()
    assert sorted(p.name for p in exported.parent.iterdir()) == ["1"]  # no staging left


def test_savedmodel_in_fresh_process_matches_keras(exported, generator, tmp_path):
    fill = make_fill_fn(generator, working_size=WORKING)
    cases = {}
    for seed, (height, width) in enumerate(ODD_SIZES):
        cases[str(tmp_path / f"case{seed}")] = _expected(generator, fill, height, width, seed)
    for name, case in cases.items():
        np.savez(name + ".npz", **{k: case[k] for k in
                                   ("frames", "masks", "float_frames", "float_masks")})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(exported), *cases],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, case in cases.items():
        _assert_matches(np.load(name + "_uint8.npy"), np.load(name + "_float.npy"), case)


def test_onnx_matches_keras(exported, generator):
    fill = make_fill_fn(generator, working_size=WORKING)
    sessions = {name: onnx_export.session(_load_onnx(exported / onnx_export.FOLDER / file))
                for name, file in onnx_export.FILES.items()}
    for seed, (height, width) in enumerate(ODD_SIZES):
        case = _expected(generator, fill, height, width, seed)
        _assert_matches(onnx_export.run(sessions["serving_default"], case["frames"], case["masks"]),
                        onnx_export.run(sessions["serving_float"], case["float_frames"],
                                        case["float_masks"]), case)


def _load_onnx(path):
    import onnx

    return onnx.load(str(path))


def test_onnx_check_refuses_a_model_that_disagrees(exported):
    other = InpaintModule(build_generator("coarse_to_fine", channels=8))
    models = {name: _load_onnx(exported / onnx_export.FOLDER / file)
              for name, file in onnx_export.FILES.items()}
    with pytest.raises(onnx_export.OnnxCheckError, match="differs from TensorFlow"):
        onnx_export.check(other, models, sizes=[(37, 53)])


def test_onnx_reflect_padding_converts_exactly():
    # the paper's reflection padding: static REFLECT pads inside every layer, on top of the
    # dynamic one that pads the frame to a multiple of 4; 69 px is above the 68 px it needs
    module = InpaintModule(build_generator("base", channels=8, padding="reflect"))
    report = onnx_export.check(module, onnx_export.convert(module), sizes=[(69, 101)])
    assert report.max_float_diff < FLOAT_TOLERANCE and report.max_uint8_diff <= UINT8_TOLERANCE


def test_versions_and_refusing_to_overwrite(run_dir, tmp_path, capsys, monkeypatch):
    # Which version folder an export goes to, and when it may replace one. What a real export
    # writes there is test_export_layout_and_assets's (and tracing one costs seconds), so here
    # the SavedModel writer puts a numbered stand-in and the info into the staged folder.
    writes = []

    def write_savedmodel(module, folder, *, info, config_yaml):
        writes.append(folder)
        (folder / "assets").mkdir()
        (folder / "assets" / "tfinpaint.json").write_text(json.dumps(info))
        (folder / "saved_model.pb").write_text(f"export {len(writes)}")

    monkeypatch.setattr(savedmodel, "write_savedmodel", write_savedmodel)
    base = tmp_path / MODEL
    (base / "7").mkdir(parents=True)  # a foreign version folder still counts
    assert next_version(base) == 8
    assert export_cli.main(["--run", str(run_dir), "--out", str(base)]) == 0
    assert (base / "8" / "saved_model.pb").read_text() == "export 1"

    assert export_cli.main(["--run", str(run_dir), "--out", str(base), "--version", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "--overwrite" in err[-1]
    assert len(writes) == 1 and (base / "8" / "saved_model.pb").read_text() == "export 1"

    assert export_cli.main(["--run", str(run_dir), "--out", str(base), "--version", "8",
                            "--overwrite"]) == 0
    assert (base / "8" / "saved_model.pb").read_text() == "export 2"
    assert sorted(p.name for p in base.iterdir()) == ["7", "8"]  # no staging folder left


def test_failed_onnx_check_writes_nothing(run_dir, tmp_path, monkeypatch):
    def disagree(*args, **kwargs):
        raise onnx_export.OnnxCheckError("model.onnx differs from TensorFlow by 9 levels")

    monkeypatch.setattr(onnx_export, "convert", lambda module, opset: {})
    monkeypatch.setattr(onnx_export, "check", disagree)
    base = tmp_path / MODEL
    with pytest.raises(InputError, match="nothing written"):
        exporter.export(run_dir, base, onnx=True)
    assert not base.exists() or not any(base.iterdir())


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "no such run folder"),
    (lambda tmp: tmp, "no config.yaml"),
])
def test_bad_run_folder_is_one_line_exit_2(make, message, tmp_path, capsys):
    assert export_cli.main(["--run", str(make(tmp_path)), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "m").exists()


def test_run_without_checkpoint_and_bad_version(run_dir, tmp_path, capsys):
    empty = tmp_path / "run"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    assert export_cli.main(["--run", str(empty), "--out", str(tmp_path / "m")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert export_cli.main(["--run", str(run_dir), "--out", str(tmp_path / "m"),
                            "--version", "0"]) == 2
    assert "positive" in capsys.readouterr().err


def test_command_line_bad_run_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfinpaint.export", "--run",
                             str(tmp_path / "nope"), "--out", str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def served(exported):
    """The export served in this process (the serve command itself: test_serving's
    test_serve_command_runs_and_stops_on_sigterm)."""
    from tfinpaint.serving.server import serve

    server, port = serve(exported.parent, 0)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_serve_and_client_fill_like_infer(served, run_dir, tmp_path):
    from tfinpaint.infer import main as infer
    from tfinpaint.io.video import read_video, write_frames
    from tfinpaint.serving.remote import fetch_model_info, fill_frames, tile_size_for

    target = served
    info = fetch_model_info(target, MODEL)
    assert tile_size_for(info, None) is None  # whole frames: the graph reduces them itself
    with pytest.raises(InputError, match="send whole frames"):
        tile_size_for(info, WORKING)

    # native frames larger than the working size, not a multiple of it
    frames, masks = _inputs(2 * WORKING[0] + 5, 2 * WORKING[1] + 3, seed=5, frames=3)
    names = [f"{i:05d}" for i in range(len(frames))]
    write_frames(tmp_path / "video", frames, names)
    write_frames(tmp_path / "masks", np.repeat(masks, 3, axis=-1), names)
    assert infer(["--run", str(run_dir), "--video", str(tmp_path / "video"),
                  "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "infer")]) == 0
    by_infer = read_video(tmp_path / "infer" / "frames").frames
    by_server = fill_frames(target, MODEL, frames, masks, batch=2)
    np.testing.assert_array_equal(by_server, by_infer)
    assert not np.array_equal(by_server, frames)


def test_export_made_before_in_graph_resizing_still_serves(generator, run_dir, tmp_path):
    """An older export (no `fills_at_working_size`, a graph that fills at the size it is sent)
    loads, serves, and is tiled at its working size by the client, as before."""
    from tfinpaint.export.savedmodel import write_savedmodel
    from tfinpaint.serving.remote import fetch_model_info, fill_frames, local_predict_fn, tile_size_for
    from tfinpaint.serving.server import serve

    old = tmp_path / "old" / "1"
    write_savedmodel(InpaintModule(generator), old, config_yaml=(run_dir / "config.yaml").read_text(),
                     info={"working_height": WORKING[0], "working_width": WORKING[1]})
    server, port = serve(old.parent, 0)
    try:
        target = f"127.0.0.1:{port}"
        tile_size = tile_size_for(fetch_model_info(target, "old"), None)
        assert tile_size == WORKING
        big_frames, big_masks = _inputs(4 * WORKING[0], 4 * WORKING[1], seed=6, frames=1)
        shapes = []
        in_process = local_predict_fn(make_fill_fn(generator))

        def recording(frame_batch, mask_batch):
            shapes.append(frame_batch.shape[1:3])
            return in_process(frame_batch, mask_batch)

        expected = fill_frames(recording, None, big_frames, big_masks, tile_size=tile_size, batch=4)
        assert shapes and all(shape == WORKING for shape in shapes)
        got = fill_frames(target, "old", big_frames, big_masks, tile_size=tile_size, batch=4)
    finally:
        server.stop(grace=None)
    np.testing.assert_array_equal(got, expected)
    known = big_masks == 0
    assert np.array_equal(np.where(known, got, 0), np.where(known, big_frames, 0))
    assert not np.array_equal(got, big_frames)


# --- the run's mask dilation, applied by the export itself ----------------------------------

DILATION = 3
ODD_NATIVE = (45, 77)  # larger than WORKING on both axes, a multiple of nothing it meets


@pytest.mark.parametrize("pixels", [0, 1, 3, 5])
def test_dilate_holes_is_opencvs_dilation_bit_for_bit(pixels):
    # eagerly and traced with unknown sizes (as the signatures are), sparse to dense holes and
    # holes at every border of an odd frame
    from tfinpaint.fill.render import dilate_holes
    from tfinpaint.io.video import dilate_masks

    rng = np.random.default_rng(pixels)
    density = np.array([0.002, 0.02, 0.2, 0.0])[:, None, None, None]
    masks = (rng.random((4, *ODD_NATIVE, 1)) < density).astype(np.uint8)
    masks[0, 0, 0] = masks[0, -1, -1] = masks[1, 0, -2] = masks[2, -1, 1] = masks[3, 20, 0] = 1
    expected = dilate_masks(masks, pixels)
    traced = tf.function(lambda hole: dilate_holes(hole, pixels),
                         input_signature=[tf.TensorSpec([None, None, None, 1], tf.bool)])
    for grown in (dilate_holes(tf.constant(masks > 0), pixels), traced(tf.constant(masks > 0))):
        assert grown.dtype == tf.bool
        np.testing.assert_array_equal(grown.numpy().astype(np.uint8), expected)


def _odd_hole_clip(folder):
    """3 frames of the sample at ODD_NATIVE and raw masks: an 11x17 block that moves, a 1 px
    line, and a pixel in a corner (grown holes meet the frame's border)."""
    from tfinpaint.io.sample import make_sample
    from tfinpaint.io.video import write_frames

    frames = make_sample(num_frames=3, height=ODD_NATIVE[0], width=ODD_NATIVE[1]).frames
    masks = np.zeros((*frames.shape[:3], 1), np.uint8)
    for index, mask in enumerate(masks):
        mask[13 + 2 * index:24 + 2 * index, 29 + 3 * index:46 + 3 * index] = 1
        mask[36, 5:19] = 1
        mask[0, ODD_NATIVE[1] - 1] = 1
    names = [f"{i:05d}" for i in range(len(frames))]
    write_frames(folder / "frames", frames, names)
    write_frames(folder / "masks", np.repeat(masks * np.uint8(255), 3, axis=-1), names)
    return frames, masks


@pytest.fixture(scope="module")
def dilated(tmp_path_factory):
    """A tiny run fitted with `data.mask_dilation: 3` on raw masks, exported with ONNX and
    served; `infer`'s fill of its own clip, the one every path must give from the raw masks."""
    from conftest import TINY, fit_run
    from tfinpaint.infer import main as infer
    from tfinpaint.io.video import read_video
    from tfinpaint.serving.server import serve

    folder = tmp_path_factory.mktemp("dilated")
    frames, masks = _odd_hole_clip(folder)
    run = fit_run(folder / "run", ["--video", str(folder / "frames"), "--masks",
                                   str(folder / "masks")], 2,
                  [*TINY, f"data.working_height={WORKING[0]}", f"data.working_width={WORKING[1]}",
                   "data.prefill=pyramid", "generator.prefill_gate=false"],
                  mask_dilation=DILATION)
    base = folder / "models" / MODEL
    assert export_cli.main(["--run", str(run), "--out", str(base), "--onnx"]) == 0
    assert infer(["--run", str(run), "--out", str(folder / "infer")]) == 0
    server, port = serve(base, 0)
    yield dict(folder=folder, run=run, version=base / "1", frames=frames, masks=masks,
               target=f"127.0.0.1:{port}", infer=read_video(folder / "infer" / "frames").frames)
    server.stop(grace=None)


def _levels(a, b) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_export_of_a_dilated_run_fills_the_users_raw_masks_like_infer(dilated, capsys):
    import onnx

    from tfinpaint.io.video import dilate_masks

    frames, raw, by_infer = dilated["frames"], dilated["masks"], dilated["infer"]
    grown = dilate_masks(raw, DILATION)
    known = np.repeat(grown == 0, 3, axis=-1)
    assert (by_infer[~known] != frames[~known]).any() and (grown != raw).any()
    info = json.loads((dilated["version"] / "assets" / "tfinpaint.json").read_text())
    assert info["mask_dilation"] == DILATION

    loaded = tf.saved_model.load(str(dilated["version"]))
    by_savedmodel = loaded.signatures["serving_default"](
        frames=tf.constant(frames), masks=tf.constant(raw))["inpainted"].numpy()
    as_float = loaded.signatures["serving_float"](
        frames=tf.constant(frames / np.float32(255)),
        masks=tf.constant(raw.astype(np.float32)))["inpainted"].numpy()
    by_float = np.round(np.clip(as_float, 0, 1) * 255).astype(np.uint8)
    folder = dilated["version"] / onnx_export.FOLDER
    by_onnx = onnx_export.run(onnx_export.session(onnx.load(str(folder / "model.onnx"))),
                              frames, raw)
    as_float = onnx_export.run(onnx_export.session(onnx.load(str(folder / "model_float.onnx"))),
                               frames / np.float32(255), raw.astype(np.float32))
    by_onnx_float = np.round(np.clip(as_float, 0, 1) * 255).astype(np.uint8)
    # what the export gave before it grew the holes itself: the same network on the raw holes
    generator = load_generator(RunDir(dilated["run"]))
    before = make_fill_fn(generator, working_size=WORKING)(frames, raw).numpy()

    differences = {"savedmodel": _levels(by_savedmodel, by_infer),
                   "savedmodel float": _levels(by_float, by_infer),
                   "onnx": _levels(by_onnx, by_infer),
                   "onnx float": _levels(by_onnx_float, by_infer),
                   "raw masks, not grown (before)": _levels(before, by_infer)}
    with capsys.disabled():
        print("\nmax level difference from infer's result, raw masks sent:", differences)
    assert differences["savedmodel"] == 0
    assert all(differences[name] <= UINT8_TOLERANCE
               for name in ("savedmodel float", "onnx", "onnx float")), differences
    assert differences["raw masks, not grown (before)"] > UINT8_TOLERANCE
    for filled in (by_savedmodel, by_float, by_onnx, by_onnx_float):
        np.testing.assert_array_equal(filled[known], frames[known])


def test_client_sends_raw_masks_and_fills_like_infer(dilated, tmp_path):
    from tfinpaint.io.video import read_video
    from tfinpaint.serving import client
    from tfinpaint.serving.remote import export_mask_dilation, fetch_model_info

    assert export_mask_dilation(fetch_model_info(dilated["target"], MODEL)) == DILATION
    argv = ["--target", dilated["target"], "--model", MODEL,
            "--video", str(dilated["folder"] / "frames"),
            "--masks", str(dilated["folder"] / "masks"), "--batch", "2"]
    assert client.main([*argv, "--out", str(tmp_path / "served")]) == 0
    np.testing.assert_array_equal(read_video(tmp_path / "served").frames, dilated["infer"])
    # --mask-dilation grows the holes further, on top of the run's own
    assert client.main([*argv, "--out", str(tmp_path / "more"), "--mask-dilation", "2"]) == 0
    more = read_video(tmp_path / "more").frames
    assert not np.array_equal(more, dilated["infer"])
    outside = np.repeat(dilate_twice(dilated["masks"], 2, DILATION) == 0, 3, axis=-1)
    np.testing.assert_array_equal(more[outside], dilated["frames"][outside])


def dilate_twice(masks, first, then):
    from tfinpaint.io.video import dilate_masks

    return dilate_masks(dilate_masks(masks, first), then)
