"""Atomic file writes: a reader sees the old file or the new one, never a part of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, content: bytes, *, mode: int, replace: bool = True) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same directory.

    The content is flushed to disk with permission bits ``mode`` and then renamed
    over ``path``. Without ``replace`` the rename is a hard link, which raises
    ``FileExistsError`` if ``path`` appeared in the meantime. The temporary file is
    removed on any error, cancellation or Ctrl-C. Errors are raised as ``OSError``.
    """
    directory = path.parent
    descriptor, temporary_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if replace:
            os.replace(temporary, path)
        else:
            _move_without_replacing(temporary, path)
        _sync_directory(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _move_without_replacing(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` to ``path`` unless ``path`` exists; raise ``FileExistsError`` if it does."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        # The file system has no hard links: check, then rename, with a short race.
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(temporary, path)
        return
    temporary.unlink()


def _sync_directory(directory: Path) -> None:
    """Flush the directory entry of a renamed file to disk; not every file system allows it."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
