"""Following one object through a video on per-frame probability maps (`propagate.method: track`
on the propagator's maps, `motion` on `masking.motion`'s).

`track_masks` goes frame by frame outwards from the annotated frame. The previous mask, the
template, moves to the best centre-surround score (mean probability under it less the mean in a
ring of `ring` px) within `search` times the object's size (`relocate`). The frame's mask is the
pixels above `threshold` within `grow` times the object's size of the moved template that touch
it, grown by hysteresis into pixels above `low` within `low_reach` of them. Against the object's
running area (median of the last `memory` whole finds): at `partial` or more the object is
whole and its mask is the next template; from `lost` to `partial` it is partly hidden, its mask
joins the moved template, which stays the template; under `lost` it is hidden, the template
stays put and the search widens by `widen` a frame, up to `max_search` of the longer side.
Why these rules and what they were measured to give: docs/mask_propagation.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from tfinpaint.io.video import hole_disc
from tfinpaint.masking.shapes import keep_near


@dataclass
class MaskTrack:
    """Attributes:
        masks: uint8 [N, H, W] 0/1 (the annotated frame's is the annotation).
        found: bool [N], False where the object was not found and the template stood in.
        seconds: the time taken.
    """

    masks: np.ndarray
    found: np.ndarray
    seconds: float


def relocate(probability: np.ndarray, template: np.ndarray, *, radius: int,
             ring: int) -> tuple[int, int]:
    """The shift (dy, dx), each within `radius` px, that puts `template` (uint8 [H, W] 0/1, not
    empty) where the mean of `probability` (float32 [H, W]) under it less its mean over the
    `ring` px around it is highest; on a tie, the smallest shift."""
    ys, xs = np.nonzero(template)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    inside = template[top:bottom, left:right].astype(np.float32)
    margin = radius + ring
    padded = cv2.copyMakeBorder(probability.astype(np.float32), margin, margin, margin, margin,
                                cv2.BORDER_CONSTANT, value=0.0)
    window = padded[top + ring:bottom + 2 * radius + ring, left + ring:right + 2 * radius + ring]
    score = cv2.matchTemplate(window, inside, cv2.TM_CCORR) / inside.sum()
    if ring > 0:
        grown = cv2.copyMakeBorder(inside, ring, ring, ring, ring, cv2.BORDER_CONSTANT, value=0.0)
        around = cv2.dilate(grown, hole_disc(ring)) - grown
        window = padded[top:bottom + 2 * margin, left:right + 2 * margin]
        score -= cv2.matchTemplate(window, around, cv2.TM_CCORR) / max(float(around.sum()), 1.0)
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    # the best score, and among equal ones (within float noise) the nearest
    best = score >= score.max() - 1e-6
    distance = np.where(best, np.hypot(dy, dx), np.inf)
    y, x = np.unravel_index(np.argmin(distance), distance.shape)
    return int(dy[y, x]), int(dx[y, x])


def _shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`mask` moved by (dy, dx) px, what leaves the frame dropped."""
    moved = np.zeros_like(mask)
    height, width = mask.shape
    moved[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return moved


def _object_near(probability: np.ndarray, moved: np.ndarray, *, radius: int, threshold: float,
                 near: int, low: float, low_reach: int) -> np.ndarray:
    """The object pixels near the moved template: above `threshold` within `radius` px of
    `moved`, the components within `near` px of it, grown into the connected pixels above `low`
    within `low_reach` px of them."""
    near_template = cv2.dilate(moved, hole_disc(radius)) > 0
    strong = keep_near(((probability > threshold) & near_template).astype(np.uint8), moved, near)
    if low >= threshold or not strong.any():
        return strong
    weak = (probability > low) & near_template & (cv2.dilate(strong, hole_disc(low_reach)) > 0)
    return keep_near(weak.astype(np.uint8), strong, 0)


def track_masks(probabilities: np.ndarray, frame: int, mask: np.ndarray, *, threshold: float = 0.5,
                search: float = 0.25, grow: float = 0.15, ring: int = 3, lost: float = 0.3,
                partial: float = 0.6, memory: int = 5, widen: float = 0.5, max_search: float = 0.1,
                near: int = 2, low: float = 0.2, low_reach: float = 0.03) -> MaskTrack:
    """Follows `mask` (uint8 [H, W], non-zero = object) of the annotated `frame` on
    `probabilities` (float [N, H, W], the object's probability in every frame) forwards to the
    last frame and backwards to the first; see the module's docstring. `memory`: the running
    area is the median over the last `memory` frames where the object was found whole;
    `max_search`: the widest search, a fraction of the frame's longer side; `near`: the
    components kept touch the moved template grown by `near` px."""
    began = time.perf_counter()
    probabilities = np.asarray(probabilities, np.float32)
    num_frames, height, width = probabilities.shape
    masks = np.zeros((num_frames, height, width), np.uint8)
    found = np.ones(num_frames, bool)
    masks[frame] = np.asarray(mask).reshape(height, width) > 0
    templates = masks.copy()
    for order in (range(frame + 1, num_frames), range(frame - 1, -1, -1)):
        missed = 0  # frames in a row without the object
        areas = [int(masks[frame].sum())]  # where the object was found whole
        for t in order:
            template = templates[t - 1 if t > frame else t + 1]
            ys, xs = np.nonzero(template)
            size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
            reach = min(search * (1 + widen * missed) * size, max_search * max(height, width))
            moved = _shifted(template, *relocate(probabilities[t], template,
                                                 radius=max(1, round(reach)), ring=ring))
            if not moved.any():  # moved out of the frame: keep the last place
                moved = template
            seen = _object_near(probabilities[t], moved, radius=max(1, round(grow * size)),
                                threshold=threshold, near=near, low=low,
                                low_reach=max(1, round(low_reach * size)))
            area = float(np.median(areas[-memory:]))
            if seen.sum() >= partial * area:  # the object, whole
                masks[t] = templates[t] = seen
                areas.append(int(seen.sum()))
            elif seen.sum() >= lost * area:  # partly hidden: the moved template covers the rest
                masks[t] = seen | moved
                templates[t] = moved
            else:  # hidden: the template stands where it was
                found[t] = False
                masks[t] = templates[t] = template
            missed = 0 if found[t] else missed + 1
    return MaskTrack(masks=masks, found=found, seconds=time.perf_counter() - began)
