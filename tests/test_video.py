import errno
import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from tfinpaint.errors import InputError
from tfinpaint.io import video
from tfinpaint.io.video import read_masks, read_video, write_frames, write_image, write_video

H, W = 32, 48


def _frames(n=4, height=H, width=W, seed=0):
    """Smooth frames, so that mp4 compression keeps them close."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(xs * 4 + 20 * i) % 256, (ys * 6) % 256,
                               np.full_like(xs, 40 * i + seed)], -1)
                     for i in range(n)]).astype(np.uint8)


def _imwrite(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def _masks(n=4, height=H, width=W):
    masks = np.zeros((n, height, width), np.uint8)
    for i in range(n):
        masks[i, 8:24, 8 + 4 * i:24 + 4 * i] = 255
    return masks


def _mask_folder(folder, masks):
    folder.mkdir()
    for i, m in enumerate(masks):
        _imwrite(folder / f"{i:05d}.png", m)
    return folder


# ----------------------------------------------------------------------------------------------
# frames: round trips and formats


def test_png_round_trip_is_exact(tmp_path):
    frames = _frames()
    names = ["a", "b", "c", "d"]
    write_frames(tmp_path / "out", frames, names)
    result = read_video(tmp_path / "out")
    np.testing.assert_array_equal(result.frames, frames)
    assert result.names == names and result.fps == 25.0
    assert sorted(os.listdir(tmp_path / "out")) == [f"{n}.png" for n in names]  # no temp files


def test_video_round_trip(tmp_path):
    frames = _frames(n=6)
    write_video(tmp_path / "clip.mp4", frames, fps=12.0)
    result = read_video(tmp_path / "clip.mp4")
    assert result.frames.shape == frames.shape and result.frames.dtype == np.uint8
    assert result.fps == pytest.approx(12.0)
    assert result.names == [f"{i:05d}" for i in range(6)]
    assert np.abs(result.frames.astype(int) - frames).mean() < 6
    assert read_video(tmp_path / "clip.mp4", max_frames=3).frames.shape[0] == 3


def test_odd_sized_video_keeps_every_pixel(tmp_path):
    frames = _frames(n=3, height=H - 1, width=W - 1)
    write_video(tmp_path / "odd.mp4", frames, fps=25.0)
    result = read_video(tmp_path / "odd.mp4").frames
    # the encoder needs even sizes: one repeated row and column, never a lost one
    assert result.shape == (3, H, W, 3)
    assert np.abs(result[:, :H - 1, :W - 1].astype(int) - frames).mean() < 6


def _source_with_audio(path, frames, rate, *, audio_codec="aac", sample_rate=44100,
                       audio_seconds=None):
    """A video file as a camera writes one: H.264 frames at `rate` and a sine-wave audio track."""
    with av.open(str(path), "w") as out:
        video_stream = out.add_stream("libx264", rate=rate)
        video_stream.width, video_stream.height = frames.shape[2], frames.shape[1]
        video_stream.pix_fmt = "yuv420p"
        audio_stream = out.add_stream(audio_codec, rate=sample_rate, layout="stereo")
        seconds = audio_seconds if audio_seconds is not None else len(frames) / rate
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        fmt = "s16p" if audio_codec.startswith("pcm") else "fltp"
        if fmt == "s16p":
            samples = (samples * 32767).astype(np.int16)
        for i, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            out.mux(video_stream.encode(video_frame))
        for at in range(0, samples.shape[1], 1024):
            audio_frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, at:at + 1024]),
                                                     format=fmt, layout="stereo")
            audio_frame.sample_rate, audio_frame.pts = sample_rate, at
            out.mux(audio_stream.encode(audio_frame))
        out.mux(video_stream.encode())
        out.mux(audio_stream.encode())
    return path


def _probe(path):
    """What a player sees: video codec, pix_fmt, size, rate, frame count, audio seconds decoded."""
    with av.open(str(path)) as container:
        video_stream = container.streams.video[0]
        codec = video_stream.codec_context
        info = dict(codec=codec.name, pix_fmt=codec.pix_fmt, size=(codec.height, codec.width),
                    rate=video_stream.average_rate,
                    audio=[s.codec_context.name for s in container.streams.audio])
        info["frames"] = sum(1 for _ in container.decode(video=0))
        if container.streams.audio:
            container.seek(0)
            samples = sum(f.samples for f in container.decode(audio=0))
            info["audio_seconds"] = samples / container.streams.audio[0].codec_context.sample_rate
    return info


def test_result_is_h264_yuv420p_at_the_source_rate_with_its_audio(tmp_path):
    frames = _frames(n=20)
    source = _source_with_audio(tmp_path / "camera.mp4", frames, Fraction(30000, 1001))
    clip = read_video(source)
    assert clip.rate == Fraction(30000, 1001) and clip.fps == pytest.approx(29.97003)
    assert clip.source == source and clip.has_audio and len(clip.frames) == 20

    write_video(tmp_path / "out.mp4", clip.frames, clip.fps, audio_from=clip.source)
    got, want = _probe(tmp_path / "out.mp4"), _probe(source)
    assert (got["codec"], got["pix_fmt"], got["audio"]) == ("h264", "yuv420p", ["aac"])
    assert got["frames"] == 20 and got["rate"] == Fraction(30000, 1001)
    assert abs(got["audio_seconds"] - want["audio_seconds"]) < 1001 / 30000
    assert abs(got["audio_seconds"] - 20 * 1001 / 30000) < 1001 / 30000
    back = read_video(tmp_path / "out.mp4")
    assert back.rate == Fraction(30000, 1001)
    assert np.abs(back.frames.astype(int) - clip.frames).mean() < 3  # crf 18, BT.709 both ways


def test_audio_is_copied_not_reencoded(tmp_path):
    source = _source_with_audio(tmp_path / "camera.mp4", _frames(n=10), 25)
    write_video(tmp_path / "out.mkv", read_video(source).frames, 25, audio_from=source)

    def payloads(path):
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(audio=0) if p.size]
    assert payloads(tmp_path / "out.mkv") == payloads(source)[:len(payloads(tmp_path / "out.mkv"))]
    assert len(payloads(tmp_path / "out.mkv")) >= len(payloads(source)) - 1


def test_audio_is_cut_where_the_frames_end(tmp_path):
    source = _source_with_audio(tmp_path / "camera.mp4", _frames(n=25), 25, audio_seconds=3.0)
    clip = read_video(source, max_frames=10)
    write_video(tmp_path / "out.mp4", clip.frames, clip.rate, audio_from=source)
    assert abs(_probe(tmp_path / "out.mp4")["audio_seconds"] - 10 / 25) < 1 / 25


def test_audio_the_container_cannot_hold_is_reencoded_with_a_warning(tmp_path, capsys):
    source = _source_with_audio(tmp_path / "camera.mov", _frames(n=10), 25, audio_codec="pcm_s16le")
    assert _probe(source)["audio"] == ["pcm_s16le"]
    write_video(tmp_path / "out.mp4", read_video(source).frames, 25, audio_from=source)
    got = _probe(tmp_path / "out.mp4")
    assert got["audio"] == ["aac"] and abs(got["audio_seconds"] - 10 / 25) < 1 / 25
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "camera.mov" in err[0] and "pcm_s16le" in err[0] and "AAC" in err[0]
    # cut where the frames end, as a copy is
    first = read_video(source, max_frames=5).frames
    write_video(tmp_path / "out.mp4", first, 25, audio_from=source)
    assert abs(_probe(tmp_path / "out.mp4")["audio_seconds"] - 5 / 25) < 1 / 25
    capsys.readouterr()
    # a .mkv takes it as it is
    write_video(tmp_path / "out.mkv", read_video(source).frames, 25, lossless=True,
                audio_from=source)
    assert _probe(tmp_path / "out.mkv")["audio"] == ["pcm_s16le"]
    assert capsys.readouterr().err == ""


def test_no_audio_from_folders_silent_videos_or_the_sample(tmp_path):
    folder = tmp_path / "frames"
    write_frames(folder, _frames(), list("abcd"))
    silent = tmp_path / "silent.mp4"
    write_video(silent, _frames(), 25)
    for audio_from in (None, folder, silent, "sample", folder / "a.png"):
        write_video(tmp_path / "out.mp4", _frames(), 25, audio_from=audio_from)
        assert _probe(tmp_path / "out.mp4")["audio"] == []
    assert read_video(folder).source is None and not read_video(folder).has_audio
    assert read_video(folder).rate == 25 and not read_video(silent).has_audio


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(24000, 1001), Fraction(12),
                                  29.97, 15.0])
def test_frame_rate_is_kept_exactly(tmp_path, rate):
    write_video(tmp_path / "clip.mp4", _frames(n=5), rate)
    result = read_video(tmp_path / "clip.mp4")
    assert result.rate == video.exact_rate(rate) and _probe(tmp_path / "clip.mp4")["frames"] == 5
    assert video.exact_rate(float(Fraction(30000, 1001))) == Fraction(30000, 1001)
    assert video.exact_rate(29.97) == Fraction(2997, 100)
    assert video.exact_rate(float("nan")) == video.exact_rate(0) == 25


@pytest.mark.parametrize("rate", [25, Fraction(30000, 1001)])
def test_clips_longer_than_the_encoders_lookahead_keep_every_frame(tmp_path, rate):
    # x264 holds about 40 frames before its first packet: past that the muxer has started and
    # changed the stream's time base (a real 80-frame clip failed to write here)
    frames = np.random.default_rng(2).integers(0, 256, (90, 32, 48, 3), np.uint8)
    write_video(tmp_path / "long.mp4", frames, rate)
    got = _probe(tmp_path / "long.mp4")
    assert got["frames"] == 90 and read_video(tmp_path / "long.mp4").rate == video.exact_rate(rate)
    assert len(read_video(tmp_path / "long.mp4").frames) == 90
    write_video(tmp_path / "long.mkv", frames, rate, lossless=True)
    np.testing.assert_array_equal(read_video(tmp_path / "long.mkv").frames, frames)


@pytest.mark.parametrize("size", [(101, 203), (31, 48), (32, 47)])
def test_odd_sizes_encode(tmp_path, size):
    frames = _frames(n=3, height=size[0], width=size[1])
    write_video(tmp_path / "odd.mp4", frames, 25)
    got = _probe(tmp_path / "odd.mp4")
    padded = (size[0] + size[0] % 2, size[1] + size[1] % 2)
    assert (got["codec"], got["pix_fmt"], got["frames"]) == ("h264", "yuv420p", 3)
    assert got["size"] == padded  # one repeated row or column where the frames are odd


@pytest.mark.parametrize("size", [(H, W), (101, 203)])
def test_lossless_video_decodes_bit_exact(tmp_path, size):
    # noise, which no lossy codec keeps exactly
    frames = np.random.default_rng(1).integers(0, 256, (4, *size, 3), np.uint8)
    source = _source_with_audio(tmp_path / "camera.mp4", _frames(n=4), Fraction(30000, 1001))
    write_video(tmp_path / "exact.mkv", frames, Fraction(30000, 1001), lossless=True,
                audio_from=source)
    got = _probe(tmp_path / "exact.mkv")
    assert (got["codec"], got["size"], got["audio"]) == ("ffv1", size, ["aac"])
    result = read_video(tmp_path / "exact.mkv")
    np.testing.assert_array_equal(result.frames, frames)
    assert result.rate == Fraction(30000, 1001)
    with pytest.raises(ValueError, match=r"\.mkv"):
        write_video(tmp_path / "exact.mp4", frames, 25, lossless=True)


def test_crf_sets_the_quality(tmp_path):
    frames = np.random.default_rng(2).integers(0, 256, (3, H, W, 3), np.uint8)
    write_video(tmp_path / "fine.mp4", frames, 25, crf=10)
    write_video(tmp_path / "coarse.mp4", frames, 25, crf=40)
    fine = read_video(tmp_path / "fine.mp4").frames
    coarse = read_video(tmp_path / "coarse.mp4").frames
    assert np.abs(fine.astype(int) - frames).mean() < np.abs(coarse.astype(int) - frames).mean()
    assert (tmp_path / "fine.mp4").stat().st_size > (tmp_path / "coarse.mp4").stat().st_size
    with pytest.raises(ValueError, match="crf"):
        write_video(tmp_path / "bad.mp4", frames, 25, crf=52)


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, degrees):
    frames = _frames(n=2)  # 32 rows x 48 columns as stored
    with av.open(str(tmp_path / "phone.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        stream.options = {"qp": "0"}
        stream.set_display_rotation(degrees)
        for i, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            out.mux(stream.encode(video_frame))
        out.mux(stream.encode())
    result = read_video(tmp_path / "phone.mp4")
    assert result.rotation == degrees % 360
    upright = np.rot90(frames, degrees // 90, axes=(1, 2))
    assert result.frames.shape == upright.shape
    assert np.abs(result.frames.astype(int) - upright).mean() < 3


def test_natural_sort_and_max_frames(tmp_path):
    for i in (10, 2, 1, 33):
        _imwrite(tmp_path / f"frame{i}.png", np.full((H, W, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    result = read_video(tmp_path)
    assert result.names == ["frame1", "frame2", "frame10", "frame33"]
    assert result.frames[:, 0, 0, 0].tolist() == [1, 2, 10, 33]
    assert read_video(tmp_path, max_frames=2).names == ["frame1", "frame2"]


def test_bgr_files_become_rgb(tmp_path):
    bgr = np.zeros((H, W, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    _imwrite(tmp_path / "0.png", bgr)
    _imwrite(tmp_path / "1.jpg", bgr)
    frames = read_video(tmp_path).frames
    assert frames[0, 0, 0].tolist() == [0, 0, 200]
    assert abs(int(frames[1, 5, 5, 2]) - 200) < 4


def test_gray_rgba_and_16_bit_become_8_bit_rgb(tmp_path):
    _imwrite(tmp_path / "0.png", np.full((H, W), 100, np.uint8))
    _imwrite(tmp_path / "1.png", np.full((H, W, 4), (10, 20, 30, 0), np.uint8))
    _imwrite(tmp_path / "2.png", np.full((H, W, 3), 65535, np.uint16))
    _imwrite(tmp_path / "3.bmp", np.full((H, W, 3), 7, np.uint8))
    frames = read_video(tmp_path).frames
    assert frames.dtype == np.uint8 and frames.shape == (4, H, W, 3)
    assert frames[:, 0, 0].tolist() == [[100] * 3, [30, 20, 10], [255] * 3, [7] * 3]


def test_writers_create_folders_and_replace_atomically(tmp_path):
    target = tmp_path / "deep" / "preview.png"
    write_image(target, _frames(1)[0])
    write_image(target, _frames(1, seed=9)[0])
    assert os.listdir(target.parent) == ["preview.png"]
    np.testing.assert_array_equal(cv2.imread(str(target))[..., ::-1], _frames(1, seed=9)[0])


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    write_video(tmp_path / "clip.mp4", _frames(), fps=25.0)
    before = (tmp_path / "clip.mp4").read_bytes()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video.os, "replace", disk_full)
    with pytest.raises(OSError):
        write_video(tmp_path / "clip.mp4", _frames(seed=50), fps=25.0)
    with pytest.raises(OSError):
        write_frames(tmp_path, _frames(1), ["clip"])
    assert os.listdir(tmp_path) == ["clip.mp4"]
    assert (tmp_path / "clip.mp4").read_bytes() == before


# ----------------------------------------------------------------------------------------------
# frames: bad input


def _truncated(path, image):
    _imwrite(path, image)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _case_missing(tmp_path):
    return tmp_path / "nope", "nope"


def _case_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    return tmp_path, str(tmp_path)


def _case_junk_image(tmp_path):
    _imwrite(tmp_path / "0.png", _frames(1)[0])
    (tmp_path / "1.png").write_bytes(b"not a png")
    return tmp_path, "1.png"


def _case_truncated_jpeg(tmp_path):
    _imwrite(tmp_path / "0.jpg", _frames(1)[0])
    _truncated(tmp_path / "1.jpg", np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8))
    return tmp_path, "1.jpg"


def _case_truncated_png(tmp_path):
    _imwrite(tmp_path / "0.png", _frames(1)[0])
    _truncated(tmp_path / "1.png", np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8))
    return tmp_path, "1.png"


def _case_sizes_differ(tmp_path):
    _imwrite(tmp_path / "0.png", _frames(1)[0])
    _imwrite(tmp_path / "1.png", _frames(1, height=H + 2)[0])
    return tmp_path, "1.png"


def _case_names_collide(tmp_path):
    _imwrite(tmp_path / "0.png", _frames(1)[0])
    _imwrite(tmp_path / "0.jpg", _frames(1)[0])
    return tmp_path, "0.jpg, 0.png"


def _case_single_frame_folder(tmp_path):
    _imwrite(tmp_path / "0.png", _frames(1)[0])
    return tmp_path, "1 frame"


def _case_single_image_file(tmp_path):
    return _imwrite(tmp_path / "0.png", _frames(1)[0]), "0.png"


def _case_junk_video(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 1000)
    return tmp_path / "clip.mp4", "clip.mp4"


def _case_truncated_video(tmp_path):
    write_video(tmp_path / "clip.mp4", _frames(), fps=25.0)
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "clip.mp4").write_bytes(data[:200])
    return tmp_path / "clip.mp4", "clip.mp4"


def _case_audio_only(tmp_path):
    with av.open(str(tmp_path / "voice.m4a"), "w") as out:
        stream = out.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return tmp_path / "voice.m4a", "voice.m4a: no video stream"


def _case_one_frame_video(tmp_path):
    write_video(tmp_path / "one.avi", _frames(1), fps=25.0)
    return tmp_path / "one.avi", "one.avi"


@pytest.mark.parametrize("case", [
    _case_missing, _case_empty_folder, _case_junk_image, _case_truncated_jpeg,
    _case_truncated_png, _case_sizes_differ, _case_names_collide, _case_single_frame_folder,
    _case_single_image_file, _case_junk_video, _case_truncated_video, _case_audio_only,
    _case_one_frame_video,
], ids=lambda case: case.__name__[6:])
def test_bad_frames_raise_input_error_naming_the_file(tmp_path, case):
    path, named = case(tmp_path)
    with pytest.raises(InputError) as raised:
        read_video(path)
    assert named in str(raised.value)
    assert "\n" not in str(raised.value)


def test_partly_decoded_jpeg_is_refused(tmp_path, monkeypatch):
    # cv2.imread fills a truncated JPEG with grey and only warns, and cv2.imdecode does so for
    # some files: a JPEG without its end-of-image marker is refused whatever the decoder says.
    _imwrite(tmp_path / "0.jpg", _frames(1)[0])
    _truncated(tmp_path / "1.jpg", _frames(1)[0])
    monkeypatch.setattr(video.cv2, "imdecode", lambda *args: np.zeros((H, W, 3), np.uint8))
    with pytest.raises(InputError, match="1.jpg: image is truncated"):
        read_video(tmp_path)


# ----------------------------------------------------------------------------------------------
# masks


def test_mask_folder_binary(tmp_path, capsys):
    masks = _masks()
    result = read_masks(_mask_folder(tmp_path / "m", masks), 4, H, W)
    assert result.shape == (4, H, W, 1) and result.dtype == np.uint8
    np.testing.assert_array_equal(result[..., 0], masks // 255)
    assert capsys.readouterr().err == ""


def test_zero_one_masks_are_binary_too(tmp_path, capsys):
    result = read_masks(_mask_folder(tmp_path / "m", _masks() // 255), 4, H, W)
    np.testing.assert_array_equal(result[..., 0], _masks() // 255)
    assert capsys.readouterr().err == ""


def test_colour_masks_count_any_channel(tmp_path):
    colour = np.zeros((4, H, W, 3), np.uint8)
    colour[..., 2] = _masks() // 2  # dark red, as in DAVIS annotations
    result = read_masks(_mask_folder(tmp_path / "m", colour), 4, H, W)
    np.testing.assert_array_equal(result[..., 0], _masks() // 255)


def test_non_binary_masks_warn_once_and_threshold(tmp_path, capsys):
    masks = _masks()
    masks[:, 0, 0] = 100  # a faint stroke
    folder = _mask_folder(tmp_path / "m", masks)
    result = read_masks(folder, 4, H, W)
    assert result[:, 0, 0, 0].tolist() == [1] * 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not binary" in err[0] and "above 0" in err[0]
    assert str(folder) in err[0]

    result = read_masks(folder, 4, H, W, threshold=127)
    assert result[:, 0, 0, 0].tolist() == [0] * 4
    np.testing.assert_array_equal(result[..., 0], _masks() // 255)
    assert capsys.readouterr().err == ""


def test_masks_of_another_size_are_resized_with_a_warning(tmp_path, capsys):
    small = _masks(height=H // 2, width=W // 2)
    result = read_masks(_mask_folder(tmp_path / "m", small), 4, H, W)
    assert result.shape == (4, H, W, 1)
    np.testing.assert_array_equal(result[..., 0], np.repeat(np.repeat(small // 255, 2, 1), 2, 2))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{W // 2}x{H // 2}" in err[0] and f"{W}x{H}" in err[0]


def test_dilation_grows_by_exactly_n_pixels(tmp_path):
    mask = np.zeros((H, W), np.uint8)
    mask[16, 20] = 255
    path = _imwrite(tmp_path / "dot.png", mask)
    for n in (0, 1, 3):
        hole = read_masks(path, 2, H, W, dilation=n)[0, ..., 0]
        ys, xs = np.nonzero(hole)
        assert (ys.min(), ys.max(), xs.min(), xs.max()) == (16 - n, 16 + n, 20 - n, 20 + n)
    # elliptical: the corners of the square stay known
    assert hole[16 - 3, 20 - 3] == 0 and hole[16, 20 - 3] == 1


def test_single_image_is_used_for_every_frame(tmp_path):
    path = _imwrite(tmp_path / "mask.png", _masks(1)[0])
    result = read_masks(path, 5, H, W)
    assert result.shape == (5, H, W, 1)
    assert (result == result[:1]).all() and result.sum() == 5 * 16 * 16


def test_masks_matched_to_frames_by_name(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for i, m in enumerate(_masks(6)):
        _imwrite(folder / f"f{i}.png", m)
    result = read_masks(folder, 2, H, W, names=["f3", "f1"])
    np.testing.assert_array_equal(result[..., 0], _masks(6)[[3, 1]] // 255)


def test_mask_video(tmp_path):
    # 16-pixel blocks, so that the codec's 8x8 transform keeps the edges clean
    masks = np.zeros((5, H, W), np.uint8)
    for i in range(5):
        masks[i, 16:32, 16 * (i % 3):16 * (i % 3) + 16] = 255
    write_video(tmp_path / "masks.mp4", np.repeat(masks[..., None], 3, -1), fps=25.0)
    result = read_masks(tmp_path / "masks.mp4", 5, H, W, threshold=127)
    assert result.shape == (5, H, W, 1)
    assert (result[..., 0] != masks // 255).mean() < 0.01


def test_mask_count_mismatch_names_both_counts(tmp_path):
    folder = _mask_folder(tmp_path / "m", _masks(3))
    with pytest.raises(InputError, match=r"3 mask images.* 4 frames") as raised:
        read_masks(folder, 4, H, W)
    assert str(folder) in str(raised.value)


def test_mask_video_count_mismatch(tmp_path):
    write_video(tmp_path / "m.mp4", np.repeat(_masks(3)[..., None], 3, -1), fps=25.0)
    with pytest.raises(InputError, match=r"m\.mp4.*3 frames.* 4"):
        read_masks(tmp_path / "m.mp4", 4, H, W, threshold=127)


def test_empty_mask_everywhere(tmp_path):
    folder = _mask_folder(tmp_path / "m", np.zeros((4, H, W), np.uint8))
    with pytest.raises(InputError, match="empty in every frame") as raised:
        read_masks(folder, 4, H, W)
    assert str(folder) in str(raised.value)
    # empty in some frames only is fine
    masks = _masks()
    masks[1:] = 0
    read_masks(_mask_folder(tmp_path / "some", masks), 4, H, W)


def test_full_mask_names_the_frame(tmp_path):
    masks = _masks()
    masks[2] = 255
    with pytest.raises(InputError, match=r"whole frame in frame 2 \(00002\.png\)"):
        read_masks(_mask_folder(tmp_path / "m", masks), 4, H, W)
    # a dilation that swallows the frame is refused too
    with pytest.raises(InputError, match="after dilating by 40 px"):
        read_masks(_mask_folder(tmp_path / "n", _masks()), 4, H, W, dilation=40)


@pytest.mark.parametrize("content, named", [
    (None, "missing.png"), (b"junk", "bad.png"), (b"", "bad.png"),
])
def test_unreadable_mask_files(tmp_path, content, named):
    path = tmp_path / named
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=named):
        read_masks(path, 4, H, W)
    folder = _mask_folder(tmp_path / "m", _masks())
    if content is not None:
        (folder / "00001.png").write_bytes(content)
        with pytest.raises(InputError, match="00001.png"):
            read_masks(folder, 4, H, W)


def test_mask_that_is_not_a_video(tmp_path):
    (tmp_path / "masks.txt").write_text("hello")
    with pytest.raises(InputError, match="masks.txt"):
        read_masks(tmp_path / "masks.txt", 4, H, W)
