"""TensorFlow imported without its start-up noise, for the commands.

Every command used to begin with lines a user can do nothing about: the C++ INFO lines
(`port.cc ... oneDNN custom operations are on`, `cudart_stub.cc ... Could not find cuda drivers`)
and, on every machine without an NVIDIA driver, `E0000 ... failed call to cuInit`.
`TF_CPP_MIN_LOG_LEVEL=2` (which `tfinpaint/__init__.py` sets) does not hide them: TensorFlow 2.21
writes the first two through absl's logger before it is initialised, which ignores that
variable, and the third is an ERROR, which only level 3 hides, together with every real error.

So a command calls `quiet_tensorflow()` before anything imports TensorFlow: it imports TensorFlow
and lists the devices (where CUDA is initialised) with the process's stderr (file descriptor 2,
which the C++ code writes to) sent to a temporary file, then writes back every line except
absl's INFO and WARNING lines, absl's banner before them, and the cuInit error on a machine where
TensorFlow found no CUDA driver. Errors, Python warnings and tracebacks pass through.
Set `TF_CPP_MIN_LOG_LEVEL=0` to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# absl's line prefix: severity, MMDD, time, thread id, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \S+\s+\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_NO_DRIVER = "Could not find cuda drivers"
_CUINIT = "failed call to cuInit"


def without_noise(text: str) -> str:
    """`text` (what TensorFlow's start-up wrote to stderr) less the lines that are noise."""
    no_driver = _NO_DRIVER in text
    kept = []
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        severity = match.group(1) if match else ""
        if line.strip() == _ABSL_BANNER or severity in ("I", "W"):
            continue
        if severity == "E" and _CUINIT in line and no_driver:
            continue
        kept.append(line)
    return "".join(kept)


def quiet_tensorflow() -> None:
    """Imports TensorFlow and finds its devices, keeping only what is not noise on stderr.

    Call it first in a command, before anything imports TensorFlow; once TensorFlow is imported
    it does nothing. With `TF_CPP_MIN_LOG_LEVEL` set to 0 or 1 nothing is filtered.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("0", "1"):
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # initialises CUDA: the cuInit line comes from here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            sys.stderr.write(without_noise(sink.read().decode(errors="replace")))
            sys.stderr.flush()
