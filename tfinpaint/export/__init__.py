"""Export a fitted video's network: a SavedModel in TF Serving's layout, and ONNX (tf2onnx).

    python -m tfinpaint.export --run runs/clip --out models/clip [--version N] [--onnx]

Layout of one export:

    models/clip/<version>/saved_model.pb, variables/     signatures serving_default, serving_float
    models/clip/<version>/assets/tfinpaint.json          working size, architecture, checkpoint
    models/clip/<version>/assets/config.yaml             the run's resolved config
    models/clip/<version>/assets.extra/model.onnx        --onnx: serving_default as ONNX
    models/clip/<version>/assets.extra/model_float.onnx  --onnx: serving_float as ONNX

A flow run's signatures also take `prefilled`, the clip's flow fill (`needs_prefilled`). Modules:
`savedmodel`, `onnx`, `exporter` (a version folder), `names` (what servers and clients rely on),
`cli` (the command). Nothing heavy is imported here.
"""


def export(*args, **kwargs):
    """`tfinpaint.export.exporter.export`: export a run folder; returns the version folder."""
    from tfinpaint.export.exporter import export as _export

    return _export(*args, **kwargs)
