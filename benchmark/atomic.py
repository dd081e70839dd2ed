"""Atomic file writes: a temp file in the same folder, fsync, then `os.replace`.

A reader therefore sees either the old file or the complete new one, never a
half-written file, even when the writer is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile


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

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    with atomic_open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def probe_writable(folder: str) -> None:
    """Creates `folder` if needed and writes a file there; raises OSError when it cannot."""
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, ".write-test")
    with atomic_open(probe, "w") as f:
        f.write("ok")
    os.unlink(probe)
