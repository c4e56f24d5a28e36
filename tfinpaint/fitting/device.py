"""What a fit runs with on this machine: the Keras precision policy and the device strategy."""

from __future__ import annotations

import tensorflow as tf


def cpu_supports_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(requested: str) -> str:
    """The Keras dtype policy: as configured, or for "auto" what is fastest on this machine."""
    if requested != "auto":
        return requested
    if tf.config.list_physical_devices("GPU"):
        return "mixed_bfloat16"
    return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"


def choose_strategy() -> tf.distribute.Strategy:
    """Mirrored over all GPUs when there are several; the default strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
