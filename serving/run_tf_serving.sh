#!/usr/bin/env bash
# Serve exported videos with the real TensorFlow Serving (the deployment target), in Docker.
#
#   serving/run_tf_serving.sh [MODELS_DIR] [CONFIG]
#
# MODELS_DIR (default ./models) is mounted read-only at /models; CONFIG (default
# serving/models.config) lists the models by their /models/NAME paths. gRPC on 8500 (what
# tfinpaint.serving.client speaks), REST on 8501. Set TF_SERVING_IMAGE to pin an image; use one
# at least as new as the TensorFlow that exported the models. Needs a Docker engine, which the
# development machines do not have: there, use `python -m tfinpaint.serve` (see README.md).
# (The image's entrypoint already passes --port=8500 --rest_api_port=8501; with
# --model_config_file its MODEL_NAME default is ignored.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
models="$(cd "${1:-models}" && pwd)"
config="$(cd "$(dirname "${2:-$here/models.config}")" && pwd)/$(basename "${2:-$here/models.config}")"
image="${TF_SERVING_IMAGE:-tensorflow/serving:latest}"

exec docker run --rm --init \
  -p 8500:8500 -p 8501:8501 \
  -v "$models:/models:ro" \
  -v "$config:/config/models.config:ro" \
  "$image" \
  --model_config_file=/config/models.config \
  --model_config_file_poll_wait_seconds=60
