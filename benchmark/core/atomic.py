"""Atomic file writes: a temp file in the same folder, fsync, then `os.replace`.

A reader therefore sees either the old file or the complete new one, never a
half-written file, even when the writer is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from backbones import sha256_file


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb"):
    """Opens a temp file beside `path`; on success it replaces `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.filename is None:  # a failed write names no file: name the one being written (disk full)
            raise OSError(err.errno, err.strerror, path) from err
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str):
    """A temp path beside `path` (same suffix, for writers that check it); on success it replaces `path`.

    For writers that want a file name rather than a file object, such as
    `keras.Model.save`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    suffix = base[base.index("."):] if "." in base else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_npz(path: str, **arrays) -> str:
    """Writes an uncompressed .npz atomically; returns its sha256."""
    import numpy as np

    # Streamed to disk (not built in memory first): cached maps can be gigabytes.
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return sha256_file(path)


def copy_file(src: str, dst: str) -> None:
    """Copies `src` to `dst` atomically (a reader never sees a partial `dst`)."""
    import shutil

    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def probe_writable(folder: str) -> None:
    """Creates `folder` if needed and writes a file there; raises OSError when it cannot.

    The probe has a unique name, so concurrent runs never trip over each other's.
    """
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", suffix=".tmp"):
        pass
