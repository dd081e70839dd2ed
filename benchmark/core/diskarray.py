"""Rows of an array in an uncompressed .npz, read from disk when asked for.

A fine-tuning job's cached maps can be larger than the machine's memory
(45,000 Xception maps at 299 px: about 47 GB in float16). `DiskArray` opens
one member of the cache's .npz files without loading it, and each
`array[rows]` reads just those rows with `os.pread`. The reads go through
the page cache, which the kernel can reclaim, so the process's own memory no
longer grows with the number of images (a memory map would count every
touched page in its resident set).
"""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip local file header, up to the name and extra lengths


class DiskArray:
    """A read-only view of `name` (e.g. "features") in the uncompressed .npz at `path`.

    Attributes:
        shape, dtype: of the whole array; `len()` is its rows.

    `array[i:j]` and `array[indices]` (an integer array; rows in any order)
    return ndarrays; `np.asarray(array)` reads it all.

    Raises:
        ValueError: when the member is missing, compressed, or not a C-ordered .npy.
    """

    def __init__(self, path: str, name: str):
        self.path = path
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(name + ".npy")
            except KeyError:
                raise ValueError(f"{os.path.basename(path)} has no array {name!r}") from None
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{os.path.basename(path)}: {name!r} is compressed; it cannot be read in place")
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            f.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])  # past the name and extra
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(f))
            self.offset = f.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{os.path.basename(path)}: {name!r} is not a plain C-ordered array")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self[0:len(self)]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, index) -> np.ndarray:
        with open(self.path, "rb", buffering=0) as f:
            fd = f.fileno()
            if isinstance(index, slice):
                start, stop, step = index.indices(len(self))
                if step != 1:
                    return self[np.arange(start, stop, step)]
                return self._read(fd, start, max(stop - start, 0))
            rows = np.asarray(index, dtype=np.int64).reshape(-1)
            if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
                raise IndexError(f"row index out of range for {len(self)} rows")
            rows = np.where(rows < 0, rows + len(self), rows)
            return np.concatenate([self._read(fd, int(r), 1) for r in rows]) if rows.size else \
                np.empty((0, *self.shape[1:]), self.dtype)

    def _read(self, fd: int, start: int, n: int) -> np.ndarray:
        size = n * self.row_bytes
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        while done < size:  # pread may return less than asked
            got = os.preadv(fd, [view[done:]], self.offset + start * self.row_bytes + done)
            if got <= 0:
                raise ValueError(f"{os.path.basename(self.path)} ends before row {start + n} (truncated)")
            done += got
        return np.frombuffer(buffer, self.dtype).reshape((n, *self.shape[1:]))


def write_npz_parts(file, name: str, parts, shape: tuple, dtype, **arrays) -> None:
    """Writes an uncompressed .npz to the open binary `file`: the array `name` of `shape` and `dtype` from
    `parts` (arrays whose rows follow one another, cast to `dtype`), one part in memory at a time, then
    `arrays` whole. `np.load` reads it like any .npz."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    rows = 0
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(name + ".npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for part in parts:
                member.write(np.ascontiguousarray(part, dtype=dtype).tobytes())
                rows += len(part)
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    if rows != shape[0]:
        raise ValueError(f"the parts of {name!r} hold {rows} rows, its shape says {shape[0]}")
