"""Progress lines with throughput and ETA, quiet enough for CI logs."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """Counts images for one backbone and prints `done/total, img/s, ETA`.

    On a terminal the line updates in place; elsewhere a line is printed at
    most every `every_s` seconds.
    """

    def __init__(self, prefix: str, total: int, echo=print, every_s: float = 15.0):
        self.prefix, self.total, self.echo, self.every_s = prefix, max(1, int(total)), echo, every_s
        self.done = 0
        self.t0 = self.last = time.perf_counter()
        self.tty = echo is print and sys.stdout.isatty()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_s = format_duration(eta) if eta == eta else "?"
        return (f"{self.prefix}  {self.done}/{self.total} images ({self.done / self.total:.0%})"
                f"  {rate:.1f} img/s  ETA {eta_s}")

    def update(self, n: int) -> None:
        self.done = min(self.total, self.done + int(n))
        now = time.perf_counter()
        if self.tty:
            print("\r" + self.line(), end="", flush=True)
        elif now - self.last >= self.every_s:
            self.echo(self.line())
            self.last = now

    def finish(self, message: str = "") -> None:
        if self.tty:
            print("\r" + " " * 100 + "\r", end="", flush=True)
        self.echo(f"{self.prefix}  {message}")


def quiet_framework(verbose: bool = False) -> None:
    """Set before TensorFlow is imported: its C++ log level (3, or 0 when `verbose`; worker
    processes inherit it), Keras's Python warnings off, and the project's own warnings
    as one `warning: ...` line."""
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=r"keras(\.|$)")  # e.g. MobileNetV3's "input_shape is undefined"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # "tf.function retracing"
