"""Typed configuration: the one home of the defaults.

The dataclass defaults below are what a run gets with no flags; `configs/default.yaml` restates
the main ones (a test checks that it loads to the same config) and `configs/paper.yaml` holds
the paper's departures from them. A config is built from the defaults, then each YAML file in
order, then dotted overrides (`train.steps=200`). Unknown keys and values of the wrong type are
errors, so a typo never silently runs the default. What each setting means and why its default
is what it is: docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
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
Prefill = Literal["none", "pyramid", "flow", "pyramid+flow"]
# The prefills that need the clip's flow fill (`tfinpaint.fill.flow`), computed outside the graph.
FLOW_PREFILLS = ("flow", "pyramid+flow")
FlowPreset = Literal["ultrafast", "fast", "medium"]
FlowInput = Literal["telea", "pyramid"]
FlowBlend = Literal["nearest", "both"]
Translation = Literal["uniform", "boundary"]
# generator.flow_keep and smooth_share besides a number in [0, 1]: measured per clip, or no layer
FlowKeep = Literal["auto", "none"]
CropPlacement = Literal["random", "hole"]
HeldOut = Literal["holes", "beside", "both"]
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
# Mask propagation: the flow warp alone, the network alone (the paper), the network correcting the
# flow warp of its own previous result, the object followed on the network's probability maps
# (tfinpaint.masking.track), or on the motion the camera does not explain (tfinpaint.masking.motion).
PropagationMethod = Literal["warp", "network", "warp_network", "track", "motion"]


@dataclass
class DataConfig:
    """What the network sees: working resolution, masks, and how translated masks are drawn."""

    # Size the fit works at, px (0 = the video's own); only the hole is brought back to native.
    working_height: int = 240
    working_width: int = 432
    # A pixel is hole where its mask value exceeds this (0-255).
    mask_threshold: int = 0
    # Holes grown by this many px at the video's own resolution, to cover the object's soft edge.
    mask_dilation: int = 3
    # Translated masks (eq. 1-2): "uniform" over the frame, or "boundary" (Appendix A.4): offsets
    # putting the moved mask's centre within the band (px at 480p) of the real mask's boundary
    # are `boundary_weight` times as likely.
    translation: Translation = "uniform"
    boundary_band_y: float = 45.0
    boundary_band_x: float = 80.0
    boundary_weight: float = 5.0
    # Training crops of the working frame, px (0 = the whole frame), grown where needed to hold
    # the largest hole with room around it (`tfinpaint.data.samplers.crop_size`).
    crop_height: int = 0
    crop_width: int = 0
    # Where crops go: "random" (anywhere) or "hole" (around the translated mask).
    crop_placement: CropPlacement = "random"
    # The network's input inside the hole: "none" (zeros, the paper), "pyramid" (a push-pull
    # average of its surroundings), "flow" (what the other frames show there, `flow`) or
    # "pyramid+flow" (the push-pull fill, and the flow fill as 3 more channels the gate may keep).
    prefill: Prefill = "pyramid+flow"
    # With the flow prefill: the translated mask also hides the other frames, moving through them
    # as the mask it was borrowed from moves (a tube), so that the training hole's prefill is as
    # blind as the real hole's (false: it hides frame i only, and the prefill sees behind it).
    translated_tube: bool = True
    # With the flow prefill and "uniform" translation: a translated mask's centre is this many
    # times as likely to land on a moving object (`flow.moving_speed`) as elsewhere (1 = uniform),
    # so that training holes hide moving things, where the flow fill is wrong, about as often as
    # a real hole does. A clip without movers draws uniformly.
    mover_weight: float = 64.0
    # Where `generator.flow_keep` and `smooth_share` ("auto") are measured after the fit:
    # "holes", held-out translated training holes (pixels the loss read in other steps); "beside",
    # a tube of known pixels beside the holes, moving as they move, held out of the whole fit as
    # the real hole is (`tfinpaint.data.masks.beside`; no loss reads it, no input or flow shows it);
    # "both": the tube and the training holes, measured as one set of pixels.
    held_out: HeldOut = "holes"


@dataclass
class FlowConfig:
    """Flow propagation (`tfinpaint.fill.flow`), used when `data.prefill` is "flow"."""

    # OpenCV DIS optical flow preset.
    preset: FlowPreset = "medium"
    # How holes are filled before the flow is measured.
    flow_input: FlowInput = "telea"
    # Drop flow failing the forward-backward consistency check (completed instead).
    check: bool = True
    # Flow within this many px of a hole is not trusted (completed from farther out).
    margin: int = 4
    # "both": the first hit of each direction weighted by 1 / hops; "nearest": the nearer wins.
    blend: FlowBlend = "both"
    # Farthest frame distance a hole pixel's chain follows (0 = the whole video).
    max_hops: int = 0
    # A landing point is a hit when its bilinear weight on known pixels reaches this (0-1].
    min_known: float = 1.0
    # Leave to the push-pull fill where the two directions' hits differ by more than this
    # (mean absolute difference, 0-255 levels; 0 = off).
    max_disagreement: float = 0.0
    # What moves unlike the camera by more than this (px per frame at a 432-px longer side) is
    # a moving object: never a source of colour, its flow completed from the scene (0 = off).
    moving_speed: float = 4.0
    # Add the native flow fill's detail to the network's upsampled fill in the hole.
    native_detail: bool = True


@dataclass
class GeneratorConfig:
    """The network of Appendix A.1 (see tfinpaint.model.generator)."""

    arch: Architecture = "coarse_to_fine"
    # Width unit: channels of the first layer (the paper's 48).
    channels: int = 32
    padding: Padding = "zero"
    # Each stage's output in the hole is g * prefill + (1 - g) * its colour, g in [0, 1] learnt
    # per pixel (for data.prefill: flow or pyramid+flow).
    prefill_gate: bool = False
    # With a flow fill (data.prefill: flow or pyramid+flow), the result in the hole is
    # keep * flow fill + (1 - keep) * the network's: "auto" measures keep per clip after the fit
    # on held-out training holes (tfinpaint.fitting.blend), a number fixes it, "none" has no
    # blend (the network's output as it is). The fit itself always trains the network alone.
    flow_keep: float | FlowKeep = "auto"
    # With a flow fill, then share * a smooth fill of the hole from its edge + (1 - share) * that
    # result (tfinpaint.model.generator.SmoothShare): "auto" measures share with keep, on the
    # same held-out holes; a number fixes it; "none" has no such layer.
    smooth_share: float | FlowKeep = "auto"


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
    # Anti-ambiguity: at most this many relu3_4 positions per example are matched: of the output
    # in the translated mask (source) and of the other frame outside its object (target).
    ambiguity_positions: int = 1024
    ambiguity_target_positions: int = 4096
    # Stabilisation: perturb this many examples of each batch (0 = all, as the paper); each costs
    # an extra generator pass.
    stabilization_examples: int = 2
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)


@dataclass
class TrainConfig:
    """The optimisation schedule and what is logged and saved while fitting."""

    # Steps of the fit (the fit also stops at `time_budget_minutes`).
    steps: int = 20000
    batch_size: int = 1
    # Adam.
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    # Cosine decay to `learning_rate * final_lr_fraction` over the steps or the time budget,
    # whichever ends first (1.0 = constant, the paper).
    final_lr_fraction: float = 0.1
    # "auto" = mixed_bfloat16 on GPUs and on CPUs with AVX512_BF16/AMX, else float32.
    precision: Precision = "auto"
    seed: int = 0
    steps_per_execution: int = 1
    # Every this many steps: checkpoint, log line and scalars, TensorBoard images.
    checkpoint_every: int = 250
    log_every: int = 25
    image_every: int = 500
    # Self-check: reconstruction PSNR of known pixels under fixed held-out translated masks.
    selfcheck_every: int = 100
    selfcheck_frames: int = 4
    # Stop when the self-check PSNR has not improved by `early_stop_min_delta` dB for this many
    # self-checks (0 = never stop early).
    early_stop_patience: int = 0
    early_stop_min_delta: float = 0.05
    # Fitting minutes in all, counted across resumes (0 = none); the result is still written.
    time_budget_minutes: float = 10.0
    # Raise the learning rate linearly over this many first steps (0 = none).
    warmup_steps: int = 0
    # Clip the gradients to this global norm before Adam (0 = no clipping).
    clip_global_norm: float = 0.0
    # A step with a non-finite loss or gradients is skipped; a non-finite loss, or two within
    # `snapshot_every` steps, rolls back to the last snapshot (kept in memory every
    # `snapshot_every` steps) at the rate times `recovery_rate_factor`, at most `max_recoveries`
    # times.
    max_recoveries: int = 3
    recovery_rate_factor: float = 0.5
    snapshot_every: int = 100
    # Debug: stop at the first non-finite stage output, loss, gradient or weight, naming it.
    debug_numerics: bool = False


@dataclass
class InferConfig:
    """How the result is rendered."""

    batch_size: int = 4
    # result/video.mp4 (H.264, yuv420p, with the source's audio); false writes PNG frames only.
    write_video: bool = True
    # Its x264 quality, 0-51, lower is better (18 is visually lossless).
    video_crf: int = 18
    # Also write result/video.mkv, FFV1: lossless, it decodes to the PNG frames bit for bit.
    lossless_video: bool = False


@dataclass
class PropagateConfig:
    """Mask propagation from one annotated frame (paper Sec. 4.2): its method, network and fit.

    The default (`method: motion`) fits nothing: the object is followed on the motion the camera
    does not explain, then each mask is redrawn as what differs from the background the other
    frames show (`background_passes`). `track`, `network` and `warp_network` fit a network, with
    `train.precision` and `train.seed`; configs/propagate.yaml is the paper's schedule.
    """

    method: PropagationMethod = "motion"
    # Working size of the propagation, px (0 = data.working_height/width); never above the video's.
    working_height: int = 120
    working_width: int = 216
    # The propagator: the inpainting generator with a one-channel sigmoid head.
    arch: Architecture = "base"
    channels: int = 16
    steps: int = 20000
    # Fitting minutes (0 = none); the cosine decay to learning_rate * final_lr_fraction ends
    # with it (or with the steps).
    time_budget_minutes: float = 4.0
    final_lr_fraction: float = 0.1
    batch_size: int = 4
    learning_rate: float = 1e-3
    # Eq. 6: weight of the background term (below 1: missing object costs more than extra hole).
    alpha: float = 0.8
    # The pasted object is scaled by a factor in [scale_min, scale_max] and mirrored with
    # probability `flip` before its random translation.
    scale_min: float = 0.9
    scale_max: float = 1.1
    flip: float = 0.5
    # warp_network's prior: the pasted mask shifted by up to prior_shift of the frame's height,
    # grown or shrunk by up to prior_grow px, cut by a band with probability prior_occlusion,
    # empty with probability prior_empty.
    prior_shift: float = 0.05
    prior_grow: int = 2
    prior_occlusion: float = 0.5
    prior_empty: float = 0.1
    # The flow warp (tfinpaint.masking.warp): DIS preset; flow failing the forward-backward check is
    # kept only `warp_interior` px or more inside the mask; warped components farther than
    # `warp_near` px from the bilinear warp are dropped.
    flow_preset: FlowPreset = "medium"
    warp_interior: int = 2
    warp_near: int = 2
    # warp_network: the network's mask is kept within `search_radius` px of the warped prior;
    # where it finds nothing there, within `lost_search_radius` px; else the prior stands.
    search_radius: int = 6
    lost_search_radius: int = 24
    # track and motion (tfinpaint.masking.track): sizes are fractions of the object's size, except
    # `track_ring`, `track_near` (px) and `track_max_search` (of the frame's longer side).
    # The mask moves to the best centre-surround score (ring `track_ring`) within `track_search`;
    # the object is the pixels above `threshold` within `track_grow` of it and components within
    # `track_near`, grown by hysteresis into pixels above `track_low` within `track_low_reach`.
    track_search: float = 0.25
    track_grow: float = 0.15
    track_ring: int = 3
    track_near: int = 2
    track_low: float = 0.2
    track_low_reach: float = 0.03
    # Found area against the median of the last `track_memory` whole ones: from `track_partial`
    # up, whole; from `track_lost`, partly hidden; below, hidden: the mask stands and the search
    # widens by `track_widen` a frame, up to `track_max_search`.
    track_lost: float = 0.3
    track_partial: float = 0.6
    track_memory: int = 5
    track_widen: float = 0.5
    track_max_search: float = 0.1
    # GrabCut refinement (tfinpaint.masking.refine; off): the mask eroded by `refine_core` of the
    # object's size is object, a band of `refine_band` around it probably background;
    # `refine_iterations` rounds; `refine_motion`: the video's motion seeds the cut too.
    refine: bool = False
    refine_core: float = 0.05
    refine_band: float = 0.15
    refine_iterations: int = 3
    refine_motion: bool = True
    # Background passes (tfinpaint.masking.background; 0 = off): each mask, grown by
    # `background_reach` of the frame's longer side, is flow-filled (`flow`), and the object is
    # where the frame is more than `background_threshold` from that fill (Euclidean, 8-bit Lab).
    background_passes: int = 3
    background_reach: float = 0.03
    background_threshold: float = 12.0
    # Above 0: the last pass at the frames' own size, longer side at most this many px (0 = off;
    # the passes otherwise run at a longer side of 432 px).
    background_fine_side: int = 0
    # A pixel is object where the predicted probability exceeds this (0-1).
    threshold: float = 0.5
    log_every: int = 50
    # TensorBoard: predicted masks over `image_frames` frames spread across the clip.
    image_every: int = 500
    image_frames: int = 6


@dataclass
class ProgressiveConfig:
    """The progressive high-resolution ladder (Sec. 4.1, Appendix A.4; see tfinpaint.fitting.progressive).

    Stage 1 is the ordinary fit at `data`'s working size (the base size); each later stage
    doubles the resolution (the last one is the video's own unless `final_*` says otherwise) and
    fits on base-size patches, with the previous stage's upsampled result as extra input.
    """

    # 1 = no ladder: the ordinary single-resolution fit.
    stages: int = 1
    # Steps of stage 2; each further stage fits `stage_steps_increment` more (paper: 45k, 60k).
    stage_steps: int = 45000
    stage_steps_increment: int = 15000
    # Fitting minutes of each later stage (0 = train.time_budget_minutes).
    stage_time_budget_minutes: float = 0.0
    # Size of the last stage, px (0 = the video's own).
    final_height: int = 0
    final_width: int = 0
    # A patch whose translated hole hides fewer known pixels than this per 960x540 of patch (the
    # paper's rule, scaled by the patch's area) is redrawn, up to `placement_tries` times.
    min_hole_pixels: int = 1000
    placement_tries: int = 16
    # Patch centres are this many times likelier within the object boundary's band (data's
    # boundary_band_y/x) than elsewhere.
    patch_boundary_weight: float = 5.0
    # Grid inference: least overlap of grid tiles, px (0 = the paper's grid plus seam tiles), and
    # tiles per network call.
    tile_overlap: int = 0
    tile_batch: int = 4
    # Start each later stage from the previous stage's weights (the prior's input weights at 0).
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
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # the first arm that takes it
        for arm in typing.get_args(kind):
            try:
                return _coerce(value, arm, where)
            except InputError:
                continue
        allowed = " or ".join(", ".join(choices(arm)) if typing.get_origin(arm) is Literal
                              else arm.__name__ for arm in typing.get_args(kind))
        raise InputError(f"config {where}: expected {allowed}, got {value!r}")
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


def uses_flow(prefill: str) -> bool:
    """Whether a `data.prefill` takes the clip's flow fill as an input (`prefilled`)."""
    return prefill in FLOW_PREFILLS


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
    keep, share = config.generator.flow_keep, config.generator.smooth_share
    _require("generator", {"0 <= flow_keep <= 1": isinstance(keep, str) or 0 <= keep <= 1,
                           "0 <= smooth_share <= 1": isinstance(share, str) or 0 <= share <= 1})
    f = config.flow
    if uses_flow(d.prefill) and config.progressive.stages > 1:
        raise InputError(f"config data.prefill: {d.prefill} is not supported with progressive.stages > 1 "
                         "(yet); use one stage or data.prefill: pyramid")
    _require("flow", {"margin >= 0": f.margin >= 0, "max_hops >= 0": f.max_hops >= 0,
                      "0 < min_known <= 1": 0 < f.min_known <= 1,
                      "moving_speed >= 0": f.moving_speed >= 0})


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


# What a key absent from a saved config (a run folder's or an export's config.yaml) meant: these
# keys' defaults were the paper's until 2026-12-05, when they became the default fit's. A saved
# config holds every key of its day, so one written before a key was added (data.prefill,
# 8928514; generator.prefill_gate, 74dd721; data.mover_weight, fac4ca7: uniform holes;
# generator.smooth_share, 2026-12-07: no smooth fill in the result; data.held_out, 2026-12-07:
# measured on training holes) lacks it
# and ran with the value below; the others are listed so that any saved config, even a hand-cut
# one, reads as it did.
SAVED_CONFIG_GAPS = {
    "data": {"prefill": "none", "translated_tube": False, "mover_weight": 1.0,
             "held_out": "holes"},
    "flow": {"moving_speed": 0.0},
    "generator": {"channels": 48, "prefill_gate": False, "flow_keep": "none",
                  "smooth_share": "none"},
    "train": {"steps": 60000, "batch_size": 5, "learning_rate": 2e-4, "final_lr_fraction": 1.0,
              "time_budget_minutes": 0.0, "checkpoint_every": 1000, "log_every": 50,
              "selfcheck_every": 250},
}


def config_from_dict(data: dict) -> Config:
    """The config a saved dict describes; a key it lacks takes `SAVED_CONFIG_GAPS`' value, if
    there is one, else the default. Validated."""
    config = Config()
    _merge(config, SAVED_CONFIG_GAPS)
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
