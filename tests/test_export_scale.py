"""The issue's acceptance: a network fitted at a working size other than the video's (bmx-trees,
854x480 at 432x240) fills the same uint8 frames through `train`, `infer`, the SavedModel in a
process that never imports tfinpaint, ONNX Runtime, and `serve` + the gRPC client.

A tiny network and two steps: agreement, not quality, is under test."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import fit_run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bmx-trees"
FRAMES = 4
WORKING = (240, 432)
MODEL = "bmx"

pytestmark = pytest.mark.skipif(not (DATA / "frames").is_dir(), reason=f"{DATA} absent")

PLAIN_TF = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    data = np.load(sys.argv[2])
    out = model.signatures["serving_default"](frames=tf.constant(data["frames"]),
                                              masks=tf.constant(data["masks"]))
    np.save(sys.argv[3], out["inpainted"].numpy())
    assert not any(m.split(".")[0] == "tfinpaint" for m in sys.modules), "imported tfinpaint"
""")


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
    from tfinpaint.infer import main as infer
    from tfinpaint.inference import load_generator, make_fill_fn
    from tfinpaint.rundir import RunDir
    from tfinpaint.serving import client
    from tfinpaint.video import read_masks, read_video

    # float32: train's render then runs the network as infer and the exports do (mixed
    # precision would put train's own result up to a few levels off theirs)
    run = fit_run(tmp_path / "run", ["--video", str(clip / "frames"), "--masks", str(clip / "masks")],
                  2, ["generator.arch=base", "generator.channels=4", "train.batch_size=1",
                      "train.precision=float32",
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

    np.savez(tmp_path / "clip.npz", frames=frames, masks=masks)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", PLAIN_TF, str(version), str(tmp_path / "clip.npz"),
                             str(tmp_path / "plain.npy")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    by_savedmodel = np.load(tmp_path / "plain.npy")

    import onnx

    session = onnx_export.session(onnx.load(str(version / onnx_export.FOLDER / "model.onnx")))
    by_onnx = onnx_export.run(session, frames, masks)

    server = subprocess.Popen(
        [sys.executable, "-m", "tfinpaint.serve", "--model-base", str(tmp_path / MODEL),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        assert "serving model" in line, line
        port = line.strip().rsplit(":", 1)[-1]
        assert client.main(["--target", f"127.0.0.1:{port}", "--model", MODEL,
                            "--video", str(clip / "frames"), "--masks", str(clip / "masks"),
                            "--out", str(tmp_path / "served"), "--batch", "2"]) == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
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
