"""The PredictionService stand-in and its client, on 127.0.0.1, with a small stand-in export."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from tfinpaint.serving import remote as client
from tfinpaint.serving.client import main as client_command
from tfinpaint.serving.server import serve
from tfinpaint.serving.remote import (fetch_working_size, fill_frames, local_predict_fn,
                                      remote_predict_fn, with_retries)

WORKING = (32, 48)
MAX_PIXELS = 20000
MODEL = "standin"


class StandIn(tf.Module):
    """The export's contract with a cheap fill: the 7x7 mean of the known neighbours, + offset."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = offset

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
                                  tf.TensorSpec([None, None, None, 1], tf.uint8, name="masks")])
    def fill(self, frames, masks):
        is_hole = masks > 0
        known = 1.0 - tf.cast(is_hole, tf.float32)
        total = tf.nn.avg_pool2d(tf.cast(frames, tf.float32) * known, 7, 1, "SAME")
        count = tf.nn.avg_pool2d(known, 7, 1, "SAME")
        mean = tf.where(count > 0, total / tf.maximum(count, 1e-6), 128.0) + self.offset
        fill = tf.cast(tf.round(tf.clip_by_value(mean, 0.0, 255.0)), tf.uint8)
        return {"inpainted": tf.where(is_hole, fill, frames)}


def _export(directory: Path, offset: float) -> None:
    module = StandIn(offset)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.fill})
    (directory / "assets").mkdir(exist_ok=True)
    (directory / "assets" / "tfinpaint.json").write_text(json.dumps(
        {"working_height": WORKING[0], "working_width": WORKING[1]}))


@pytest.fixture(scope="module")
def model_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    _export(base / "1", offset=0.0)
    _export(base / "2", offset=40.0)
    return base


@pytest.fixture(scope="module")
def server(model_base):
    server, port = serve(model_base, 0, max_pixels=MAX_PIXELS, max_concurrent=2)
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(scope="module")
def stub(server):
    return client.connect(server)


