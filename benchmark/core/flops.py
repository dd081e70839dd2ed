"""FLOPs per image counted from a Keras model's layer graph, and this CPU's matmul peak.

FLOPs are 2 x multiply-accumulates of the convolution and dense layers,
read from each layer's kernel and output shapes (normalisation, activation
and pooling are ignored: they are a few percent at most). Nothing is typed in.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np


def _all_layers(model):
    """Every layer inside `model`, nested models' layers included (the model itself excluded); the
    caller picks the ones that cost FLOPs."""
    yield from model._flatten_layers(include_self=False, recursive=True)


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    shape = getattr(out, "shape", None)
    return None if shape is None else tuple(shape)


def count_flops(model) -> int:
    """FLOPs for one image through `model` (batch dimension excluded)."""
    import keras

    total = 0
    for layer in _all_layers(model):
        out = _output_shape(layer)
        if out is None:
            continue
        spatial = int(np.prod([d for d in out[1:-1]])) if len(out) > 2 else 1
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            total += 2 * spatial * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            cout = layer.pointwise_kernel.shape[-1]
            total += 2 * spatial * (kh * kw * cin * mult + cin * mult * cout)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin_per_group, cout = layer.kernel.shape
            total += 2 * spatial * kh * kw * cin_per_group * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += 2 * spatial * cin * cout
    return int(total)


PEAK_ENV = "BACKBONE_BENCH_MATMUL_PEAK"


def given_peak_gflops() -> float | None:
    """The fp32 matmul GFLOP/s in `$BACKBONE_BENCH_MATMUL_PEAK` (a peak already known; the tests set it),
    or None when it is not set.

    Raises:
        ValueError: when the variable is set to anything but a positive number.
    """
    value = os.environ.get(PEAK_ENV, "").strip()
    if not value:
        return None
    try:
        peak = float(value)
    except ValueError:
        peak = 0.0
    if not (math.isfinite(peak) and peak > 0):
        raise ValueError(f"{PEAK_ENV}={value!r} is not a positive number of GFLOP/s: unset it to measure the peak")
    return peak


def machine_peak_gflops() -> float:
    """This machine's fp32 matmul GFLOP/s: the given peak, else measured with `matmul_peak_gflops()` (about
    10 s on the slower 2-core CPU)."""
    return given_peak_gflops() or matmul_peak_gflops()


def matmul_peak_gflops(n: int = 4096, repeats: int = 5) -> float:
    """This machine's fp32 matmul rate (GFLOP/s): the best of `repeats` n x n products.

    n = 4096 (about 0.6 s a product on 2 cores): at 2048 the rate measured
    here was 4% lower, and at 1024 30% lower.
    """
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    tf.matmul(a, b).numpy()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
