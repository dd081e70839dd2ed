"""`python -m benchmark.epoch_ratio --out results`: writes results/epoch_ratio.json for the report.

The command line of the measurement in `benchmark.measure.epoch_cost`; it sits beside `benchmark/__main__.py`
rather than in `benchmark/cli/` so that the README's command runs as written.
"""

from __future__ import annotations

import argparse
import os
import sys

from .cli import exit_code, start


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmark.epoch_ratio",
        description="Time a head epoch on cached features against the same head trained end to end through the "
                    "frozen base (upscaling in the model), on the same images; write OUT/epoch_ratio.json for "
                    "the report.")
    p.add_argument("--backbone", default="MobileNetV2", help="frozen base (default MobileNetV2)")
    p.add_argument("--size", type=int, default=224, help="input size in pixels (default 224)")
    p.add_argument("--images", type=int, default=2000, help="images per epoch (default 2000, the quick train split)")
    p.add_argument("--repeats", type=int, default=3, help="paired epochs timed (default 3)")
    p.add_argument("--out", default="results", help="results folder to write epoch_ratio.json into (default results)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    start()

    def work() -> int:
        from .core import sysinfo
        from .core.atomic import write_json
        from .core.results import EPOCH_RATIO_FILE
        from .measure.epoch_cost import measure_epoch_ratio

        result = measure_epoch_ratio(args.backbone, args.size, args.images, args.repeats)
        result["environment"] = sysinfo.environment()
        path = os.path.join(args.out, EPOCH_RATIO_FILE)
        write_json(path, result)
        r = result["ratio"]
        print(f"end-to-end / cached-feature epoch: median {r['median']:.1f}x, range {r['min']:.1f}-{r['max']:.1f}x "
              f"over {args.repeats} repeats. Written to {path}")
        return 0

    return exit_code(work)


if __name__ == "__main__":
    sys.exit(main())
