"""Flow warp of one annotated object mask to every frame (`propagate.method: warp`, and the prior
of `warp_network`), and the shape helpers the mask family shares (`shrink_mask`,
`fill_holes`, `keep_near`).

`warp_masks` chains `warp_step` from the annotated frame forwards and backwards, on
`tfinpaint.fill.flow.flow_fields` measured once on the whole frames (no hole). Each hop samples the
previous mask at `x + flow(x)` (bilinear), drops pixels failing the forward-backward check
unless they lie `interior` px inside the mask (DIS' 8x8 patches fail it on thin parts),
thresholds at 0.5, fills the mask's holes, and keeps the components touching the previous mask
moved by the flow and grown by `near` px. Thresholded masks are chained, not soft ones, so the
edge stays sharp over many hops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from tfinpaint.fill.flow import FlowFields, _grid, flow_fields
from tfinpaint.io.video import hole_disc
from tfinpaint.masking.shapes import fill_holes, keep_near


@dataclass
class MaskWarp:
    """Attributes:
        masks: uint8 [N, H, W, 1] 0/1, the warped masks (the annotated frame's is the annotation).
        soft: float32 [N, H, W, 1] in [0, 1], the bilinear warp before thresholding and clean-up.
        seconds: the time taken (flow included).
    """

    masks: np.ndarray
    soft: np.ndarray
    seconds: float


def warp_step(mask: np.ndarray, flow: np.ndarray, reliable: np.ndarray, *, interior: int,
              near: int) -> tuple[np.ndarray, np.ndarray]:
    """One hop: `mask` (uint8 [H, W] 0/1 of the previous frame) into the frame whose `flow`
    ([H, W, 2], into the previous frame) and `reliable` ([H, W], consistency) are given.
    Returns (uint8 [H, W] the cleaned mask, float32 [H, W] the soft warp)."""
    height, width = mask.shape
    soft = cv2.remap(mask.astype(np.float32), _grid(height, width) + flow, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    hard = (soft > 0.5).astype(np.uint8)
    if interior > 0:
        trusted = (reliable > 0) | (cv2.erode(hard, hole_disc(interior)) > 0)
    else:
        trusted = reliable > 0
    hard &= trusted.astype(np.uint8)
    hard = fill_holes(hard)
    return keep_near(hard, (soft > 0.5).astype(np.uint8), near), soft


def warp_masks(frames: np.ndarray, frame: int, mask: np.ndarray, *, preset: str = "medium",
               interior: int = 2, near: int = 2, fields: FlowFields | None = None,
               check: bool = True) -> MaskWarp:
    """Warps `mask` (uint8 [H, W, 1] or [H, W], non-zero = object) of `frames[frame]` (uint8
    [N, H, W, 3]) to every frame along the flow; see the module's docstring. `fields`: the
    video's flow if already measured (`flow_fields` with an empty hole); `check`: whether it is
    measured with the forward-backward check (False: every vector counts as consistent)."""
    began = time.perf_counter()
    frames = np.asarray(frames)
    num_frames, height, width = frames.shape[:3]
    if fields is None:
        fields = flow_fields(frames, np.zeros((num_frames, height, width), np.uint8), preset=preset,
                             margin=0, check=check)
    masks = np.zeros((num_frames, height, width), np.uint8)
    soft = np.zeros((num_frames, height, width), np.float32)
    masks[frame] = np.asarray(mask).reshape(height, width) > 0
    soft[frame] = masks[frame]
    for t in range(frame + 1, num_frames):  # forwards: frame t's flow back into t - 1
        masks[t], soft[t] = warp_step(masks[t - 1], fields.backward[t],
                                      fields.backward_reliable[t, ..., 0], interior=interior, near=near)
    for t in range(frame - 1, -1, -1):  # backwards: frame t's flow on into t + 1
        masks[t], soft[t] = warp_step(masks[t + 1], fields.forward[t],
                                      fields.forward_reliable[t, ..., 0], interior=interior, near=near)
    return MaskWarp(masks=masks[..., None], soft=soft[..., None],
                    seconds=time.perf_counter() - began)
