"""Following one object through a video on the propagator's probability maps
(`propagate.method: track`).

The paper's propagator segments every frame on its own. Fitted for minutes on a CPU it finds most
of the object but also fires on background of the object's colours; the flow warp
(`tfinpaint.masking.warp`) keeps the object's place for a dozen frames, then gives it the motion of
the background the camera pans over, or of a tree passing in front of it. Here the place comes
from the probability maps themselves, frame by frame outwards from the annotated one:

- the previous frame's mask, the template, moves to where the mean probability under it, less
  the mean probability in a ring of `ring` px around it, is highest within `search` times the
  object's size (a centre-surround score: the object, not a larger blob of look-alike
  background, and not the empty middle of a blob);
- the frame's mask is the object pixels (probability above `threshold`) within `grow` times the
  object's size of the moved template, the components touching it, grown into the pixels above
  `low` connected to them and within `low_reach` times the object's size of them (hysteresis:
  a thin wheel or a dark leg is found at lower probability than the body it belongs to; the
  reach keeps it from flooding look-alike background next to the object);
- what that finds is held against the object's running area (the median over the frames where
  it was found whole): at `partial` of it or more, the object is found whole and its mask is the
  next template; from `lost` to `partial` of it, the object is partly hidden, its mask is what
  was found together with the moved template, and the moved template, whole, stays the
  template (a template cut by an occluder would shrink frame after frame, and with it what can
  be found again); under `lost`, the object is hidden and the template stands where it was
  (moving it to the best score on maps without the object walks it onto look-alike
  background), searching around that place each frame until the object is found again; the
  search widens by `widen` times for each such frame in a row, up to `max_search` of the
  frame's longer side (a hidden object comes out near where it went in; farther off, the
  search finds look-alike background).

Measured on DAVIS bmx-trees (see `tfinpaint.masking.spread`), the object's own point motion
(Lucas-Kanade points inside the mask, the mode of their displacements) as the template's move
before the search changed nothing: the maps carry the place. On the probability maps of four
4-minute fits (scored as `tools/score_masks.py` does, 3 px dilation), mean recall / IoU over the
80 frames went from 0.75 / 0.29 (the earlier rules: lost under 0.3 of the moved template's area,
the moved template standing in, the search reaching half the frame, templates cut before the
hysteresis, a hysteresis without reach) to 0.85 / 0.32 with these, each of the four fits gaining
in both. Without the partly hidden state 0.82 / 0.31; with the hidden template moved to the best
score 0.80 / 0.30, or coasting at the object's recent speed 0.77-0.82 / 0.29-0.31; with the
search reaching half the frame 0.78 / 0.29; the hysteresis without its reach 0.87 / 0.27. A
ceiling on the area (above 1.6 times the running area, shrink the reach and raise the threshold
until under it) changed nothing (0.85 / 0.32): the masks are too large from the first frames on
(the network's blobs fill the wheels and the background next to the rider), not creeping later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from tfinpaint.masking.shapes import disk, keep_near


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
        around = cv2.dilate(grown, disk(ring)) - grown
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
    near_template = cv2.dilate(moved, disk(radius)) > 0
    strong = keep_near(((probability > threshold) & near_template).astype(np.uint8), moved, near)
    if low >= threshold or not strong.any():
        return strong
    weak = (probability > low) & near_template & (cv2.dilate(strong, disk(low_reach)) > 0)
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
