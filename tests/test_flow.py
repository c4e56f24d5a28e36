"""tfinpaint.fill.flow: flow fields, propagation of known pixels into holes, no leak for training."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfinpaint.fill import flow
from tfinpaint.fill.prefill import pyramid_fill


def _texture(height, width, seed=0):
    """Smooth random RGB texture, float 0-255."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0) * 3.0 - 255.0


def _translation_video(num_frames, height, width, step, seed=0):
    """frame_t(p) = texture(p + t * step): content moves by -step per frame."""
    dx, dy = step
    pad = num_frames * max(abs(dx), abs(dy)) + 1
    texture = np.clip(_texture(height + 2 * pad, width + 2 * pad, seed), 0, 255)
    return np.stack([texture[pad + t * dy:pad + t * dy + height, pad + t * dx:pad + t * dx + width]
                     for t in range(num_frames)]).astype(np.float32)


def _constant_fields(num_frames, height, width, motion, hole, margin):
    """Exact fields for content moving by `motion` (dx, dy) per frame."""
    forward = np.broadcast_to(np.float32(motion), (num_frames, height, width, 2)).copy()
    backward = -forward
    forward[-1] = 0
    backward[0] = 0
    outside = ~flow.grow(hole[..., 0] != 0, margin)
    forward_reliable = outside[..., None].astype(np.float32)
    backward_reliable = forward_reliable.copy()
    forward_reliable[-1] = 0
    backward_reliable[0] = 0
    return [tf.constant(a) for a in (forward, backward, forward_reliable, backward_reliable)]


def _rect(height, width, top, left, size_y, size_x):
    hole = np.zeros((height, width, 1), np.float32)
    hole[top:top + size_y, left:left + size_x] = 1
    return hole


def test_translation_is_filled_exactly_from_neighbours():
    num_frames, height, width = 5, 40, 56
    frames = _translation_video(num_frames, height, width, step=(2, 1))
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    hole[2] = _rect(height, width, 12, 16, 14, 20)
    fields = _constant_fields(num_frames, height, width, (-2, -1), hole, margin=4)
    filled, hops, found = flow.propagate_frame(frames, 1.0 - hole, *fields, 2, hole[2])
    np.testing.assert_allclose(filled.numpy(), frames[2], atol=1e-3)
    inside = hole[2, ..., 0] > 0
    assert np.all(hops.numpy()[inside] == 1) and np.all(hops.numpy()[~inside] == 0)
    assert np.all(found.numpy() == 1)


def test_translation_finds_the_nearest_frame_that_sees_the_pixel():
    num_frames, height, width = 6, 40, 56
    frames = _translation_video(num_frames, height, width, step=(1, 0))
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    # frames 1-3 all have a hole that moves with the content: frame 1 must look 3 frames ahead
    # (frame 4) or 1 behind (frame 0); frame 0 is nearer
    for t in (1, 2, 3):
        hole[t] = _rect(height, width, 10, 20 - (t - 1), 12, 12)
    fields = _constant_fields(num_frames, height, width, (-1, 0), hole, margin=2)
    filled, hops, _ = flow.propagate_frame(frames, 1.0 - hole, *fields, 2, hole[2], margin=2)
    np.testing.assert_allclose(filled.numpy(), frames[2], atol=1e-3)
    assert set(np.unique(hops.numpy()[hole[2, ..., 0] > 0])) == {2.0}


def test_static_video_is_exact_and_unseen_pixels_fall_back_to_push_pull():
    num_frames, height, width = 4, 33, 47
    frame = np.clip(_texture(height, width, seed=3), 0, 255)
    frames = np.repeat(frame[None], num_frames, axis=0)
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    hole[:, 5:15, 5:15] = 1  # the same place in every frame: nobody sees it
    hole[1, 20:30, 25:40] = 1  # only frame 1: the others see it
    fields = _constant_fields(num_frames, height, width, (0, 0), hole, margin=4)
    filled, hops, found = flow.propagate_frame(frames, 1.0 - hole, *fields, 1, hole[1])
    seen = np.zeros((height, width), bool)
    seen[20:30, 25:40] = True
    np.testing.assert_allclose(filled.numpy()[seen], frame[seen], atol=1e-3)
    assert np.all(hops.numpy()[seen] == 1) and np.all(found.numpy()[seen] == 1)
    unseen = hole[0, ..., 0] > 0
    assert np.all(found.numpy()[unseen] == 0) and np.all(hops.numpy()[unseen] == 0)
    known = np.where(unseen[..., None], 0.0, frame)  # seen pixels were found exactly
    fallback = pyramid_fill(known[None], (hole[1] * unseen[..., None])[None])[0].numpy()
    np.testing.assert_allclose(filled.numpy()[unseen], fallback[unseen], atol=1e-3)


