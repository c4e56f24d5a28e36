"""The run folder (`config.yaml`, `checkpoints/`, `logs/`, `result/`; the README's "The run
folder" lists it) and every write that must never be seen half done.

Files are written under a temporary name beside their place and renamed over it
(`atomic_write`, `write_text`); folders are written whole beside their place and swapped in
(`staged_folder`). A crash, a kill or a full disk leaves the previous file or folder intact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from tfinpaint.config import Config, config_from_dict, read_yaml, to_yaml
from tfinpaint.errors import InputError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Let `write(temporary_path)` fill a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                     dir=path.parent)
    os.close(fd)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "w") as handle:
            handle.write(text)

    atomic_write(path, write)


def save_config(config: Config, path: str | os.PathLike) -> None:
    """The resolved config as YAML, written atomically."""
    write_text(path, to_yaml(config))


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


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yields a fresh empty folder beside `final`; when the block ends without an error, the
    folder takes `final`'s place whole, else it is removed and `final` is untouched.

    The staging folder's name starts with a dot and is not an integer, so neither a file browser
    nor TensorFlow Serving watching the parent folder mistakes it for a result or a version.
    With `replace=False` an existing `final` is never replaced: the rename fails instead
    (`rename(2)` refuses a non-empty folder), so two writers cannot clobber each other.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.staging-"
    if replace:  # what a killed writer left behind (writers that may race use replace=False)
        for stale in final.parent.glob(f"{prefix}*"):
            remove_tree(stale)
    staged = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        yield staged
        if replace:
            swap_in(staged, final)
        else:
            os.rename(staged, final)
    finally:
        remove_tree(staged)


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

    def create(self, config: Config, *, overwrite: bool = False) -> None:
        """The folder with `checkpoints/`, `logs/` and the resolved `config.yaml`."""
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        for folder in (self.checkpoints, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        save_config(config, self.config_path)

    def saved_config(self) -> Config:
        return config_from_dict(read_yaml(self.config_path))

    def require_config(self) -> Config:
        """The saved config of a run that must exist (infer, export); one clear line if not."""
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such run folder")
        if not self.config_path.is_file():
            raise InputError(f"{self.path}: not a run folder (no config.yaml)")
        return self.saved_config()

    def latest_checkpoint(self) -> str | None:
        import tensorflow as tf

        return tf.train.latest_checkpoint(str(self.checkpoints))
