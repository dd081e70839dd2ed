"""The seed's hint, quantified: a head epoch on cached features against the
same head trained end to end through the frozen base.

Both train the benchmark's MLP head with the same optimizer and batch size on
the same images. The end-to-end model is the one `0-transfer.py` ships:
`Input(32, 32, 3)` -> `Resizing` -> preprocessing layers -> frozen base -> head,
so every epoch pays for the upscaling and the base's forward pass. The cached
variant pays for the head alone.

    python -m benchmark.epoch_ratio --out results     # writes results/epoch_ratio.json

The report draws the figure from that file when it is there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from .atomic import write_json

FILENAME = "epoch_ratio.json"


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def measure_epoch_ratio(name: str = "MobileNetV2", size: int = 224, n_images: int = 2000, repeats: int = 3,
                        batch_size: int | None = None, echo=print) -> dict:
    """Seconds per epoch, cached-feature head vs end to end, over `repeats` paired epochs.

    Args:
        name: registry name of the frozen base (random weights: speed does
            not depend on the weights' values).
        size: input size the 32x32 images are upscaled to.
        n_images: images per epoch, the same for both.
        repeats: paired epochs timed after one untimed warm-up epoch each.
        batch_size: training batch of both; default the benchmark heads'.

    Returns:
        A JSON-ready dict: the setting, and `head_epoch_s`, `end_to_end_epoch_s`
        and `ratio` (end-to-end / head), each as median, min, max and values.
    """
    import keras

    import backbones

    from .extract import Extractor, make_extractor
    from .heads import HeadConfig, build_head, one_hot

    if n_images < 1 or repeats < 1:
        raise ValueError(f"n_images and repeats must be positive, got {n_images} and {repeats}")
    spec = backbones.get(name)
    backbones.check_size(spec, size)
    config = HeadConfig(kind="mlp")
    batch_size = batch_size or config.batch_size
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_images, 32, 32, 3)).astype(np.uint8)
    y = one_hot(np.arange(n_images) % 10)
    base = backbones.build_base(spec.name, size, "random")

    echo(f"Extracting {n_images} images through {spec.name} @{size}px once for the cached variant ...")
    features = Extractor(make_extractor(base, spec, size), 32).run(x)[0]
    head = build_head(config, spec.feature_dim)

    end_to_end = backbones.upscaling_model(spec, size, base, build_head(config, spec.feature_dim))
    end_to_end.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="categorical_crossentropy")
    x_float = x.astype("float32")

    def epoch(model, inputs_):
        t0 = time.perf_counter()
        model.fit(inputs_, y, epochs=1, batch_size=batch_size, verbose=0, shuffle=True)
        return time.perf_counter() - t0

    epoch(head, features)  # warm-ups: tracing and compilation stay outside the timing
    epoch(end_to_end, x_float)
    head_s, e2e_s = [], []
    for r in range(repeats):
        head_s.append(epoch(head, features))
        e2e_s.append(epoch(end_to_end, x_float))
        echo(f"  repeat {r + 1}/{repeats}: cached-feature epoch {head_s[-1]:.3f} s, "
             f"end-to-end epoch {e2e_s[-1]:.1f} s, ratio {e2e_s[-1] / head_s[-1]:.1f}x")
    ratios = [e / h for e, h in zip(e2e_s, head_s)]
    return {"model": spec.name, "img_size": size, "n_images": n_images, "batch_size": batch_size,
            "repeats": repeats, "head": config.as_dict(),
            "head_epoch_s": _summary(head_s), "end_to_end_epoch_s": _summary(e2e_s), "ratio": _summary(ratios)}


def load_epoch_ratio(results_dir: str) -> dict | None:
    """The measurement written beside the results, or None when there is none."""
    import json

    path = os.path.join(results_dir, FILENAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    args = p.parse_args(argv)
    import backbones

    try:
        result = measure_epoch_ratio(args.backbone, args.size, args.images, args.repeats)
    except (ValueError, backbones.UnknownBackboneError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from . import sysinfo

    result["environment"] = sysinfo.environment()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, FILENAME)
    write_json(path, result)
    r = result["ratio"]
    print(f"end-to-end / cached-feature epoch: median {r['median']:.1f}x, range {r['min']:.1f}-{r['max']:.1f}x "
          f"over {args.repeats} repeats. Written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
