"""Wall time of one timing-only sweep under different `--executor` values, fresh cache each run.

    python perf/executors.py --executors local dask-local:1 --repeats 3
    python perf/executors.py --executors local dask-local:2 --backbones <8 names> --repeats 3

Runs are interleaved (A, B, A, B, ...) so drift hits both alike. Prints the
median and range of each, and of the ratio to the first executor. Run it on
an idle machine; it needs `pip install -r requirements-dask.txt`.
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
SMALL = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0"]


def wall(executor: str, backbones: list[str], img_size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmark", "--backbones", *backbones, "--sizes", str(img_size), "--time-only",
               "--executor", executor, "--cache-dir", os.path.join(tmp, "cache"), "--out", os.path.join(tmp, "out"),
               "--no-report"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--executors", nargs="+", default=["local", "dask-local:1"])
    p.add_argument("--backbones", nargs="+", default=SMALL)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = {e: [] for e in args.executors}
    for r in range(args.repeats):
        for e in args.executors:
            times[e].append(wall(e, args.backbones, args.size))
            print(f"repeat {r + 1}: {e} {times[e][-1]:.1f} s", flush=True)
    base = times[args.executors[0]]
    for e, values in times.items():
        ratios = [v / b for v, b in zip(values, base)]
        print(f"{e}: median {statistics.median(values):.1f} s (range {min(values):.1f}-{max(values):.1f}); "
              f"ratio to {args.executors[0]} median {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}); {len(args.backbones)} backbones at {args.size} px, "
              f"{args.repeats} repeats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
