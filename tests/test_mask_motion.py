"""Maps of the motion the camera does not explain (tfinpaint.masking.motion)."""

import cv2
import numpy as np

from tfinpaint.masking.motion import flows_towards, motion_maps, motion_size, unexplained_motion


def _homography_flow(height, width, homography):
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = np.stack([xs, ys], axis=-1)
    moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(grid.shape)
    return (moved - grid).astype(np.float32)


def test_the_cameras_motion_is_explained_and_an_object_moving_otherwise_is_not():
    height, width = 90, 157  # odd sizes
    # a pan, a slight zoom and a little perspective: one homography
    homography = np.array([[1.02, 0.01, -6.0], [-0.01, 1.02, 2.5], [1e-5, -2e-5, 1.0]])
    flow = _homography_flow(height, width, homography)
    residual = unexplained_motion(flow)
    assert residual.shape == (height, width) and residual.dtype == np.float32
    assert residual.max() < 0.05
    # an object the camera follows: it stays where it is while the scene streams past
    figure = np.zeros((height, width), bool)
    figure[30:60, 70:95] = True
    flow[figure] = 0.0
    residual = unexplained_motion(flow)
    expected = np.linalg.norm(_homography_flow(height, width, homography)[figure], axis=-1)
    np.testing.assert_allclose(residual[figure], expected, atol=0.05)
    assert np.percentile(residual[~figure], 99) < 0.05


def _following_camera(frames=6, shift=5, seed=1):
    """A camera following a red figure past a textured wall: the wall moves `shift` px left a
    frame, the figure stays. Returns the frames and the figure's mask."""
    rng = np.random.default_rng(seed)
    height, width = 121, 203
    wall = rng.integers(0, 255, (height, width + frames * shift, 3)).astype(np.uint8)
    wall = cv2.GaussianBlur(wall, (5, 5), 1.2)
    figure = np.zeros((height, width), np.uint8)
    cv2.ellipse(figure, (100, 60), (16, 28), 0, 0, 360, 1, -1)
    texture = cv2.GaussianBlur(rng.integers(-60, 60, (height, width)).astype(np.float32), (5, 5), 1.2)
    colours = np.clip(np.array([190, 40, 60]) + texture[..., None], 0, 255).astype(np.uint8)
    video = []
    for t in range(frames):
        frame = wall[:, t * shift:t * shift + width].copy()
        frame[figure > 0] = colours[figure > 0]
        video.append(frame)
    return np.stack(video), figure


def test_the_maps_show_the_followed_figure_and_not_the_streaming_wall():
    frames, figure = _following_camera()
    maps = motion_maps(frames, keep=2, size=(121, 203))
    assert maps.shape == (6, 121, 203) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    inner = cv2.erode(figure, np.ones((7, 7), np.uint8)) > 0
    far = cv2.dilate(figure, np.ones((31, 31), np.uint8)) == 0
    for t in range(6):
        assert (maps[t][inner] > 0.5).mean() > 0.9, t
        assert (maps[t][far] < 0.2).mean() > 0.95, t
    np.testing.assert_array_equal(maps[2], maps[3])  # the annotated frame: its neighbour's
    # at another size: resized
    assert motion_maps(frames, keep=0, size=(30, 50)).shape == (6, 30, 50)


def test_a_still_scene_gives_dark_maps():
    frames, _ = _following_camera(shift=0)  # static camera, still figure
    maps = motion_maps(frames, keep=0, size=(121, 203))
    assert maps.max() < 0.5  # the MIN_PEAK floor: flow noise is not scaled up to "moving"


def test_flows_point_towards_the_annotated_frame():
    frames, figure = _following_camera()
    flows = flows_towards(frames, keep=2)
    assert sorted(flows) == [0, 1, 3, 4, 5]
    assert flows[0].shape == (*motion_size(121, 203), 2)
    wall = cv2.dilate(figure, np.ones((31, 31), np.uint8)) == 0
    # after the annotated frame the flow goes back (the wall came from the left: +5 px),
    # before it forward (-5 px)
    assert abs(np.median(flows[4][..., 0][wall]) - 5.0) < 0.5
    assert abs(np.median(flows[0][..., 0][wall]) + 5.0) < 0.5
    assert sorted(flows_towards(frames, keep=2, which=[5])) == [5]
