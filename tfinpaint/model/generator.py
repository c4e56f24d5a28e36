"""The generator networks of the paper (Appendix A.1): base, stacked and coarse-to-fine.

The layer lists are the reference implementation's (they produced the paper's numbers and
differ in small ways from the paper's listing); the trainable parameter counts with 4 input
channels and `channels=48` pin them: base 1,629,951, stacked 2,895,390, coarse-to-fine 4,051,278.

Notation (the layer specs below write `("G", c, k, s, d, activation)` and `("U", c)`):
`G(c, k, s, d)` is `GatedConv2D`, `U(c)` is `GatedUpConv2D`, `Out` is a 3x3 convolution followed
by tanh. No losses live here.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfinpaint.config import Architecture, choices, uses_flow
from tfinpaint.fill.prefill import apply_prefill, pyramid_fill
from tfinpaint.model.layers import GatedConv2D, GatedUpConv2D, PaddedConv2D

ARCHITECTURES = choices(Architecture)
# Every branch has two stride-2 levels, so the layers see H and W divisible by 4, or the
# upsampled features (2 * 2 * ceil(ceil(H / 2) / 2)) would not line up with the input again.
# `Generator` pads its input up to this multiple and crops every stage's output back.
MULTIPLE = 4
# How `Generator` pads: reflected pixels and hole, as `tfinpaint.fill.render` always padded.
EDGE_PAD_MODE = "REFLECT"
# The smallest input side the networks take: zero padding works down to this; reflection padding
# of a dilation-16 convolution at 1/4 resolution needs 17 px there.
MIN_SIZE = 16
MIN_SIZE_REFLECT = 68
# Later stages of progressive fitting see the previous stage's upsampled result as 3 more
# input channels (the prior).
PRIOR_CHANNELS = 3
# With `data.prefill: pyramid+flow` the flow fill follows the hole as 3 more input channels.
FLOW_CHANNELS = 3
# Jacobi steps per pyramid level of `SmoothShare`'s smooth fill (`pyramid_fill`'s `smoothing`):
# on dog-agility's and crossing's hidden movers 8 scores within 0.1 dB of 800 steps at full size.
SMOOTHING = 8


def min_input_size(padding: str) -> int:
    """The smallest frame side (at working resolution) a network with this padding accepts."""
    return MIN_SIZE_REFLECT if padding == "reflect" else MIN_SIZE


def to_signed(frames: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(frames, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """float [-1, 1] -> uint8, rounded."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def network_input(frames: tf.Tensor, hole: tf.Tensor, prior: tf.Tensor | None = None,
                  prefill: str = "none", prefilled: tf.Tensor | None = None) -> tf.Tensor:
    """The generator's input: the frame with the hole blanked, and the hole mask (4 channels),
    then, in the later stages of progressive fitting (Sec. 4.1), the previous stage's upsampled
    result, the prior, in [-1, 1] (3 more channels).

    `prefill` (`data.prefill`): "none" blanks the hole (zeros, the paper's input); "pyramid"
    fills it with a push-pull average of the known pixels around it (`tfinpaint.fill.prefill`),
    so the network refines a cheap fill instead of inventing one from grey; "flow" takes the hole
    from `prefilled` ([-1, 1], what the other frames show there, `tfinpaint.fill.flow`). Same channels.
    "pyramid+flow" is "pyramid" with the frame filled from `prefilled` as 3 more channels after
    the hole (`FLOW_CHANNELS`, before the prior): the network sees a fill of its own making and
    the flow's, and its gate may keep the flow's."""
    parts = [apply_prefill(frames, hole, prefill, prefilled), hole]
    if prefill == "pyramid+flow":
        parts.append(apply_prefill(frames, hole, "flow", prefilled))
    return tf.concat(parts + ([] if prior is None else [prior]), axis=-1)


def composite(output: tf.Tensor, frames: tf.Tensor, hole: tf.Tensor) -> tf.Tensor:
    """The network's output inside the hole, the frame outside it."""
    return hole * tf.cast(output, tf.float32) + (1.0 - hole) * frames

