"""The names an export promises its servers and clients, in one place (imports nothing).

TensorFlow Serving, `tfinpaint.serve`, the gRPC client, ONNX Runtime users and the exporter all
speak these; changing one breaks deployed clients, so they live only here.
"""

# SignatureDefs of the SavedModel (an export of a `data.prefill: flow` run: both also take
# PREFILLED, in the signature's dtype and range)
DEFAULT_SIGNATURE = "serving_default"  # uint8 frames, masks -> uint8 inpainted
FLOAT_SIGNATURE = "serving_float"  # float32 [0, 1] frames, masks -> float32 inpainted
# their input and output keys
FRAMES = "frames"
MASKS = "masks"
# the clip's flow fill at the frames' size (`tfinpaint.fill.render.native_prefill`): frames with
# their holes filled by propagation over the WHOLE clip, which the client has and one request
# may not, so the client computes it and sends it beside the frames
PREFILLED = "prefilled"
OUTPUT = "inpainted"
# A float mask is hole above this (uint8 masks: any non-zero value).
FLOAT_HOLE_THRESHOLD = 0.5

# files under the version folder's assets/
ASSETS_JSON = "tfinpaint.json"  # working size, architecture, checkpoint
ASSETS_CONFIG = "config.yaml"  # the run's resolved config
# tfinpaint.json's key saying the graph reduces native frames to the working size itself (send
# whole frames); absent in exports made before, which fill at the size they are sent
FILLS_AT_WORKING_SIZE = "fills_at_working_size"
# tfinpaint.json's key saying the signatures take PREFILLED (true for a flow run's export; absent
# otherwise), and the key of the `flow` settings the client must compute it with (the run's
# config's `flow` section, also in config.yaml)
NEEDS_PREFILLED = "needs_prefilled"
FLOW_SETTINGS = "flow"
# tfinpaint.json's key: px the graph grows every hole by before filling (the run's
# data.mask_dilation), so masks are sent as the user drew them; absent in exports made before,
# which fill the holes as sent
MASK_DILATION = "mask_dilation"

# GetModelMetadata fields: TF Serving's own, and tfinpaint's (assets/tfinpaint.json as a Struct;
# the real server rejects it with INVALID_ARGUMENT)
SIGNATURE_DEF_FIELD = "signature_def"
TFINPAINT_FIELD = "tfinpaint"
