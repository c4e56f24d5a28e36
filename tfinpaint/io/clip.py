"""The clip a user fills: reading it (a video and its masks, one annotated frame, or the built-in
sample), checking it against the network, moving it between native and working resolution, and
writing its result.

Every input error surfaces while reading and checking, before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tfinpaint.config import Config
from tfinpaint.errors import InputError
from tfinpaint.fill import resample
from tfinpaint.io import video as video_io
from tfinpaint.io.rundir import staged_folder
from tfinpaint.io.sample import SAMPLE, make_sample
from tfinpaint.model.generator import min_input_size

# Frames resized per call: bounds the float32 copies (8 frames of 4K are about 800 MB).
RESIZE_BATCH = 8


@dataclass
class Clip:
    """A video to fill: native-resolution frames and masks, and the truth where it is known."""

    frames: np.ndarray
    masks: np.ndarray
    fps: float
    names: list[str]
    truth: np.ndarray | None = None
    source: str = ""


@dataclass
class Annotation:
    """The video and its one annotated frame: `mask` uint8 [H, W, 1], 1 = object."""

    video: video_io.Video
    frame: int
    mask: np.ndarray


def read_annotation(video: str, mask: str, frame: int, *, threshold: int = 0,
                    frame_option: str = "--frame") -> Annotation:
    """Reads the video and the object mask drawn on its frame `frame`; every input error here."""
    clip = video_io.read_video(video)
    count, height, width = clip.frames.shape[:3]
    if not 0 <= frame < count:
        raise InputError(f"{frame_option} {frame}: {video} has {count} frames, so the annotated "
                         f"frame must be 0..{count - 1}")
    path = Path(mask)
    if path.is_dir():
        raise InputError(f"{path}: expected one mask image (of the annotated frame), got a folder")
    if not path.exists():
        raise InputError(f"{path}: no such mask file")
    # The video module's own decoder: same formats, same errors, any colour counts as object.
    labels = video_io.read_mask_image(path)
    if labels.shape != (height, width):
        raise InputError(f"{path}: mask is {labels.shape[1]}x{labels.shape[0]} but the frames are "
                         f"{width}x{height}; draw it on frame {frame} at the video's size")
    object_mask = (labels > threshold).astype(np.uint8)[..., None]
    if not object_mask.any():
        raise InputError(f"{path}: mask is empty (no pixel above {threshold}); mark the object "
                         "to remove on the annotated frame")
    if object_mask.all():
        raise InputError(f"{path}: mask covers the whole frame; the object needs background "
                         "around it")
    return Annotation(video=clip, frame=frame, mask=object_mask)


def load_clip(video: str, masks: str | None, config: Config,
              first_mask: str | None = None, first_mask_frame: int = 0) -> Clip:
    """Reads (or generates) the clip and its masks; all input errors surface here, before writing.

    With `first_mask`, only the annotated frame's mask is set: the caller propagates it.
    """
    if video == SAMPLE:
        sample = make_sample()
        clip_masks = sample.masks
        if config.data.mask_dilation:
            clip_masks = video_io.dilate_masks(clip_masks, config.data.mask_dilation)
        return Clip(sample.frames, clip_masks, sample.fps, [f"{i:05d}" for i in range(len(sample.frames))],
                    truth=sample.truth, source=SAMPLE)
    if first_mask:
        annotation = read_annotation(video, first_mask, first_mask_frame, frame_option="--first-mask-frame",
                                     threshold=config.data.mask_threshold)
        clip_masks = np.zeros((*annotation.video.frames.shape[:3], 1), np.uint8)
        clip_masks[annotation.frame] = annotation.mask
        return Clip(annotation.video.frames, clip_masks, annotation.video.fps, annotation.video.names,
                    source=str(video))
    if not masks:
        raise InputError("--masks is required with --video PATH (a folder, one image, or a mask video)")
    clip = video_io.read_video(video)
    height, width = clip.frames.shape[1:3]
    clip_masks = video_io.read_masks(masks, len(clip.frames), height, width,
                                     threshold=config.data.mask_threshold,
                                     dilation=config.data.mask_dilation, names=clip.names)
    return Clip(clip.frames, clip_masks, clip.fps, clip.names, source=str(video))


def working_size(native: tuple[int, int], requested: tuple[int, int]) -> tuple[int, int]:
    """The working (H, W): as configured, or the native size where the config says 0."""
    height, width = requested
    return (height or native[0], width or native[1])


def check_size(native: tuple[int, int], config: Config, source: str) -> tuple[int, int]:
    """The working size of frames of `native` (H, W) under `config`, or one clear line saying why
    the network cannot take them (or the configured crops)."""
    size = working_size(native, (config.data.working_height, config.data.working_width))
    minimum = min_input_size(config.generator.padding)
    if min(size) < minimum:
        raise InputError(f"{source}: frames of {size[1]}x{size[0]} at working resolution are too "
                         f"small for the network (at least {minimum}x{minimum} px)")
    crop = (config.data.crop_height, config.data.crop_width)
    if any(crop) and (min(crop) < minimum or crop[0] % 4 or crop[1] % 4):
        raise InputError(f"config data.crop_height/crop_width {crop}: must be multiples of 4 "
                         f"and at least {minimum}")
    return size


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes 0/1 masks so that every pixel touched by the hole stays hole (area, then > 0), with
    `tfinpaint.fill.resample`, the reduction the fill graphs do in-graph."""
    if masks.shape[1:3] == (height, width):
        return masks
    return np.concatenate([resample.resize_hole(masks[start:start + RESIZE_BATCH] > 0,
                                                (height, width)).numpy().astype(np.uint8)
                           for start in range(0, len(masks), RESIZE_BATCH)])


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 frames reduced by area (grown bicubically) with `tfinpaint.fill.resample`, the very
    reduction the fill graphs (`tfinpaint.fill.render.make_fill_fn` with a working size, the
    exported models) do in-graph, so the network is fitted on what it is later given. Within one
    level of OpenCV's INTER_AREA (tests/test_resample.py)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.concatenate([resample.resize_uint8(frames[start:start + RESIZE_BATCH],
                                                 (height, width)).numpy()
                           for start in range(0, len(frames), RESIZE_BATCH)])


