"""A fit's checkpoints: saved atomically, restored from the newest readable one."""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf

from tfinpaint.errors import InputError
from tfinpaint.fitting.inpainter import Inpainter


class Checkpoints:
    """Model and optimizer (with its step count) under `checkpoints/`; written atomically by TF.

    The learning rate is a schedule computed from the step, the fit clock and the decay segment
    (all checkpointed); `begin_segment` reconciles it with a changed config after a restore.
    """

    def __init__(self, model: Inpainter, directory, keep: int = 3):
        self.checkpoint = tf.train.Checkpoint(generator=model.generator, optimizer=model.optimizer,
                                              fit_seconds=model.fit_seconds,
                                              decay_segment=model.decay_segment,
                                              learning_rate_scale=model.rate_scale)
        self.directory = Path(directory)
        try:
            self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory),
                                                      max_to_keep=keep)
        except (UnicodeDecodeError, ValueError):
            # A garbled index file: set it aside; the checkpoints themselves are found on disk.
            state = self.directory / "checkpoint"
            print(f"warning: {state}: unreadable, set aside as {state.name}.unreadable",
                  file=sys.stderr)
            state.replace(state.with_name("checkpoint.unreadable"))
            self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory),
                                                      max_to_keep=keep)
        self.model = model
        self.saved_step: int | None = None  # the step of the newest good checkpoint

    def _candidates(self) -> list[str]:
        """Checkpoint prefixes, newest first: those the index lists, and any it lost track of."""
        found = {int(p.name[len("ckpt-"):-len(".index")]): str(p.with_suffix(""))
                 for p in self.directory.glob("ckpt-*.index") if p.name[5:-6].isdigit()}
        for path in self.manager.checkpoints:
            found.setdefault(int(path.rsplit("-", 1)[1]), path)
        return [found[step] for step in sorted(found, reverse=True)]

    def restore_latest(self) -> int:
        """Restores the newest readable checkpoint, if any; returns the step it holds.

        A checkpoint that a crash or a full disk left unreadable is skipped with a warning and the
        one before it is used; if none is readable the fit cannot resume and says so.
        """
        candidates = self._candidates()
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as error:  # noqa: BLE001 - unreadable in any way: try the one before
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
                print(f"warning: {path}: checkpoint unreadable ({reason}); "
                      "falling back to the one before it", file=sys.stderr)
                continue
            self.saved_step = int(self.model.optimizer.iterations.numpy())
            return self.saved_step
        if candidates:
            raise InputError(f"{self.directory}: no readable checkpoint; start again with "
                             "--overwrite")
        return int(self.model.optimizer.iterations.numpy())

    def save(self, *, again: bool = False) -> None:
        """Saves the current step (once, unless `again`: a recovery lowered the learning rate of a
        step already saved); a failed write (a full disk) is one clear line."""
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.saved_step and not again:
            return
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
            reason = (str(reason).strip().splitlines() or [type(error).__name__])[0][:200]
            kept = f"step {self.saved_step}" if self.saved_step is not None else "none yet"
            raise InputError(f"{self.directory}: cannot write the checkpoint of step {step} "
                             f"(disk full? {reason}); the last good checkpoint ({kept}) is "
                             "intact") from None
        self.saved_step = step
