"""A `data.prefill: flow` run fitted, rendered, exported and served: `train`'s own render,
`infer`, the SavedModel under plain `tf.saved_model.load` (both signatures), ONNX Runtime, and
`serve` + the client (which computes the whole clip's flow fill and sends it as `prefilled`) fill
the same frames within one level. The run grows its masks by 3 px (`data.mask_dilation`): every
export path is given the masks as drawn and grows them itself, as `infer` does.

Both inputs that take the flow fill: "flow" (the network sees the flow fill in the hole) and
"pyramid+flow" (it sees the push-pull fill, and the flow fill as more channels). A tiny network
with the gate that keeps a learnt share of the flow fill (`generator.prefill_gate`) and, after
it, a fixed half of the flow fill (`generator.flow_keep`: the `FlowKeep` layer) and a fixed 0.3 of
the smooth fill (`generator.smooth_share`: the `SmoothShare` layer; every path must carry both),
two steps, a 6-frame clip at 64x96 fitted at 32x48 (so the native detail of the
flow fill enters the hole): agreement, not quality, is under test.

ONNX for the "flow" run only: tf2onnx takes minutes over a flow run's graph (most of it the
smooth fill's unrolled Jacobi steps), and "pyramid+flow" adds no op that the two converted here
and test_export's push-pull export do not already carry through ONNX Runtime."""

import json

import grpc
import numpy as np
import pytest
import tensorflow as tf

from conftest import fit_run
from tfinpaint.errors import InputError

WORKING = (32, 48)
NATIVE = (64, 96)
FRAMES = 6
MODEL = "flowclip"
DILATION = 3
ONNX_PREFILL = "flow"


def _levels(a, b) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tfinpaint.io.sample import make_sample
    from tfinpaint.io.video import write_frames

    folder = tmp_path_factory.mktemp("flowclip")
    sample = make_sample(num_frames=FRAMES, height=NATIVE[0], width=NATIVE[1])
    names = [f"{i:05d}" for i in range(FRAMES)]
    write_frames(folder / "frames", sample.frames, names)
    write_frames(folder / "masks", np.repeat(sample.masks * 255, 3, axis=-1), names)
    return folder


@pytest.fixture(scope="module", params=["flow", "pyramid+flow"])
def run(clip, tmp_path_factory, request):
    settings = [f"data.prefill={request.param}", "flow.preset=ultrafast", "generator.arch=base",
                "generator.channels=4", "generator.prefill_gate=true", "generator.flow_keep=0.5",
                "generator.smooth_share=0.3",
                "train.batch_size=1", "train.precision=float32",
                f"data.working_height={WORKING[0]}", f"data.working_width={WORKING[1]}"]
    return fit_run(tmp_path_factory.mktemp("runs") / "flow",
                   ["--video", str(clip / "frames"), "--masks", str(clip / "masks")], 2, settings,
                   mask_dilation=DILATION)


def _with_onnx(run) -> bool:
    from tfinpaint.io.rundir import RunDir

    return RunDir(run).require_config().data.prefill == ONNX_PREFILL


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    from tfinpaint.export import cli as export_cli

    base = tmp_path_factory.mktemp("models") / MODEL
    onnx = ["--onnx"] if _with_onnx(run) else []
    assert export_cli.main(["--run", str(run), "--out", str(base), *onnx]) == 0
    return base / "1"


@pytest.fixture(scope="module")
def inputs(clip, run):
    """The clip with its masks as drawn (what every export path is sent), and its flow fill as
    `infer` computes it, on the masks grown by the run's dilation."""
    from tfinpaint.fill.render import native_prefill
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.io.video import read_masks, read_video

    frames = read_video(clip / "frames").frames
    masks = read_masks(clip / "masks", FRAMES, *NATIVE, threshold=0, dilation=0)
    config = RunDir(run).require_config()
    assert config.data.mask_dilation == DILATION
    grown = read_masks(clip / "masks", FRAMES, *NATIVE, threshold=0, dilation=DILATION)
    prefilled = native_prefill("flow", frames, grown, config.flow)
    return frames, masks, prefilled


@pytest.fixture(scope="module")
def served(exported):
    from tfinpaint.serving.server import serve

    server, port = serve(exported.parent, 0)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_export_says_it_needs_the_clips_flow_fill(exported, run, inputs):
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.serving.remote import (clip_prefill, export_mask_dilation, flow_settings,
                                          needs_prefilled)

    summary = json.loads((run / "result" / "summary.json").read_text())
    assert summary["steps"] == 2
    assert np.isfinite(summary["selfcheck_psnr"])  # the self-check batch carries its flow fill
    info = json.loads((exported / "assets" / "tfinpaint.json").read_text())
    assert info["needs_prefilled"] is True and info["fills_at_working_size"] is True
    assert info["prefill"] == RunDir(run).require_config().data.prefill
    assert info["flow"]["preset"] == "ultrafast"
    assert flow_settings(info) == RunDir(run).require_config().flow
    frames, masks, prefilled = inputs
    assert needs_prefilled(info)
    assert export_mask_dilation(info) == DILATION
    np.testing.assert_array_equal(
        clip_prefill(frames, masks, flow_settings(info), mask_dilation=DILATION), prefilled)
    assert not needs_prefilled({"fills_at_working_size": True})