def upsample(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """A fill (uint8 [..., h, w, 3]) brought up to height x width (bicubic)."""
    if images.shape[-3:-1] == (height, width):
        return images
    if images.ndim == 3:
        return cv2.resize(images, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.stack([upsample(image, height, width) for image in images])


def write_result(result: Path, clip: Clip, filled: np.ndarray, *, logdir: Path | None,
                 extra: dict, video: bool = True, crf: int = video_io.DEFAULT_CRF,
                 lossless: bool = False) -> dict:
    """Writes PNG frames, video.mp4 (H.264 at `crf`, with the source's audio; unless `video` is
    false), video.mkv when `lossless` (FFV1, bit-exact), a side-by-side preview, the report and a
    summary into `result`, staged beside it and swapped in whole."""
    from tfinpaint.evaluation.metrics import psnr, telea_baseline
    from tfinpaint.evaluation.report import write_report

    with staged_folder(result) as staged:
        video_io.write_frames(staged / "frames", filled, clip.names)
        if video:
            video_io.write_video(staged / "video.mp4", filled, clip.fps, audio_from=clip.source,
                                 crf=crf)
        if lossless:
            video_io.write_video(staged / "video.mkv", filled, clip.fps, audio_from=clip.source,
                                 lossless=True)
        middle = len(filled) // 2
        tinted = clip.frames[middle].copy()
        hole = clip.masks[middle, ..., 0] > 0
        tinted[hole] = (0.5 * tinted[hole] + [127, 0, 0]).astype(np.uint8)
        video_io.write_image(staged / "preview.png", np.concatenate([tinted, filled[middle]], axis=1))
        summary = dict(extra)
        if clip.truth is not None:
            telea = telea_baseline(clip.frames, clip.masks)
            summary["psnr_hole"] = psnr(filled, clip.truth, clip.masks)
            summary["psnr_hole_telea"] = psnr(telea, clip.truth, clip.masks)
        write_report(staged / "report.png", frames=clip.frames, masks=clip.masks, filled=filled,
                     truth=clip.truth, logdir=str(logdir) if logdir else None)
        (staged / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def result_options(config: Config) -> dict:
    """`write_result`'s video settings from `config.infer`."""
    infer = config.infer
    return {"video": infer.write_video, "crf": infer.video_crf, "lossless": infer.lossless_video}


def write_masks(out: Path, masks: np.ndarray, names: list[str]) -> None:
    """0/1 masks as 0/255 PNGs named like the frames, staged beside `out` and swapped in whole."""
    with staged_folder(out) as staged:
        video_io.write_frames(staged, np.repeat(masks * np.uint8(255), 3, axis=-1), names)
