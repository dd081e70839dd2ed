"""Timing benchmarks (pytest-benchmark), run with `tox -e bench`, never as pass/fail unit tests.

* Pipeline overhead: the runner's extraction (uint8 in, resize + preprocess in
  graph, chunked feature writes, progress) against a bare `model(x)` loop over
  pre-resized, pre-processed tensors.
* The seed's hint: seconds per epoch of a head trained on cached features
  against the same head trained end to end through the frozen base.

Each prints the median and range over the repeats.
"""

import os
import statistics
import tempfile
import time

import numpy as np
import pytest

import backbones
from benchmark.core.store import Store
from benchmark.core.extract import Extractor, extract_split, make_extractor

N_IMAGES = int(os.environ.get("BENCH_IMAGES", "128"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def _images(n):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def _summary(name, values):
    med = statistics.median(values)
    print(f"\n{name}: median {med:.3f}, range {min(values):.3f}-{max(values):.3f} over {len(values)} repeats")
    return med


@pytest.mark.parametrize("name", ["MobileNetV2", "Xception"])
def test_pipeline_overhead(benchmark, name):
    import tensorflow as tf

    spec = backbones.get(name)
    size = spec.native_size
    base = backbones.build_base(name, size, "random")
    x = _images(N_IMAGES)
    bare_fn = tf.function(lambda t: base(t, training=False))
    ready = [spec.preprocess_input(tf.image.resize(tf.cast(x[i:i + 32], tf.float32), (size, size)))
             for i in range(0, len(x), 32)]
    bare_fn(ready[0])  # trace

    def bare():
        t0 = time.perf_counter()
        for batch in ready:
            bare_fn(batch).numpy()
        return len(x) / (time.perf_counter() - t0)

    extractor = Extractor(make_extractor(base, spec, size), 32)
    extractor.run(x[:32])  # trace

    def runner():
        with tempfile.TemporaryDirectory() as tmp:
            entry = Store(tmp).features(name, size, "bench", {"n": len(x)})
            t0 = time.perf_counter()
            extract_split(entry, extractor, x, chunk_size=64)
            return len(x) / (time.perf_counter() - t0)

    ratios, bare_rates, runner_rates = [], [], []

    def paired():
        b, r = bare(), runner()
        bare_rates.append(b)
        runner_rates.append(r)
        ratios.append(r / b)

    benchmark.pedantic(paired, rounds=REPEATS, iterations=1)
    _summary(f"{name} bare model(x) images/s", bare_rates)
    _summary(f"{name} runner images/s", runner_rates)
    med = _summary(f"{name} runner / bare throughput", ratios)
    benchmark.extra_info.update(bare=bare_rates, runner=runner_rates, ratio=ratios, ratio_median=med)


def test_cached_head_vs_end_to_end_epoch(benchmark):
    from benchmark.measure.epoch_cost import measure_epoch_ratio

    results = []
    benchmark.pedantic(lambda: results.append(measure_epoch_ratio("MobileNetV2", 224, N_IMAGES, REPEATS)),
                       rounds=1, iterations=1)
    ratio = results[0]["ratio"]
    _summary("cached-feature epoch seconds", results[0]["head_epoch_s"]["values"])
    _summary("end-to-end epoch seconds", results[0]["end_to_end_epoch_s"]["values"])
    med = _summary("end-to-end epoch / cached-feature epoch", ratio["values"])
    benchmark.extra_info.update(ratio=ratio["values"], ratio_median=med)
