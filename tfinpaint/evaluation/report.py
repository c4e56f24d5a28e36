"""A one-page visual report of a fill, as a single PNG composed with numpy and OpenCV.

From top to bottom:

1. a grid of a few frames: the input with the hole tinted red, our fill, and the truth if known;
2. temporal profiles (as Fig. 9 of the paper): one pixel row through the hole's centre taken
   from every frame and stacked top to bottom, for the input, our fill and the truth. A fill
   that is stable in time draws smooth vertical streaks; flicker shows as horizontal noise;
3. if a run's TensorBoard folder is given, curves over steps of the self-check PSNR and of the
   losses, read from its event files.

`write_report` returns where each panel lies in the image, so that callers (and tests) can find
them. No plotting library is needed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tfinpaint.io import video

TILE_WIDTH = 240
"""Width in pixels of every frame tile and temporal profile (frames are scaled to it)."""
PLOT_SIZE = (360, 200)
"""(width, height) of each curve panel."""
PSNR_TAG = "selfcheck/psnr"
"""Scalars whose tag ends with this are drawn in the PSNR panel."""
LOSS_PREFIX = "loss/"
"""Scalars whose tag contains this are drawn in the loss panel."""

_GAP = 8
_LABEL_HEIGHT = 20
_HOLE_TINT = np.array([255, 0, 0], np.float32)
_WHITE, _BLACK, _GREY = (255, 255, 255), (0, 0, 0), (190, 190, 190)
_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX

Box = tuple[int, int, int, int]
"""(top, left, bottom, right) in pixels of the report image; bottom and right exclusive."""


# ----------------------------------------------------------------------------- scalars


def read_scalars(logdir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar logged under `logdir` (all event files, searched recursively).

    Returns {tag: [(step, value), ...]} sorted by step; if a step was logged twice (a resumed
    run), the later value wins. Scalars written by `tf.summary.scalar` in TF 2 are stored as
    tensors, by TF 1 as simple values: both are read. Tags from event files in a subfolder are
    prefixed with the subfolder's path (`train/loss/total`).
    """
    import tensorflow as tf  # slow import: only when a report needs curves

    root = Path(logdir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such log folder")
    values: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for path in sorted(root.rglob("*tfevents*")):
        relative = path.parent.relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        plugins: dict[str, str] = {}
        for event in _events(tf, path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor") and plugins.get(value.tag, "scalars") == "scalars":
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                seen = values[prefix + value.tag]
                if event.step not in seen or seen[event.step][0] <= event.wall_time:
                    seen[event.step] = (event.wall_time, number)
    return {tag: [(step, seen[step][1]) for step in sorted(seen)] for tag, seen in values.items()}


def _events(tf, path: Path):
    """The events of one file; a last record still being written (a live run) ends it."""
    records = iter(tf.data.TFRecordDataset(str(path)))
    while True:
        try:
            record = next(records)
        except (StopIteration, tf.errors.DataLossError):
            return
        yield tf.compat.v1.Event.FromString(record.numpy())


# ----------------------------------------------------------------------------- drawing


def _text(image: np.ndarray, text: str, x: int, y: int, color=_BLACK, scale: float = 0.42) -> None:
    cv2.putText(image, text, (x, y), _FONT, scale, color, 1, cv2.LINE_AA)


def _tint(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    tinted = frame.astype(np.float32)
    tinted[hole] = 0.5 * tinted[hole] + 0.5 * _HOLE_TINT
    return tinted.astype(np.uint8)


def _to_width(image: np.ndarray, height: int | None = None) -> np.ndarray:
    height = height or max(1, round(image.shape[0] * TILE_WIDTH / image.shape[1]))
    enlarging = TILE_WIDTH >= image.shape[1]
    return cv2.resize(image, (TILE_WIDTH, height),
                      interpolation=cv2.INTER_NEAREST if enlarging else cv2.INTER_AREA)


def _plot(series: dict[str, list[tuple[int, float]]], title: str) -> np.ndarray:
    """A line plot of each series against its steps, with a legend."""
    width, height = PLOT_SIZE
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 56, width - 8, 22, height - 20
    _text(image, title, 4, 14)
    cv2.rectangle(image, (left, top), (right, bottom), _GREY, 1)
    points = {tag: [(s, v) for s, v in pairs if np.isfinite(v)] for tag, pairs in series.items()}
    points = {tag: pairs for tag, pairs in points.items() if pairs}
    if not points:
        _text(image, "no data", left + 8, (top + bottom) // 2, _GREY)
        return image
    steps = np.array([s for pairs in points.values() for s, _ in pairs], np.float64)
    values = np.array([v for pairs in points.values() for _, v in pairs], np.float64)
    step_low, step_high = steps.min(), max(steps.max(), steps.min() + 1)
    low, high = values.min(), values.max()
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    for k, (tag, pairs) in enumerate(sorted(points.items())):
        color = _COLORS[k % len(_COLORS)]
        xy = np.array([[left + (s - step_low) / (step_high - step_low) * (right - left),
                        bottom - (v - low) / (high - low) * (bottom - top)] for s, v in pairs])
        xy = np.round(xy).astype(np.int32)
        if len(xy) == 1:
            cv2.circle(image, tuple(int(c) for c in xy[0]), 2, color, -1)
        else:
            cv2.polylines(image, [xy.reshape(-1, 1, 2)], False, color, 1, cv2.LINE_AA)
        _text(image, f"{tag} {pairs[-1][1]:.4g}", left + 6, top + 14 + 14 * k, color, 0.36)
    _text(image, f"{high:.4g}", 2, top + 8, scale=0.36)
    _text(image, f"{low:.4g}", 2, bottom, scale=0.36)
    _text(image, f"{int(step_low)}", left, height - 5, scale=0.36)
    last = f"step {int(steps.max())}"
    _text(image, last, right - 8 * len(last), height - 5, scale=0.36)
    return image


class _Canvas:
    """Panels placed left to right in rows, top to bottom; remembers where each one went."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, int, np.ndarray]] = []
        self.boxes: dict[str, Box] = {}
        self.top, self.left, self.row_height = _GAP, _GAP, 0

    def label(self, text: str) -> None:
        self.newline()
        strip = np.full((_LABEL_HEIGHT, 8 * len(text) + 8, 3), 255, np.uint8)
        _text(strip, text, 0, 14, scale=0.45)
        self.pieces.append((self.top, self.left, strip))
        self.top += _LABEL_HEIGHT

    def add(self, name: str, image: np.ndarray, caption: str = "") -> None:
        top, left = self.top, self.left
        if caption:
            strip = np.full((_LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
            _text(strip, caption, 0, 14)
            self.pieces.append((top, left, strip))
            top += _LABEL_HEIGHT
        self.pieces.append((top, left, image))
        self.boxes[name] = (top, left, top + image.shape[0], left + image.shape[1])
        self.left += image.shape[1] + _GAP
        self.row_height = max(self.row_height, top + image.shape[0] - self.top)

    def newline(self) -> None:
        if self.row_height:
            self.top += self.row_height + _GAP
        self.left, self.row_height = _GAP, 0

    def render(self) -> np.ndarray:
        self.newline()
        width = max(left + piece.shape[1] for _, left, piece in self.pieces) + _GAP
        image = np.full((self.top, width, 3), 255, np.uint8)
        for top, left, piece in self.pieces:
            image[top:top + piece.shape[0], left:left + piece.shape[1]] = piece
        return image


# ----------------------------------------------------------------------------- report


def _hole_centre_row(hole: np.ndarray) -> int:
    rows = np.nonzero(hole.any(axis=(0, 2)))[0]
    if len(rows) == 0:
        return hole.shape[1] // 2
    weights = hole.sum(axis=(0, 2))[rows]
    return int(round(np.average(rows, weights=weights)))


def write_report(path: str | os.PathLike, *, frames: np.ndarray, masks: np.ndarray,
                 filled: np.ndarray, truth: np.ndarray | None = None,
                 logdir: str | os.PathLike | None = None,
                 frame_indices: Sequence[int] | None = None,
                 row: int | None = None) -> dict[str, Box]:
    """Write the report PNG to `path` (atomically) and return where each panel lies.

    Args:
      path: the PNG to write.
      frames: the input video, uint8 [N, H, W, 3] RGB (what is behind the hole is not shown
        untinted: the hole is blended with red).
      masks: [N, H, W, 1] or [N, H, W], non-zero in the hole.
      filled: our result, uint8 [N, H, W, 3].
      truth: the true frames where known (evaluation clips), uint8 [N, H, W, 3].
      logdir: a run's TensorBoard folder; adds curves of `selfcheck/psnr` and of the `loss/*`
        scalars over steps.
      frame_indices: frames shown in the grid; default up to 4, evenly spaced.
      row: the pixel row of the temporal profile; default the hole's centre row.

    Returns:
      {panel name: (top, left, bottom, right)}, names `input/<t>`, `ours/<t>`, `truth/<t>`,
      `profile/input`, `profile/ours`, `profile/truth`, `curves/psnr`, `curves/loss` (truth and
      curve panels only when given).
    """
    frames, filled = np.asarray(frames), np.asarray(filled)
    hole = np.asarray(masks)
    hole = (hole[..., 0] if hole.ndim == 4 else hole) != 0
    num_frames, height, width = frames.shape[:3]
    shapes = {"filled": filled.shape, "masks": hole.shape + (3,)}
    if truth is not None:
        truth = np.asarray(truth)
        shapes["truth"] = truth.shape
    for name, shape in shapes.items():
        if tuple(shape) != frames.shape:
            raise ValueError(f"{name} {shape} does not match frames {frames.shape}")
    if frame_indices is None:
        frame_indices = np.unique(np.linspace(0, num_frames - 1, min(4, num_frames)).round())
    frame_indices = [int(t) for t in frame_indices]
    if any(not 0 <= t < num_frames for t in frame_indices):
        raise ValueError(f"frame_indices {frame_indices} outside 0..{num_frames - 1}")
    row = _hole_centre_row(hole) if row is None else int(row)
    if not 0 <= row < height:
        raise ValueError(f"row {row} outside 0..{height - 1}")

    videos = {"input": np.stack([_tint(f, h) for f, h in zip(frames, hole)]), "ours": filled}
    if truth is not None:
        videos["truth"] = truth
    captions = {"input": "input (hole in red)", "ours": "ours", "truth": "truth"}

    canvas = _Canvas()
    for kind, clip in videos.items():
        canvas.newline()
        for t in frame_indices:
            canvas.add(f"{kind}/{t}", _to_width(clip[t]), f"{captions[kind]}, frame {t}")

    repeat = max(1, 160 // num_frames)
    canvas.label(f"temporal profile: row {row} of every frame, frame 0 at the top")
    for kind, clip in videos.items():
        profile = np.repeat(clip[:, row], repeat, axis=0)  # [N * repeat, W, 3]
        canvas.add(f"profile/{kind}", _to_width(profile, height=profile.shape[0]), captions[kind])

    if logdir is not None:
        scalars = read_scalars(logdir)
        canvas.label(f"training curves from {logdir}")
        canvas.add("curves/psnr", _plot(
            {t: v for t, v in scalars.items() if t.endswith(PSNR_TAG)}, "self-check PSNR (dB)"))
        canvas.add("curves/loss", _plot(
            {t: v for t, v in scalars.items() if LOSS_PREFIX in t}, "losses"))

    video.write_image(path, canvas.render())
    return canvas.boxes
