import pytest

import backbones
from benchmark.core.flops import count_flops, matmul_peak_gflops


def test_dense_and_conv_counts_are_exact():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)            # 8*8 * 3*3*3*4 MACs
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)           # 8*8 * 3*3*4 MACs
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)                              # 4*10 MACs
    model = keras.Model(inputs, outputs)
    assert count_flops(model) == 2 * (64 * 108 + 64 * 36 + 40)


@pytest.mark.parametrize("name, size, published_gmacs", [("MobileNetV2", 224, 0.30), ("ResNet50", 224, 3.9)])
def test_backbone_flops_match_published_figures(name, size, published_gmacs):
    import keras

    flops = count_flops(backbones.build_base(name, size, "random"))
    assert flops / 2 / 1e9 == pytest.approx(published_gmacs, rel=0.1)
    keras.backend.clear_session()


def test_flops_grow_with_input_area():
    a = count_flops(backbones.build_base("MobileNetV3Small", 64, "random"))
    b = count_flops(backbones.build_base("MobileNetV3Small", 128, "random"))
    assert 3.5 < b / a < 4.5


def test_matmul_peak_is_positive():
    assert matmul_peak_gflops(n=256, repeats=2) > 0


def test_a_known_peak_skips_the_measurement(monkeypatch):
    from benchmark.core.flops import PEAK_ENV, machine_peak_gflops

    monkeypatch.setenv(PEAK_ENV, "123.5")
    assert machine_peak_gflops() == 123.5
    for bad in ("abc", "0", "-3", "inf", "nan"):
        monkeypatch.setenv(PEAK_ENV, bad)
        with pytest.raises(ValueError, match="not a positive number of GFLOP/s"):
            machine_peak_gflops()
