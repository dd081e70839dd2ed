"""The seed's hint, quantified: a head epoch on cached features against the
same head trained end to end through the frozen base.

Both train the benchmark's MLP head with the same optimizer and batch size on
the same images. The end-to-end model is the one `0-transfer.py` ships:
`Input(32, 32, 3)` -> `Resizing` -> preprocessing layers -> frozen base -> head,
so every epoch pays for the upscaling and the base's forward pass. The cached
variant pays for the head alone; its features come through the same
`ensure_features` as the benchmark's (into a throwaway cache).

The command line is `python -m benchmark.epoch_ratio` (`benchmark/epoch_ratio.py`).
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

import backbones

from ..core.data import Split
from ..core.features import BackboneJob, ensure_features
from ..core.heads import HeadConfig, build_head, one_hot


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def measure_epoch_ratio(name: str = "MobileNetV2", img_size: int = 224, n_images: int = 2000, repeats: int = 3,
                        batch_size: int | None = None, echo=print) -> dict:
    """Seconds per epoch, cached-feature head vs end to end, over `repeats` paired epochs.

    Args:
        name: registry name of the frozen base (random weights: speed does
            not depend on the weights' values).
        img_size: input size the 32x32 images are upscaled to.
        n_images: images per epoch, the same for both.
        repeats: paired epochs timed after one untimed warm-up epoch each.
        batch_size: training batch of both; default the benchmark heads'.

    Returns:
        A JSON-ready dict: the setting, and `head_epoch_s`, `end_to_end_epoch_s`
        and `ratio` (end-to-end / head), each as median, min, max and values.
    """
    import keras

    if n_images < 1 or repeats < 1:
        raise ValueError(f"n_images and repeats must be positive, got {n_images} and {repeats}")
    spec = backbones.get(name)
    backbones.check_size(spec, img_size)
    config = HeadConfig(kind="mlp")
    batch_size = batch_size or config.batch_size
    rng = np.random.default_rng(0)
    images = Split("epoch", rng.integers(0, 256, (n_images, 32, 32, 3)).astype(np.uint8), np.arange(n_images) % 10)
    y = one_hot(images.y)
    weights = backbones.WeightsSource("random")
    base = backbones.build_base(spec.name, img_size, weights)

    echo(f"Extracting {n_images} images through {spec.name} @{img_size}px once for the cached variant ...")
    with tempfile.TemporaryDirectory() as cache_dir:
        job = BackboneJob(spec.name, img_size, weights, splits=("epoch",), cache_dir=cache_dir)
        features = ensure_features(job, {"epoch": images}, base=base, echo=echo)["epoch"].features
    features = features.astype(np.float32)
    head = build_head(config, spec.feature_dim)

    end_to_end = backbones.upscaling_model(spec, img_size, base, build_head(config, spec.feature_dim))
    end_to_end.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="categorical_crossentropy")
    x_float = images.x.astype("float32")

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
    return {"model": spec.name, "img_size": img_size, "n_images": n_images, "batch_size": batch_size,
            "repeats": repeats, "head": config.as_dict(),
            "head_epoch_s": _summary(head_s), "end_to_end_epoch_s": _summary(e2e_s), "ratio": _summary(ratios)}