def test_no_leak_of_the_frames_own_hole_pixels_or_flow():
    """Frame i's pixels inside M_i ∪ M'_t and its flow measured there never reach its fill."""
    num_frames, height, width, index, margin = 5, 36, 52, 2, 3
    rng = np.random.default_rng(1)
    frames = rng.uniform(0, 255, (num_frames, height, width, 3)).astype(np.float32)
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    for t in range(num_frames):
        hole[t] = _rect(height, width, 8 + t, 10 + 2 * t, 10, 12)
    translated = np.roll(hole[index], (9, 17), axis=(0, 1))  # M'_t
    step_hole = np.maximum(hole[index], translated)
    smooth = np.stack([cv2.GaussianBlur(rng.normal(0, 3, (height, width, 2)).astype(np.float32),
                                        (0, 0), 4) for _ in range(2 * num_frames)])
    forward, backward = smooth[:num_frames], smooth[num_frames:]
    forward_reliable = (rng.uniform(size=(num_frames, height, width, 1)) > 0.2).astype(np.float32)
    backward_reliable = (rng.uniform(size=(num_frames, height, width, 1)) > 0.2).astype(np.float32)

    def fill(frames, forward, backward, forward_reliable, backward_reliable):
        known = 1.0 - hole
        known[index] = 1.0 - step_hole
        return [t.numpy() for t in flow.propagate_frame(
            frames, known, forward, backward, forward_reliable, backward_reliable, index,
            step_hole, margin=margin)]

    before = fill(frames, forward, backward, forward_reliable, backward_reliable)
    inside = step_hole > 0
    grown = flow.grow(step_hole[None, ..., 0] > 0, margin)[0][..., None]
    frames2, forward2, backward2 = frames.copy(), forward.copy(), backward.copy()
    forward_reliable2, backward_reliable2 = forward_reliable.copy(), backward_reliable.copy()
    frames2[index] = np.where(inside, rng.uniform(0, 255, frames[index].shape), frames[index])
    forward2[index] = np.where(grown, rng.normal(0, 9, forward[index].shape), forward[index])
    backward2[index] = np.where(grown, rng.normal(0, 9, backward[index].shape), backward[index])
    forward_reliable2[index] = np.where(grown, 1.0, forward_reliable[index])
    backward_reliable2[index] = np.where(grown, 1.0, backward_reliable[index])
    after = fill(frames2, forward2, backward2, forward_reliable2, backward_reliable2)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert before[2][inside[..., 0]].mean() > 0.5  # most of the hole was found by flow


def test_graph_mode_with_unknown_shapes_equals_eager():
    num_frames, height, width = 4, 30, 44
    frames = _translation_video(num_frames, height, width, step=(1, 2), seed=5)
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    hole[:, 9:20, 12:30] = 1
    fields = _constant_fields(num_frames, height, width, (-1.3, -0.6), hole, margin=4)
    eager = flow.propagate_frame(frames, 1.0 - hole, *fields, 1, hole[1], max_hops=2)
    any_frames = tf.TensorSpec([None, None, None, None], tf.float32)
    graph = tf.function(
        lambda f, k, a, b, c, d, i, h: flow.propagate_frame(f, k, a, b, c, d, i, h, max_hops=2),
        input_signature=[any_frames] * 6 + [tf.TensorSpec([], tf.int32),
                                            tf.TensorSpec([None, None, None], tf.float32)])
    traced = graph(frames, 1.0 - hole, *fields, tf.constant(1), hole[1])
    for e, g in zip(eager, traced):
        assert e.dtype == g.dtype == tf.float32
        np.testing.assert_allclose(e.numpy(), g.numpy(), atol=1e-4)
    assert [tuple(t.shape) for t in traced] == [(height, width, 3), (height, width, 1),
                                                (height, width, 1)]


