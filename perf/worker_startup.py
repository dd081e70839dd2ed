"""Worker start-up cost: `python -m benchmark` with a fresh worker process per backbone
(`--worker-jobs 1`) against `--no-isolate` (everything in one process), on timing-only backbones.

    python perf/worker_startup.py [--repeats 3] [--backbones ...]

Each run uses a fresh cache, so every backbone is built and timed. The
difference of the two wall times, divided by the number of backbones, is the
cost of one worker: spawn, imports, the worker's own setup and model build
in a fresh TensorFlow, minus the same work in-process. Prints the median and
range over `--repeats` paired runs. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "DenseNet121"]


def wall(backbones: list[str], isolate: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmark", "--backbones", *backbones, "--sizes", "32", "--time-only",
               "--cache-dir", os.path.join(tmp, "cache"), "--out", os.path.join(tmp, "out"), "--no-report"]
        cmd += ["--worker-jobs", "1"] if isolate else ["--no-isolate"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backbones", nargs="+", default=DEFAULT)
    args = p.parse_args()
    per_worker = []
    for r in range(args.repeats):
        isolated, inline = wall(args.backbones, True), wall(args.backbones, False)
        per_worker.append((isolated - inline) / len(args.backbones))
        print(f"repeat {r + 1}: workers {isolated:.1f} s, in-process {inline:.1f} s, "
              f"{per_worker[-1]:.2f} s per worker", flush=True)
    print(f"worker start-up: median {statistics.median(per_worker):.2f} s per backbone "
          f"(range {min(per_worker):.2f}-{max(per_worker):.2f}, {args.repeats} repeats, "
          f"{len(args.backbones)} backbones)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
