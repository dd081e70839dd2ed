"""Where a job's wall time goes: named phases, summed, for the overhead breakdown.

Each process has one `CLOCK`. Code that does a phase's work wraps it in
`with CLOCK.phase("build"):` (or adds measured seconds with `CLOCK.add`); a
worker hands `CLOCK.take()` back in its report, and the runner adds its own
phases beside them. The phase names are `PHASES`' keys, in the order a job
meets them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

PHASES = {
    "prepare": "the runner's setup: plan, data load and splits, weights resolved",
    "matmul_peak": "the fp32 matmul peak, measured once per run (and once per other host)",
    "worker_start": "a worker process started: Python, its imports and TensorFlow's",
    "worker_data": "the worker rebuilt the job's images from the recipe and checked their fingerprint",
    "weights_check": "the worker hashed the weights file against the planned one",
    "cache_lookup": "cache entries looked up and verified (sha256) before any work",
    "build": "the model built and its weights loaded",
    "flops": "the model's FLOPs counted from its graph",
    "warmup": "each extractor's first batch (graph tracing), untimed",
    "forward": "timed forward passes: the throughput measurement itself",
    "extract_rest": "the rest of extraction: float16 conversion, chunk writes, joining the chunks",
    "finetune": "fine-tuning above the cut (fine-tuned regime only)",
    "release": "the Keras session cleared and freed memory handed back",
    "job_transfer": "between the runner's submit and the worker's report, outside the job's own phases",
    "read_features": "the runner read the job's features back from the cache (sha256-verified)",
    "heads": "heads trained on the features (or their scores read from the store)",
    "scores": "transferability scores (LogME, H-score, k-NN)",
    "write_results": "results.sqlite, results.csv and examples.npz written",
    "report": "the HTML report built",
}


class PhaseClock:
    """Seconds per phase name, summed over every time the phase ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def merge(self, seconds: dict[str, float] | None) -> None:
        for name, value in (seconds or {}).items():
            self.add(name, value)

    def snapshot(self) -> dict[str, float]:
        """The seconds so far (rounded to ms); the clock goes on."""
        return {name: round(value, 3) for name, value in self.seconds.items()}

    def take(self) -> dict[str, float]:
        """The seconds so far (rounded to ms), and the clock reset."""
        taken = self.snapshot()
        self.seconds = {}
        return taken


CLOCK = PhaseClock()  # this process's


def breakdown_lines(seconds: dict[str, float], wall_s: float) -> list[str]:
    """A table of `seconds` against `wall_s`, one line per phase in `PHASES` order, then what no phase covers."""
    names = [name for name in PHASES if seconds.get(name)] + sorted(set(seconds) - set(PHASES))
    lines = [f"  {name:<14} {seconds[name]:8.1f} s  {100 * seconds[name] / wall_s:5.1f}%  {PHASES.get(name, '')}"
             for name in names]
    rest = wall_s - sum(seconds.values())
    lines.append(f"  {'unaccounted':<14} {rest:8.1f} s  {100 * rest / wall_s:5.1f}%  "
                 f"progress lines, waits and whatever no phase covers")
    return lines
