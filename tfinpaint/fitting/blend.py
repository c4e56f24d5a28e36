"""How much of the flow fill and of a smooth fill the result takes in the hole, measured per clip
on its own training holes.

After a fit with a flow fill (`data.prefill`: flow or pyramid+flow), the result in the hole is
`keep * flow fill + (1 - keep) * network` (`tfinpaint.model.generator.FlowKeep`), then
`smooth * smooth fill + (1 - smooth) * that` (`SmoothShare`, a near-harmonic fill of the hole from
its edge). Where the hole hides static scenery the flow fill is near exact and the network blurs
its texture; where it hides something that moves the flow fill pastes background, the network,
which has learnt the clip, does better, and where no frame shows what the hole hides both paste
scenery and a smooth guess errs least. Which is which is a property of the clip, and the fit can
measure it: on held-out training holes (`HELD_OUT_STREAM`, never trained on, tubes where the
training holes are) `best_blend` finds the pair, to 0.01, that minimises the squared error against
the known truth. `generator.flow_keep` and `generator.smooth_share`: "auto" measures, a number
fixes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfinpaint.data.pipeline import fixed_examples
from tfinpaint.fill.prefill import pyramid_fill
from tfinpaint.fill.render import make_fill_fn
from tfinpaint.model.generator import flow_keep_layer, smooth_share_layer

# The held-out examples' seed stream (`tfinpaint.data.pipeline`: training 0, self-check 1).
HELD_OUT_STREAM = 2
# How many held-out training holes decide the shares.
HELD_OUT_EXAMPLES = 32
# The shares' grid: 0, 0.01, ..., 1.
_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class BlendChoice:
    """The shares and the hole PSNR (dB, 0-255) on the held-out holes with them, of the network
    alone, the flow fill alone and the smooth fill alone (None without a `SmoothShare`)."""

    keep: float
    psnr: float
    psnr_network: float
    psnr_flow: float
    smooth: float = 0.0
    psnr_smooth: float | None = None
    # what the shares were measured on (`data.held_out`): "holes", held-out training holes,
    # "beside", known pixels beside the holes held out of the whole fit, or "both" at once
    measured_on: str = "holes"

    def describe(self) -> str:
        smooth = "" if self.psnr_smooth is None else f" and {self.smooth:.2f} of a smooth fill"
        alone = "" if self.psnr_smooth is None else f", smooth fill alone {self.psnr_smooth:.2f}"
        where = {"holes": "held-out training holes",
                 "beside": "pixels beside the hole held out of the fit",
                 "both": "held-out training holes and pixels beside the hole held out of the fit"
                 }[self.measured_on]
        return (f"the result keeps {self.keep:.2f} of the flow fill{smooth} in the hole ({where}: "
                f"{self.psnr:.2f} dB; network alone {self.psnr_network:.2f}, "
                f"flow fill alone {self.psnr_flow:.2f}{alone})")


def _psnr(error: np.ndarray) -> float:
    mse = float(np.mean(error ** 2)) if error.size else 0.0
    return 10.0 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def _scored(where, *images):
    """`images` (0-255, [..., H, W, C]) at the pixels `where` holds (bool [..., H, W] or
    [..., H, W, 1]; None: every value), flat float64."""
    if where is None:
        return [np.asarray(a, np.float64).ravel() for a in images]
    where = np.asarray(where, bool)
    if where.ndim == np.ndim(images[0]):
        where = where[..., 0]
    return [np.asarray(a, np.float64)[where].ravel() for a in images]


def best_blend(network, flow, truth, where=None, *, smooth=None, keep: float | None = None,
               share: float | None = None) -> BlendChoice:
    """The `keep` and smooth `share` in [0, 1], to 0.01, that minimise the squared error of
    `(1 - share) * (keep * flow + (1 - keep) * network) + share * smooth` against `truth` over
    the pixels `where` holds, and the PSNRs with them.

    Args:
        network, flow, truth, smooth: [..., H, W, C] in 0-255 (any float or integer dtype);
            without `smooth` the share is 0.
        where: bool [..., H, W] (or [..., H, W, 1]), the pixels scored; None: all.
        keep, share: fixed values instead of measured ones.
    """
    parts = _scored(where, network, flow, truth, *([] if smooth is None else [smooth]))
    network, flow, truth = parts[:3]
    to_flow, to_truth = flow - network, truth - network
    to_smooth = parts[3] - network if smooth is not None else np.zeros_like(network)
    # the error is a quadratic in (flow's share of the whole, smooth's): keep * (1 - s) and s
    gram = {(a, b): float(np.dot(x, y)) for a, x in (("f", to_flow), ("s", to_smooth))
            for b, y in (("f", to_flow), ("s", to_smooth), ("t", to_truth))}
    keeps = _GRID if keep is None else np.array([keep], float)
    shares = _GRID if share is None else np.array([share], float)
    if smooth is None:
        shares = np.zeros(1)
    k, s = np.meshgrid(keeps, shares, indexing="ij")
    f = k * (1.0 - s)
    error = (f * f * gram["f", "f"] + 2 * f * s * gram["f", "s"] + s * s * gram["s", "s"]
             - 2 * f * gram["f", "t"] - 2 * s * gram["s", "t"])
    i, j = np.unravel_index(int(np.argmin(error)), error.shape)
    chosen_keep, chosen_share = float(round(keeps[i], 2)), float(round(shares[j], 2))
    result = network + chosen_keep * (1 - chosen_share) * to_flow + chosen_share * to_smooth
    return BlendChoice(keep=chosen_keep, psnr=_psnr(result - truth),
                       psnr_network=_psnr(network - truth), psnr_flow=_psnr(flow - truth),
                       smooth=chosen_share,
                       psnr_smooth=None if smooth is None else _psnr(parts[3] - truth))


@dataclass(frozen=True)
class HeldOut:
    """The held-out pixels' values (flat float64, 0-255): the network alone, the flow fill, the
    smooth fill (None without a `SmoothShare`) and the truth; `measured_on` as `BlendChoice`'s."""

    network: np.ndarray
    flow: np.ndarray
    smooth: np.ndarray | None
    truth: np.ndarray
    measured_on: str = "holes"

    def __add__(self, other: HeldOut) -> HeldOut:
        """Both sets of pixels, measured as one ("both")."""
        def joined(field):
            parts = [getattr(self, field), getattr(other, field)]
            return None if any(part is None for part in parts) else np.concatenate(parts)

        return HeldOut(network=joined("network"), flow=joined("flow"), smooth=joined("smooth"),
                       truth=joined("truth"), measured_on="both")

    def best(self, keep: float | None = None, share: float | None = None) -> BlendChoice:
        """`best_blend` on these pixels (fixed `keep`/`share` where given)."""
        return dataclasses.replace(best_blend(self.network, self.flow, self.truth,
                                              smooth=self.smooth, keep=keep, share=share),
                                   measured_on=self.measured_on)


