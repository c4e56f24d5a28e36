"""Following the annotated object on probability maps (tfinpaint.masking.track): where the template
moves, and the masks through an occlusion, behind a post, beside a larger look-alike blob."""

import cv2
import numpy as np

from tfinpaint.masking.track import relocate, track_masks


def _ellipse(shape, centre, axes):
    image = np.zeros(shape, np.uint8)
    cv2.ellipse(image, (int(centre[0]), int(centre[1])), axes, 0, 0, 360, 1, -1)
    return image


def test_relocate_finds_the_object_not_a_larger_blob_beside_it():
    template = _ellipse((80, 120), (50, 40), (8, 12))
    moved = _ellipse((80, 120), (54, 37), (8, 12))  # by (dy -3, dx +4)
    probability = moved * np.float32(0.9)
    probability[20:70, 66:110] = 1.0  # look-alike background, larger than the object, in reach
    assert relocate(probability, template, radius=30, ring=3) == (-3, 4)
    # by the mean under the template alone (no ring), the larger blob would win
    dy, dx = relocate(probability, template, radius=30, ring=0)
    assert dx >= 20
    # nothing anywhere: the template stays
    assert relocate(np.zeros_like(probability), template, radius=10, ring=3) == (0, 0)


def _maps(num_frames=16, hidden=(6, 7, 8)):
    """An ellipse moving 3 px a frame to the right, absent from the maps in `hidden` frames (an
    occluder), beside a static larger blob of look-alike background; soft edges."""
    shape = (72, 128)
    truth = np.stack([_ellipse(shape, (20 + 3 * t, 36), (7, 10)) for t in range(num_frames)])
    probabilities = truth.astype(np.float32) * 0.9
    probabilities[list(hidden)] = 0.0
    probabilities[:, 10:60, 100:124] = 0.8
    probabilities = np.stack([cv2.GaussianBlur(p, (5, 5), 1.0) for p in probabilities])
    return probabilities, truth


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_track_follows_through_an_occlusion_and_goes_backwards():
    probabilities, truth = _maps()
    track = track_masks(probabilities, 0, truth[0])
    assert track.masks.shape == truth.shape and track.masks.dtype == np.uint8
    np.testing.assert_array_equal(track.masks[0], truth[0])
    assert track.found.tolist() == [t not in (6, 7, 8) for t in range(16)]
    for t in [1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 15]:
        assert _iou(track.masks[t] > 0, truth[t] > 0) >= 0.8, t
    for t in (6, 7, 8):  # the last mask stands where it was while the object is hidden, and
        # does not walk onto the look-alike blob
        np.testing.assert_array_equal(track.masks[t], track.masks[5])
        assert not (track.masks[t][:, 95:] > 0).any()
    # from the last frame backwards to the first
    back = track_masks(probabilities, 15, truth[15])
    for t in [0, 1, 2, 3, 4, 5, 9, 10]:
        assert _iou(back.masks[t] > 0, truth[t] > 0) >= 0.8, t


def test_a_partly_hidden_object_keeps_its_whole_template_and_is_found_again():
    # the object passes behind a post (maps empty in columns 50-59): for a few frames only a
    # sliver of it shows, then it comes out whole on the other side
    shape, num_frames = (72, 128), 24
    truth = np.stack([_ellipse(shape, (20 + 3 * t, 36), (7, 10)) for t in range(num_frames)])
    probabilities = truth.astype(np.float32) * 0.9
    probabilities[:, :, 50:60] = 0.0
    probabilities[:, 10:60, 100:124] = 0.8  # look-alike background
    probabilities = np.stack([cv2.GaussianBlur(p, (5, 5), 1.0) for p in probabilities])
    visible = np.array([(t[:, :50].sum() + t[:, 60:].sum()) / t.sum() for t in truth])
    track = track_masks(probabilities, 0, truth[0])
    # hidden where under 0.3 of it shows; found (whole or in part) everywhere else
    assert track.found.tolist() == (visible >= 0.3).tolist()
    for t in range(8, 15):  # a template cut by the post would shrink frame after frame, and
        # the object, out again, would no longer be found; the whole one keeps its size
        assert track.masks[t].sum() >= 0.85 * truth[t].sum(), t
    for t in range(15, num_frames):
        assert _iou(track.masks[t] > 0, truth[t] > 0) >= 0.8, t
        assert not (track.masks[t][:, 99:] > 0).any()  # the object ends at column 96


def test_hysteresis_keeps_thin_parts_connected_to_the_body_only():
    # a body the network is sure of, a thin "wheel spoke" it is less sure of attached to it,
    # and an equally unsure blob of background nearby that is not attached
    shape = (64, 96)
    body = _ellipse(shape, (40, 32), (16, 20))  # 41 px: kept within 0.15 * 41 = 6 px of it
    probabilities = np.repeat((body * 0.9).astype(np.float32)[None], 3, axis=0)
    probabilities[:, 31:33, 55:61] = 0.3  # the spoke, touching the body
    probabilities[:, 40:44, 59:62] = 0.3  # near, not touching
    track = track_masks(probabilities, 0, body, low=0.2, low_reach=0.15)
    assert track.masks[1][31:33, 55:61].all() and not track.masks[1][40:44, 59:62].any()
    strict = track_masks(probabilities, 0, body, low=1.0)
    assert not strict.masks[1][31:33, 57:61].any()
    # the reach (0.03 of the object's size: 1 px here) keeps what is grown next to the body
    near = track_masks(probabilities, 0, body, low=0.2, low_reach=0.03)
    assert near.masks[1][31:33, 55:57].all() and not near.masks[1][31:33, 58:61].any()
    # the grown mask is the next template, and on the same maps it grows no further
    np.testing.assert_array_equal(track.masks[2], track.masks[1])
