"""The SavedModel of a fitted video, in TensorFlow Serving's `models/NAME/<version>/` layout.

Signatures (any N, H and W; known pixels pass through both exactly):

- `serving_default`: `frames` uint8 [N,H,W,3], `masks` uint8 [N,H,W,1] (non-zero = hole) ->
  `inpainted` uint8 [N,H,W,3], from whole native frames, by the graph `infer` and `train` fill
  with (`tfinpaint.fill.render.make_fill_fn(..., working_size=...)`). The masks are the user's
  own: the graph first grows them by the run's `data.mask_dilation` (`render.dilate_holes`, bit for
  bit OpenCV's, as `infer` grows them when it reads them).
- `serving_float`: the same graph on float32 frames in [0, 1] and masks (> 0.5 = hole), never
  rounded, for float pipelines and comparison with other runtimes.

A `data.prefill: flow` run's export takes a third input in both, `prefilled` (the clip's flow
fill at the frames' size, `render.native_prefill("flow", ...)`), which the client computes
over the whole clip. `assets/` holds `tfinpaint.json` (working size, `fills_at_working_size`,
`needs_prefilled` and the `flow` settings, `mask_dilation`, architecture) and `config.yaml`.
Exports made before `fills_at_working_size` existed fill at whatever size they are sent; those
made before `mask_dilation` fill the holes as sent.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from tfinpaint.config import uses_flow
from tfinpaint.export.names import (ASSETS_CONFIG, ASSETS_JSON, DEFAULT_SIGNATURE,
                                    FLOAT_HOLE_THRESHOLD, FLOAT_SIGNATURE, FRAMES, MASKS, OUTPUT,
                                    PREFILLED)
from tfinpaint.fill.render import fill_float_at_working_size, dilate_holes, make_fill_fn


class InpaintModule(tf.Module):
    """A float32 generator and the fill graphs that the SavedModel's signatures export.

    Args:
        generator: a float32 `Generator` (`tfinpaint.fill.render.load_generator` gives one); its
            variables become the SavedModel's.
        prefill: the run's `data.prefill` (the network's input must be the one it was fitted on).
            "flow": both signatures take a third input, `prefilled` (the clip's flow fill).
        working_size: the run's (`data.working_height`, `data.working_width`), 0 = native: the
            signatures take native frames and fill at this size. None: they fill at the size
            they are given (no resizing in the graph).
        native_detail: the run's `flow.native_detail` (flow exports only).
        mask_dilation: the run's `data.mask_dilation`: px the signatures grow every hole by
            before filling, so that they take the user's masks as `infer` reads them (0: none).

    Example:
    >>> module = InpaintModule(build_generator("base", channels=8), working_size=(32, 48))
    >>> frames, masks = tf.zeros([2, 37, 53, 3], tf.uint8), tf.ones([2, 37, 53, 1], tf.uint8)
    >>> module.serving_default(frames=frames, masks=masks)["inpainted"].shape
    TensorShape([2, 37, 53, 3])
    """

    def __init__(self, generator: keras.Model, prefill: str = "none",
                 working_size: tuple[int, int] | None = None, *, native_detail: bool = True,
                 mask_dilation: int = 0):
        super().__init__(name="tfinpaint")
        self.generator = generator
        self.prefill = prefill
        self.working_size = None if working_size is None else tuple(int(v) for v in working_size)
        self.native_detail = native_detail
        self.mask_dilation = int(mask_dilation)
        self.fill = make_fill_fn(generator, prefill, working_size=self.working_size,
                                 native_detail=native_detail)
        # the signatures' inputs differ with the prefill, so their functions are built here
        self.serving_default = tf.function(self._fill_uint8,
                                           input_signature=self._specs(tf.uint8))
        self.serving_float = tf.function(self._fill_float,
                                         input_signature=self._specs(tf.float32))

    @property
    def needs_prefilled(self) -> bool:
        """Whether the signatures take `prefilled` (a flow run's export)."""
        return uses_flow(self.prefill)

    def _specs(self, dtype: tf.DType) -> list[tf.TensorSpec]:
        specs = [tf.TensorSpec([None, None, None, 3], dtype, name=FRAMES),
                 tf.TensorSpec([None, None, None, 1], dtype, name=MASKS)]
        if self.needs_prefilled:
            specs.append(tf.TensorSpec([None, None, None, 3], dtype, name=PREFILLED))
        return specs

    def _fill_uint8(self, frames, masks, prefilled=None):
        if self.mask_dilation:
            masks = tf.cast(dilate_holes(masks > 0, self.mask_dilation), tf.uint8)
        inputs = (frames, masks) if prefilled is None else (frames, masks, prefilled)
        return {OUTPUT: self.fill(*inputs)}

    def _fill_float(self, frames, masks, prefilled=None):
        is_hole = dilate_holes(masks > FLOAT_HOLE_THRESHOLD, self.mask_dilation)
        return {OUTPUT: fill_float_at_working_size(self.generator, frames, is_hole,
                                                   self.working_size, prefill=self.prefill,
                                                   prefilled=prefilled,
                                                   native_detail=self.native_detail)}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {DEFAULT_SIGNATURE: self.serving_default.get_concrete_function(),
                FLOAT_SIGNATURE: self.serving_float.get_concrete_function()}


def write_savedmodel(module: InpaintModule, folder: Path, *, info: dict, config_yaml: str) -> None:
    """Save `module` to `folder` (new or empty) with its two assets.

    The assets are registered in the SavedModel (`tf.saved_model.Asset`), so tools that copy
    or rewrite SavedModels keep them; they land in `folder/assets/`.
    """
    with tempfile.TemporaryDirectory(prefix="tfinpaint-assets-") as scratch:
        sources = {ASSETS_JSON: json.dumps(info, indent=2) + "\n", ASSETS_CONFIG: config_yaml}
        for name, text in sources.items():
            (Path(scratch) / name).write_text(text)
        module.assets = [tf.saved_model.Asset(str(Path(scratch) / name)) for name in sources]
        tf.saved_model.save(module, str(folder), signatures=module.signatures())


def existing_versions(base: Path) -> list[int]:
    """The integer version folders under `base`, as TF Serving sees them."""
    if not base.is_dir():
        return []
    return sorted(int(entry.name) for entry in base.iterdir()
                  if entry.name.isdigit() and entry.is_dir())


def next_version(base: Path) -> int:
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


def working_size(config, summary_path: Path) -> tuple[int, int]:
    """The run's working (H, W): as configured; where the config says 0 (native), the size the
    run's render recorded in `result/summary.json`, else 0."""
    height, width = config.data.working_height, config.data.working_width
    if (height and width) or not summary_path.is_file():
        return height, width
    try:
        recorded = json.loads(summary_path.read_text()).get("working_size")
    except (OSError, ValueError):
        recorded = None
    if not recorded or len(recorded) != 2:
        return height, width
    return height or int(recorded[0]), width or int(recorded[1])
