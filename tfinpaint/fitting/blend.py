"""How much of the flow fill the result keeps in the hole, measured per clip on its own training holes.

After a fit with a flow fill (`data.prefill`: flow or pyramid+flow), the result in the hole is
`keep * flow fill + (1 - keep) * network` (`tfinpaint.model.generator.FlowKeep`). Where the hole
hides static scenery the flow fill is near exact and the network blurs its texture; where it
hides something that moves the flow fill pastes background and the network, which has learnt
the clip, does better. Which is which is a property of the clip, and the fit can measure it: on
held-out training holes (`HELD_OUT_STREAM`, never trained on, tubes where the training holes are)
`best_keep` finds the `keep` that minimises the squared error against the known truth, in closed
form. `generator.flow_keep: auto` uses it; a number fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfinpaint.data.pipeline import fixed_examples
from tfinpaint.fill.render import make_fill_fn
from tfinpaint.model.generator import flow_keep_layer

# The held-out examples' seed stream (`tfinpaint.data.pipeline`: training 0, self-check 1).
HELD_OUT_STREAM = 2
# How many held-out training holes decide `keep`.
HELD_OUT_EXAMPLES = 32


@dataclass(frozen=True)
class KeepChoice:
    """`keep` and the hole PSNR (dB, 0-255) on the held-out holes with it, of the network alone
    (keep 0) and of the flow fill alone (keep 1)."""

    keep: float
    psnr: float
    psnr_network: float
    psnr_flow: float

    def describe(self) -> str:
        return (f"the result keeps {self.keep:.2f} of the flow fill in the hole (held-out "
                f"training holes: {self.psnr:.2f} dB; network alone {self.psnr_network:.2f}, "
                f"flow fill alone {self.psnr_flow:.2f})")


def _psnr(error: np.ndarray) -> float:
    mse = float(np.mean(error ** 2)) if error.size else 0.0
    return 10.0 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def best_keep(network: np.ndarray, flow: np.ndarray, truth: np.ndarray,
              where: np.ndarray) -> KeepChoice:
    """The `keep` in [0, 1] that minimises `sum((keep * flow + (1 - keep) * network - truth)^2)`
    over the pixels `where` holds, and the PSNRs with it (all images in 0-255).

    Args:
        network, flow, truth: [..., H, W, C] in 0-255 (any float or integer dtype).
        where: bool [..., H, W] (or [..., H, W, 1]), the pixels scored.
    """
    where = np.asarray(where, bool)
    if where.ndim == np.ndim(truth):
        where = where[..., 0]
    network, flow, truth = (np.asarray(a, np.float64)[where] for a in (network, flow, truth))
    apart = flow - network
    denominator = float(np.sum(apart ** 2))
    # d/dk |network + k * apart - truth|^2 = 0; flow and network alike: either will do
    keep = 0.0 if denominator == 0.0 else float(np.sum(apart * (truth - network)) / denominator)
    keep = round(min(max(keep, 0.0), 1.0), 2)
    return KeepChoice(keep=keep, psnr=_psnr(network + keep * apart - truth),
                      psnr_network=_psnr(network - truth), psnr_flow=_psnr(flow - truth))


def measure_keep(generator, sampler, prefill: str, seed: int,
                 count: int = HELD_OUT_EXAMPLES, batch: int = 4) -> KeepChoice:
    """`best_keep` of `generator` (its `FlowKeep` at 0, the network alone) on `count` held-out
    training holes of `sampler` (a `MaskSampler` with a flow), scored where a translated mask
    hides known pixels, as the self-check scores."""
    layer = flow_keep_layer(generator)
    if layer is not None:
        layer.keep.assign(0.0)
    held = fixed_examples(sampler.sample, count, seed, stream=HELD_OUT_STREAM)
    fill = make_fill_fn(generator, prefill)
    hole = tf.maximum(held["masks"], tf.cast(held["translated"], held["masks"].dtype))
    network = np.concatenate([fill(held["frames"][k:k + batch], hole[k:k + batch],
                                   held["prefilled"][k:k + batch]).numpy()
                              for k in range(0, count, batch)])
    where = (held["translated"].numpy() > 0) & (held["masks"].numpy() == 0)
    return best_keep(network, held["prefilled"].numpy(), held["frames"].numpy(), where)


def set_keep(generator, keep: float) -> bool:
    """Sets the generator's `FlowKeep` weight; False where it has no such layer."""
    layer = flow_keep_layer(generator)
    if layer is not None:
        layer.keep.assign(float(keep))
    return layer is not None
