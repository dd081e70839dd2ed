import numpy as np
import pytest

import backbones
from benchmark.core.store import Store
from benchmark.core.extract import Extractor, extract_split, make_extractor


@pytest.fixture(scope="module")
def tiny_extractor():
    spec = backbones.get("MobileNetV3Small")
    base = backbones.build_base(spec.name, 32, "random")
    return spec, make_extractor(base, spec, 32)


def test_extractor_maps_uint8_batches_to_features(tiny_extractor, tiny_cifar):
    spec, fn = tiny_extractor
    out = fn(tiny_cifar.x_train[:5])
    assert out.shape == (5, spec.feature_dim) and out.dtype == np.float32
    # any batch size works without retracing trouble, and results do not depend on it
    assert np.allclose(fn(tiny_cifar.x_train[:3]), out[:3], atol=1e-4)


def test_resize_and_preprocess_happen_in_graph():
    # A caffe-mode backbone: BGR flip + mean subtraction must match preprocess_input applied by hand.
    import tensorflow as tf

    spec = backbones.get("ResNet50")
    base = backbones.build_base(spec.name, 40, "random")
    fn = make_extractor(base, spec, 40)  # 32 -> 40 upscaling inside the graph
    x = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    ref = base(spec.preprocess_input(tf.image.resize(tf.cast(x, tf.float32), (40, 40))), training=False)
    assert np.allclose(fn(x), ref.numpy(), atol=1e-3)


def test_timing_excludes_warmup_batch(tiny_extractor, tiny_cifar):
    _, fn = tiny_extractor
    ex = Extractor(fn, batch_size=16)
    feats, timing = ex.run(tiny_cifar.x_train[:50])
    assert feats.shape[0] == 50
    assert timing.images_timed == 34 and timing.seconds_timed > 0 and timing.samples_per_sec > 0
    assert timing.wall_s >= timing.seconds_timed and timing.batch_size == 16


def test_time_only_warms_up_then_times(tiny_extractor, tiny_cifar):
    _, fn = tiny_extractor
    t = Extractor(fn, batch_size=8).time_only(tiny_cifar.x_train[:8])  # a single batch: timed twice
    assert t.images_timed == 8


def test_out_of_memory_halves_the_batch(tiny_extractor, tiny_cifar):
    import tensorflow as tf

    _, fn = tiny_extractor
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(batch) > 8:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return fn(batch)

    ex = Extractor(flaky, batch_size=32)
    feats, timing = ex.run(tiny_cifar.x_train[:20])
    assert feats.shape[0] == 20 and timing.batch_size == 8 and calls[:3] == [20, 16, 8]


def test_other_errors_are_not_swallowed(tiny_cifar):
    def broken(batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Extractor(broken).run(tiny_cifar.x_train[:4])


def test_extract_split_resumes_finished_chunks(tiny_extractor, tiny_cifar, tmp_path):
    _, fn = tiny_extractor
    entry = Store(str(tmp_path)).features("MobileNetV3Small", 32, "train", {"data": "x"})
    images = tiny_cifar.x_train[:50]
    full, _, reused = extract_split(entry, Extractor(fn, 8), images, chunk_size=20)
    assert reused == 0 and full.dtype == np.float16 and full.shape[0] == 50
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return fn(batch)

    again, _, reused = extract_split(entry, Extractor(counting, 8), images, chunk_size=20)
    assert reused == 3 and calls == [] and np.array_equal(again, full)


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Only uint8 32x32 images and float16 features scale with N; upscaled batches do not accumulate.

    At 128 px one upscaled float32 batch of 64 is 12.6 MB, so keeping the
    upscaled images of 6,000 would add 1.2 GB; the features add 7 MB.
    """
    from benchmark.core import sysinfo

    if not sysinfo.reset_peak_rss():
        pytest.skip("this kernel does not allow resetting the peak-RSS mark")
    spec = backbones.get("MobileNetV3Small")
    fn = make_extractor(backbones.build_base(spec.name, 128, "random"), spec, 128)
    images = np.random.default_rng(0).integers(0, 256, (6000, 32, 32, 3)).astype(np.uint8)
    extract_split(Store(str(tmp_path / "warm")).features(spec.name, 128, "train", {"n": 0}),
                  Extractor(fn, 64), images[:128], chunk_size=1000)  # trace and allocate once
    peaks = []
    for n in (500, 6000):
        entry = Store(str(tmp_path / str(n))).features(spec.name, 128, "train", {"n": n})
        sysinfo.reset_peak_rss()
        features, _, _ = extract_split(entry, Extractor(fn, 64), images[:n], chunk_size=1000)
        assert features.shape == (n, spec.feature_dim)
        peaks.append(sysinfo.peak_rss_mb())
    assert peaks[1] - peaks[0] < 150, f"peak RSS {peaks[0]:.0f} MiB for 500 images, {peaks[1]:.0f} MiB for 6000"
