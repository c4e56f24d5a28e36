"""A synthetic clip with a known answer: a panning camera over a textured scene and a moving object.

The background hidden by the object in one frame is visible in others, which is exactly what
internal learning propagates; and the scene has edges, stripes and fine texture, so a per-frame
diffusion fill (OpenCV's Telea) is visibly wrong. `truth` is the same clip without the object,
for scoring the fill inside the hole.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# What `--video` names the built-in sample by.
SAMPLE = "sample"


@dataclass
class SampleClip:
    """Attributes:
        frames: uint8 [N, H, W, 3] RGB, the clip with the object in it.
        masks: uint8 [N, H, W, 1], 1 = hole: the object plus a margin of about 2 px.
        truth: uint8 [N, H, W, 3] RGB, the same clip without the object.
        fps: frames per second.
        camera: float [N, 2], the (x, y) scene position of each frame's top-left pixel:
            frame pixel (x, y) shows scene point (x + camera[i, 0], y + camera[i, 1]).
    """

    frames: np.ndarray
    masks: np.ndarray
    truth: np.ndarray
    fps: float
    camera: np.ndarray


MASK_MARGIN = 2  # pixels of hole around the object, as a careful annotator would draw


def make_sample(num_frames: int = 24, height: int = 112, width: int = 192,
                seed: int = 0) -> SampleClip:
    """Render the sample clip; the same `seed` gives the same clip."""
    if num_frames < 2 or height < 32 or width < 32:
        raise ValueError(f"need at least 2 frames of 32x32, got {num_frames} of {width}x{height}")
    rng = np.random.default_rng(seed)

    # camera: a smooth pan to the right over ~40% of the width, with a gentle vertical sway
    t = np.linspace(0.0, 1.0, num_frames)
    pan_x, sway_y = 0.4 * width, 0.08 * height
    camera = np.stack([pan_x * (0.5 - 0.5 * np.cos(np.pi * t)),
                       sway_y * (0.5 + 0.5 * np.sin(2 * np.pi * t + rng.uniform(0, np.pi)))], 1)
    scene = _scene(rng, int(np.ceil(height + sway_y)) + 2, int(np.ceil(width + pan_x)) + 2)

    # object: an ellipse about a fifth of the frame high that crosses the frame on an arc,
    # faster than the camera, so its scene position keeps changing
    semi_axes = np.array([0.14 * height, 0.10 * height])
    centre_x = width * (0.22 + 0.56 * t)
    centre_y = height * (0.5 + 0.2 * np.sin(np.pi * t + rng.uniform(-0.5, 0.5)))
    angle = rng.uniform(0, np.pi) + 0.8 * t
    colour_a, colour_b = rng.uniform(40, 230, size=(2, 3))

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    margin_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                              (2 * MASK_MARGIN + 1, 2 * MASK_MARGIN + 1))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    truth = np.empty_like(frames)
    masks = np.empty((num_frames, height, width, 1), np.uint8)
    for i in range(num_frames):
        shift = np.float32([[1, 0, -camera[i, 0]], [0, 1, -camera[i, 1]]])
        background = cv2.warpAffine(scene, shift, (width, height), flags=cv2.INTER_LINEAR)
        # object coordinates: u along the long axis, v across it
        c, s = np.cos(angle[i]), np.sin(angle[i])
        u = (c * (xs - centre_x[i]) + s * (ys - centre_y[i])) / semi_axes[0]
        v = (-s * (xs - centre_x[i]) + c * (ys - centre_y[i])) / semi_axes[1]
        radius = np.sqrt(u * u + v * v)
        # coverage with a one-pixel anti-aliased rim; exactly 0 outside it
        alpha = np.clip(0.5 - (radius - 1.0) * semi_axes[1], 0.0, 1.0)[..., None]
        stripes = 0.5 + 0.5 * np.sin(7.0 * u + 2.0 * v)[..., None]
        shading = 1.0 - 0.35 * np.clip(radius, 0, 1)[..., None] ** 2
        texture = (colour_a * stripes + colour_b * (1 - stripes)) * shading
        truth[i] = np.round(background)
        frames[i] = np.round(background + alpha * (texture - background))
        masks[i, ..., 0] = cv2.dilate((alpha[..., 0] > 0).astype(np.uint8), margin_kernel)
    return SampleClip(frames=frames, masks=masks, truth=truth, fps=25.0, camera=camera)


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static float32 RGB scene: colour gradients, stripes, shapes and blurred noise."""
    # smooth colour gradients from a coarse random grid
    coarse = rng.uniform(30, 220, size=(4, 6, 3)).astype(np.float32)
    scene = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)

    # two patches of stripes at different angles and periods
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(2):
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 14)
        phase = (np.cos(theta) * xs + np.sin(theta) * ys) * (2 * np.pi / period)
        stripes = np.sin(phase)[..., None] * rng.uniform(25, 45, size=3).astype(np.float32)
        x0, y0 = rng.uniform(0, 0.6) * width, rng.uniform(0, 0.5) * height
        inside = ((xs >= x0) & (xs < x0 + 0.4 * width) & (ys >= y0) & (ys < y0 + 0.5 * height))
        scene += stripes * inside[..., None]

    # shapes with hard edges
    canvas = np.clip(scene, 0, 255)
    size = min(height, width)
    for _ in range(14):
        colour = tuple(float(v) for v in rng.uniform(0, 255, size=3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(canvas, centre, int(rng.uniform(0.04, 0.15) * size), colour, -1,
                       cv2.LINE_AA)
        elif kind == 1:
            half = (rng.uniform(0.03, 0.15, size=2) * size).astype(int)
            cv2.rectangle(canvas, tuple(np.subtract(centre, half).tolist()),
                          tuple(np.add(centre, half).tolist()), colour, -1)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, centre, end, colour, int(rng.integers(2, 5)), cv2.LINE_AA)

    # fine texture: blurred noise, then a slight blur of everything so the warp has no aliasing
    noise = cv2.GaussianBlur(rng.normal(0, 1, size=(height, width, 3)).astype(np.float32),
                             (0, 0), 1.2)
    canvas += noise * 40.0
    canvas = cv2.GaussianBlur(canvas, (0, 0), 0.6)
    return np.clip(canvas, 0, 255).astype(np.float32)