@pytest.mark.parametrize("height, width", [(101, 203)])
def test_flow_fill_on_a_dis_measured_translation(height, width):
    """End to end with OpenCV DIS, a frame size that is not a multiple of 8."""
    num_frames = 6
    frames = np.clip(np.rint(_translation_video(num_frames, height, width, step=(3, 1), seed=2)),
                     0, 255).astype(np.uint8)
    masks = np.zeros((num_frames, height, width, 1), np.uint8)
    for t in range(num_frames):
        masks[t, 30:60, 60 + 10 * t:110 + 10 * t] = 1
    fields = flow.flow_fields(frames, masks)
    assert fields.forward.shape == fields.backward.shape == (num_frames, height, width, 2)
    assert fields.forward_reliable.shape == (num_frames, height, width, 1)
    assert fields.forward.dtype == np.float32
    result = flow.flow_fill(frames, masks, fields=fields)
    assert result.filled.dtype == np.uint8 and result.filled.shape == frames.shape
    assert result.hops.dtype == np.int32 and result.found.dtype == np.uint8
    assert result.hops.shape == result.found.shape == masks.shape
    hole = masks[..., 0] > 0
    np.testing.assert_array_equal(result.filled[~hole], frames[~hole])
    assert result.found[hole].mean() > 0.9
    error = result.filled[hole].astype(np.float64) - frames[hole]
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 30.0
    # the DIS fields of a translation by (3, 1) per frame are close to (-3, -1) where reliable
    reliable = fields.forward_reliable[:-1, 10:-10, 10:-10, 0] > 0
    assert np.abs(fields.forward[:-1, 10:-10, 10:-10][reliable] - [-3, -1]).mean() < 0.25


@pytest.mark.parametrize("blend, expected", [("nearest", 40.0), ("both", 30.0)])
def test_blend_weights_each_directions_first_hit_by_inverse_hops(blend, expected):
    """Frame 3's hole is seen 1 frame ahead (colour 40) and 3 behind (colour 0)."""
    num_frames, height, width = 6, 24, 24
    frames = np.broadcast_to((10.0 * np.arange(num_frames, dtype=np.float32))[:, None, None, None],
                             (num_frames, height, width, 3)).copy()
    frames[3] = 123.0
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    hole[1:4, 8:16, 8:16] = 1
    fields = _constant_fields(num_frames, height, width, (0, 0), hole, margin=2)
    filled, hops, found = flow.propagate_frame(frames, 1.0 - hole, *fields, 3, hole[3],
                                               margin=2, blend=blend)
    inside = hole[3, ..., 0] > 0
    np.testing.assert_allclose(filled.numpy()[inside], expected, atol=1e-4)
    assert np.all(hops.numpy()[inside] == 1) and np.all(found.numpy() == 1)


def test_consistency_check_rejects_flow_that_does_not_come_back():
    height, width = 20, 30
    flow_forward = np.zeros((height, width, 2), np.float32)
    flow_forward[..., 0] = 3.0
    reverse = -flow_forward.copy()
    reverse[:, 10:20] = 0.0  # e.g. an occluder in the next frame: this region does not map back
    ok = flow.consistent(flow_forward, reverse)
    assert ok.dtype == bool and ok.shape == (height, width)
    assert ok[:, :7].all() and ok[:, 17:27].all()  # lands on -3: back at the start
    assert not ok[:, 7:17].any()  # lands on the region of zero flow: 3 px off
    assert ok[:, 27:].all()  # leaves the frame: cannot be checked, kept


@pytest.mark.parametrize("max_disagreement, left_to_push_pull", [(0.0, False), (30.0, True)])
def test_where_the_two_directions_disagree_the_pixel_is_left_to_push_pull(max_disagreement,
                                                                          left_to_push_pull):
    """A static scene where something passed through the hole before frame 2 and not after:
    backward finds the passer-by, forward the background. Off, both are blended; with a
    threshold below their difference, the pixel counts as not found and gets push-pull."""
    num_frames, height, width = 5, 33, 47
    frame = np.clip(_texture(height, width, seed=5), 0, 255)
    frames = np.repeat(frame[None], num_frames, axis=0)
    patch = frame[10:20, 15:30]
    frames[1, 10:20, 15:30] = np.where(patch < 128, patch + 100, patch - 100)  # 100 levels off
    frames[1, 10:20, 15:22] = frame[10:20, 15:22]  # ... except its left part: agreement there
    hole = np.zeros((num_frames, height, width, 1), np.float32)
    hole[2, 10:20, 15:30] = 1
    fields = _constant_fields(num_frames, height, width, (0, 0), hole, margin=2)
    filled, hops, found = flow.propagate_frame(frames, 1.0 - hole, *fields, 2, hole[2], margin=2,
                                               max_disagreement=max_disagreement)
    filled, found = filled.numpy(), found.numpy()[..., 0]
    agree = np.zeros((height, width), bool)
    agree[10:20, 15:22] = True
    disagree = np.zeros((height, width), bool)
    disagree[10:20, 22:30] = True
    apart = np.abs(frames[1] - frame).mean(axis=-1)
    assert apart[disagree].min() > 30.0  # the case the threshold is meant for
    np.testing.assert_allclose(filled[agree], frame[agree], atol=1e-3)  # both directions agree
    assert np.all(found[agree] == 1)
    if left_to_push_pull:
        assert np.all(found[disagree] == 0)
        known = np.where(disagree[..., None], 0.0, filled)
        fallback = pyramid_fill(known[None], disagree[None, ..., None].astype(np.float32))[0]
        np.testing.assert_allclose(filled[disagree], fallback.numpy()[disagree], atol=1e-3)
    else:  # both hits one hop away: their average
        assert np.all(found[disagree] == 1)
        np.testing.assert_allclose(filled[disagree], (0.5 * (frames[1] + frame))[disagree],
                                   atol=1e-3)


