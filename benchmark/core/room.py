"""Whether a fine-tuning job fits this machine: its maps' disk and its working memory, estimated up front.

The maps below a cut are cached on disk and read back a batch at a time
(`diskarray`), so a job's memory no longer grows with its images, but its
disk does: every map is stored in float16, and while an entry's chunks are
joined, the chunks and the joined file are both on disk. The estimate is
made from the map shape at the cut, once the base is built and before
anything is extracted, and a job that cannot fit stops there with one line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np

from . import sysinfo

GIB = 2 ** 30


class NoRoom(RuntimeError):
    """A job would not fit this machine's free disk or memory."""


@dataclass(frozen=True)
class Needs:
    """Estimated bytes: `disk` at the peak (chunks and joined file), `memory` of the job's largest working set."""

    disk: int
    memory: int


def fine_tune_needs(map_shape: tuple, n_images: int, chunk_size: int, batch_size: int, params: int,
                    feature_dim: int) -> Needs:
    """The estimate for maps of `map_shape` (h, w, c) of `n_images` images (every split of the job).

    Disk: the float16 maps twice (an entry's chunks and its joined file). Memory: a chunk of maps as the
    base computes them (float32) and as stored (float16), a fine-tuning batch's activations (ten times its
    float32 maps), the pooled features of every image (float32) for the head, and the base's float32 weights
    four times over (weights, gradients, and Adam's two moments).
    """
    map_values = int(np.prod(map_shape))
    disk = 2 * n_images * map_values * 2
    memory = (chunk_size * map_values * (4 + 2) + 10 * batch_size * map_values * 4 + n_images * feature_dim * 4
              + 4 * params * 4)
    return Needs(disk, memory)


def check_room(needs: Needs, folder: str, what: str) -> None:
    """Raises NoRoom, in one line naming the estimate and what to change, when `needs` exceeds the free disk
    under `folder` or the available memory (unknown memory is not checked)."""
    free = shutil.disk_usage(folder).free
    if needs.disk > free:
        raise NoRoom(f"{what} needs about {needs.disk / GIB:.1f} GiB of disk for its cached maps (kept twice while "
                     f"they are joined), and {folder} has {free / GIB:.1f} GiB free: free some space, point "
                     f"--cache-dir at a larger disk, or use fewer images (--train-size) or a smaller --sizes")
    available = sysinfo.available_bytes()
    if available is not None and needs.memory > available:
        raise NoRoom(f"{what} needs about {needs.memory / GIB:.1f} GiB of memory, and {available / GIB:.1f} GiB "
                     f"is available: close other programs, or use a smaller --chunk-size, fewer images "
                     f"(--train-size) or a smaller --sizes")
