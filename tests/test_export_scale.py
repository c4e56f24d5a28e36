"""The issue's acceptance: a network fitted at a working size other than the video's (bmx-trees,
854x480 at 432x240) fills the same uint8 frames through `train`, `infer`, the SavedModel under
plain `tf.saved_model.load`, ONNX Runtime, and `serve` + the gRPC client. (That a SavedModel
export loads in a process that never imports tfinpaint is test_export's check; that the
`python -m tfinpaint.serve` command serves an export, test_serving's.)

A tiny network and two steps: agreement, not quality, is under test."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import fit_run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bmx-trees"
FRAMES = 4
WORKING = (240, 432)
MODEL = "bmx"

pytestmark = pytest.mark.skipif(not (DATA / "frames").is_dir(), reason=f"{DATA} absent")


def _levels(a, b) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bmx")
    for kind in ("frames", "masks"):
        (folder / kind).mkdir()
        for path in sorted((DATA / kind).iterdir())[:FRAMES]:
            shutil.copy(path, folder / kind / path.name)
    return folder


def test_every_path_fills_bmx_trees_like_train(clip, tmp_path):
    from tfinpaint.export import cli as export_cli
    from tfinpaint.export import onnx as onnx_export
    from tfinpaint.fill.render import load_generator, make_fill_fn
    from tfinpaint.infer import main as infer
    from tfinpaint.io.rundir import RunDir
    from tfinpaint.io.video import read_masks, read_video
    from tfinpaint.serving import client
    from tfinpaint.serving.server import serve

    # float32: train's render then runs the network as infer and the exports do (mixed
    # precision would put train's own result up to a few levels off theirs). The push-pull
    # prefill: the requests below carry frames and masks alone (the default's flow prefill, whose
    # exports also take the clip's flow fill, is test_export_flow's, fitted below its native size too)
    run = fit_run(tmp_path / "run", ["--video", str(clip / "frames"), "--masks", str(clip / "masks")],
                  2, ["generator.arch=base", "generator.channels=4", "train.batch_size=1",
                      "train.precision=float32", "data.prefill=pyramid",
                      "generator.prefill_gate=false",
                      f"data.working_height={WORKING[0]}", f"data.working_width={WORKING[1]}"])
    video = read_video(clip / "frames")
    frames = video.frames
    assert frames.shape[1:3] == (480, 854)
    masks = read_masks(clip / "masks", FRAMES, 480, 854, threshold=0, dilation=0)
    hole = np.repeat(masks != 0, 3, axis=-1)
    by_train = read_video(run / "result" / "frames").frames
    assert by_train.shape == frames.shape  # the result comes back at the video's own size
    assert read_video(run / "result" / "video.mp4").frames.shape == frames.shape

    assert infer(["--run", str(run), "--out", str(tmp_path / "infer")]) == 0
    by_infer = read_video(tmp_path / "infer" / "frames").frames

    assert export_cli.main(["--run", str(run), "--out", str(tmp_path / MODEL), "--onnx"]) == 0
    version = tmp_path / MODEL / "1"
    assert json.loads((version / "assets" / "tfinpaint.json").read_text())[
        "fills_at_working_size"] is True

    by_savedmodel = tf.saved_model.load(str(version)).signatures["serving_default"](
        frames=tf.constant(frames), masks=tf.constant(masks))["inpainted"].numpy()

    import onnx

    session = onnx_export.session(onnx.load(str(version / onnx_export.FOLDER / "model.onnx")))
    by_onnx = onnx_export.run(session, frames, masks)

    server, port = serve(tmp_path / MODEL, 0)
    try:
        assert client.main(["--target", f"127.0.0.1:{port}", "--model", MODEL,
                            "--video", str(clip / "frames"), "--masks", str(clip / "masks"),
                            "--out", str(tmp_path / "served"), "--batch", "2"]) == 0
    finally:
        server.stop(grace=None)
    by_client = read_video(tmp_path / "served").frames

    differences = {name: _levels(filled, by_train) for name, filled in [
        ("infer", by_infer), ("savedmodel", by_savedmodel), ("onnx", by_onnx),
        ("serve+client", by_client)]}
    print("max level difference from train's result:", differences)
    assert all(level <= 1 for level in differences.values()), differences
    for filled in (by_train, by_infer, by_savedmodel, by_onnx, by_client):
        np.testing.assert_array_equal(filled[~hole], frames[~hole])  # known pixels exact

    # the old served behaviour (native frames straight into the network) is another fill
    native = make_fill_fn(load_generator(RunDir(run)))(frames[:1], masks[:1]).numpy()
    assert _levels(native[hole[:1]], by_train[:1][hole[:1]]) > 1