def held_out(generator, sampler, prefill: str, seed: int, count: int = HELD_OUT_EXAMPLES,
             batch: int = 4, on: str = "beside") -> HeldOut:
    """`generator`'s network alone (its blend layers at 0, as they stay), the flow fill and the
    smooth fill on held-out pixels: where `sampler` (a `MaskSampler` with a flow) holds known
    pixels out of the fit (`MaskSampler.held_out_examples`, in up to `count` frames) and `on` is
    "beside" or "both"; on `count` held-out training holes, scored where a translated mask hides
    known pixels as the self-check scores, where it holds none or `on` is "holes"; on both sets
    of pixels together where `on` is "both"."""
    set_blend(generator, keep=0.0, share=0.0)
    tube = None if on == "holes" else sampler.held_out_examples(count)
    if tube is not None:
        measured = _measured(generator, prefill, tube, tube["hole"], tube["held"].numpy() > 0,
                             batch, "beside")
        if on == "beside":
            return measured
    held = fixed_examples(sampler.sample, count, seed, stream=HELD_OUT_STREAM)
    holes = _measured(generator, prefill, held,
                      tf.maximum(held["masks"], tf.cast(held["translated"], held["masks"].dtype)),
                      (held["translated"].numpy() > 0) & (held["masks"].numpy() == 0), batch,
                      "holes")
    return holes if tube is None else measured + holes


def _measured(generator, prefill: str, held: dict, hole, where, batch: int,
              measured_on: str) -> HeldOut:
    """`held_out`'s fills of the examples `held` with `hole` as hole, at the pixels `where`."""
    fill = make_fill_fn(generator, prefill)
    network = np.concatenate([fill(held["frames"][k:k + batch], hole[k:k + batch],
                                   held["prefilled"][k:k + batch]).numpy()
                              for k in range(0, len(hole), batch)])
    layer = smooth_share_layer(generator)
    smooth = None
    if layer is not None:  # as the layer fills, in 0-255 (the fill is a convex mix: any range)
        smooth = tf.round(pyramid_fill(tf.cast(held["frames"], tf.float32),
                                       tf.cast(hole > 0, tf.float32), smoothing=layer.smoothing))
    parts = _scored(where, network, held["prefilled"], held["frames"],
                    *([] if smooth is None else [smooth]))
    return HeldOut(network=parts[0], flow=parts[1], truth=parts[2],
                   smooth=parts[3] if smooth is not None else None, measured_on=measured_on)


def measure_blend(generator, sampler, prefill: str, seed: int, *, keep: float | None = None,
                  share: float | None = None, on: str = "beside") -> BlendChoice:
    """`best_blend` of `generator` on its held-out pixels (`held_out`; `on` as `data.held_out`),
    with the shares given fixed; the generator's layers are left at 0 (`set_blend` applies the
    choice)."""
    return held_out(generator, sampler, prefill, seed, on=on).best(keep=keep, share=share)


def fixed_shares(generator, settings) -> dict[str, float | None]:
    """`generator.flow_keep` and `smooth_share` (`settings`, a `GeneratorConfig`) as `best_blend`
    takes them: `{"keep": ..., "share": ...}`, None for "auto" (to be measured), 0 for a layer the
    generator lacks ("none", or no flow fill), else the fixed number."""
    def fixed(layer, setting):
        return 0.0 if layer is None else None if setting == "auto" else float(setting)

    return {"keep": fixed(flow_keep_layer(generator), settings.flow_keep),
            "share": fixed(smooth_share_layer(generator), settings.smooth_share)}


def set_blend(generator, *, keep: float | None = None, share: float | None = None) -> bool:
    """Sets the generator's `FlowKeep` weight to `keep` and its `SmoothShare` weight to `share`
    (None: left as it is); False where it has neither layer."""
    kept, smoothed = flow_keep_layer(generator), smooth_share_layer(generator)
    if kept is not None and keep is not None:
        kept.keep.assign(float(keep))
    if smoothed is not None and share is not None:
        smoothed.share.assign(float(share))
    return kept is not None or smoothed is not None
