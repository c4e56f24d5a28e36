"""tfinpaint: internal video inpainting by implicit long-range propagation (ICCV 2021), in TF/Keras."""

import os as _os

# TensorFlow's C++ INFO and WARNING lines hide the lines users need; errors still show. This alone
# does not silence TensorFlow's start-up: the commands call `tfinpaint.console.quiet_tensorflow()`
# first (its docstring says why).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
