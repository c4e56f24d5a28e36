"""Reading frames and masks (a folder of images or a video file) and writing PNG frames and video.

Folders of images go through OpenCV; video files through PyAV (FFmpeg), which counts frames
exactly, keeps the container's exact frame rate and rotation, and can copy the source's audio
into the result. Every problem with the user's files is an `InputError` whose message names the
file and what is wrong, raised before anything is written. Everything written goes to a temporary
name in the target folder first and is then renamed, so an interrupted run never leaves a
half-written file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc, Colorspace

from tfinpaint.errors import InputError
from tfinpaint.io.rundir import atomic_write

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FPS = 25.0
# H.264 constant rate factor of the result video: 18 is close to visually lossless.
DEFAULT_CRF = 18
# Audio codecs that browsers play from an .mp4; others are re-encoded to AAC there.
MP4_AUDIO = ("aac", "mp3", "opus", "flac")
# Larger images are refused before decoding (8K UHD is 33 million pixels).
MAX_IMAGE_PIXELS = 1 << 27


@dataclass
class Video:
    """Decoded frames and what is needed to write them back out.

    Attributes:
        frames: uint8 [N, H, W, 3], RGB, upright (a video file's rotation metadata is applied).
        fps: frames per second; 25.0 for folders of images.
        names: one output file stem per frame: the input stems for a folder of images,
            zero-padded indices ("00000", ...) for a video file.
        rate: the exact frame rate (30000/1001, not 29.97) as the container declares it;
            `Fraction(fps)` for folders of images.
        source: the video file the frames were decoded from, where `write_video(audio_from=...)`
            finds the audio; None for a folder of images.
        has_audio: whether `source` holds an audio stream.
        rotation: degrees counter-clockwise by which the stored frames were turned upright.
    """

    frames: np.ndarray
    fps: float
    names: list[str]
    rate: Fraction | None = None
    source: Path | None = None
    has_audio: bool = False
    rotation: int = 0

    def __post_init__(self) -> None:
        if self.rate is None:
            self.rate = exact_rate(self.fps)


# ----------------------------------------------------------------------------------------------
# reading


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> Video:
    """Read a folder of frames (sorted naturally: frame2 before frame10) or a video file.

    Grayscale, RGBA and 16-bit images become 8-bit RGB. At least two frames are needed, all of
    one size. `max_frames` keeps only the first frames.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise InputError(f"{path}: folder holds no {'/'.join(IMAGE_EXTENSIONS)} frames")
        files = files[:max_frames]
        stems = [f.stem for f in files]
        if len(set(stems)) < len(stems):
            twins = sorted(f.name for f in files if stems.count(f.stem) > 1)
            raise InputError(f"{path}: frames {', '.join(twins)} share a name, so their outputs "
                             "would overwrite each other")
        frames = _stack(path, files, (_rgb8(_read_image(f), f) for f in files))
        video = Video(frames=frames, fps=DEFAULT_FPS, names=stems)
    elif path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(f"{path}: a single image is not a video; need a folder of at least 2 "
                         "frames or a video file")
    else:
        frames, stream = _read_video_file(path, max_frames)
        video = Video(frames=frames, fps=float(stream.rate),
                      names=[f"{i:05d}" for i in range(len(frames))], rate=stream.rate,
                      source=path, has_audio=stream.has_audio, rotation=stream.rotation)
    if len(video.frames) < 2:
        raise InputError(f"{path}: only 1 frame; need at least 2")
    return video


def read_masks(path: str | os.PathLike, num_frames: int, height: int, width: int, *,
               threshold: int = 0, dilation: int = 0,
               names: list[str] | None = None) -> np.ndarray:
    """Read the hole masks for `num_frames` frames of `height` x `width`: uint8 [N, H, W, 1], 0/1.

    `path` is a folder of mask images (one per frame), a single image (used for every frame) or a
    mask video. In a folder, masks are matched to frames by file stem when `names` is given and
    every name has a mask; otherwise they are taken in natural order and must number
    `num_frames`. A pixel is hole (1) where any colour channel is above `threshold`; non-binary
    masks and masks of another size (resized, nearest neighbour) are reported on stderr.
    `dilation` grows the hole by that many pixels (elliptical kernel).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such mask file or folder")
    if path.is_dir():
        files = _mask_files(path, num_frames, names)
        raw = [_gray8(_read_image(f), f) for f in files]
        labels = [f.name for f in files]
    elif path.suffix.lower() in IMAGE_EXTENSIONS:
        raw = [_gray8(_read_image(path), path)]
        labels = [path.name]
    else:
        frames, _ = _read_video_file(path, None, what="mask video")
        if len(frames) != num_frames:
            raise InputError(f"{path}: mask video has {len(frames)} frames but the video has "
                             f"{num_frames}")
        raw = [f.max(axis=-1) for f in frames]
        labels = [f"frame {i}" for i in range(len(frames))]

    values = np.flatnonzero(sum(np.bincount(m.ravel(), minlength=256) for m in raw))
    if threshold == 0 and not (set(values) <= {0, 255} or set(values) <= {0, 1}):
        _warn(f"{path}: masks are not binary (values other than 0 and 255 found); every pixel "
              f"above {threshold} counts as hole (set the mask threshold to change this)")
    sizes = {m.shape for m in raw} - {(height, width)}
    if sizes:
        h, w = sorted(sizes)[0]
        _warn(f"{path}: masks are {w}x{h} but frames are {width}x{height}; resizing masks "
              "(nearest neighbour)")
    masks = np.empty((len(raw), height, width), np.uint8)
    for i, m in enumerate(raw):
        hole = (m > threshold).astype(np.uint8)
        if hole.shape != (height, width):
            hole = cv2.resize(hole, (width, height), interpolation=cv2.INTER_NEAREST)
        masks[i] = hole
    masks = dilate_masks(masks[..., None], dilation)[..., 0]
    if len(masks) == 1:
        masks = np.repeat(masks, num_frames, axis=0)

    if not masks.any():
        raise InputError(f"{path}: mask is empty in every frame (no pixel above threshold "
                         f"{threshold}); nothing to fill")
    full = np.flatnonzero(masks.reshape(len(masks), -1).all(axis=1))
    if len(full):
        i = int(full[0])
        grown = f" after dilating by {dilation} px" if dilation else ""
        raise InputError(f"{path}: mask covers the whole frame{grown} in frame {i} "
                         f"({labels[min(i, len(labels) - 1)]}); nothing left to fill it from")
    return masks[..., None]


def hole_disc(pixels: int) -> np.ndarray:
    """The disc holes and object masks grow by (`data.mask_dilation`, the mask modules): uint8
    [2p+1, 2p+1], 1 inside; the fill graphs grow holes by the same element
    (`tfinpaint.fill.render.dilate_holes`)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))


