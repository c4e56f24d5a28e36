"""Mask propagation from one annotated frame (paper Sec. 4.2): loss, sampler, the propagate
command on a generated clip, its bad input, the scoring tool and `train --first-mask`."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_args
from tfinpaint import propagate, train
from tfinpaint.config import CONFIG_DIR, load_config
from tfinpaint.data.samplers import PasteSampler, PriorJitter
from tfinpaint.fitting.losses import weighted_bce
from tfinpaint.io.video import read_masks, write_frames
from tfinpaint.masking.shapes import fill_holes
from tfinpaint.masking.warp import warp_masks

ROOT = Path(__file__).resolve().parent.parent


def _score_masks():
    spec = importlib.util.spec_from_file_location("score_masks", ROOT / "tools" / "score_masks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_clip(num_frames=8, height=64, width=96, seed=0):
    """A checkered ellipse crossing a panning, textured background; exact object masks."""
    rng = np.random.default_rng(seed)
    pan = 24
    coarse = rng.uniform(30, 220, size=(4, 6, 3)).astype(np.float32)
    scene = cv2.resize(coarse, (width + pan, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 1, (height, width + pan, 3)).astype(np.float32)
    scene += cv2.GaussianBlur(noise, (0, 0), 1.0) * 50
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.empty((num_frames, height, width, 1), np.uint8)
    for i in range(num_frames):
        t = i / (num_frames - 1)
        background = scene[:, int(pan * t):int(pan * t) + width]
        cy, cx = height * (0.35 + 0.3 * t), width * (0.2 + 0.6 * t)
        inside = ((ys - cy) / 9.0) ** 2 + ((xs - cx) / 12.0) ** 2 <= 1.0
        checker = ((np.floor((xs - cx) / 3) + np.floor((ys - cy) / 3)) % 2)[..., None]
        texture = checker * np.float32([230, 60, 40]) + (1 - checker) * np.float32([250, 220, 60])
        frames[i] = np.clip(np.where(inside[..., None], texture, background), 0, 255)
        masks[i, ..., 0] = inside
    return frames, masks


def _write_clip(tmp_path, **kwargs):
    frames, masks = make_clip(**kwargs)
    names = [f"f{i:02d}" for i in range(len(frames))]
    write_frames(tmp_path / "frames", frames, names)
    write_frames(tmp_path / "truth", np.repeat(masks * 255, 3, axis=-1), names)
    return frames, masks, names


QUICK = ["--config", str(CONFIG_DIR / "propagate_quick.yaml"),
         "--set", "data.working_height=0", "--set", "data.working_width=0",
         "--set", "train.precision=float32", "--set", "propagate.channels=8",
         "--set", "propagate.log_every=100", "--set", "propagate.image_every=200",
         # the bars below were set with a constant rate over the 400 steps (with the default
         # decay to 0.1 the network method scored recall 0.890, IoU 0.700)
         "--set", "propagate.final_lr_fraction=1.0"]


# ---------------------------------------------------------------------------------------------
# loss and sampler


def test_weighted_bce_penalises_missed_object_more_and_ignores_the_original_region():
    target = tf.constant([[1.0, 0.0, 1.0]])
    weight = tf.constant([[1.0, 1.0, 0.0]])
    half = tf.fill([1, 3], 0.5)
    # both scored pixels at p = 0.5: (log 2 + 0.8 log 2) / 2; the ignored one adds nothing
    np.testing.assert_allclose(weighted_bce(half, target, weight, 0.8), 0.9 * np.log(2), rtol=1e-5)
    missed = weighted_bce(tf.constant([[0.1, 0.0, 0.0]]), target, weight, 0.8)
    extra = weighted_bce(tf.constant([[1.0, 0.9, 0.0]]), target, weight, 0.8)
    assert float(extra) < float(missed)


def test_paste_sampler_moves_the_object_and_keeps_the_rest_eagerly_and_in_tf_data():
    frames, masks = make_clip(num_frames=2)
    sampler = PasteSampler(frames[0], masks[0], scale_range=(1.0, 1.0), flip=0.0)
    seed = tf.constant([3, 7], tf.int64)
    eager = sampler.sample(seed)
    mapped = next(iter(tf.data.Dataset.from_tensors(seed).map(sampler.sample)))
    for key in eager:
        np.testing.assert_array_equal(eager[key], mapped[key])
    pasted = eager["pasted_mask"].numpy()[..., 0] > 0
    assert pasted.sum() == masks[0].sum()  # the object moved whole (circularly), not resized
    assert not np.array_equal(pasted, masks[0, ..., 0] > 0)
    np.testing.assert_array_equal(eager["pasted_frame"].numpy()[~pasted], frames[0][~pasted])
    np.testing.assert_array_equal(eager["object_mask"], masks[0])
    # the object's own texture lands under the pasted mask
    assert set(map(tuple, eager["pasted_frame"].numpy()[pasted])) <= {(230, 60, 40), (250, 220, 60)}


def test_prior_jitter_spoils_the_pasted_mask_eagerly_and_in_tf_data():
    frames, masks = make_clip(num_frames=2)
    jitter = PriorJitter(shift=0.05, grow=2, occlusion=0.5, empty=0.0)
    sampler = PasteSampler(frames[0], masks[0], scale_range=(1.0, 1.0), flip=0.0, prior=jitter)
    seeds = [tf.constant([s, 1], tf.int64) for s in range(12)]
    mapped = iter(tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(sampler.sample))
    for seed in seeds:
        eager, graph = sampler.sample(seed), next(mapped)
        np.testing.assert_array_equal(eager["prior"], graph["prior"])
        prior, pasted = eager["prior"].numpy() > 0, eager["pasted_mask"].numpy() > 0
        assert prior.dtype == bool and prior.shape == pasted.shape
        # near the pasted object: overlapping it, not far larger than it
        assert (prior & pasted).sum() > 0.3 * pasted.sum() and prior.sum() < 2.5 * pasted.sum()
    lost = PasteSampler(frames[0], masks[0], scale_range=(1.0, 1.0), flip=0.0,
                        prior=PriorJitter(shift=0.0, grow=0, occlusion=0.0, empty=1.0))
    assert lost.sample(seeds[0])["prior"].numpy().sum() == 0


def test_fill_holes_fills_enclosed_background_only():
    ring = np.zeros((9, 9), np.uint8)
    ring[2:7, 2:7] = 1
    ring[3:6, 3:6] = 0
    ring[0, 0] = 0
    filled = fill_holes(ring)
    assert filled[2:7, 2:7].all() and filled.sum() == 25


def test_flow_warp_follows_the_generated_object_for_a_few_frames():
    # 24 frames: the ellipse moves about 2.5 px a frame over a panning background. DIS loses
    # this small checkered object within about 6 hops (its flow there is the background's), so
    # the bars hold the first hops only: the warp is a prior, the network corrects it.
    frames, masks = make_clip(num_frames=24)
    warp = warp_masks(frames, 0, masks[0])
    assert warp.masks.shape == masks.shape and warp.masks.dtype == np.uint8
    np.testing.assert_array_equal(warp.masks[0], masks[0])
    for t in range(1, 5):
        truth, found = masks[t, ..., 0] > 0, warp.masks[t, ..., 0] > 0
        assert (truth & found).sum() / truth.sum() >= 0.75, t  # recall
        assert (truth & found).sum() / (truth | found).sum() >= 0.55, t  # IoU
    # from a later frame it also goes backwards
    middle = warp_masks(frames, 4, masks[4])
    truth, found = masks[0, ..., 0] > 0, middle.masks[0, ..., 0] > 0
    assert (truth & found).sum() / (truth | found).sum() >= 0.6


def test_the_configs_load():
    for name in ("propagate.yaml", "propagate_quick.yaml"):
        config = load_config([CONFIG_DIR / name])
        assert config.propagate.alpha == 0.8
    # without --config: sized for a CPU, on a time budget; the paper's schedule in propagate.yaml
    # (no fit: the motion maps, then the background subtraction; a fit, where chosen, is budgeted)
    default = load_config([]).propagate
    assert default.method == "motion" and 0 < default.time_budget_minutes <= 10
    assert default.background_passes >= 1 and not default.refine
    paper = load_config([CONFIG_DIR / "propagate.yaml"]).propagate
    assert (paper.method, paper.steps, paper.arch, paper.time_budget_minutes) == (
        "network", 6000, "coarse_to_fine", 0)
    assert (paper.background_passes, paper.refine) == (0, False)  # the network's masks as they are


# ---------------------------------------------------------------------------------------------
# the propagate command


@pytest.mark.slow
@pytest.mark.parametrize("method", [
    "network",
    "track",
    # The flow warp loses this small checkered object within a few hops (8 px a frame), and the
    # network, fitted 400 steps with priors shifted by 5% at most, keeps to the lost prior: mean
    # recall 0.16 (0.54 with propagate.prior_shift=0.15, prior_empty=0.3); the background
    # subtraction finds most of it again (0.82, IoU 0.68). Kept as a known gap.
    pytest.param("warp_network", marks=pytest.mark.xfail(
        reason="warp_network loses the generated clip's fast object", strict=True)),
])
def test_propagates_a_moving_object_from_frame_0(tmp_path, capsys, method):
    frames, masks, names = _write_clip(tmp_path)
    write_frames(tmp_path / "first", np.repeat(masks[:1] * 255, 3, axis=-1), ["mask"])
    out, run = tmp_path / "out", tmp_path / "run"
    assert propagate.main(["--video", str(tmp_path / "frames"), "--mask", str(tmp_path / "first/mask.png"),
                           "--out", str(out), "--run-dir", str(run), "--steps", "400",
                           "--set", "data.mask_dilation=0", *QUICK,
                           "--set", f"propagate.method={method}"]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == names
    assert set(np.unique(cv2.imread(str(out / "f03.png"), cv2.IMREAD_GRAYSCALE))) <= {0, 255}

    scores_path = tmp_path / "scores.json"
    assert _score_masks().main(["--pred", str(out), "--truth", str(tmp_path / "truth"),
                                "--exclude", "f00", "--out", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())
    assert scores["count"] == len(names) - 1
    # with the background subtraction (the default): track and network both recall 1.00, IoU
    # 0.81 (before it: track and the colour refinement 0.993 / 0.797, 0.957 / 0.697 unrefined;
    # network at least 0.9 / 0.6)
    assert scores["mean"]["recall"] >= 0.97, scores["mean"]
    assert scores["mean"]["iou"] >= 0.75, scores["mean"]
    assert "propagating 100%" in capsys.readouterr().err  # the fit's progress
    confidence = json.loads((out / "confidence.json").read_text())
    assert sorted(confidence) == names and confidence["f00"] == 1.0
    assert all(0.0 <= value <= 1.0 for value in confidence.values())

    # TensorBoard: the loss and the predicted masks over frames
    tags = set()
    for event in (run / "logs").glob("events.out.tfevents.*"):
        for record in tf.compat.v1.train.summary_iterator(str(event)):
            tags |= {value.tag for value in record.summary.value}
    assert {"loss/segmentation", "propagation/masks_over_frames"} <= tags
    assert json.loads((run / "summary.json").read_text())["steps"] == 400


def make_followed_clip(num_frames=12, height=97, width=151, seed=0):
    """A camera following a rider-like figure: the textured scene streams 5 px a frame left, the
    figure (noise-textured, warm colours) drifts 1 px a frame right and bobs; exact masks."""
    rng = np.random.default_rng(seed)
    pan = 5
    scene = rng.uniform(0, 255, (height, width + pan * num_frames, 3)).astype(np.float32)
    scene = cv2.GaussianBlur(scene, (0, 0), 1.5)
    skin = cv2.GaussianBlur(rng.uniform(-80, 80, (height, width)).astype(np.float32), (0, 0), 1.0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.empty((num_frames, height, width, 1), np.uint8)
    for i in range(num_frames):
        cy, cx = height * 0.5 + 3 * np.sin(i / 2), width * 0.4 + i
        inside = ((ys - cy) / 22.0) ** 2 + ((xs - cx) / 13.0) ** 2 <= 1.0
        figure = np.float32([200, 70, 50]) + skin[..., None]
        frame = np.where(inside[..., None], figure, scene[:, pan * i:pan * i + width])
        frames[i] = np.clip(frame, 0, 255)
        masks[i, ..., 0] = inside
    return frames, masks


@pytest.mark.parametrize("clip, recall, iou", [
    # measured: 1.00 / 0.90 and 0.95 / 0.79 (with the colour refinement instead of the
    # background subtraction, 1.00 / 0.92 on the followed clip; the checkered one lost from
    # frame 8 on, where DIS gives it the background's motion: the subtraction finds it again
    # within reach of the mask)
    (make_followed_clip, 0.95, 0.85),
    (make_clip, 0.9, 0.7),
])
def test_propagates_by_motion_without_a_fit(tmp_path, capsys, clip, recall, iou):
    """propagate.method=motion: no network, the object followed on the maps of the motion the
    camera does not explain, then refined."""
    frames, masks = clip(num_frames=12, height=97, width=151)
    names = [f"f{i:02d}" for i in range(len(frames))]
    write_frames(tmp_path / "frames", frames, names)
    write_frames(tmp_path / "truth", np.repeat(masks * 255, 3, axis=-1), names)
    write_frames(tmp_path / "first", np.repeat(masks[:1] * 255, 3, axis=-1), ["mask"])
    out, run = tmp_path / "out", tmp_path / "run"
    assert propagate.main(["--video", str(tmp_path / "frames"), "--mask",
                           str(tmp_path / "first/mask.png"), "--out", str(out), "--run-dir",
                           str(run), "--set", "data.mask_dilation=0",
                           "--set", "propagate.working_height=97",
                           "--set", "propagate.working_width=151",
                           "--set", "propagate.method=motion"]) == 0
    assert "fitted 0 steps" in capsys.readouterr().out
    scores_path = tmp_path / "scores.json"
    assert _score_masks().main(["--pred", str(out), "--truth", str(tmp_path / "truth"),
                                "--exclude", "f00", "--out", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())
    assert scores["mean"]["recall"] >= recall and scores["mean"]["iou"] >= iou, scores["mean"]
    assert json.loads((run / "summary.json").read_text())["steps"] == 0


BMX = ROOT / ".." / "shared" / "data" / "bmx-trees"


@pytest.mark.slow
@pytest.mark.skipif(not (BMX / "frames").is_dir(), reason=f"{BMX} absent")
def test_the_default_follows_the_bmx_trees_rider(tmp_path, capsys):
    """Real footage at 854x480: the default (no fit) from the first annotation over 30 frames,
    the rider passing behind a trunk (frames 14-22). Measured over frames 1-29: recall 0.93,
    IoU 0.67, 13 s."""
    for kind, suffix in (("frames", ".jpg"), ("annotations", ".png")):
        (tmp_path / kind).mkdir()
        for index in range(30):
            name = f"{index:05d}{suffix}"
            (tmp_path / kind / name).write_bytes((BMX / kind / name).read_bytes())
    out = tmp_path / "out"
    assert propagate.main(["--video", str(tmp_path / "frames"), "--mask",
                           str(tmp_path / "annotations" / "00000.png"), "--out", str(out),
                           "--run-dir", str(tmp_path / "run"),
                           "--set", "data.mask_dilation=0"]) == 0
    assert "fitted 0 steps" in capsys.readouterr().out
    scores_path = tmp_path / "scores.json"
    assert _score_masks().main(["--pred", str(out), "--truth", str(tmp_path / "annotations"),
                                "--exclude", "00000", "--out", str(scores_path)]) == 0
    mean = json.loads(scores_path.read_text())["mean"]
    assert mean["recall"] >= 0.9 and mean["iou"] >= 0.6, mean


def _bad(tmp_path, capsys, argv):
    assert propagate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()
    return err


def _argv(tmp_path, mask, *extra):
    return ["--video", str(tmp_path / "frames"), "--mask", str(mask), "--out", str(tmp_path / "out"),
            "--run-dir", str(tmp_path / "run"), *extra]


def test_bad_first_masks_and_frames_are_one_line_and_exit_2(tmp_path, capsys):
    frames, masks, _ = _write_clip(tmp_path, num_frames=3)
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros(frames.shape[1:3], np.uint8))
    cv2.imwrite(str(tmp_path / "small.png"), masks[0, ::2, ::2, 0] * 255)
    cv2.imwrite(str(tmp_path / "good.png"), masks[0, ..., 0] * 255)
    assert "empty" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "empty.png"))
    assert "48x32 but the frames are 96x64" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "small.png"))
    assert "0..2" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "good.png", "--frame", "3"))
    assert "0..2" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "good.png", "--frame", "-1"))
    assert "propagate" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "good.png",
                                                       "--set", "propagate.alpha=0"))
    for setting in ("background_passes=-1", "background_reach=0", "background_fine_side=-5"):
        assert "background" in _bad(tmp_path, capsys, _argv(tmp_path, tmp_path / "good.png",
                                                            "--set", f"propagate.{setting}"))


def test_train_first_mask_rejects_a_frame_beyond_the_video(tmp_path, capsys):
    frames, masks, _ = _write_clip(tmp_path, num_frames=3)
    cv2.imwrite(str(tmp_path / "good.png"), masks[0, ..., 0] * 255)
    assert train.main(["--video", str(tmp_path / "frames"), "--first-mask", str(tmp_path / "good.png"),
                       "--first-mask-frame", "5", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --first-mask-frame 5") and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_first_mask_propagates_then_inpaints(tmp_path, capsys):
    frames, masks, names = _write_clip(tmp_path, num_frames=4)
    cv2.imwrite(str(tmp_path / "first.png"), masks[1, ..., 0] * 255)
    run = tmp_path / "run"
    assert train.main(["--video", str(tmp_path / "frames"), "--first-mask", str(tmp_path / "first.png"),
                       "--first-mask-frame", "1", "--run-dir", str(run), "--steps", "2",
                       "--set", "data.working_height=0",
                       "--set", "data.working_width=0", *tiny_args()]) == 0
    assert (run / "result" / "video.mp4").stat().st_size > 0
    propagated = read_masks(run / "propagation" / "masks", len(frames), *frames.shape[1:3], names=names)
    np.testing.assert_array_equal(propagated[1] > 0, masks[1] > 0)  # the annotated frame's is the user's
    assert json.loads((run / "source.json").read_text())["masks"] == str(run / "propagation" / "masks")
    # each long stage reports its progress (here in plain lines: the captured stderr is no terminal)
    err = capsys.readouterr().err
    for stage in ("separating from the background 100%", "fitting 100%", "rendering 100%"):
        assert stage in err, err[-2000:]
    assert "\r" not in err


# ---------------------------------------------------------------------------------------------
# tools/score_masks.py


def test_score_masks_per_frame_and_mean(tmp_path, capsys):
    truth = np.zeros((2, 4, 4, 1), np.uint8)
    truth[0, :2, :2] = 1  # 4 px
    truth[1, :2] = 1  # 8 px
    predicted = np.zeros_like(truth)
    predicted[0, :2, :3] = 1  # covers all 4, 2 extra
    predicted[1, :1] = 1  # covers 4 of 8
    for name, masks in (("truth", truth), ("pred", predicted)):
        write_frames(tmp_path / name, np.repeat(masks * 255, 3, axis=-1), ["a", "b"])
    assert _score_masks().main(["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["frames"]["a"] == pytest.approx({"recall": 1.0, "precision": 4 / 6, "iou": 4 / 6})
    assert scores["frames"]["b"] == pytest.approx({"recall": 0.5, "precision": 1.0, "iou": 0.5})
    assert scores["mean"] == pytest.approx({"recall": 0.75, "precision": 5 / 6, "iou": 7 / 12})
    plot = tmp_path / "plots" / "scores.png"
    assert _score_masks().main(["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
                                "--first", "1", "--plot", str(plot)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["mean_first"] == pytest.approx({"recall": 1.0, "precision": 4 / 6, "iou": 4 / 6})
    assert cv2.imread(str(plot)).shape[2] == 3
    assert _score_masks().main(["--pred", str(tmp_path / "nowhere"), "--truth", str(tmp_path / "truth")]) == 2