# One spec per gated layer: ("G", width, kernel, stride, dilation, activation) or ("U", width).
# Widths are in units of `channels` (the paper's cnum = 48): 1 -> 48, 2 -> 96, 4 -> 192,
# "half" -> 24.
_HALF = "half"

# The base network's encoder and dilated middle (everything before the output branch).
_COARSE_TRUNK = (
    ("G", 1, 5, 1, 1, "elu"), ("G", 2, 3, 2, 1, "elu"), ("G", 2, 3, 1, 1, "elu"),
    ("G", 4, 3, 2, 1, "elu"), ("G", 4, 3, 1, 1, "elu"), ("G", 4, 3, 1, 1, "elu"),
    ("G", 4, 3, 1, 2, "elu"), ("G", 4, 3, 1, 4, "elu"), ("G", 4, 3, 1, 8, "elu"),
    ("G", 4, 3, 1, 16, "elu"),
)
# The output branch shared by every stage (followed by Out).
_OUTPUT_BRANCH = (
    ("G", 4, 3, 1, 1, "elu"), ("G", 4, 3, 1, 1, "elu"),
    ("U", 2), ("G", 2, 3, 1, 1, "elu"),
    ("U", 1), ("G", _HALF, 3, 1, 1, "elu"),
)
# The refiner's convolutional branch B (one ReLU layer, as in the reference implementation).
_REFINE_BRANCH_B = (
    ("G", 1, 5, 1, 1, "elu"), ("G", 1, 3, 2, 1, "elu"), ("G", 2, 3, 1, 1, "elu"),
    ("G", 4, 3, 2, 1, "elu"), ("G", 4, 3, 1, 1, "elu"), ("G", 4, 3, 1, 1, "relu"),
    ("G", 4, 3, 1, 1, "elu"), ("G", 4, 3, 1, 1, "elu"),
)
# The coarse-to-fine refiner's dilated branch A.
_REFINE_BRANCH_A = (
    ("G", 1, 5, 1, 1, "elu"), ("G", 1, 3, 2, 1, "elu"), ("G", 2, 3, 1, 1, "elu"),
    ("G", 2, 3, 2, 1, "elu"), ("G", 4, 3, 1, 1, "elu"), ("G", 4, 3, 1, 1, "elu"),
    ("G", 4, 3, 1, 2, "elu"), ("G", 4, 3, 1, 4, "elu"), ("G", 4, 3, 1, 8, "elu"),
    ("G", 4, 3, 1, 16, "elu"),
)


def _width(unit, channels: int) -> int:
    return channels // 2 if unit == _HALF else unit * channels


def _apply(x, specs, *, channels: int, padding: str, prefix: str):
    for i, spec in enumerate(specs, start=1):
        if spec[0] == "U":
            x = GatedUpConv2D(_width(spec[1], channels), padding=padding,
                              name=f"{prefix}_up{i}")(x)
        else:
            _, unit, kernel, stride, dilation, activation = spec
            x = GatedConv2D(_width(unit, channels), kernel, strides=stride,
                            dilation_rate=dilation, padding=padding, activation=activation,
                            name=f"{prefix}_conv{i}")(x)
    return x


def _output(x, *, channels, padding, out_channels, out_activation, prefix, gate=None):
    """A stage's output branch: the output [B, H, W, out_channels]; with `gate` (the input's
    prefilled frame and hole), that output gated against the prefill (`_gated`)."""
    features = _apply(x, _OUTPUT_BRANCH, channels=channels, padding=padding,
                      prefix=f"{prefix}_head")
    x = PaddedConv2D(out_channels, 3, padding=padding, name=f"{prefix}_out")(features)
    # float32 even under mixed precision: losses and compositing read the outputs directly.
    output = keras.layers.Activation(out_activation, dtype="float32", name=f"{prefix}_output")(x)
    if gate is None:
        return output
    g = PaddedConv2D(1, 3, padding=padding, name=f"{prefix}_gate")(features)
    g = keras.layers.Activation("sigmoid", dtype="float32", name=f"{prefix}_gate_output")(g)
    return _gated(output, g, *gate)


