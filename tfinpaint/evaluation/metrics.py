"""Scores of a filled video against its truth, and the classical baseline they are compared with.

The numpy functions take and return numpy: frames are uint8 [N, H, W, 3] (values 0-255), masks are
[N, H, W, 1] or [N, H, W] with 1 (or any non-zero value) in the hole. PSNR and SSIM are
TensorFlow's own (`tf.image.psnr`, `tf.image.ssim`, max_val 255); the temporal score is a
flow-warping error with OpenCV's DIS optical flow computed on the truth.

`masked_psnr` is the training-time graph metric (the self-check), on tensors in [-1, 1].

PSNR of identical images is infinite; every PSNR here is capped at `PSNR_CAP` (100 dB), so that
scores stay finite, comparable and JSON-safe.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import tensorflow as tf

PSNR_CAP = 100.0
"""dB reported for identical images (and the ceiling of every PSNR here)."""

_MAX_VAL = 255.0
_SSIM_FILTER_SIZE = 11  # tf.image.ssim's default Gaussian window
_MASK_EPS = 1e-6  # keeps an empty mask's mean finite


def _frames(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name} must be [N, H, W, 3], got shape {array.shape}")
    return array


def _hole(masks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean [N, H, W] hole from [N, H, W, 1] / [N, H, W] / [H, W, 1] / [H, W] masks."""
    hole = np.asarray(masks)
    if hole.ndim == 4:
        hole = hole[..., 0]
    if hole.ndim == 2:
        hole = hole[None]
    hole = hole != 0
    if hole.shape != tuple(shape[:3]):
        raise ValueError(f"masks of shape {np.shape(masks)} do not match frames {shape}")
    return hole


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = _frames(pred, "pred"), _frames(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    return pred, truth


def _psnr_of_mse(mse: float) -> float:
    if mse <= 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(_MAX_VAL**2 / mse))


def psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB, capped at `PSNR_CAP`.

    Without a mask: `tf.image.psnr` per frame, averaged over frames. With a mask: the PSNR of the
    mean squared error over the hole pixels of all frames pooled together (the hole is what was
    filled; the known pixels would flatter any method that copies them back).
    """
    pred, truth = _check_pair(pred, truth)
    if mask is None:
        per_frame = tf.image.psnr(tf.constant(pred), tf.constant(truth), max_val=_MAX_VAL).numpy()
        return float(np.mean(np.minimum(per_frame, PSNR_CAP)))
    hole = _hole(mask, pred.shape)
    if not hole.any():
        return float("nan")
    error = pred.astype(np.float64) - truth.astype(np.float64)
    return _psnr_of_mse(float(np.mean(np.square(error[hole]))))


def ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM (11x11 Gaussian window, sigma 1.5: `tf.image.ssim`'s defaults).

    Without a mask: `tf.image.ssim` per frame, averaged over frames. With a mask: the mean of
    `tf.image.ssim`'s local SSIM map over the windows centred in the hole, pooled over all frames
    like the masked PSNR (the map covers only windows that fit in the frame, so hole pixels
    within 5 px of the border do not count; NaN if no hole pixel is that far from the border).
    """
    pred, truth = _check_pair(pred, truth)
    if min(pred.shape[1:3]) < _SSIM_FILTER_SIZE:
        raise ValueError(f"SSIM needs frames of at least {_SSIM_FILTER_SIZE} px, got {pred.shape}")
    if mask is None:
        per_frame = tf.image.ssim(tf.constant(pred), tf.constant(truth), _MAX_VAL).numpy()
        return float(np.mean(per_frame))
    hole = _hole(mask, pred.shape)
    index_map = tf.image.ssim(tf.constant(pred), tf.constant(truth), _MAX_VAL,
                              return_index_map=True).numpy()  # [N, H-10, W-10], valid windows
    margin = _SSIM_FILTER_SIZE // 2
    hole = hole[:, margin:margin + index_map.shape[1], margin:margin + index_map.shape[2]]
    if not hole.any():
        return float("nan")
    return float(np.mean(index_map[hole]))


def _flow(current: np.ndarray, following: np.ndarray) -> np.ndarray:
    """DIS flow from `current` to `following` (RGB uint8): current(x) ~ following(x + flow(x))."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(cv2.cvtColor(current, cv2.COLOR_RGB2GRAY),
                    cv2.cvtColor(following, cv2.COLOR_RGB2GRAY), None)


def warping_error(pred: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> float:
    """Temporal consistency of the fill: mean |pred_t - warp(pred_t+1)| in the hole, in levels.

    The flow is measured on the truth (t -> t+1, OpenCV DIS), so it says where each pixel of
    frame t really went; the next filled frame is warped back along it (bilinear `cv2.remap`) and
    compared with the current filled frame inside frame t's hole, leaving out pixels whose flow
    points outside the frame. Averaged over channels and pixels per pair, then over the pairs
    that have such pixels. 0 for a perfectly consistent fill of a static scene; a fill that
    flickers scores higher. NaN for one-frame clips or an empty hole.
    """
    pred, truth = _check_pair(pred, truth)
    hole = _hole(masks, pred.shape)
    height, width = pred.shape[1:3]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                 np.arange(height, dtype=np.float32))
    errors = []
    for t in range(len(pred) - 1):
        if not hole[t].any():
            continue
        flow = _flow(truth[t], truth[t + 1])
        map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        counted = hole[t] & inside
        if not counted.any():
            continue
        warped = cv2.remap(pred[t + 1].astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        difference = np.abs(pred[t].astype(np.float32) - warped)
        errors.append(float(np.mean(difference[counted])))
    return float(np.mean(errors)) if errors else float("nan")


def telea_baseline(frames: np.ndarray, masks: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fill each frame's hole on its own with OpenCV's Telea inpainting (the classical baseline).

    Known pixels are returned bit-exact; only the hole changes.
    """
    frames = _frames(frames, "frames")
    hole = _hole(masks, frames.shape)
    filled = np.empty_like(frames)
    for t, (frame, frame_hole) in enumerate(zip(frames, hole)):
        if frame_hole.any():
            filled[t] = cv2.inpaint(frame, frame_hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        else:
            filled[t] = frame
    return np.where(hole[..., None], filled, frames).astype(np.uint8)


def score(pred: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """All scores of one filled video: psnr, ssim (whole frames), psnr_hole, ssim_hole (inside
    the hole only) and warping_error (levels, lower is better)."""
    return {
        "psnr": psnr(pred, truth),
        "ssim": ssim(pred, truth),
        "psnr_hole": psnr(pred, truth, masks),
        "ssim_hole": ssim(pred, truth, masks),
        "warping_error": warping_error(pred, truth, masks),
    }


def masked_psnr(prediction: tf.Tensor, target: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """PSNR in dB (images in [-1, 1], so the peak-to-peak range is 2) over the weighted pixels."""
    prediction = tf.cast(prediction, tf.float32)
    channels = tf.cast(tf.shape(prediction)[-1], tf.float32)
    mse = tf.reduce_sum(tf.square(prediction - target) * weight) / (tf.reduce_sum(weight) * channels + _MASK_EPS)
    return 10.0 * tf.math.log(4.0 / tf.maximum(mse, 1e-10)) / tf.math.log(10.0)
