"""Typed configuration: the single place where defaults live.

A config is built from the dataclass defaults, then each YAML file in order, then dotted overrides
(`train.steps=200`). Unknown keys and values of the wrong type are errors, so a typo never silently
runs the default.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from tfinpaint.errors import InputError

# The choices a config can name. Each is the one list of what its implementation offers: the
# implementations read them from here (`typing.get_args`), and validation checks every field typed
# with one of them.
Architecture = Literal["base", "stacked", "coarse_to_fine"]
Padding = Literal["zero", "reflect"]
Prefill = Literal["none", "pyramid", "flow"]
FlowPreset = Literal["ultrafast", "fast", "medium"]
FlowInput = Literal["telea", "pyramid"]
FlowBlend = Literal["nearest", "both"]
Translation = Literal["uniform", "boundary"]
CropPlacement = Literal["random", "hole"]
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
# Mask propagation: the flow warp alone, the network alone (the paper), the network
# correcting the flow warp of its own previous result, or the object followed on the network's
# probability maps frame by frame (tfinpaint.mask_track).
PropagationMethod = Literal["warp", "network", "warp_network", "track", "motion"]
FlowPreset = Literal["ultrafast", "fast", "medium"]


@dataclass
class DataConfig:
    """What the network sees: working resolution, masks, and how translated masks are drawn."""

    # Working resolution of the fit (0 = the video's own). Frames are resized to it; only the hole
    # is upsampled back and pasted into the native-resolution frame.
    working_height: int = 240
    working_width: int = 432
    # Masks: a pixel is hole where its value exceeds `mask_threshold`; then dilated by this many px
    # at the video's own resolution, so that the object's soft edge, which reaches past a tight
    # annotation, is filled instead of left beside the fill (and copied into it). Measured with
    # tools/dilation_study.py: the bmx-trees rider pasted onto crossing's frames (the truth),
    # faded out with the edge profile measured around crossing's DAVIS annotations (opacity
    # 0.31, 0.14, 0.12 at 1, 2, 3 px outside), mask = the raw annotation, 20 frames at 854x480;
    # hole PSNR (dB) / SSIM over the annotation + 12 px for every D; halo = mean RGB distance to
    # the truth in the 3 px just outside the dilated mask (left visible; the same for any fill);
    # fit = configs/default.yaml, 200 steps at 240x432, no time budget:
    #   D   Telea          fit            halo | edge 2 px wider: Telea  fit    halo | 4 px: Telea
    #   0   22.33 0.694    22.97 0.677    17.9 |                  15.77  18.55  73.6 |       14.77
    #   3   20.63 0.593    21.75 0.590    10.0 |                  20.46  21.63  13.1 |       14.84
    #   6   18.64 0.483    20.37 0.497     8.7 |                  18.64  20.32   9.6 |       18.64
    #   9   17.28 0.386    19.36 0.417     7.5 |                  17.29          8.6 |       17.30
    #   12  16.15 0.308    18.29 0.353     5.8 |                  16.18          7.1 |       16.20
    # Every px of hole beyond what the edge needs costs about 0.4 dB (fit) to 0.5 dB (Telea); a
    # mask that stops short of the edge costs far more (D=0 with a 2 px wider edge: -3.1 dB fit,
    # -4.7 dB Telea, against D=3) and leaves the object's outline. With the edge as measured,
    # 0 px scores 1.2 dB (fit) / 1.7 dB (Telea) above 3 px but keeps a faint outline (halo 17.9
    # vs 10.0); 3 px loses least across both edges; the reference's 12x12 kernel (about 6 px)
    # pays off only for an edge 4 px wider than its annotation. Use more for motion-blurred
    # objects or loose (propagated) masks. (2 of the 10 fits stopped on a NaN loss, at steps 25
    # and 161, mixed_bfloat16 at Adam 1e-3; the table holds their reruns.)
    mask_threshold: int = 0
    mask_dilation: int = 3
    # Translated masks (eq. 1-2): "uniform" over the whole frame (reference implementation) or
    # "boundary" (Appendix A.4): offsets that put the moved mask's centre near the real mask's
    # boundary are `boundary_weight` times as likely. Band sizes are in pixels at 480p, scaled.
    translation: Translation = "uniform"
    boundary_band_y: float = 45.0
    boundary_band_x: float = 80.0
    boundary_weight: float = 5.0
    # Crops of the working frame for training (0 = whole frame). The network is fully convolutional.
    crop_height: int = 0
    crop_width: int = 0
    # Where crops go: "random" (anywhere) or "hole" (around the translated mask, see pipeline).
    crop_placement: CropPlacement = "random"
    # What the network sees inside the hole: "none" (zeros, the paper) or "pyramid" (a push-pull
    # average of the known pixels around it, computed on the device; tfinpaint.data.prefill).
    # "flow": what the other frames show there, followed along optical flow (tfinpaint.flow,
    # settings in `flow`): at training time each example's hole M_i ∪ M'_t is filled from the
    # other frames only; at inference the clip's real holes are, at the native resolution.
    # Stored in the run's config.yaml, so inference and export feed the network the same input.
    prefill: Prefill = "none"


@dataclass
class FlowConfig:
    """Flow propagation (`tfinpaint.flow`), used when `data.prefill` is "flow"."""

    # DIS optical flow preset, and how holes are filled before measuring flow.
    preset: FlowPreset = "medium"
    flow_input: FlowInput = "telea"
    # Reject flow failing the forward-backward consistency check (completed instead).
    check: bool = True
    # Flow within this many px of a hole is not trusted (completed from farther out).
    margin: int = 4
    # "both": the first hit of each direction weighted by 1 / hops; "nearest": the nearer wins.
    blend: FlowBlend = "both"
    # Farthest frame distance a hole pixel's chain follows (0 = the whole video).
    max_hops: int = 0
    # A landing point is a hit when its bilinear weight on known pixels reaches this.
    min_known: float = 1.0
    # Where the forward and backward hits differ by more than this (mean absolute difference,
    # 0-255 levels), the pixel is left to the push-pull fill: something moved there (0 = off).
    max_disagreement: float = 0.0
    # Add the native flow fill's detail (what the working size cannot hold) to the upsampled
    # fill in the hole (tfinpaint.inference.fill_at_working_size).
    native_detail: bool = True


@dataclass
class GeneratorConfig:
    """The network of Appendix A.1 (see tfinpaint.generator)."""

    arch: Architecture = "coarse_to_fine"
    channels: int = 48
    padding: Padding = "zero"
    # each stage's output in the hole is g * prefill + (1 - g) * its colour, g learnt per pixel
    # (tfinpaint.generator.build_generator); for data.prefill: flow
    prefill_gate: bool = False


@dataclass
class PerturbationConfig:
    """The ranges of g, the stabilisation loss's small random perturbation (eq. 4-5, Appendix
    A.3, after Eilertsen et al. 2019), each drawn uniformly (see tfinpaint.data.augment)."""

    # pixels, each axis in [-translation, translation]
    translation: float = 3.0
    # degrees, in [-rotation, rotation]
    rotation: float = 2.0
    # isotropic, in [1 - scale, 1 + scale]
    scale: float = 0.05
    # degrees, in [-shear, shear]
    shear: float = 1.0
    # gain, in [1 - intensity, 1 + intensity]
    intensity: float = 0.05
    # Gaussian kernel sizes, one drawn per example (sigma as OpenCV's default)
    blur_sizes: tuple[int, ...] = (3, 5)


@dataclass
class LossConfig:
    """Loss weights (eq. 7): reconstruction, anti-ambiguity (lambda_a), stabilisation (lambda_s)."""

    reconstruction: float = 1.0
    ambiguity: float = 0.0
    stabilization: float = 0.0
    # VGG-19 ImageNet weights for the anti-ambiguity loss ("" = Keras' cache / download).
    vgg_weights: str = ""
    # Anti-ambiguity: at most this many relu3_4 positions per example are matched, all pairs: of
    # the output inside the translated mask (source) and of the other frame outside its object
    # mask (target). All positions of 480p frames would not fit in memory; see
    # tfinpaint.losses.ambiguity_loss.
    ambiguity_positions: int = 1024
    ambiguity_target_positions: int = 4096
    # Stabilisation: perturb this many examples of each batch (0 = all, as the paper). Each one
    # costs an extra generator pass; examples are random, so the loss is the same in expectation.
    stabilization_examples: int = 2
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)


@dataclass
class TrainConfig:
    """The optimisation schedule and what is logged and saved while fitting."""

    steps: int = 60000
    batch_size: int = 5
    learning_rate: float = 2e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    # Cosine decay to `learning_rate * final_lr_fraction` over `steps`, or over
    # `time_budget_minutes` if that ends first (1.0 = constant, the paper).
    final_lr_fraction: float = 1.0
    # "auto" = mixed_bfloat16 on GPUs and on CPUs with AVX512_BF16/AMX, else float32.
    precision: Precision = "auto"
    seed: int = 0
    steps_per_execution: int = 1
    checkpoint_every: int = 1000
    log_every: int = 50
    image_every: int = 500
    # Self-check: reconstruction PSNR of known pixels under a fixed held-out set of translated masks.
    selfcheck_every: int = 250
    selfcheck_frames: int = 4
    # Stop when the self-check PSNR has not improved by `early_stop_min_delta` dB for this many
    # self-checks (0 = never stop early).
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.05
    # Fitting-time budget in minutes (0 = none), counted across resumes: the fit stops cleanly
    # and still writes its result. A cosine decay (final_lr_fraction < 1) ends when the budget
    # or the steps run out, whichever comes first.
    time_budget_minutes: float = 0.0
    # Raise the learning rate linearly over this many first steps (0 = none).
    warmup_steps: int = 0
    # Clip the gradients to this global norm before Adam (0 = no clipping). Keras' global_clipnorm;
    # the norm is taken in float32 (the gradients of the float32 variables).
    clip_global_norm: float = 0.0
    # A step whose loss or gradients are not finite is skipped. A lone one whose gradients alone
    # were not finite ends there (the weights were not touched); otherwise (the loss not finite,
    # or a second within `snapshot_every` steps) the fit recovers: it rolls back to its last
    # good state (kept in memory every `snapshot_every` steps) and goes on at the learning rate
    # times `recovery_rate_factor`; after `max_recoveries` recoveries the next one stops it.
    max_recoveries: int = 3
    recovery_rate_factor: float = 0.5
    snapshot_every: int = 100
    # Debug: check every step's stage outputs, losses, gradients and updated weights for NaN/inf
    # and stop at the first non-finite one, naming it; log the gradients' global norm each step
    # (TensorBoard numerics/grad_norm) and report its largest value (tfinpaint.numerics).
    debug_numerics: bool = False


@dataclass
class InferConfig:
    """How the result is rendered."""

    batch_size: int = 4
    # result/video.mp4: H.264 (yuv420p, plays everywhere) at this x264 quality (0-51, lower is
    # better; 18 is visually lossless), with the source's audio; false writes PNG frames only.
    write_video: bool = True
    video_crf: int = 18
    # Also write result/video.mkv, FFV1: lossless, it decodes to the PNG frames bit for bit.
    lossless_video: bool = False


@dataclass
class PropagateConfig:
    """Mask propagation from one annotated frame (paper Sec. 4.2): its network and its fit.

    The default fits nothing (`method: motion`, tfinpaint.mask_motion): the object is followed
    on maps of the motion the camera does not explain (tfinpaint.mask_track), and every mask is
    redrawn as what differs from the background the other frames show (`background_passes`,
    tfinpaint.mask_background). On bmx-trees over 80 frames, recall / precision / IoU 0.94 /
    0.66 / 0.63 undilated (0.97 / 0.53 / 0.52 as written, 3 px dilation) in 40 s; on crossing
    0.76 / 0.74 / 0.59. It cannot follow an object that moves like the camera (a still object
    before a still camera): there `method: track` fits a small base network at 120x216 for a
    time budget and follows the object on its probability maps (a 4-minute fit's masks on
    bmx-trees: 0.94 / 0.48 / 0.47 with two background passes, 0.69 / 0.31 / 0.28 without).
    The other methods, and the colour refinement (`refine`, tfinpaint.mask_refine; off by
    default: after the background passes it cuts the wheels again), are measured in
    tfinpaint.mask_propagation.
    configs/propagate.yaml keeps the paper's schedule. The fit runs with `train.precision` and
    `train.seed`.
    """

    method: PropagationMethod = "motion"
    # Working size of the propagation (0 = data.working_height/width); never above the video's.
    working_height: int = 120
    working_width: int = 216
    # The same gated-convolution generator as inpainting, with a one-channel sigmoid head.
    arch: Architecture = "base"
    channels: int = 16
    steps: int = 20000
    # Fitting-time budget in minutes (0 = none): the fit stops on it, and the learning rate's
    # cosine decay to learning_rate * final_lr_fraction ends with it (or with the steps).
    time_budget_minutes: float = 4.0
    final_lr_fraction: float = 0.1
    batch_size: int = 4
    learning_rate: float = 1e-3
    # Eq. 6: weight of the background term. Below 1, calling background "object" costs less than
    # missing object pixels, since extra hole is cheap for the inpainting that follows.
    alpha: float = 0.8
    # The pasted object is scaled by a factor drawn from [scale_min, scale_max] and mirrored with
    # probability `flip` before its random translation.
    scale_min: float = 0.9
    scale_max: float = 1.1
    flip: float = 0.5
    # The prior the network is fitted with (warp_network): the pasted mask shifted by up to
    # prior_shift of the frame's height, grown or shrunk by up to prior_grow px, cut by a
    # vertical band with probability prior_occlusion, left empty with probability prior_empty
    # (data.samplers.PriorJitter).
    prior_shift: float = 0.05
    prior_grow: int = 2
    prior_occlusion: float = 0.5
    prior_empty: float = 0.1
    # The flow warp (tfinpaint.mask_warp): DIS preset; flow failing the forward-backward check
    # is dropped except `warp_interior` px or more inside the mask; components of the warped
    # mask farther than `warp_near` px from the bilinear warp are dropped.
    flow_preset: FlowPreset = "medium"
    warp_interior: int = 2
    warp_near: int = 2
    # warp_network: the network's mask is kept within `search_radius` px of the warped prior;
    # where it finds nothing there, within `lost_search_radius` px; else the prior stands.
    search_radius: int = 6
    lost_search_radius: int = 24
    # track (tfinpaint.mask_track): the previous mask moves to the best centre-surround score
    # (a ring of `track_ring` px) within `track_search` times the object's size; the object is
    # the pixels above `threshold` within `track_grow` times its size of the moved mask, the
    # components within `track_near` px of it, grown into the connected pixels above
    # `track_low` within `track_low_reach` times its size of them (hysteresis; none where
    # track_low >= threshold). Held against the running area (the median over the last
    # `track_memory` frames where it was found whole): from `track_partial` of it up, found
    # whole; from `track_lost`, partly hidden (what was found and the moved mask); under it,
    # hidden: the mask stands where it was, and the search widens by `track_widen` times a
    # frame, up to `track_max_search` of the frame's longer side.
    track_search: float = 0.25
    track_grow: float = 0.15
    track_ring: int = 3
    track_near: int = 2
    track_low: float = 0.2
    track_low_reach: float = 0.03
    track_lost: float = 0.3
    track_partial: float = 0.6
    track_memory: int = 5
    track_widen: float = 0.5
    track_max_search: float = 0.1
    # Every frame's mask but the annotated one redrawn by colour at the frames' own resolution
    # (tfinpaint.mask_refine, GrabCut): the mask eroded by `refine_core` times the object's
    # size is object, the rest of it probably object, a band of `refine_band` times its size
    # around it probably background; `refine_iterations` rounds. `refine_motion`: the video's
    # motion seeds the cut too (pixels of the mask moving like the background around it are
    # probably background, those moving like the object object; tfinpaint.mask_refine).
    refine: bool = False
    refine_core: float = 0.05
    refine_band: float = 0.15
    refine_iterations: int = 3
    refine_motion: bool = True
    # Every frame's mask but the annotated one redrawn as what differs from the background the
    # other frames show (tfinpaint.mask_background): the mask grown by `background_reach` of
    # the frame's longer side is filled by the flow propagation (the `flow` settings), and the
    # object is where the frame's colour is more than `background_threshold` (Euclidean, in
    # OpenCV's 8-bit Lab) from that fill; `background_passes` rounds, each from the last one's
    # masks (0 = off). After the tracking, before `refine`.
    background_passes: int = 3
    background_reach: float = 0.03
    background_threshold: float = 12.0
    # The passes run with the frames' longer side at 432 px (mask_motion.MOTION_SIDE); where
    # this is above 0, the last one at the frames' own size, its longer side at most this many
    # px (bmx-trees at 854: undilated masks better, 0.96 / 0.66 / 0.64, but dilated by 3 px
    # worse, IoU 0.49 against 0.52, and twice the time; see tfinpaint.mask_background).
    background_fine_side: int = 0
    # A pixel is object where the predicted probability exceeds this.
    threshold: float = 0.5
    log_every: int = 50
    # TensorBoard: predicted masks over `image_frames` frames spread across the clip.
    image_every: int = 500
    image_frames: int = 6


@dataclass
class ProgressiveConfig:
    """The progressive high-resolution ladder (Sec. 4.1, Appendix A.4; see tfinpaint.progressive).

    Stage 1 is the ordinary fit at `data`'s working size (the base size); each later stage
    doubles the resolution (the last one is the video's own unless `final_*` says otherwise) and
    fits on base-size patches, with the previous stage's upsampled result as extra input.
    """

    # 1 = no ladder: the ordinary single-resolution fit.
    stages: int = 1
    # Steps of stage 2; each further stage fits `stage_steps_increment` more (paper: 45k, 60k).
    stage_steps: int = 45000
    stage_steps_increment: int = 15000
    # Wall-clock budget of each later stage in minutes (0 = train.time_budget_minutes).
    stage_time_budget_minutes: float = 0.0
    # Size of the last stage (0 = the video's own).
    final_height: int = 0
    final_width: int = 0
    # Patches whose translated hole hides fewer known pixels than this are redrawn (up to
    # `placement_tries` candidates per patch). The paper's rule (App. A.4): at least 1,000 object
    # pixels per 960x540 patch, whatever the frame's size; the threshold belongs to the patch, so
    # with another base size (data.working_*) it is scaled by the patch's area (200 px for the
    # default 432x240 patches). Until this change it was scaled by the FRAME's area from
    # 1,000 px at 3840x2160 (`min_hole_pixels_4k`, 50 px for a 854x480 stage): no longer read.
    min_hole_pixels: int = 1000
    placement_tries: int = 16
    # Patch centres are this many times likelier within the object boundary's band (data's
    # boundary_band_y/x) than elsewhere: boundary-aware sampling.
    patch_boundary_weight: float = 5.0
    # Grid inference: least overlap of grid tiles (0 = the paper's 2x2 / 4x4 grid, seams covered
    # by the seam tiles) and tiles per network call (bounds memory).
    tile_overlap: int = 0
    tile_batch: int = 4
    # Start each later stage from the previous stage's weights (the prior's input weights at
    # zero), rather than from scratch: it then fills like the previous stage from step 0.
    warm_start: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    propagate: PropagateConfig = field(default_factory=PropagateConfig)
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)


def choices(kind: Any) -> tuple[str, ...]:
    """The values a `Literal` config type allows, e.g. `choices(Architecture)`."""
    return typing.get_args(kind)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    if typing.get_origin(kind) is Literal:
        allowed = choices(kind)
        if value not in allowed:
            raise InputError(f"config {where}: {value!r} is not one of {', '.join(allowed)}")
        return value
    if typing.get_origin(kind) is tuple:
        (item, _) = typing.get_args(kind)
        if isinstance(value, str):  # from the command line: "3,5" or "[3, 5]"
            value = yaml.safe_load(value if value.startswith("[") else f"[{value}]")
        if not isinstance(value, (list, tuple)):
            raise InputError(f"config {where}: expected a list, got {value!r}")
        return tuple(_coerce(element, item, where) for element in value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise InputError(f"config {where}: expected true/false, got {value!r}")
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    if isinstance(value, str):  # from the command line
        try:
            return kind(yaml.safe_load(value)) if kind is not str else value
        except (TypeError, ValueError, yaml.YAMLError):
            pass
    raise InputError(f"config {where}: expected {kind.__name__}, got {value!r}")


# Keys that configs no longer have, with what replaced them. Run folders keep the config they
# were made with, so a saved config.yaml that still names one loads, with a warning, instead of
# failing as an unknown key; the key's value is not used.
RETIRED_KEYS = {
    "progressive.min_hole_pixels_4k": "progressive.min_hole_pixels (object pixels per 960x540 "
                                      "patch, the paper's rule)",
}


def _merge(obj: Any, updates: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in updates.items():
        where = f"{prefix}{key}"
        if where in RETIRED_KEYS:
            print(f"warning: config key '{where}' is retired and ignored; see "
                  f"{RETIRED_KEYS[where]}", file=sys.stderr)
            continue
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise InputError(f"config: unknown key '{where}' (known: {known})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(f"config {where}: expected a mapping, got {value!r}")
            _merge(current, value, prefix=f"{where}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], where))


def _require(section: str, rules: dict[str, bool]) -> None:
    broken = [rule for rule, ok in rules.items() if not ok]
    if broken:
        raise InputError(f"config {section}: {', '.join(broken)} required")


def _validate(config: Config) -> None:
    """The ranges the types cannot say; raises InputError naming the keys."""
    t = config.train
    _require("train", {"steps >= 0": t.steps >= 0, "batch_size >= 1": t.batch_size >= 1,
                       "learning_rate > 0": t.learning_rate > 0,
                       "steps_per_execution >= 1": t.steps_per_execution >= 1})
    p = config.progressive
    _require("progressive", {
        "stages >= 1": p.stages >= 1, "stage_steps >= 0": p.stage_steps >= 0,
        "placement_tries >= 1": p.placement_tries >= 1, "tile_batch >= 1": p.tile_batch >= 1,
        "tile_overlap >= 0": p.tile_overlap >= 0, "min_hole_pixels >= 0": p.min_hole_pixels >= 0,
        "patch_boundary_weight > 0": p.patch_boundary_weight > 0})
    m = config.propagate
    _require("propagate", {
        "steps >= 0": m.steps >= 0, "batch_size >= 1": m.batch_size >= 1,
        "learning_rate > 0": m.learning_rate > 0, "alpha > 0": m.alpha > 0,
        "time_budget_minutes >= 0": m.time_budget_minutes >= 0,
        "0 < final_lr_fraction <= 1": 0 < m.final_lr_fraction <= 1,
        "working_height >= 0 and working_width >= 0": min(m.working_height, m.working_width) >= 0,
        "prior_shift >= 0 and prior_grow >= 0": m.prior_shift >= 0 and m.prior_grow >= 0,
        "0 <= search_radius <= lost_search_radius": 0 <= m.search_radius <= m.lost_search_radius,
        "warp_near >= 0": m.warp_near >= 0,
        "track_search, track_grow, track_widen, track_max_search >= 0": min(
            m.track_search, m.track_grow, m.track_widen, m.track_max_search) >= 0,
        "track_ring >= 0 and track_near >= 0": m.track_ring >= 0 and m.track_near >= 0,
        "0 <= track_lost <= track_partial <= 1 and 0 <= track_low <= 1":
        0 <= m.track_lost <= m.track_partial <= 1 and 0 <= m.track_low <= 1,
        "track_low_reach >= 0 and track_memory >= 1": m.track_low_reach >= 0 and m.track_memory >= 1,
        "background_passes >= 0, background_reach > 0 and background_threshold > 0":
        m.background_passes >= 0 and m.background_reach > 0 and m.background_threshold > 0,
        "background_fine_side >= 0": m.background_fine_side >= 0,
        "refine_core, refine_band >= 0 and refine_iterations >= 1": min(
            m.refine_core, m.refine_band) >= 0 and m.refine_iterations >= 1,
        "0 <= prior_occlusion, prior_empty <= 1": 0 <= m.prior_occlusion <= 1 and 0 <= m.prior_empty <= 1,
        "0 < scale_min <= scale_max": 0 < m.scale_min <= m.scale_max,
        "0 <= flip <= 1": 0 <= m.flip <= 1, "0 < threshold < 1": 0 < m.threshold < 1,
        "image_frames >= 1": m.image_frames >= 1,
        "log_every >= 0 and image_every >= 0": m.log_every >= 0 and m.image_every >= 0})
    g = config.losses.perturbation
    _require("losses.perturbation", {
        "ranges >= 0": min(g.translation, g.rotation, g.scale, g.shear, g.intensity) >= 0,
        "scale < 1 and intensity < 1": g.scale < 1 and g.intensity < 1,
        "blur_sizes odd and positive": bool(g.blur_sizes) and all(
            size > 0 and size % 2 for size in g.blur_sizes)})
    _require("train", {"max_recoveries >= 0": t.max_recoveries >= 0,
                       "0 < recovery_rate_factor <= 1": 0 < t.recovery_rate_factor <= 1,
                       "snapshot_every >= 1": t.snapshot_every >= 1})
    _require("infer", {"batch_size >= 1": config.infer.batch_size >= 1,
                       "0 <= video_crf <= 51": 0 <= config.infer.video_crf <= 51})
    d = config.data
    _require("data", {f"{name} >= 0": getattr(d, name) >= 0 for name in (
        "working_height", "working_width", "crop_height", "crop_width")})
    f = config.flow
    if d.prefill == "flow" and config.progressive.stages > 1:
        raise InputError("config data.prefill: flow is not supported with progressive.stages > 1 "
                         "(yet); use one stage or data.prefill: pyramid")
    _require("flow", {"margin >= 0": f.margin >= 0, "max_hops >= 0": f.max_hops >= 0,
                      "0 < min_known <= 1": 0 < f.min_known <= 1})


def parse_overrides(pairs: Sequence[str]) -> dict:
    """`["train.steps=10", "losses.ambiguity=0.1"]` -> nested dict of raw strings."""
    nested: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"--set {pair!r}: expected key=value, e.g. train.steps=200")
        key, value = pair.split("=", 1)
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.strip()
    return nested


def read_yaml(path: str | os.PathLike) -> dict:
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return data


def load_config(yaml_paths: Sequence[str | os.PathLike] = (), overrides: Sequence[str] = ()) -> Config:
    """Defaults, then each YAML file, then dotted `key=value` overrides; validated."""
    config = Config()
    for path in yaml_paths:
        _merge(config, read_yaml(path))
    _merge(config, parse_overrides(overrides))
    _validate(config)
    return config


def config_from_dict(data: dict) -> Config:
    config = Config()
    _merge(config, data)
    _validate(config)
    return config


def with_overrides(config: Config, overrides: Sequence[str]) -> Config:
    """A copy of `config` with dotted `key=value` overrides applied; validated."""
    updated = config_from_dict(to_dict(config))
    _merge(updated, parse_overrides(overrides))
    _validate(updated)
    return updated


def override_keys(overrides: Sequence[str]) -> set[str]:
    """The dotted keys that `key=value` overrides name."""
    return set(_flatten(parse_overrides(overrides)))


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def diff(a: Config, b: Config) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    flat_a, flat_b = _flatten(to_dict(a)), _flatten(to_dict(b))
    return sorted(key for key in flat_a if flat_a[key] != flat_b.get(key))


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def to_yaml(config: Config) -> str:
    """The resolved config as YAML (tuples as lists), as a run folder keeps it."""

    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return list(value) if isinstance(value, tuple) else value

    return yaml.safe_dump(plain(to_dict(config)), sort_keys=False)


# The shipped YAML configs: package data, so that a wheel install has them too; the repository's
# top-level configs/ is a link to this folder, for `--config configs/quick.yaml`.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
