"""Extraction of one (backbone, size) in a fresh process.

TensorFlow does not hand a finished model's memory back to the OS, so in one
long `--all` process every backbone's peak RSS would include the leftovers of
the ones before it (measured: from 1.9 GB for the first to 4.9 GB for the
last). The runner therefore starts one worker per backbone that has features
to make: the worker extracts into the shared feature cache and exits, and
the runner reads the features, timing and peak RSS from the cache.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the runner dies, even by SIGKILL."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _extract(config: dict, name: str, size: int, prefix: str, matmul_peak: float) -> None:
    """Spawn target: makes the missing features of one pair and caches them."""
    _die_with_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    import backbones

    from .runner import RunConfig, Runner

    try:
        runner = Runner(RunConfig(**{**config, "isolate": False}), echo=lambda *_: None)
        runner._prepare()
        runner._matmul_peak = matmul_peak
        runner.echo = print
        runner._run_pair(backbones.get(name), size, prefix, features_only=True)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the runner reports it once
        sys.exit(130)


def extract_in_worker(config: dict, name: str, size: int, prefix: str, matmul_peak: float) -> int:
    """Runs `_extract` in a spawned process and waits; returns its exit code.

    On Ctrl-C the worker (same process group) stops too; its finished chunks
    stay in the cache, and the KeyboardInterrupt goes on to the caller.
    """
    process = multiprocessing.get_context("spawn").Process(
        target=_extract, args=(config, name, size, prefix, matmul_peak), name=f"extract-{name}-{size}")
    process.start()
    try:
        process.join()
    except BaseException:
        process.terminate()
        process.join()
        raise
    return process.exitcode
