"""Following one object through a video on the propagator's probability maps
(`propagate.method: track`).

The paper's propagator segments every frame on its own. Fitted for minutes on a CPU it finds most
of the object but also fires on background of the object's colours; the flow warp
(`tfinpaint.mask_warp`) keeps the object's place for a dozen frames, then gives it the motion of
the background the camera pans over, or of a tree passing in front of it. Here the place comes
from the probability maps themselves, frame by frame outwards from the annotated one:

- the previous frame's mask, the template, moves to where the mean probability under it, less
  the mean probability in a ring of `ring` px around it, is highest within `search` times the
  object's size (a centre-surround score: the object, not a larger blob of look-alike
  background, and not the empty middle of a blob);
- the frame's mask is the object pixels (probability above `threshold`) within `grow` times the
  object's size of the moved template, the components touching it, grown into the pixels above
  `low` connected to them (hysteresis: a thin wheel or a dark leg is found at lower
  probability than the body it belongs to);
- where that finds under `lost` of the template's area (the object hidden), the moved template
  stands in, and the search widens by `widen` times for each such frame in a row.

The next frame's template is the mask before the hysteresis: chaining the grown masks lets them
creep into look-alike background frame after frame.

Measured on DAVIS bmx-trees (see `tfinpaint.mask_propagation`), the object's own point motion
(Lucas-Kanade points inside the mask, the mode of their displacements) as the template's move
before the search changed nothing: the maps carry the place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from tfinpaint.mask_warp import keep_near


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


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


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
        around = cv2.dilate(grown, _disk(ring)) - grown
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


def track_masks(probabilities: np.ndarray, frame: int, mask: np.ndarray, *, threshold: float = 0.5,
                search: float = 0.25, grow: float = 0.15, ring: int = 3, lost: float = 0.3,
                widen: float = 0.5, max_search: float = 0.5, near: int = 2,
                low: float = 0.2) -> MaskTrack:
    """Follows `mask` (uint8 [H, W], non-zero = object) of the annotated `frame` on
    `probabilities` (float [N, H, W], the object's probability in every frame) forwards to the
    last frame and backwards to the first; see the module's docstring. `max_search`: the
    widest search, a fraction of the frame's longer side; `near`: the components kept touch the
    moved template grown by `near` px."""
    began = time.perf_counter()
    probabilities = np.asarray(probabilities, np.float32)
    num_frames, height, width = probabilities.shape
    masks = np.zeros((num_frames, height, width), np.uint8)
    found = np.ones(num_frames, bool)
    masks[frame] = np.asarray(mask).reshape(height, width) > 0
    templates = masks.copy()
    for order in (range(frame + 1, num_frames), range(frame - 1, -1, -1)):
        missed = 0  # frames in a row without the object
        for t in order:
            template = templates[t - 1 if t > frame else t + 1]
            ys, xs = np.nonzero(template)
            size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
            reach = min(search * (1 + widen * missed) * size, max_search * max(height, width))
            moved = _shifted(template, *relocate(probabilities[t], template,
                                                 radius=max(1, round(reach)), ring=ring))
            if not moved.any():  # moved out of the frame: keep the last place
                moved = template
            near_template = cv2.dilate(moved, _disk(max(1, round(grow * size))))
            candidate = ((probabilities[t] > threshold) & (near_template > 0)).astype(np.uint8)
            candidate = keep_near(candidate, moved, near)
            found[t] = candidate.sum() >= lost * moved.sum()
            templates[t] = candidate if found[t] else moved
            if low < threshold and found[t]:
                weak = ((probabilities[t] > low) & (near_template > 0)).astype(np.uint8)
                candidate = keep_near(weak, candidate, 0)
            masks[t] = candidate if found[t] else moved
            missed = 0 if found[t] else missed + 1
    return MaskTrack(masks=masks, found=found, seconds=time.perf_counter() - began)
