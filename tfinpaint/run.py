"""The run folder: `config.yaml`, `checkpoints/`, `logs/`, `result/` (DESIGN.md, "Run folder")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tensorflow as tf

from tfinpaint.config import Config, config_from_dict, read_yaml, save_config
from tfinpaint.errors import InputError


class RunDir:
    """Paths of one fit's folder, and the rules for creating, resuming or replacing it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.checkpoints = self.path / "checkpoints"
        self.logs = self.path / "logs"
        self.result = self.path / "result"

    def exists(self) -> bool:
        return self.path.exists() and any(self.path.iterdir())

    def check(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse an existing run folder unless told to resume or overwrite it (nothing written yet)."""
        if resume and overwrite:
            raise InputError("--resume and --overwrite exclude each other")
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a folder")
        if resume and not self.config_path.exists():
            raise InputError(f"{self.path}: nothing to resume (no config.yaml)")
        if self.exists() and not (resume or overwrite):
            raise InputError(f"{self.path}: run folder exists; pass --resume to continue it "
                             "or --overwrite to start again")

    def create(self, config: Config, *, overwrite: bool) -> None:
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        for folder in (self.checkpoints, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        save_config(config, self.config_path)

    def saved_config(self) -> Config:
        return config_from_dict(read_yaml(self.config_path))

    def latest_checkpoint(self) -> str | None:
        return tf.train.latest_checkpoint(str(self.checkpoints))



def swap_in(staged: Path, final: Path) -> None:
    """Puts a fully written folder in place of `final` (never a half-written one)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)