def _video(num_frames, height, width, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    for i in range(num_frames):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        masks[i, top:top + rng.integers(3, 9), left:left + rng.integers(3, 9)] = 255
    return frames, masks


def _request(frames, masks, model=MODEL, version=None, signature=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if signature is not None:
        request.model_spec.signature_name = signature
    if frames is not None:
        request.inputs["frames"].CopyFrom(tf.make_tensor_proto(frames))
    if masks is not None:
        request.inputs["masks"].CopyFrom(tf.make_tensor_proto(masks))
    return request


def test_metadata_reports_signature_and_working_size(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = stub.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert set(signature.inputs) == {"frames", "masks"}
    assert set(signature.outputs) == {"inpainted"}
    assert fetch_working_size(stub, MODEL) == WORKING


def test_client_matches_saved_model_at_working_size(server, model_base):
    frames, masks = _video(5, *WORKING)
    expected = local_predict_fn(model_base / "2")(frames, masks)
    got = fill_frames(server, MODEL, frames, masks, tile_size=WORKING, batch=2, concurrency=2)
    np.testing.assert_array_equal(got, expected)
    assert (got != frames).any()


def test_named_version_is_served(stub, model_base):
    frames, masks = _video(2, *WORKING, seed=1)
    got = fill_frames(stub, MODEL, frames, masks, version=1)
    np.testing.assert_array_equal(got, local_predict_fn(model_base / "1")(frames, masks))
    response = stub.Predict(_request(frames, masks, version=1))  # no deadline: queues unbounded
    assert response.model_spec.version.value == 1
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["inpainted"]), got)


def test_large_frame_goes_through_tiling(stub):
    frames, masks = _video(3, 2 * WORKING[0], 2 * WORKING[1], seed=2)
    masks[1, 20:44, 30:66] = 1  # a hole across the grid's seams
    remote = remote_predict_fn(stub, MODEL)
    shapes = []

    def recording(frame_batch, mask_batch):
        shapes.append(frame_batch.shape)
        return remote(frame_batch, mask_batch)

    done = []
    got = fill_frames(recording, None, frames, masks, tile_size=WORKING, batch=3,
                      concurrency=2, progress=done.append)
    hole = masks[..., 0] != 0
    np.testing.assert_array_equal(got[~hole], frames[~hole])
    assert (got[hole] != frames[hole]).any()
    assert shapes and all(s[1:3] == WORKING and s[0] <= 3 for s in shapes)
    assert done[-1] == 3
    # the remote and the in-process paths are the same tiling code
    np.testing.assert_array_equal(got, fill_frames(remote, None, frames, masks,
                                                   tile_size=WORKING, batch=1, concurrency=1))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_load_many_small_requests(stub):
    frames, masks = _video(2, 16, 16, seed=3)
    predict = remote_predict_fn(stub, MODEL, timeout=30)
    expected = predict(frames, masks)
    for _ in range(20):
        predict(frames, masks)
    rss_before = _rss_kb()
    failures, count = [], [0]
    lock = threading.Lock()

    def worker():
        for _ in range(60):
            try:
                ok = np.array_equal(predict(frames, masks), expected)
            except grpc.RpcError as error:
                ok = error
            with lock:
                count[0] += 1
                if ok is not True:
                    failures.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert count[0] == 240 and failures == []
    assert time.monotonic() - started < 60
    assert _rss_kb() - rss_before < 200 * 1024  # generous: no per-request leak of note


@pytest.mark.parametrize("request_args, code, words", [
    (dict(frames=np.zeros((1, 8, 8, 3), np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "must be uint8"),
    (dict(frames=np.zeros((8, 8, 3), np.uint8)), grpc.StatusCode.INVALID_ARGUMENT, "rank 4"),
    (dict(masks=np.zeros((1, 8, 9, 1), np.uint8)), grpc.StatusCode.INVALID_ARGUMENT,
     "differ in N, H or W"),
    (dict(masks=np.zeros((1, 8, 8, 2), np.uint8)), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
    (dict(masks=None), grpc.StatusCode.INVALID_ARGUMENT, "missing ['masks']"),
    (dict(frames=np.zeros((1, 150, 150, 3), np.uint8), masks=np.zeros((1, 150, 150, 1),
                                                                      np.uint8)),
     grpc.StatusCode.INVALID_ARGUMENT, "cap"),
    (dict(model="other"), grpc.StatusCode.NOT_FOUND, "model 'other' not found"),
    (dict(version=7), grpc.StatusCode.NOT_FOUND, "no version 7"),
    (dict(signature="nope"), grpc.StatusCode.NOT_FOUND, "signature 'nope'"),
])
def test_malformed_requests_are_refused_and_server_keeps_serving(stub, request_args, code,
                                                                  words):
    arguments = dict(frames=np.zeros((1, 8, 8, 3), np.uint8),
                     masks=np.ones((1, 8, 8, 1), np.uint8))
    arguments.update(request_args)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(_request(**arguments), timeout=10)
    assert raised.value.code() == code
    assert words in raised.value.details()
    frames, masks = _video(1, 16, 16)
    assert remote_predict_fn(stub, MODEL)(frames, masks).shape == frames.shape


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


def test_retries_unavailable_then_succeeds():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) <= 2:
            raise _FakeRpcError(grpc.StatusCode.UNAVAILABLE)
        return "ok"

    assert with_retries(flaky, backoff=0.5, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and sleeps == [0.5, 1.0]


def test_no_retry_on_invalid_argument_and_gives_up_after_retries():
    calls = []

    def refused():
        calls.append(1)
        raise _FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT)

    with pytest.raises(grpc.RpcError):
        with_retries(refused, sleep=lambda _: None)
    assert len(calls) == 1

    def down():
        calls.append(1)
        raise _FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)

    calls.clear()
    with pytest.raises(grpc.RpcError):
        with_retries(down, retries=3, sleep=lambda _: None)
    assert len(calls) == 4


def test_client_started_before_server_retries_until_it_is_up(model_base):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = []

    def start_later():
        time.sleep(1.0)
        started.append(serve(model_base, port, max_pixels=MAX_PIXELS)[0])

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        frames, masks = _video(2, 16, 16, seed=4)
        predict = remote_predict_fn(f"127.0.0.1:{port}", MODEL, timeout=10, retries=8,
                                    backoff=0.1)
        np.testing.assert_array_equal(predict(frames, masks),
                                      local_predict_fn(model_base / "2")(frames, masks))
    finally:
        thread.join()
        for server in started:
            server.stop(grace=None)


def test_serve_command_runs_and_stops_on_sigterm(model_base):
    process = subprocess.Popen(
        [sys.executable, "-m", "tfinpaint.serve", "--model-base", str(model_base), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        line = process.stdout.readline()
        assert f"serving model '{MODEL}'" in line
        target = line.split(" on ")[-1].strip()
        assert fetch_working_size(target, MODEL) == WORKING
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_client_command_writes_frames_and_video(server, tmp_path):
    cv2 = pytest.importorskip("cv2")
    frames, masks = _video(3, 2 * WORKING[0], 2 * WORKING[1], seed=5)
    (tmp_path / "video").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "video" / f"f{i}.png"), frames[i][..., ::-1])
        cv2.imwrite(str(tmp_path / "masks" / f"f{i}.png"), masks[i])
    out = tmp_path / "out"
    argv = ["--target", server, "--model", MODEL, "--video", str(tmp_path / "video"),
            "--masks", str(tmp_path / "masks"), "--out", str(out), "--batch", "2"]
    assert client_command(argv) == 0
    assert (out / "video.mp4").is_file()
    written = np.stack([cv2.imread(str(out / f"f{i}.png"))[..., ::-1] for i in range(3)])
    hole = masks[..., 0] != 0
    np.testing.assert_array_equal(written[~hole], frames[~hole])
    np.testing.assert_array_equal(written, fill_frames(server, MODEL, frames, masks,
                                                       tile_size=WORKING))
    assert client_command(argv) == 2  # refuses to overwrite
    assert client_command(argv[:2] + ["--model", "nope"] + argv[4:] + ["--overwrite"]) == 2


def test_tile_size_for_new_old_and_unknown_exports():
    from tfinpaint.errors import InputError

    new = {"working_height": 32, "working_width": 48, "fills_at_working_size": True}
    old = {"working_height": 32, "working_width": 48}
    assert client.tile_size_for(new, None) is None  # whole frames, reduced in the graph
    with pytest.raises(InputError, match=r"--tile-size 16x16: .* \(32x48\) itself"):
        client.tile_size_for(new, (16, 16))
    assert client.tile_size_for(old, None) == WORKING
    assert client.tile_size_for(old, (16, 16)) == (16, 16)
    assert client.tile_size_for(None, None) is None
    assert client.tile_size_for(None, (16, 16)) == (16, 16)


def test_whole_frames_are_batched_to_fit_the_message_limit():
    from tfinpaint.errors import InputError

    assert client.whole_frames_per_request(480, 854, 4, 64) == 4
    assert client.whole_frames_per_request(2160, 3840, 4, 64) == 2  # 32 MB a 4K frame
    assert client.whole_frames_per_request(2160, 3840, 4, 32) == 1
    assert client.whole_frames_per_request(2160, 3840, 4, None) == 4
    with pytest.raises(InputError, match="over the 16 MB gRPC message limit"):
        client.whole_frames_per_request(2160, 3840, 4, 16)

    frames, masks = _video(5, 600, 1000, seed=7)  # 2.4 MB a frame: 2 fit in 6 MB
    sizes = []

    def recording(frame_batch, mask_batch):
        sizes.append(len(frame_batch))
        return np.asarray(frame_batch)

    fill_frames(recording, None, frames, masks, batch=4, message_mb=6)
    assert sizes == [2, 2, 1]


def test_client_command_refuses_tiles_for_an_export_that_fills_at_working_size(tmp_path, capsys):
    base = tmp_path / "models" / "new"
    _export(base / "1", offset=0.0)
    info = base / "1" / "assets" / "tfinpaint.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "fills_at_working_size": True}))
    frames, masks = _video(2, *WORKING, seed=8)
    from tfinpaint.io.video import write_frames

    write_frames(tmp_path / "video", frames, ["a", "b"])
    write_frames(tmp_path / "masks", np.repeat(masks, 3, axis=-1), ["a", "b"])
    server, port = serve(base, 0)
    try:
        argv = ["--target", f"127.0.0.1:{port}", "--model", "new", "--video",
                str(tmp_path / "video"), "--masks", str(tmp_path / "masks"),
                "--out", str(tmp_path / "out")]
        assert client_command(argv + ["--tile-size", "16x16"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "send whole frames" in err[0]
        assert client_command(argv) == 0
    finally:
        server.stop(grace=None)


def test_flow_exports_are_never_tiled_and_their_settings_come_back_typed():
    from tfinpaint.config import FlowConfig
    from tfinpaint.errors import InputError

    flow = {"working_height": 32, "working_width": 48, "fills_at_working_size": True,
            "needs_prefilled": True}
    assert client.tile_size_for(flow, None) is None
    with pytest.raises(InputError, match="cannot be tiled"):
        client.tile_size_for(flow, (16, 16))
    with pytest.raises(InputError, match="cannot be tiled"):  # all the real TF Serving tells
        client.tile_size_for({"needs_prefilled": True}, (16, 16))
    # GetModelMetadata's Struct turns every number into a double
    settings = client.flow_settings({**flow, "flow": {"preset": "ultrafast", "margin": 2.0,
                                                      "max_hops": 0.0, "min_known": 1.0}})
    # an export written before flow.moving_speed existed fills as it was fitted: movers copied
    assert settings == FlowConfig(preset="ultrafast", margin=2, max_hops=0, min_known=1.0,
                                  moving_speed=0.0)
    assert isinstance(settings.margin, int) and isinstance(settings.min_known, float)
    assert client.flow_settings(flow) == FlowConfig()  # not reported: the config's defaults
    with pytest.raises(InputError, match="the export's flow settings"):
        client.flow_settings({"flow": {"wobble": 1.0}})


def test_each_request_gets_its_slice_of_the_whole_clips_flow_fill():
    frames, masks = _video(5, 600, 1000, seed=9)  # 2.4 MB a frame; 4.2 MB with the flow fill
    prefilled = 255 - frames
    masks[3] = 0  # a frame without a hole: not sent
    sent = []

    def recording(frame_batch, mask_batch, prefilled_batch):
        sent.append((frame_batch.copy(), prefilled_batch.copy()))
        return prefilled_batch

    got = fill_frames(recording, None, frames, masks, batch=4, message_mb=10,
                      prefilled=prefilled)
    assert [len(f) for f, _ in sent] == [2, 2]  # 2 frames fit 10 MB with their flow fill
    for frame_batch, prefilled_batch in sent:
        np.testing.assert_array_equal(prefilled_batch, 255 - frame_batch)
    hole = np.repeat(masks != 0, 3, axis=-1)
    np.testing.assert_array_equal(got, np.where(hole, prefilled, frames))
    assert client.whole_frames_per_request(600, 1000, 4, 10) == 4
    assert client.whole_frames_per_request(600, 1000, 4, 10, prefilled=True) == 2


def test_masks_go_raw_and_the_answer_is_pasted_into_the_holes_the_export_grows():
    from tfinpaint.errors import InputError
    from tfinpaint.io.video import dilate_masks

    new = {"fills_at_working_size": True, "mask_dilation": 3.0}  # a Struct's double
    assert client.export_mask_dilation(new) == 3
    assert client.export_mask_dilation({"fills_at_working_size": True}) == 0  # made before
    assert client.export_mask_dilation(None) is None  # the server does not say

    frames, masks = _video(3, 45, 77, seed=10)
    masks[1] = 0
    sent = []

    def everything_changed(frame_batch, mask_batch):  # answers 255 - frame everywhere
        sent.append(mask_batch.copy())
        return 255 - frame_batch

    grown = np.repeat(dilate_masks((masks > 0).astype(np.uint8), 3) != 0, 3, axis=-1)
    got = fill_frames(everything_changed, None, frames, masks, mask_dilation=3)
    np.testing.assert_array_equal(np.concatenate(sent), masks[[0, 2]])  # raw masks sent
    np.testing.assert_array_equal(got, np.where(grown, 255 - frames, frames))
    before = fill_frames(everything_changed, None, frames, masks)  # an old export: as sent
    np.testing.assert_array_equal(before, np.where(masks != 0, 255 - frames, frames))
    unknown = fill_frames(everything_changed, None, frames, masks, mask_dilation=None)
    np.testing.assert_array_equal(unknown[[0, 2]], 255 - frames[[0, 2]])  # taken whole
    np.testing.assert_array_equal(unknown[1], frames[1])  # no hole: not sent
    with pytest.raises(InputError, match="grows its holes itself"):
        fill_frames(everything_changed, None, frames, masks, tile_size=(16, 16), mask_dilation=3)
