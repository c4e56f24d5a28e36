"""Hostile input, fuzzed with a fixed seed: every input ends in a clear error or a correct result.

Images and videos go through the readers (`read_video`, `read_masks`) in-process, a few through
the train command; requests go to the PredictionService stand-in. Never a traceback, a hang or an
allocation the size a header merely claims.
"""

import faulthandler
import random
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from conftest import tiny_args
from test_serving import MODEL, WORKING, _request, _video, model_base, server, stub  # noqa: F401
from tfinpaint import train
from tfinpaint.errors import InputError
from tfinpaint.io.video import read_masks, read_video, write_video

ROOT = Path(__file__).resolve().parent.parent
SEED = 9
FILES_PER_KIND = 12
REQUESTS = 80
HANG_SECONDS = 30


def png(width: int, height: int, color_type: int, depth: int, rows: bytes | None = None,
        idat: bytes | None = None) -> bytes:
    """A PNG of any colour type and bit depth (OpenCV's encoder writes only some of them)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_rows(rng: np.random.Generator, width: int, height: int, color_type: int, depth: int) -> bytes:
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = (width * samples * depth + 7) // 8
    return b"".join(b"\x00" + rng.integers(0, 256, row_bytes, np.uint8).tobytes()
                    for _ in range(height))


def encoded(rng: np.random.Generator, ext: str, height: int = 24, width: int = 32) -> bytes:
    image = rng.integers(0, 256, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def hostile_images(rng: np.random.Generator) -> list[tuple[str, str, bytes]]:
    """(label, extension, bytes) of files a user might hand over as frames or masks."""
    cases = []
    for ext in (".png", ".jpg", ".bmp"):
        cases.append((f"empty{ext}", ext, b""))
        for i in range(FILES_PER_KIND):
            cases.append((f"random{i}{ext}", ext, rng.bytes(int(rng.integers(1, 3000)))))
            whole = encoded(rng, ext)
            cut = int(rng.integers(1, len(whole) - 1))
            cases.append((f"truncated{i}@{cut}{ext}", ext, whole[:cut]))
            flipped = bytearray(whole)
            for at in rng.integers(0, len(whole), int(rng.integers(1, 20))):
                flipped[at] ^= 1 << int(rng.integers(0, 8))
            cases.append((f"bitflip{i}{ext}", ext, bytes(flipped)))
    # every PNG colour type at every bit depth it allows, 1x1 up to 5x5
    for color_type, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (4, (8, 16)), (6, (8, 16))):
        for depth in depths:
            width, height = (1, 1) if depth == 8 else tuple(int(v) for v in rng.integers(1, 6, 2))
            rows = png_rows(rng, width, height, color_type, depth)
            cases.append((f"png_type{color_type}_depth{depth}_{width}x{height}", ".png",
                          png(width, height, color_type, depth, rows)))
    # enormous declared dimensions, with a little (or a bomb's worth of) pixel data
    bomb = zlib.compress(b"\x00" * (1 << 22), 9)
    for width, height in ((100000, 100000), (30000, 30000), (20000, 8000), (2**31 - 1, 1)):
        cases.append((f"png_declares_{width}x{height}", ".png", png(width, height, 2, 8, idat=bomb)))
    bmp = bytearray(encoded(rng, ".bmp"))
    bmp[18:26] = struct.pack("<ii", 60000, 60000)
    cases.append(("bmp_declares_60000x60000", ".bmp", bytes(bmp)))
    jpeg = bytearray(encoded(rng, ".jpg"))
    at = jpeg.index(b"\xff\xc0")
    jpeg[at + 5:at + 9] = struct.pack(">HH", 65000, 65000)
    cases.append(("jpeg_declares_65000x65000", ".jpg", bytes(jpeg)))
    return cases


def hostile_videos(rng: np.random.Generator, folder: Path) -> list[tuple[str, bytes]]:
    frames = rng.integers(0, 256, (6, 32, 48, 3), np.uint8)
    write_video(folder / "whole.mp4", frames, 25.0)
    whole = (folder / "whole.mp4").read_bytes()
    cases = [("empty", b""), ("whole", whole)]
    for i in range(FILES_PER_KIND):
        cut = int(rng.integers(1, len(whole)))
        cases.append((f"truncated@{cut}", whole[:cut]))
        cases.append((f"random{i}", rng.bytes(int(rng.integers(1, 5000)))))
        flipped = bytearray(whole)
        for at in rng.integers(0, len(whole), int(rng.integers(1, 40))):
            flipped[at] ^= 1 << int(rng.integers(0, 8))
        cases.append((f"bitflip{i}", bytes(flipped)))
    return cases


class Hang(Exception):
    pass


@pytest.fixture
def no_hang():
    """Fails a Python-level hang; a hang inside native code dumps the stacks and exits."""
    def alarm(*_):
        raise Hang(f"no answer in {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    faulthandler.dump_traceback_later(4 * HANG_SECONDS, exit=True)
    yield lambda: signal.alarm(HANG_SECONDS)
    signal.alarm(0)
    faulthandler.cancel_dump_traceback_later()
    signal.signal(signal.SIGALRM, previous)


def outcome(read) -> str:
    """'error' for a clear InputError (one line naming the file), 'ok' for a valid result."""
    try:
        result = read()
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message, message
        return "error"
    array = result.frames if hasattr(result, "frames") else result
    assert array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] in (1, 3), array.shape
    assert min(array.shape) >= 1
    return "ok"


def test_hostile_images_as_frames_and_masks(tmp_path, no_hang):
    rng = np.random.default_rng(SEED)
    cases = hostile_images(rng)
    seen = {"error": 0, "ok": 0}
    for label, ext, data in cases:
        folder = tmp_path / label
        folder.mkdir()
        for name in ("a", "b"):
            (folder / f"{name}{ext}").write_bytes(data)
        no_hang()
        got = outcome(lambda: read_video(folder))
        seen[got] += 1
        if label.startswith(("png_declares", "bmp_declares", "jpeg_declares")):
            assert got == "error"
            with pytest.raises(InputError, match="declares|not a readable"):
                read_video(folder)
        if got == "ok":  # the same file as a mask for every frame of a 2-frame clip
            frames = read_video(folder).frames
            got = outcome(lambda: read_masks(folder / f"a{ext}", 2, *frames.shape[1:3]))
            seen[got] += 1
        else:
            seen[outcome(lambda: read_masks(folder / f"a{ext}", 2, 24, 32))] += 1
    print(f"{len(cases)} hostile images: {seen}")
    assert len(cases) >= 100 and seen["ok"] > 0 and seen["error"] > 0


def test_odd_channel_counts_and_depths_read_as_8_bit_rgb(tmp_path):
    rng = np.random.default_rng(SEED)
    for color_type, depth in ((0, 1), (0, 16), (2, 16), (4, 8), (4, 16), (6, 8), (6, 16)):
        rows = png_rows(rng, 5, 4, color_type, depth)
        folder = tmp_path / f"t{color_type}d{depth}"
        folder.mkdir()
        for name in ("a", "b"):
            (folder / f"{name}.png").write_bytes(png(5, 4, color_type, depth, rows))
        frames = read_video(folder).frames
        assert frames.shape == (2, 4, 5, 3) and frames.dtype == np.uint8
        # random pixels may make a mask empty or full: a clear refusal, or 0/1 masks
        assert outcome(lambda: read_masks(folder / "a.png", 2, 4, 5)) in ("ok", "error")


def test_hostile_videos(tmp_path, no_hang):
    rng = np.random.default_rng(SEED)
    cases = hostile_videos(rng, tmp_path)
    seen = {"error": 0, "ok": 0}
    for label, data in cases:
        path = tmp_path / f"{label}.mp4"
        path.write_bytes(data)
        no_hang()
        got = outcome(lambda: read_video(path))
        seen[got] += 1
        if got == "ok":
            video = read_video(path).frames
            seen[outcome(lambda: read_masks(path, len(video), *video.shape[1:3]))] += 1
    print(f"{len(cases)} hostile videos: {seen}")
    assert seen["ok"] >= 1 and seen["error"] >= 1


def _one_line_exit_2(argv, capsys):
    code = train.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and lines[-1].startswith("error: "), err[-2000:]
    return lines[-1]


@pytest.mark.parametrize("case", ["random_frames", "one_by_one", "declares_huge", "mask_garbage"])
def test_train_command_refuses_hostile_input(tmp_path, capsys, case):
    rng = np.random.default_rng(SEED)
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(3):
        good = encoded(rng, ".png")
        (frames / f"f{i}.png").write_bytes({
            "random_frames": rng.bytes(500) if i == 1 else good,
            "one_by_one": png(1, 1, 2, 8, png_rows(rng, 1, 1, 2, 8)),
            "declares_huge": png(30000, 30000, 2, 8, idat=zlib.compress(b"\0" * 4096)) if i == 2 else good,
            "mask_garbage": good,
        }[case])
        mask = np.zeros((24, 32, 3), np.uint8)
        mask[8:16, 8:16] = 255
        ok, data = cv2.imencode(".png", mask)
        (masks / f"f{i}.png").write_bytes(rng.bytes(300) if case == "mask_garbage" and i == 0
                                          else data.tobytes())
    run = tmp_path / "run"
    line = _one_line_exit_2(["--video", str(frames), "--masks", str(masks), "--run-dir", str(run),
                             "--steps", "2", *tiny_args()], capsys)
    # 1x1 frames: the 24x32 masks shrink to nothing (or, were they kept, frames too small)
    words = {"random_frames": ("f1.png",), "one_by_one": ("too small", "mask is empty"),
             "declares_huge": ("30000x30000",), "mask_garbage": ("f0.png",)}[case]
    assert any(word in line for word in words), line
    assert not run.exists()


@pytest.mark.slow
def test_train_command_in_a_fresh_process_on_a_truncated_video(tmp_path):
    rng = np.random.default_rng(SEED)
    write_video(tmp_path / "whole.mp4", rng.integers(0, 256, (4, 32, 48, 3), np.uint8), 25.0)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 5])
    done = subprocess.run([sys.executable, "-m", "tfinpaint.train", "--video", str(tmp_path / "cut.mp4"),
                           "--masks", str(tmp_path / "cut.mp4"), "--run-dir", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")


# ----------------------------------------------------------------------------------------------
# serving


DTYPES = [types_pb2.DT_UINT8, types_pb2.DT_FLOAT, types_pb2.DT_INT64, types_pb2.DT_STRING,
          types_pb2.DT_BOOL, types_pb2.DT_HALF, types_pb2.DT_INVALID]


def _random_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
    kind = rng.choice(["array", "declared_only", "wrong_content", "negative_dim", "string"])
    if kind == "array":
        shape = [rng.choice([0, 1, 2, 3, 5, 9, 40]) for _ in range(rng.randint(0, 5))]
        dtype = rng.choice([np.uint8, np.float32, np.int64, np.bool_])
        return tf.make_tensor_proto(np.zeros(shape, dtype))
    proto = tensor_pb2.TensorProto(dtype=rng.choice(DTYPES))
    rank = rng.randint(0, 6)
    for _ in range(rank):
        proto.tensor_shape.dim.add(size=rng.choice([0, 1, 3, 4000, 2**31, 2**62]))
    if kind == "wrong_content":
        proto.tensor_content = bytes(rng.randrange(256) for _ in range(rng.randint(1, 99)))
    elif kind == "negative_dim":
        proto.tensor_shape.dim.add(size=-rng.randint(1, 5))
    elif kind == "string":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.append(b"x" * rng.randint(0, 9))
    return proto


def _random_request(rng: random.Random):
    frames, masks = _video(rng.randint(1, 3), *WORKING, seed=rng.randrange(100))
    request = _request(frames, masks)
    mutation = rng.choice(["model", "version", "signature", "keys", "tensor", "tensor", "mismatch",
                           "too_many_pixels", "output_filter"])
    if mutation == "model":
        request.model_spec.name = rng.choice(["", "nope", "\u00e9" * 50, MODEL + "/../x"])
    elif mutation == "version":
        request.model_spec.version.value = rng.choice([-1, 0, 3, 2**62])
    elif mutation == "signature":
        request.model_spec.signature_name = rng.choice(["nope", "__saved_model_init_op", " "])
    elif mutation == "keys":
        del request.inputs[rng.choice(["frames", "masks"])]
        if rng.random() < 0.5:
            request.inputs["extra"].CopyFrom(tf.make_tensor_proto(np.zeros(3, np.uint8)))
    elif mutation == "tensor":
        request.inputs[rng.choice(["frames", "masks"])].CopyFrom(_random_tensor(rng))
    elif mutation == "mismatch":
        request.inputs["masks"].CopyFrom(tf.make_tensor_proto(masks[:, :-4]))
    elif mutation == "too_many_pixels":
        big, big_masks = _video(12, 48, 64)
        request = _request(big, big_masks)
    else:
        request.output_filter.append(rng.choice(["nope", ""]))
    return mutation, request


def test_malformed_requests_get_clear_status_and_the_server_keeps_serving(stub):
    rng = random.Random(SEED)
    good_frames, good_masks = _video(2, *WORKING, seed=5)
    expected = tf.make_ndarray(stub.Predict(_request(good_frames, good_masks), timeout=30)
                               .outputs["inpainted"])
    codes = {}
    for i in range(REQUESTS):
        mutation, request = _random_request(rng)
        try:
            stub.Predict(request, timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
                mutation, code, error.details())
            assert error.details() and "Traceback" not in error.details()
        codes[code.name] = codes.get(code.name, 0) + 1
        if i % 10 == 9:
            again = stub.Predict(_request(good_frames, good_masks), timeout=30)
            np.testing.assert_array_equal(tf.make_ndarray(again.outputs["inpainted"]), expected)
    print(f"{REQUESTS} malformed requests: {codes}")
    assert codes.get("INVALID_ARGUMENT", 0) > REQUESTS // 3 and codes.get("NOT_FOUND", 0) > 0


@pytest.mark.parametrize("shape", [[4000, 4000, 4000, 3], [2**40, 1, 1, 3], [1, 2**31, 2**31, 1]])
@pytest.mark.parametrize("dtype", [types_pb2.DT_UINT8, types_pb2.DT_STRING])
def test_a_tiny_request_declaring_a_huge_tensor_is_refused_before_allocation(stub, shape, dtype):
    frames, masks = _video(1, *WORKING)
    request = _request(frames, masks)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    request.inputs["frames"].CopyFrom(proto)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "declares shape" in caught.value.details()