def test_every_path_fills_a_flow_run_like_infer(clip, run, exported, inputs, served, tmp_path,
                                                capsys):
    import onnx

    from tfinpaint.export import onnx as onnx_export
    from tfinpaint.infer import main as infer
    from tfinpaint.io.video import read_video
    from tfinpaint.serving import client

    from tfinpaint.fill.render import load_generator
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.io.video import dilate_masks
    from tfinpaint.model.generator import flow_keep_layer, smooth_share_layer

    # the fixed shares reached the checkpoint every path restores
    restored = load_generator(RunDir(run))
    assert float(flow_keep_layer(restored).keep.numpy()) == 0.5
    assert float(smooth_share_layer(restored).share.numpy()) == pytest.approx(0.3)
    frames, masks, prefilled = inputs
    hole = np.repeat(dilate_masks(masks, DILATION) != 0, 3, axis=-1)  # the hole infer fills
    assert infer(["--run", str(run), "--out", str(tmp_path / "infer")]) == 0
    by_infer = read_video(tmp_path / "infer" / "frames").frames
    by_train = read_video(run / "result" / "frames").frames  # the fit's own render

    loaded = tf.saved_model.load(str(exported))
    assert set(loaded.signatures["serving_default"].structured_input_signature[1]) == {
        "frames", "masks", "prefilled"}
    by_savedmodel = loaded.signatures["serving_default"](
        frames=tf.constant(frames), masks=tf.constant(masks),
        prefilled=tf.constant(prefilled))["inpainted"].numpy()
    as_float = loaded.signatures["serving_float"](
        frames=tf.constant(frames / np.float32(255)), masks=tf.constant(masks.astype(np.float32)),
        prefilled=tf.constant(prefilled / np.float32(255)))["inpainted"].numpy()
    by_float = np.round(np.clip(as_float, 0, 1) * 255).astype(np.uint8)

    by_path = {"train": by_train, "savedmodel": by_savedmodel, "savedmodel float": by_float}
    models = exported / onnx_export.FOLDER
    if _with_onnx(run):
        by_path["onnx"] = onnx_export.run(
            onnx_export.session(onnx.load(str(models / "model.onnx"))), frames, masks, prefilled)
        as_float = onnx_export.run(
            onnx_export.session(onnx.load(str(models / "model_float.onnx"))),
            frames / np.float32(255), masks.astype(np.float32), prefilled / np.float32(255))
        by_path["onnx float"] = np.round(np.clip(as_float, 0, 1) * 255).astype(np.uint8)
    else:
        assert not models.exists()

    argv = ["--target", served, "--model", MODEL, "--video", str(clip / "frames"),
            "--masks", str(clip / "masks"), "--out", str(tmp_path / "served"), "--batch", "2"]
    assert client.main(argv) == 0
    assert "flow fill" in capsys.readouterr().err
    by_path["serve+client"] = read_video(tmp_path / "served").frames

    differences = {name: _levels(filled, by_infer) for name, filled in by_path.items()}
    with capsys.disabled():
        print("\nmax level difference from infer's result:", differences)
    assert all(level <= 1 for level in differences.values()), differences
    assert differences["savedmodel"] == differences["serve+client"] == 0  # the very same graph
    for filled in (by_infer, *by_path.values()):
        np.testing.assert_array_equal(filled[~hole], frames[~hole])  # known pixels exact
    assert (by_infer[hole] != frames[hole]).any()
    # the flow fill matters: a mid-grey prefilled gives another fill
    grey = np.where(hole, 128, frames).astype(np.uint8)
    other = loaded.signatures["serving_default"](
        frames=tf.constant(frames), masks=tf.constant(masks),
        prefilled=tf.constant(grey))["inpainted"].numpy()
    assert _levels(other[hole], by_infer[hole]) > 1

    # asked to tile: one line, exit 2, before the flow fill is computed
    assert client.main(argv + ["--overwrite", "--tile-size", "16x16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be tiled" in err[0], err


def test_client_told_only_the_signatures_sends_the_flow_fill_with_default_settings(
        clip, served, tmp_path, capsys, monkeypatch):
    """Against the real TF Serving, which answers `signature_def` only: the `prefilled` input
    says what is needed, and the flow settings are the config's defaults (it says so)."""
    from tfinpaint.serving import client, remote

    monkeypatch.setattr(remote, "fetch_model_info", lambda *args, **kwargs: None)
    argv = ["--target", served, "--model", MODEL, "--video", str(clip / "frames"),
            "--masks", str(clip / "masks"), "--out", str(tmp_path / "served")]
    assert client.main(argv + ["--tile-size", "16x16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be tiled" in err[0], err
    assert client.main(argv) == 0
    assert "with the config's defaults" in capsys.readouterr().err
    assert len(list((tmp_path / "served").glob("*.png"))) == FRAMES


def test_server_refuses_a_flow_request_without_prefilled(served, inputs):
    from tfinpaint.serving.remote import fetch_signature_inputs, remote_predict_fn

    frames, masks, prefilled = inputs
    assert fetch_signature_inputs(served, MODEL) == {"frames", "masks", "prefilled"}
    predict = remote_predict_fn(served, MODEL, retries=0)
    with pytest.raises(grpc.RpcError) as error:
        predict(frames[:1], masks[:1])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing ['prefilled']" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        predict(frames[:1], masks[:1], prefilled[:2])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "prefilled" in error.value.details() and "differ in N, H or W" in error.value.details()


def test_fill_frames_refuses_to_tile_with_a_flow_fill(inputs):
    from tfinpaint.serving.remote import fill_frames

    frames, masks, prefilled = inputs
    with pytest.raises(InputError, match="cannot be tiled"):
        fill_frames(lambda *arrays: arrays[0], None, frames, masks, tile_size=WORKING,
                    prefilled=prefilled)
