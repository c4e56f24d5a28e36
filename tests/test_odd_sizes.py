"""Working sizes that are not multiples of the network's stride: fit and fill at any H and W.

Each network with each padding takes one fitting step (`Inpainter.train_step` on a batch from
`MaskSampler`, with configs/quick.yaml's settings: whole frames at the clip's own size, pyramid
prefill) and fills through the path `infer` uses (`make_fill_fn` and `render`), at the smallest
size `clip.check_size` allows, at 203x101, and at a 480p clip's own size (854 is not a multiple
of 4: that fit crashed). Tiny networks (channels 4): the shapes, not the quality, are under test.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfinpaint import config as config_lib
from tfinpaint.data.samplers import MaskSampler, sampling_from
from tfinpaint.fill.render import make_fill_fn, render
from tfinpaint.fitting.loop import build_inpainter
from tfinpaint.model.generator import ARCHITECTURES, MIN_SIZE, MIN_SIZE_REFLECT
from tfinpaint.model.layers import PADDINGS

QUICK = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"
MINIMUM = {"zero": MIN_SIZE, "reflect": MIN_SIZE_REFLECT}
SIZES = ("minimum", "203x101", "854x480")  # W x H


def _height_width(size, padding):
    if size == "minimum":
        return MINIMUM[padding], MINIMUM[padding]
    width, height = map(int, size.split("x"))
    return height, width


def _clip(height, width, seed=0):
    """Two frames of smooth noise, each with a rectangular hole in a different place."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (2, height // 4 + 2, width // 4 + 2, 3)).astype(np.float32)
    frames = tf.image.resize(coarse, (height, width)).numpy().round().astype(np.uint8)
    masks = np.zeros((2, height, width, 1), np.uint8)
    masks[0, height // 4: height // 2, width // 4: width // 2] = 1
    masks[1, height // 2: 3 * height // 4, width // 3: 2 * width // 3] = 1
    return frames, masks


@pytest.fixture(scope="module")
def fitted(request):
    """One tiny Inpainter and its fill graph per (arch, padding), shared by the sizes."""
    arch, padding = request.param
    # the shipped generator (its prefill gate included) on the push-pull prefill: the flow
    # prefill needs a clip's flow fields (tests/test_flow_prefill.py)
    config = config_lib.load_config([QUICK], [
        f"generator.arch={arch}", f"generator.padding={padding}", "generator.channels=4",
        "train.precision=float32", "data.prefill=pyramid"])
    tf.keras.utils.set_random_seed(0)
    model = build_inpainter(config)
    return config, model, make_fill_fn(model.generator, config.data.prefill)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fitted", [(arch, padding) for arch in ARCHITECTURES for padding in PADDINGS],
                         ids=lambda p: "-".join(p), indirect=True)
def test_one_fit_step_and_a_fill_at_any_working_size(fitted, size):
    config, model, fill = fitted
    height, width = _height_width(size, config.generator.padding)
    frames, masks = _clip(height, width)
    batch = MaskSampler(frames, masks, sampling_from(config.data)).fixed_batch(1, seed=0)
    assert batch["frames"].shape == (1, height, width, 3)
    before = [w.numpy().copy() for w in model.generator.trainable_weights]

    logs = model.train_step(batch)
    assert np.isfinite(float(logs["total"])) and float(logs["total"]) > 0
    changed = [not np.array_equal(w.numpy(), old)
               for w, old in zip(model.generator.trainable_weights, before)]
    assert all(changed)

    filled = render(fill, frames[:1], masks[:1])
    assert filled.shape == (1, height, width, 3) and filled.dtype == np.uint8
    known = masks[:1, ..., 0] == 0
    np.testing.assert_array_equal(filled[known], frames[:1][known])
    assert not np.array_equal(filled[~known], frames[:1][~known])
