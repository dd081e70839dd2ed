"""Per-row throughput in reused worker processes against fresh ones: paired, interleaved repeats.

    python perf/pooled_throughput.py [--repeats 3] [--backbones ...] [--sizes 128]

Each repeat runs the same timing-only sweep twice, each with a fresh cache:
`--worker-jobs 1` (a fresh process per backbone) and `--worker-jobs N` (one
process for all of them; the first backbone runs in it fresh, the others after
it), in alternating order. For each backbone it prints the median and range
of the paired ratio reused / fresh of `samples_per_sec`; 1.00 means the reused
process measures the same throughput. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ["MobileNetV2", "DenseNet121", "ResNet50", "EfficientNetB0"]


def throughputs(backbones: list[str], sizes: list[str], worker_jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        cmd = [sys.executable, "-m", "benchmark", "--backbones", *backbones, "--sizes", *sizes, "--time-only",
               "--cache-dir", os.path.join(tmp, "cache"), "--out", out, "--no-report",
               "--worker-jobs", str(worker_jobs)]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        frame = pd.read_csv(os.path.join(out, "results.csv"))
    return {f"{r.model} @{r.img_size}": r.samples_per_sec for r in frame.itertuples()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backbones", nargs="+", default=DEFAULT)
    p.add_argument("--sizes", nargs="+", default=["128"])
    args = p.parse_args()
    reused_jobs = len(args.backbones) * len(args.sizes)
    ratios: dict[str, list[float]] = {}
    for r in range(args.repeats):
        order = (1, reused_jobs) if r % 2 == 0 else (reused_jobs, 1)
        runs = {jobs: throughputs(args.backbones, args.sizes, jobs) for jobs in order}
        for row, fresh in runs[1].items():
            ratios.setdefault(row, []).append(runs[reused_jobs][row] / fresh)
            print(f"repeat {r + 1}: {row}: fresh {fresh:.2f} img/s, reused {runs[reused_jobs][row]:.2f} img/s",
                  flush=True)
    for row, values in ratios.items():
        print(f"{row}: reused / fresh median {statistics.median(values):.3f} "
              f"(range {min(values):.3f}-{max(values):.3f}, {len(values)} paired repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
