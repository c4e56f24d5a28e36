"""tfinpaint: internal video inpainting by implicit long-range propagation (ICCV 2021), in TF/Keras."""

import os as _os

# TensorFlow's C++ start-up chatter hides the lines users need; errors still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
