"""Hardware efficiency and engine settings (pytest-benchmark), run with `tox -e bench`.

* Achieved GFLOP/s of conv-heavy bases as a percentage of this machine's fp32
  `tf.matmul` peak, both measured in each repeat.
* bf16 (Keras `mixed_bfloat16`) against fp32 extraction throughput.
* ConvNeXt's grouped convolutions against the same base rewritten with
  DepthwiseConv2D (`backbones.rewrite`).

Each prints the median and range over the repeats. Random weights: speed
does not depend on the weight values.
"""

import os
import statistics
import time

import numpy as np
import pytest

import backbones
from benchmark.core.extract import Extractor, make_extractor
from benchmark.core.flops import count_flops, matmul_peak_gflops

N_IMAGES = int(os.environ.get("BENCH_IMAGES", "128"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def _images(n):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def _summary(name, values, unit=""):
    med = statistics.median(values)
    print(f"\n{name}: median {med:.3f}{unit}, range {min(values):.3f}-{max(values):.3f}{unit} over {len(values)} repeats")
    return med


def _throughput(base, spec, size, images):
    """Images/s of the runner's extractor, warm-up batch excluded."""
    extractor = Extractor(make_extractor(base, spec, size), 32)
    extractor.run(images[:32])
    t0 = time.perf_counter()
    extractor.run(images)
    return len(images) / (time.perf_counter() - t0)


@pytest.mark.parametrize("name", ["ResNet50", "VGG16", "Xception"])
def test_pct_of_matmul_peak(benchmark, name):
    spec = backbones.get(name)
    size = int(os.environ.get("BENCH_SIZE", spec.native_size))
    base = backbones.build_base(name, size, "random")
    flops = count_flops(base)
    x = _images(N_IMAGES)
    peaks, rates, pcts = [], [], []

    def paired():
        peaks.append(matmul_peak_gflops())
        rates.append(_throughput(base, spec, size, x))
        pcts.append(100 * flops * rates[-1] / 1e9 / peaks[-1])

    benchmark.pedantic(paired, rounds=REPEATS, iterations=1)
    print(f"\n{name}@{size}: {flops / 1e9:.2f} GFLOPs/image")
    _summary("fp32 matmul peak GFLOP/s", peaks)
    _summary(f"{name} images/s", rates)
    med = _summary(f"{name} % of fp32 matmul peak", pcts, "%")
    benchmark.extra_info.update(gflops_per_img=flops / 1e9, peak=peaks, images_per_s=rates, pct=pcts, pct_median=med)


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50"])
def test_bf16_vs_fp32_throughput(benchmark, name):
    spec = backbones.get(name)
    size = spec.native_size
    bases = {p: backbones.build_base(name, size, "random", precision=p) for p in ("fp32", "bf16")}
    x = _images(N_IMAGES)
    rates = {"fp32": [], "bf16": []}

    def paired():
        for p, base in bases.items():
            rates[p].append(_throughput(base, spec, size, x))

    benchmark.pedantic(paired, rounds=REPEATS, iterations=1)
    _summary(f"{name} fp32 images/s", rates["fp32"])
    _summary(f"{name} bf16 images/s", rates["bf16"])
    med = _summary(f"{name} bf16 / fp32 throughput", [b / f for b, f in zip(rates["bf16"], rates["fp32"])])
    benchmark.extra_info.update(rates=rates, ratio_median=med)


def test_convnext_grouped_conv_rewrite(benchmark):
    from backbones.rewrite import count_grouped_depthwise, grouped_to_depthwise

    spec = backbones.get("ConvNeXtTiny")
    size = int(os.environ.get("BENCH_SIZE", "128"))
    stock = backbones.build_base(spec.name, size, "random", rewrite=False)
    rewritten = grouped_to_depthwise(stock)
    x = _images(min(N_IMAGES, 64))
    print(f"\nConvNeXtTiny@{size}: {count_grouped_depthwise(stock)} grouped convolutions rewritten")
    rates = {"stock": [], "depthwise": []}

    def paired():
        rates["stock"].append(_throughput(stock, spec, size, x))
        rates["depthwise"].append(_throughput(rewritten, spec, size, x))

    benchmark.pedantic(paired, rounds=REPEATS, iterations=1)
    _summary("ConvNeXtTiny stock images/s", rates["stock"])
    _summary("ConvNeXtTiny depthwise images/s", rates["depthwise"])
    med = _summary("depthwise / stock throughput", [d / s for d, s in zip(rates["depthwise"], rates["stock"])])
    benchmark.extra_info.update(rates=rates, ratio_median=med)