def dilate_masks(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Grows each frame's hole ([N, H, W, 1] 0/1) by `pixels` with a disc, to cover object edges."""
    if pixels <= 0:
        return masks
    kernel = hole_disc(pixels)
    return np.stack([cv2.dilate(mask[..., 0], kernel) for mask in masks])[..., None]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def read_mask_image(path: str | os.PathLike) -> np.ndarray:
    """One mask image as uint8 [H, W] labels (the largest colour value: any colour counts)."""
    path = Path(path)
    return _gray8(_read_image(path), path)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, in natural order (frame2 before frame10)."""
    return _image_files(Path(folder))


def _image_files(folder: Path) -> list[Path]:
    files = [f for f in folder.iterdir()
             if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file() and not f.name.startswith(".")]
    return sorted(files, key=lambda f: _natural_key(f.name))


def _mask_files(folder: Path, num_frames: int, names: list[str] | None) -> list[Path]:
    files = _image_files(folder)
    if not files:
        raise InputError(f"{folder}: mask folder holds no {'/'.join(IMAGE_EXTENSIONS)} images")
    if names is not None and len(names) == num_frames:
        by_stem = {f.stem: f for f in files}
        if all(name in by_stem for name in names):
            return [by_stem[name] for name in names]
    if len(files) != num_frames:
        raise InputError(f"{folder}: {len(files)} mask images but the video has {num_frames} "
                         "frames; need one mask per frame (or a single mask image)")
    return files


def _read_image(path: Path) -> np.ndarray:
    """Decode one image as stored (any depth and channel count), refusing partial decodes."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    if not data:
        raise InputError(f"{path}: image file is empty")
    declared = _declared_size(data)
    if declared and declared[0] * declared[1] > MAX_IMAGE_PIXELS:
        # Refused before decoding: a small file can declare (and inflate to) gigabytes.
        raise InputError(f"{path}: image declares {declared[0]}x{declared[1]} pixels, more than "
                         f"the {MAX_IMAGE_PIXELS} this reader accepts")
    try:
        with _quiet_opencv():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise InputError(f"{path}: not a readable image (corrupt or unsupported format)")
    # libjpeg fills a truncated JPEG with grey and only warns, so check that the file is whole.
    if _is_truncated(path.suffix.lower(), data):
        raise InputError(f"{path}: image is truncated (the file ends before the image data does)")
    return image


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG, BMP or JPEG header declares it, without decoding; else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"BM" and len(data) >= 26:
        return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                abs(int.from_bytes(data[22:26], "little", signed=True)))
    if data[:2] == b"\xff\xd8":
        at = 2
        while at + 9 <= len(data) and data[at] == 0xFF:
            marker = data[at + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                return (int.from_bytes(data[at + 7:at + 9], "big"),
                        int.from_bytes(data[at + 5:at + 7], "big"))
            at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return None


def _is_truncated(suffix: str, data: bytes) -> bool:
    if suffix in (".jpg", ".jpeg"):
        return b"\xff\xd9" not in data[-4096:]  # end-of-image marker
    if suffix == ".png":
        return b"IEND" not in data[-64:]
    if suffix == ".bmp" and len(data) >= 6:
        return len(data) < int.from_bytes(data[2:6], "little")  # header's file size
    return False


def _to_8bit(image: np.ndarray, path: Path) -> np.ndarray:
    if image.dtype == np.uint16:
        return np.round(image / 257.0).astype(np.uint8)
    if image.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {image.dtype}; need 8- or 16-bit")
    return image


def _rgb8(image: np.ndarray, path: Path) -> np.ndarray:
    image = _to_8bit(image, path)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _gray8(image: np.ndarray, path: Path) -> np.ndarray:
    """A mask as one channel: the largest colour value, so any coloured label counts."""
    image = _to_8bit(image, path)
    if image.ndim == 2:
        return image
    colour = image[..., :3].max(axis=-1)
    if image.shape[2] == 4 and not colour.any():
        return image[..., 3]  # a mask drawn only in the alpha channel
    return colour


def _stack(source: Path, labels: list, frames: Iterator[np.ndarray]) -> np.ndarray:
    """Stack frames into one preallocated array, refusing a frame of another size."""
    out = None
    for i, frame in enumerate(frames):
        if out is None:
            out = np.empty((len(labels), *frame.shape), np.uint8)
        elif frame.shape != out.shape[1:]:
            raise InputError(f"{labels[i]}: frame is {frame.shape[1]}x{frame.shape[0]} but the "
                             f"first frame in {source} is {out.shape[2]}x{out.shape[1]}")
        out[i] = frame
    return out


@dataclass
class _Stream:
    rate: Fraction
    has_audio: bool
    rotation: int


def _read_video_file(path: Path, max_frames: int | None,
                     what: str = "video") -> tuple[np.ndarray, _Stream]:
    """Decode the first video stream as upright RGB frames, with what the writer needs of it."""
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot open this {what} (not a video, or an unsupported "
                         f"codec: {_reason(error)})") from None
    frames = []
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream in this {what} (an audio file, or one cut "
                             "short before its first frame)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rate = Fraction(rate) if rate and rate > 0 else exact_rate(DEFAULT_FPS)
        expected = stream.frames
        has_audio = bool(container.streams.audio)
        rotation = 0
        try:
            for frame in container.decode(stream):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                if not frames:
                    rotation = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
                # The frame's own colour range: unset means limited (MPEG) range to swscale.
                rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None)
                frames.append(np.rot90(rgb, rotation // 90) if rotation else rgb)
        except (av.FFmpegError, ValueError, OSError) as error:
            if not frames:
                raise InputError(f"{path}: cannot decode this {what} ({_reason(error)})") from None
            _warn(f"{path}: decoding stopped after {len(frames)} frames ({_reason(error)}); "
                  "the file may be damaged")
            expected = 0
    if not frames:
        raise InputError(f"{path}: decodes no frames from this {what}")
    if max_frames is None and 0 < len(frames) < expected:
        _warn(f"{path}: decoded {len(frames)} of the {expected} frames the {what} announces; "
              "it may be truncated")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InputError(f"{path}: {what} changes frame size mid-stream ({sorted(shapes)})")
    return np.stack(frames), _Stream(rate=rate, has_audio=has_audio, rotation=rotation)


def _reason(error: Exception) -> str:
    """FFmpeg's message in one line, without the file name PyAV appends."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(reason).split())


def exact_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: 29.97002997... becomes 30000/1001, 12.0 becomes 12.

    A float made from a fraction with a denominator below a million comes back as that fraction;
    a rate that is not positive and finite becomes DEFAULT_FPS.
    """
    if isinstance(fps, Fraction):
        return fps if fps > 0 else Fraction(DEFAULT_FPS)
    if not (np.isfinite(fps) and fps > 0):
        fps = DEFAULT_FPS
    return Fraction(float(fps)).limit_denominator(1_000_000)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Hold back OpenCV's own warnings, which only repeat the InputError that follows."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# writing


def write_frames(directory: str | os.PathLike, frames: np.ndarray, names: list[str]) -> None:
    """Write each RGB frame as `directory/<name>.png`, each file atomically."""
    frames = _check_frames(frames)
    if len(names) != len(frames) or len(set(names)) != len(names):
        raise ValueError(f"need {len(frames)} distinct names, got {len(names)} "
                         f"({len(set(names))} distinct)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames, names):
        _write_png(directory / f"{name}.png", frame)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write one RGB image as PNG, atomically."""
    image = np.asarray(image)
    _check_frames(image[None])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_png(path, image)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float | Fraction, *,
                audio_from: str | os.PathLike | None = None, crf: int = DEFAULT_CRF,
                lossless: bool = False) -> None:
    """Write RGB frames as a video at `fps`, atomically, with the audio of `audio_from` if any.

    By default the video is H.264 (libx264, yuv420p, BT.709, constant quality `crf`: 18 is close
    to visually lossless, 23 x264's default, 51 worst), which browsers and editors play; in an
    .mp4 its index comes first so that playback starts while it downloads.
    yuv420p needs even sizes, so odd frames are padded by repeating their last row/column:
    nothing is lost, and the video is at most one pixel taller and wider than the frames.

    `lossless=True` writes FFV1 in RGB instead, into `path`, which must end in .mkv: it
    decodes bit-exact to `frames`, at any size, for further editing.

    `fps` is kept exactly: give the reader's `Video.rate` (a Fraction), or a float such as
    `Video.fps`, which `exact_rate` turns back into the fraction it came from (30000/1001).

    `audio_from` is a media file, usually the source video (`Video.source`): its audio streams
    are copied unchanged (not re-encoded) and cut where the frames end, keeping their offset to
    the source's first video frame. A stream the container cannot hold, or in an .mp4 one that
    browsers do not play (anything but AAC, MP3, Opus and FLAC: PCM from a .mov, say), is
    re-encoded to AAC, with a warning. Anything without audio (a folder of frames, a missing
    path, a silent video) gives a silent video.
    """
    frames = _check_frames(frames)
    path = Path(path)
    if lossless and path.suffix.lower() != ".mkv":
        raise ValueError(f"{path}: a lossless (FFV1) video goes in a .mkv file")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = exact_rate(fps)
    _, height, width, _ = frames.shape
    pad_h, pad_w = (0, 0) if lossless else (height % 2, width % 2)

    # An .mp4's index first, so that a browser starts playing while it downloads.
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}

    def write(temp: str) -> None:
        with av.open(temp, "w", options=options) as out, contextlib.ExitStack() as inputs:
            if lossless:
                stream = out.add_stream("ffv1", rate=rate)
                stream.pix_fmt = "bgr0"  # FFV1's 8-bit RGB: a repacking of rgb24, no conversion
                stream.options = {"level": "3", "g": "1", "slicecrc": "1"}
            else:
                stream = out.add_stream("libx264", rate=rate)
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "medium"}
                stream.codec_context.color_range = ColorRange.MPEG
                stream.codec_context.colorspace = Colorspace.ITU709
                stream.codec_context.color_primaries = ColorPrimaries.BT709
                stream.codec_context.color_trc = ColorTrc.BT709
            stream.width, stream.height = width + pad_w, height + pad_h
            # Frames count in 1 / rate. The stream's own time base changes once the muxer has
            # started (to 1/12800 in an .mp4), so frames must not take it from there: past the
            # encoder's lookahead, their timestamps would be read in the wrong unit.
            frame_time_base = 1 / rate
            stream.time_base = frame_time_base
            audio = inputs.enter_context(_AudioCopy(audio_from, out, end=len(frames) / rate))

            def mux(packets: list[av.Packet]) -> None:
                for packet in packets:
                    # Audio up to the video's decoding time: interleaved, and never ahead of it.
                    audio.until(packet.dts * packet.time_base)
                    out.mux(packet)

            for i, rgb in enumerate(frames):
                if pad_h or pad_w:
                    rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                if lossless:
                    frame = frame.reformat(format="bgr0")
                else:
                    frame = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709,
                                           dst_color_range=ColorRange.MPEG)
                frame.pts, frame.time_base = i, frame_time_base
                mux(stream.encode(frame))
            mux(stream.encode())
            audio.finish()
        if os.path.getsize(temp) == 0:
            raise InputError(f"{path}: FFmpeg wrote an empty video")

    atomic_write(path, write)


class _AudioCopy:
    """The audio streams of `source`, added to `out` as they are (or as AAC), up to `end` seconds.

    Times are shifted so that the source's first video frame falls at 0, as the written frames
    do; audio before it is dropped with it. `until(t)` muxes the audio up to time t, so that the
    file interleaves audio with video as players expect; `finish()` muxes the rest.
    """

    def __init__(self, source: str | os.PathLike | None, out: av.container.OutputContainer, *,
                 end: Fraction) -> None:
        self.out, self.end, self.copies, self.input = out, end, {}, None
        self.pending, self.queue = None, iter(())
        if source is None or not Path(source).is_file():
            return
        try:
            self.input = av.open(str(source), "r")
        except (av.FFmpegError, ValueError, OSError, UnicodeDecodeError):
            return  # not a media file: the sample, an image
        audio = list(self.input.streams.audio)
        if not audio:
            return
        first = self.input.streams.video[0] if self.input.streams.video else None
        self.start = (first.start_time * first.time_base
                      if first is not None and first.start_time is not None else Fraction(0))
        mp4 = Path(out.name).suffix.lower() == ".mp4"
        for stream in audio:
            codec = stream.codec_context.name
            try:
                if mp4 and codec not in MP4_AUDIO:
                    raise ValueError(f"browsers do not play {codec} audio from an .mp4")
                self.copies[stream.index] = (out.add_stream_from_template(stream), False)
            except ValueError as why:
                _warn(f"{source}: {why}; re-encoding the audio as AAC")
                aac = out.add_stream("aac", rate=stream.codec_context.sample_rate,
                                     layout=stream.codec_context.layout)
                self.copies[stream.index] = (aac, True)
        self.queue = self._overlapping(self.input.demux(audio))

    def __enter__(self) -> _AudioCopy:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.input is not None:
            self.input.close()

    def until(self, time: Fraction) -> None:
        """Mux the audio that starts before `time` seconds (of the written video)."""
        while True:
            if self.pending is None:
                self.pending = next(self.queue, None)
                if self.pending is None:
                    return
            packet, start = self.pending
            if start >= time:
                return
            self.pending = None
            copy, transcode = self.copies[packet.stream.index]
            if transcode:
                for frame in packet.decode():
                    self.out.mux(copy.encode(self._trimmed(frame)))
            else:
                shift = round(self.start / packet.time_base)
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = copy
                self.out.mux(packet)

    def finish(self) -> None:
        """Mux the rest, up to `end`, and flush the AAC encoders."""
        self.until(self.end)
        for copy, transcode in self.copies.values():
            if transcode:
                self.out.mux(copy.encode())

    def _trimmed(self, frame: av.AudioFrame) -> av.AudioFrame:
        """A decoded frame without its samples outside [0, end), retimed for the encoder."""
        start = frame.pts * frame.time_base - self.start if frame.pts is not None else Fraction(0)
        first = max(0, round(-start * frame.sample_rate))
        last = min(frame.samples, round((self.end - start) * frame.sample_rate))
        if (first, last) != (0, frame.samples):
            # planar: [channels, samples]; packed: [1, samples * channels], interleaved
            channels = 1 if frame.format.is_planar else len(frame.layout.channels)
            kept = frame.to_ndarray()[:, first * channels:last * channels]
            trimmed = av.AudioFrame.from_ndarray(np.ascontiguousarray(kept),
                                                 format=frame.format.name, layout=frame.layout.name)
            trimmed.sample_rate = frame.sample_rate
            frame = trimmed
        # In samples from the written video's start, so the muxer can trim the encoder's padding.
        frame.pts = round(max(start, 0) * frame.sample_rate)
        frame.time_base = Fraction(1, frame.sample_rate)
        return frame

    def _overlapping(self, packets: Iterator[av.Packet]) -> Iterator[tuple[av.Packet, Fraction]]:
        """The audio packets that overlap [0, end) of the written video, with their start times.

        The packet just before the first one is kept too: an audio decoder needs it to start
        cleanly (AAC's priming packet at a negative time is one).
        """
        before = None
        for packet in packets:
            if packet.pts is None:
                continue  # a demuxer's flush packet
            start = packet.pts * packet.time_base - self.start
            if start >= self.end:
                return
            if start + (packet.duration or 0) * packet.time_base <= 0:
                before = (packet, start)
                continue
            if before is not None:
                yield before
                before = None
            yield packet, start


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"need uint8 RGB frames [N,H,W,3], got {frames.dtype} {frames.shape}")
    return frames


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed for an image of shape {rgb.shape}")

    def write(temp: str) -> None:
        # Python's own write, unlike cv2.imwrite, raises OSError (e.g. disk full) on failure.
        with open(temp, "wb") as file:
            file.write(encoded.tobytes())

    atomic_write(path, write)
