"""A fit step under MirroredStrategy (two logical CPU devices) matches the single-device step.

TensorFlow fixes its logical devices at start-up, so the comparison runs in a fresh interpreter.
"""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfinpaint.config import Config
    from tfinpaint.config import DataConfig
    from tfinpaint.data.samplers import MaskSampler, sampling_from
    from tfinpaint.evaluation.protocols import fixed_masks
    from tfinpaint.fitting.loop import build_inpainter

    config = Config()
    config.data.prefill = "none"  # the batch carries no flow fill
    config.generator.prefill_gate = False
    config.generator.arch = "base"
    config.generator.channels = 16
    config.train.precision = "float32"
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    # Equal hole areas: each replica's masked mean is then the same weighting as the global one.
    sampler = MaskSampler(frames, fixed_masks(4, 32, 48), sampling_from(DataConfig()))
    batch = sampler.fixed_batch(4, seed=0)

    def step(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_inpainter(config)
            model.compile(optimizer=keras.optimizers.SGD(1.0))
        before = [w.numpy() for w in model.generator.trainable_weights]
        model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
        after = [w.numpy() for w in model.generator.trainable_weights]
        return [b - a for a, b in zip(before, after)], strategy.num_replicas_in_sync

    single, _ = step(tf.distribute.get_strategy())
    mirrored, replicas = step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    flat_single = np.concatenate([d.ravel() for d in single])
    flat_mirrored = np.concatenate([d.ravel() for d in mirrored])
    error = np.abs(flat_single - flat_mirrored).max() / np.abs(flat_single).max()
    print(json.dumps({"replicas": replicas, "relative_error": float(error)}))
""")


@pytest.mark.slow
def test_mirrored_step_matches_single_device(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["relative_error"] < 1e-3