def _rider_clip(num_frames=12, height=61, width=171, pan=4, speed=14):
    """A camera panning over a scene (content moves by -pan px a frame) while a textured block
    (the rider, rows 15-44, 16 px wide) crosses it the other way at `speed` px a frame. Returns
    (frames float [N, H, W, 3], rider bool [N, H, W], exact fields as `FlowFields`)."""
    frames = _translation_video(num_frames, height, width, step=(pan, 0))
    rider_texture = np.clip(_texture(height, width, seed=7) * 0.5 + 200.0, 0, 255)
    rider = np.zeros((num_frames, height, width), bool)
    forward = np.zeros((num_frames, height, width, 2), np.float32)
    forward[..., 0] = -pan
    backward = -forward
    for t in range(num_frames):
        left = 10 + speed * t
        rider[t, 15:45, left:left + 16] = True
        frames[t][rider[t]] = rider_texture[rider[t]]
        forward[t][rider[t]] = (speed, 0)
        backward[t][rider[t]] = (-speed, 0)
    forward[-1] = 0
    backward[0] = 0
    reliable = np.ones((num_frames, height, width, 1), np.float32)
    forward_reliable, backward_reliable = reliable.copy(), reliable.copy()
    forward_reliable[-1] = 0
    backward_reliable[0] = 0
    return frames, rider, flow.FlowFields(forward, backward, forward_reliable, backward_reliable)


def test_moving_objects_are_what_moves_unlike_the_camera():
    frames, rider, fields = _rider_clip()
    hole = np.zeros(rider.shape + (1,), np.float32)
    movers = flow.moving_objects(fields, hole, speed=4.0)
    # the rider, grown by MOVER_GROWTH px at a 432-px side (1 px here), and nothing else
    assert movers[1:-1][rider[1:-1]].all()
    grown = flow.grow(rider, 1)
    assert not movers[~grown].any()
    assert not flow.moving_objects(fields, hole, speed=0.0).any()
    # 18 px a frame against the scene: below the threshold (scaled to this width) it moves
    assert not flow.moving_objects(fields, hole, speed=18.5 * 432 / 171).any()


def test_a_moving_object_is_never_a_source_and_its_flow_is_not_followed():
    frames, rider, fields = _rider_clip()
    truth = frames.copy()
    hole = np.zeros(rider.shape + (1,), np.float32)
    hole[6, 20:40, 113:126] = 1  # next to where the rider is in frame 7 along the scene's motion
    assert not (rider[6] & (hole[6, ..., 0] > 0)).any()  # the truth there is the scene
    given = np.where(hole > 0, 0, frames).astype(np.uint8)
    inside = hole[6, ..., 0] > 0
    error = {}
    for speed in (0.0, 4.0):
        filled = flow.flow_fill(given, hole, fields=fields, moving_speed=speed).filled
        error[speed] = np.abs(filled[6].astype(np.float32) - np.rint(truth[6]))[inside]
    assert error[0.0].mean() > 20  # the rider pasted into the hole: a ghost
    assert error[4.0].max() <= 1  # the scene from frames 5 and 8, past the rider


def test_moving_speed_off_is_the_plain_fill():
    frames, rider, fields = _rider_clip()
    hole = np.zeros(rider.shape + (1,), np.float32)
    hole[6, 20:40, 113:126] = 1
    given = np.where(hole > 0, 0, frames).astype(np.uint8)
    still = flow.flow_fill(given, hole, fields=fields, moving_speed=0.0)
    known, same = flow._sources(hole, fields, flow.moving_objects(fields, hole, 0.0))
    assert same is fields and np.array_equal(known, 1.0 - hole)
    plain = flow.flow_fill(given, hole, fields=fields)
    np.testing.assert_array_equal(still.filled, plain.filled)
