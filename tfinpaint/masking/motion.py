"""What moves unlike the camera: per-frame maps of motion that the camera's own does not explain
(`propagate.method: motion`), and the flow they come from (shared with `tfinpaint.masking.refine`).

Each frame's DIS flow into its neighbour towards the annotated frame is measured with the
frames' longer side at `MOTION_SIDE` px. The camera's motion is one homography per frame
(`cv2.findHomography`, RANSAC, fitted to a grid of the flow's vectors): for a pan, a tilt or a
zoom over a distant scene it is exact, and with parallax it still takes most of the scene. What
the homography does not explain, the residual `|flow - homography's flow|`, is the motion of
things that move in the scene: a rider the camera follows (still in the frame while the scene
streams past), walkers before a static camera. The map is that residual over `MAP_SCALE` times
the frame's largest residual (its `PEAK_PERCENTILE`th percentile, at least `MIN_PEAK` px), clipped
to [0, 1]: above one half, a pixel moves unlike the camera by more than half as much as the
fastest mover in the frame.

The propagation's default (`propagate.method: motion`): the masks tracked on these maps are
then redrawn as what differs from the background the other frames show
(`tfinpaint.masking.background`), which takes them on bmx-trees to recall / precision / IoU 0.94 /
0.66 / 0.63 undilated in 40 s, on crossing to 0.76 / 0.74 / 0.59. Measured before that, with
`python -m tfinpaint.propagate --set propagate.method=motion` (tracked by
`track.track_masks` at 120x216, refined by `refine` with its motion cue, as the
default then did), scored by `tools/score_masks.py` against the annotations, recall / precision /
IoU over all frames, undilated:
- DAVIS bmx-trees from annotations/00000.png, 80 frames: 0.83 / 0.37 / 0.35 in 40 s in all (0.88 /
  0.34 / 0.33 as written, with the 3 px dilation), against 0.79 / 0.38 / 0.36 and 0.54 / 0.33 /
  0.30 (as written) for two 4-minute fits of `method: track`, then the default (5 minutes in
  all). The maps hold the rider in every frame, also from frame 50 on, where he rides behind the trunk and
  off small and seen from behind and the fitted network's maps lose him.
- DAVIS crossing from annotations/00000.png (three walkers), 52 frames: 0.64 / 0.83 / 0.55 in
  25 s, against 0.75 / 0.65 / 0.53 for `method: track` fitted 2,500 steps (7 minutes).
What they miss (the background passes find most of it again): the wheels (thin, turning, and
the flow smooths them into the background), and
what does not move unlike the camera (a walker standing still); next to the object a halo of
background that the flow's smoothing gives its motion makes the masks about twice the object.
The tracking decides much: the same maps from each frame's flow into the next frame instead
(not towards the annotated one) give 0.78 / 0.48 / 0.43 on bmx-trees (the object is held as
found from frame 50 on instead of as hidden). A static object before a static camera gives the
maps nothing, and DIS cannot follow a small object that moves many times its texture's period
a frame (the tests' generated checkered object): there `method: track` fits the network.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfinpaint.fill.flow import PRESETS, _grid
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
    grid = _grid(*flow.shape[:2])
    source = grid[::GRID_STEP, ::GRID_STEP].reshape(-1, 2)
    target = source + flow[::GRID_STEP, ::GRID_STEP].reshape(-1, 2)
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_THRESHOLD)
    if homography is None:  # degenerate (e.g. a tiny frame): the median motion instead
        camera = np.median(flow.reshape(-1, 2), axis=0)
    else:
        moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(grid.shape)
        camera = moved - grid
    return np.linalg.norm(flow - camera, axis=-1).astype(np.float32)


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
