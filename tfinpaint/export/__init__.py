"""Export a fitted video's network: a SavedModel in TF Serving's layout, and ONNX (tf2onnx).

    python -m tfinpaint.export --run runs/clip --out models/clip [--version N] [--onnx]

Layout of one export:

    models/clip/<version>/saved_model.pb, variables/     signatures serving_default, serving_float
    models/clip/<version>/assets/tfinpaint.json          working size, architecture, checkpoint
    models/clip/<version>/assets/config.yaml             the run's resolved config
    models/clip/<version>/assets.extra/model.onnx        --onnx: serving_default as ONNX
    models/clip/<version>/assets.extra/model_float.onnx  --onnx: serving_float as ONNX

A `data.prefill: flow` run's signatures (and ONNX models) also take `prefilled`, the clip's flow
fill, which the client computes over the whole clip (`tfinpaint.json` says `needs_prefilled`).

`tfinpaint.export.savedmodel` builds and writes the SavedModel, `tfinpaint.export.onnx` converts
and checks the ONNX models, `tfinpaint.export.exporter` writes a version folder, `tfinpaint.export.names` holds the
names servers and clients rely on, and `tfinpaint.export.cli` is the command. Nothing heavy is imported
here.
"""


def export(*args, **kwargs):
    """`tfinpaint.export.exporter.export`: export a run folder; returns the version folder."""
    from tfinpaint.export.exporter import export as _export

    return _export(*args, **kwargs)