def _gated(output, gate, prefilled, hole):
    """Inside the hole, `gate` of the prefilled input and the rest of the stage's `output`;
    outside it the output alone (the network still has to reconstruct the known pixels)."""
    kept = gate * prefilled + (1.0 - gate) * output
    return hole * kept + (1.0 - hole) * output


@keras.saving.register_keras_serializable(package="tfinpaint")
class FlowKeep(keras.layers.Layer):
    """The result in the hole: `keep` of the flow fill and `1 - keep` of the network's output;
    outside the hole the output as it is. `keep` is a weight, not trained: the fit sets it after
    training (`tfinpaint.fitting.blend`), so checkpoints and exports carry it; 0 until then.
    In training (`training=True`) the network's output passes as it is: the network learns
    alone, whatever share an earlier fit measured."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.keep = self.add_weight(shape=(), initializer="zeros", trainable=False, name="keep")

    def call(self, inputs, training=None):
        output, flow, hole = (keras.ops.cast(x, "float32") for x in inputs)
        if training:
            return output
        return _gated(output, self.keep, flow, hole)


def flow_keep_layer(generator: keras.Model) -> FlowKeep | None:
    """The generator's `FlowKeep` layer, None where it has none (`generator.flow_keep: none`, no
    flow fill, or a network built before the layer existed)."""
    return next((layer for layer in generator.layers if isinstance(layer, FlowKeep)), None)


@keras.saving.register_keras_serializable(package="tfinpaint")
class SmoothShare(keras.layers.Layer):
    """The result in the hole: `share` of a smooth fill of the hole from its edge (`pyramid_fill`
    with `smoothing` Jacobi steps per level, near the harmonic fill) and `1 - share` of what
    comes in; outside the hole the input as it is. Where the hole hides a moving object that no
    frame shows there, the network and the flow fill paste scenery, and a share of the smooth
    guess errs less. Like `FlowKeep`, `share` is a weight set after the fit
    (`tfinpaint.fitting.blend`), 0 until then, and training passes the input through."""

    def __init__(self, smoothing: int = SMOOTHING, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.smoothing = int(smoothing)

    def build(self, input_shape):
        self.share = self.add_weight(shape=(), initializer="zeros", trainable=False, name="share")

    def call(self, inputs, training=None):
        output, frame, hole = (keras.ops.cast(x, "float32") for x in inputs)
        if training:
            return output
        smooth = pyramid_fill(frame, hole, smoothing=self.smoothing)
        return _gated(output, self.share, smooth, hole)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


def smooth_share_layer(generator: keras.Model) -> SmoothShare | None:
    """The generator's `SmoothShare` layer, None where it has none (`generator.smooth_share:
    none`, no flow fill, or a network built before the layer existed)."""
    return next((layer for layer in generator.layers if isinstance(layer, SmoothShare)), None)


@keras.saving.register_keras_serializable(package="tfinpaint")
class Generator(keras.Model):
    """A functional model for inputs of any H and W that always returns the list of stage outputs.

    Any size: the layers need H and W divisible by `MULTIPLE`, so the call pads the input once
    (bottom and right, `EDGE_PAD_MODE`), runs every stage at that one size (the refiner's
    composite `y1 * hole + x * (1 - hole)` included) and crops each stage's output back to the
    input's H and W. Sizes that already divide `MULTIPLE` are neither padded nor cropped. The
    padding lives here rather than in a layer so that the layer list, and with it the
    checkpoints of earlier runs, stays as it was.

    Keras unpacks a functional model's one-element output list into a bare tensor; the base
    network would then differ in kind from the two-stage ones. This subclass keeps the list, so
    callers can always take `outputs[-1]` as the final result and put a loss on every stage.
    Build it with `build_generator`.
    """

    def call(self, inputs, training=None, mask=None, **kwargs):
        padded, size = pad_to_multiple(inputs, MULTIPLE, mode=EDGE_PAD_MODE)
        outputs = super().call(padded, training=training, mask=mask, **kwargs)
        return [crop_to(output, size) for output in _as_list(outputs)]

    def compute_output_spec(self, inputs, training=None, mask=None):
        batch, height, width, channels = inputs.shape
        padded = keras.KerasTensor((batch, _round_up(height), _round_up(width), channels),
                                   dtype=inputs.dtype)
        specs = _as_list(super().compute_output_spec(padded, training=training, mask=mask))
        return [keras.KerasTensor((batch, height, width, *spec.shape[3:]), dtype=spec.dtype)
                for spec in specs]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _round_up(size, multiple: int = MULTIPLE):
    return None if size is None else -(-size // multiple) * multiple


def build_generator(arch: str = "coarse_to_fine", *, channels: int = 48, padding: str = "zero",
                    in_channels: int = 4, out_channels: int = 3, out_activation: str = "tanh",
                    prefill_gate: bool = False, flow_channels: bool = False,
                    flow_keep: bool = False, smooth_share: bool = False,
                    name: str | None = None) -> keras.Model:
    """Build one of the paper's generators as a functional `keras.Model`.

    Args:
        arch: "base", "stacked" or "coarse_to_fine" (the paper's default).
        channels: the width unit (the paper's cnum, 48); every width scales with it, so it must
            be divisible by 4 (the last gated layer has channels // 2 outputs, split in two).
        padding: "zero" (the reference implementation's default) or "reflect" (the paper's).
            Reflection with dilation 16 at the quarter-resolution level needs inputs of at least
            68 px.
        in_channels: input channels. [0:3] are the masked frame `frame * (1 - hole)` in [-1, 1],
            [3] the hole mask (1 = hole); any further channels are extra conditioning (the
            upsampled prior of progressive high resolution), seen by the first stage only.
        out_channels: channels of each stage's output (3 for RGB; 1 for mask propagation).
        out_activation: the output activation ("tanh"; "sigmoid" for a mask).
        prefill_gate: each stage also predicts a gate g in (0, 1) per pixel, and its output in
            the hole is g * prefill + (1 - g) * its own colour, the prefill being the input's
            channels 0:3 there (`data.prefill`: with "flow", what the other frames show). The
            network learns where to keep the propagated colour as it is and where to replace
            it; outside the hole the output is the network's own. RGB outputs only.
        flow_channels: channels 4:7 hold the flow fill (`data.prefill: pyramid+flow`), and the
            gate keeps those instead of channels 0:3 (the push-pull fill). Needs in_channels >= 7.
        flow_keep: the last stage's output passes through `FlowKeep`, which keeps its weight's
            share of the flow fill (channels 4:7 with flow_channels, else 0:3) in the hole.
        smooth_share: then through `SmoothShare`, which blends its weight's share of a smooth
            fill of the hole from the frame's known pixels (channels 0:3 outside the hole).
        name: the model's name (defaults to `arch`).

    Returns:
        A `Generator` (a functional `keras.Model`) taking `[batch, H, W, in_channels]` of any H
        and W (at least `MULTIPLE`; 68 with "reflect"), and returning a list of float32 stage
        outputs `[batch, H, W, out_channels]`: `[y1]` for "base", `[y1, y2]` (coarse, refined)
        for the two-stage networks. The refiner sees the composite `y1 * hole + x * (1 - hole)`,
        where x is the masked frame (channels 0:3), formed at the padded size (see `Generator`).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if channels % 4 or channels <= 0:
        raise ValueError(f"channels must be a positive multiple of 4, got {channels}")
    if in_channels < 4:
        raise ValueError(f"in_channels must be at least 4 (masked RGB + hole), got {in_channels}")
    if flow_channels and in_channels < 4 + FLOW_CHANNELS:
        raise ValueError(f"flow_channels needs in_channels >= {4 + FLOW_CHANNELS}, got {in_channels}")
    if (prefill_gate or flow_keep or smooth_share) and out_channels != 3:
        raise ValueError("prefill_gate, flow_keep and smooth_share blend RGB outputs with an RGB fill: "
                         f"out_channels must be 3, got {out_channels}")
    if arch != "base" and out_channels not in (1, 3):
        raise ValueError("a two-stage generator composites its first output over the 3 frame "
                         f"channels, so out_channels must be 1 or 3, got {out_channels}")
    common = dict(channels=channels, padding=padding)
    head = dict(out_channels=out_channels, out_activation=out_activation)

    inputs = keras.Input(shape=(None, None, in_channels), name="masked_frame_and_hole")
    # coarse stage: the base network
    masked_frame = inputs[..., 0:3]
    hole = inputs[..., 3:4]
    features = _apply(inputs, _COARSE_TRUNK, **common, prefix="coarse")
    kept = inputs[..., 4:4 + FLOW_CHANNELS] if flow_channels else masked_frame
    gate = (kept, hole) if prefill_gate else None
    coarse = _output(features, **common, **head, prefix="coarse", gate=gate)
    outputs = [coarse]

    if arch != "base":
        # refinement stage on the composite: known pixels from the input, the hole from y1
        composite = coarse * hole + masked_frame * (1.0 - hole)
        features = _apply(composite, _REFINE_BRANCH_B, **common, prefix="refine_b")
        if arch == "coarse_to_fine":
            dilated = _apply(composite, _REFINE_BRANCH_A, **common, prefix="refine_a")
            features = keras.layers.Concatenate(name="refine_concat")([dilated, features])
        outputs.append(_output(features, **common, **head, prefix="refine", gate=gate))
    if flow_keep:
        outputs[-1] = FlowKeep(name="flow_keep")([outputs[-1], kept, hole])
    if smooth_share:
        outputs[-1] = SmoothShare(name="smooth_share")([outputs[-1], masked_frame, hole])

    return Generator(inputs, outputs, name=name or arch)


def generator_from(settings, *, in_channels: int = 4, prefill: str = "none") -> keras.Model:
    """`build_generator` as a config's `generator` section (`tfinpaint.config.GeneratorConfig`)
    describes it: what fitting builds and what inference restores its checkpoints into.
    `in_channels` counts the frame, the hole and any prior; `prefill` (`data.prefill`) adds the
    flow fill's channels where it is "pyramid+flow"."""
    flow = prefill == "pyramid+flow"
    return build_generator(settings.arch, channels=settings.channels, padding=settings.padding,
                           in_channels=in_channels + FLOW_CHANNELS * flow,
                           prefill_gate=settings.prefill_gate, flow_channels=flow,
                           flow_keep=uses_flow(prefill) and settings.flow_keep != "none",
                           smooth_share=uses_flow(prefill) and settings.smooth_share != "none")


def pad_to_multiple(x, multiple: int = MULTIPLE, mode: str = "REFLECT"):
    """Pad the bottom and right of `[..., H, W, C]` images so that H and W divide `multiple`.

    Works with unknown shapes inside `tf.function`. REFLECT needs H and W of at least
    `multiple`; use "SYMMETRIC" or "CONSTANT" for smaller images.

    Returns:
        `(padded, (H, W))`: the padded images and the original size, as Python ints where the
        static shape knows them and as scalar tensors otherwise. `crop_to(padded, size)` undoes
        the padding.
    """
    x = tf.convert_to_tensor(x)
    rank = x.shape.rank
    if rank is None or rank < 3:
        raise ValueError(f"pad_to_multiple expects [..., H, W, C] images, got shape {x.shape}")
    dynamic = tf.shape(x)
    height = x.shape[-3] if x.shape[-3] is not None else dynamic[-3]
    width = x.shape[-2] if x.shape[-2] is not None else dynamic[-2]
    # (m - h % m) % m, not (-h) % m: the same in TF, but tf2onnx (1.17) converts FloorMod of a
    # negative number as a truncated remainder, so the ONNX graph would crop instead of pad.
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    if isinstance(pad_h, int) and isinstance(pad_w, int) and pad_h == pad_w == 0:
        return x, (height, width)  # known to fit: no op in the graph
    paddings = [[0, 0]] * (rank - 3) + [[0, pad_h], [0, pad_w], [0, 0]]
    return tf.pad(x, paddings, mode=mode), (height, width)


def crop_to(x, size):
    """Crop `[..., H', W', C]` images to the top-left `size = (H, W)` (undoes `pad_to_multiple`)."""
    height, width = size
    if isinstance(height, int) and isinstance(width, int) and x.shape[-3:-1] == (height, width):
        return x  # already that size (known statically): no op in the graph
    return x[..., :height, :width, :]
