"""What moves unlike the camera: per-frame maps of motion that the camera's own does not explain
(`propagate.method: motion`), and the flow they come from (shared with `tfinpaint.masking.refine`).

`flows_towards` measures each frame's DIS flow into its neighbour towards the annotated frame,
with the longer side at `MOTION_SIDE` px. `unexplained_motion` fits the camera's motion as one
homography per frame (RANSAC on a grid of the flow's vectors) and returns the residual
`|flow - homography's flow|`. `motion_maps` scales it by `MAP_SCALE` times the frame's
`PEAK_PERCENTILE`th percentile (at least `MIN_PEAK` px) and clips to [0, 1], a probability map
for `masking.track`: above one half, a pixel moves unlike the camera by more than half as much as
the fastest mover in the frame. An object that moves like the camera gives nothing. What the
maps find and miss: docs/mask_propagation.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfinpaint.fill.flow import PRESETS, camera_residual
from tfinpaint.io.clip import resize_frames

# The flow is measured with the frames' longer side at most this many px.
MOTION_SIDE = 432
# The homography is fitted to every GRID_STEP-th px of the flow in each direction, RANSAC with
# this reprojection threshold (px at MOTION_SIDE).
GRID_STEP = 6
RANSAC_THRESHOLD = 1.0
# The map's scale: MAP_SCALE times the frame's PEAK_PERCENTILE-th percentile of the residual,
# and not under MIN_PEAK px (a frame where nothing moves stays dark).
PEAK_PERCENTILE = 99.5
MAP_SCALE = 1.4
MIN_PEAK = 1.0


def motion_size(height: int, width: int) -> tuple[int, int]:
    """The size flow is measured at: the longer side at most `MOTION_SIDE`."""
    scale = min(1.0, MOTION_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def flows_towards(frames: np.ndarray, keep: int, *, which=None) -> dict[int, np.ndarray]:
    """Each frame's DIS flow (float32 [h, w, 2], px at `motion_size`) into its neighbour towards
    frame `keep` (uint8 frames [N, H, W, 3]), for the frames in `which` (default all but
    `keep`)."""
    size = motion_size(*frames.shape[1:3])
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in resize_frames(frames, *size)]
    dis = cv2.DISOpticalFlow_create(PRESETS["medium"])
    indices = [i for i in range(len(frames)) if i != keep] if which is None else which
    flows = {}
    for index in indices:
        neighbour = index - 1 if index > keep else index + 1
        flows[index] = dis.calc(gray[index], gray[neighbour], None)
    return flows


def unexplained_motion(flow: np.ndarray) -> np.ndarray:
    """float32 [h, w]: how far each pixel's `flow` ([h, w, 2], px) is from the one homography
    that explains most of it (the camera's motion)."""
    return camera_residual(flow, grid_step=GRID_STEP, ransac_threshold=RANSAC_THRESHOLD)


def motion_maps(frames: np.ndarray, keep: int, size: tuple[int, int],
                flows: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """float32 [N, *size] in [0, 1]: every frame's map of motion the camera does not explain
    (see the module's docstring), at `size`; the annotated frame `keep` gets its neighbour's."""
    flows = flows_towards(frames, keep) if flows is None else flows
    maps = np.zeros((len(frames), *size), np.float32)
    for index, flow in flows.items():
        residual = unexplained_motion(flow)
        peak = max(float(np.percentile(residual, PEAK_PERCENTILE)), MIN_PEAK)
        scaled = np.clip(residual / (MAP_SCALE * peak), 0.0, 1.0)
        maps[index] = cv2.resize(scaled, size[::-1], interpolation=cv2.INTER_AREA)
    if len(frames) > 1:
        maps[keep] = maps[keep + 1 if keep + 1 < len(frames) else keep - 1]
    return maps
