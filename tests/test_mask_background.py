"""Masks redrawn as what differs from the background the other frames show
(tfinpaint.masking.background)."""

import cv2
import numpy as np
import pytest

from tfinpaint.config import FlowConfig
from tfinpaint.masking.background import colour_distance, fine_size, subtract_background
from tfinpaint.masking.motion import motion_size

# above motion.MOTION_SIDE and odd: the masks go down to the working size and back up
HEIGHT, WIDTH = 245, 463


def _ellipse(shape, cy, cx, ry, rx):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0


def _followed_rider(num_frames=12, pan=10, seed=0):
    """A camera following a rider past a textured wall: the wall streams `pan` px a frame left,
    the rider (a body and a wheel, a ring through which the wall shows) drifts 1 px a frame
    right. Returns uint8 frames [N, H, W, 3], the rider's masks [N, H, W] and the wheels' holes
    (the wall seen through them) [N, H, W]."""
    rng = np.random.default_rng(seed)
    wall = rng.uniform(0, 255, (HEIGHT, WIDTH + pan * num_frames, 3)).astype(np.float32)
    wall = cv2.GaussianBlur(wall, (0, 0), 1.5)
    skin = cv2.GaussianBlur(rng.uniform(-60, 60, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 1.0)
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), np.uint8)
    masks = np.empty((num_frames, HEIGHT, WIDTH), np.uint8)
    holes = np.empty((num_frames, HEIGHT, WIDTH), bool)
    for i in range(num_frames):
        cx = WIDTH * 0.45 + i
        body = _ellipse((HEIGHT, WIDTH), 100, cx, 34, 17)
        hole = _ellipse((HEIGHT, WIDTH), 160, cx + 8, 14, 14)
        wheel = _ellipse((HEIGHT, WIDTH), 160, cx + 8, 24, 24) & ~hole
        rider = body | wheel
        colour = np.float32([205, 60, 45]) + skin[..., None]
        frames[i] = np.clip(np.where(rider[..., None], colour, wall[:, pan * i:pan * i + WIDTH]),
                            0, 255)
        masks[i], holes[i] = rider, hole
    return frames, masks, holes


def _blob(mask, grow):
    """What a tracker gives: the mask grown by `grow` px, its holes filled."""
    grown = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(np.zeros_like(grown), contours, -1, 1, cv2.FILLED)


def _scores(predicted, truth):
    predicted, truth = predicted > 0, truth > 0
    overlap = (predicted & truth).sum()
    return overlap / truth.sum(), overlap / (predicted | truth).sum()


def _subtract(frames, masks, passes=2, fine_side=0):
    return subtract_background(frames, masks, keep=0, settings=FlowConfig(), reach=0.03,
                               threshold=12.0, passes=passes, fine_side=fine_side)


def test_colour_distance_is_the_lab_distance():
    red = np.full((9, 11, 3), (200, 30, 40), np.uint8)
    blue = np.full((9, 11, 3), (20, 40, 210), np.uint8)
    np.testing.assert_array_equal(colour_distance(red, red), 0.0)
    lab = [cv2.cvtColor(image[:1, :1], cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
           for image in (red, blue)]
    np.testing.assert_allclose(colour_distance(red, blue), np.linalg.norm(lab[0] - lab[1]),
                               rtol=1e-5)
    # a pixel's worth of shift on a fine texture counts little: the images are blurred first
    texture = np.random.default_rng(0).integers(0, 255, (40, 40, 3)).astype(np.uint8)
    shifted = np.roll(texture, 1, axis=1)
    raw = np.linalg.norm(cv2.cvtColor(texture, cv2.COLOR_RGB2LAB).astype(np.float32)
                         - cv2.cvtColor(shifted, cv2.COLOR_RGB2LAB).astype(np.float32), axis=-1)
    assert colour_distance(texture, shifted).mean() < 0.6 * raw.mean()


# fine_side: the last pass at the frames' own size (above WIDTH) or at a size between
@pytest.mark.parametrize("fine_side", [0, 1280, 450])
def test_a_blob_around_the_rider_becomes_the_rider_and_the_wall_through_the_wheel_is_left_out(
        fine_side):
    frames, truth, holes = _followed_rider()
    assert motion_size(HEIGHT, WIDTH) != (HEIGHT, WIDTH)
    sizes = {0: motion_size(HEIGHT, WIDTH), 1280: (HEIGHT, WIDTH), 450: (238, 450)}
    assert fine_size(HEIGHT, WIDTH, fine_side) == sizes[fine_side]
    blobs = np.stack([_blob(mask, 8) for mask in truth])
    blobs[0] = truth[0]  # the annotated frame
    redrawn = _subtract(frames, blobs, fine_side=fine_side)
    assert redrawn.shape == truth.shape and redrawn.dtype == np.uint8
    np.testing.assert_array_equal(redrawn[0], truth[0])  # the user's own mask
    before = np.array([_scores(b, t) for b, t in zip(blobs[1:], truth[1:])])
    after = np.array([_scores(r, t) for r, t in zip(redrawn[1:], truth[1:])])
    # the blob holds the rider but is twice his size; redrawn, it is the rider
    assert before[:, 0].min() == 1.0 and before[:, 1].max() < 0.6
    assert after[:, 0].min() >= 0.95, after
    assert after[:, 1].min() >= 0.8, after
    # the wall seen through the wheel is not object
    seen_through = [(r > 0)[h].mean() for r, h in zip(redrawn[1:], holes[1:])]
    assert max(seen_through) < 0.2, seen_through


def test_a_missed_wheel_within_reach_is_found_again():
    frames, truth, _ = _followed_rider()
    # the tracker found the body and the top of the wheel: the wheel's lower part is missed
    missed = truth.copy()
    missed[:, 165:] = 0
    assert np.mean([_scores(m, t)[0] for m, t in zip(missed[1:], truth[1:])]) < 0.9
    missed[0] = truth[0]
    redrawn = _subtract(frames, missed)
    recall = [_scores(r, t)[0] for r, t in zip(redrawn[1:], truth[1:])]
    assert min(recall) >= 0.95, recall


def test_a_mask_over_the_wall_alone_comes_back_empty():
    frames, truth, _ = _followed_rider()
    astray = np.zeros_like(truth)
    astray[:, 30:80, 320:380] = 1  # where only the wall is, every frame
    astray[0] = truth[0]
    redrawn = _subtract(frames, astray, passes=1)
    assert redrawn[1:, 30:80, 320:380].mean() < 0.02
    assert not redrawn[1:].any(axis=0)[:, :300].any()  # nothing appears elsewhere


@pytest.mark.parametrize("passes", [1, 2])
def test_what_no_other_frame_shows_keeps_its_mask(passes):
    """A still camera and a still object: no frame shows what is behind it, so there is nothing
    to tell it from, and its mask stays as it was."""
    frames, truth, _ = _followed_rider(num_frames=4, pan=0)
    frames[:] = frames[0]
    masks = np.repeat(_blob(truth[0], 4)[None], len(frames), axis=0)
    redrawn = _subtract(frames, masks, passes=passes)
    for mask in redrawn[1:]:
        assert _scores(mask, masks[0])[1] >= 0.97
