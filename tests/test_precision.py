"""bf16 bases and the grouped-convolution rewrite: same outputs, within the precision's round-off."""

import numpy as np
import pytest

import backbones
from backbones.rewrite import count_grouped_depthwise, grouped_to_depthwise
from benchmark.core.extract import make_extractor


def _images(n=8):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)


def test_bf16_base_matches_fp32_within_bf16_round_off(tmp_path):
    import keras

    spec = backbones.get("MobileNetV2")
    fp32 = backbones.build_base(spec.name, 64, "random")
    fp32.save_weights(str(tmp_path / spec.weights_filename))
    bf16 = backbones.build_base(spec.name, 64, str(tmp_path), precision="bf16")
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored after the build
    assert bf16.dtype_policy.name == "mixed_bfloat16" and bf16.weights[0].dtype == "float32"
    a = make_extractor(fp32, spec, 64)(_images())
    b = make_extractor(bf16, spec, 64)(_images())
    assert b.dtype == np.float32 and b.shape == a.shape
    # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits survive the whole network
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    assert np.abs(a - b).max() > 1e-5 * np.abs(a).max()  # it really ran in bfloat16


def test_unknown_precision_lists_the_choices():
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose from fp32, bf16"):
        backbones.build_base("MobileNetV2", 32, "random", precision="fp16")


def test_convnext_grouped_convolutions_become_depthwise():
    import keras

    spec = backbones.get("ConvNeXtTiny")
    stock = backbones.build_base(spec.name, 32, "random", rewrite=False)
    for layer in stock.layers:  # random LayerScale is 1e-6, which would hide the convolutions from the check
        if type(layer).__name__ == "LayerScale":
            layer.gamma.assign(np.ones(layer.gamma.shape, "float32"))
    assert count_grouped_depthwise(stock) == 18  # one per block: 3 + 3 + 9 + 3
    fast = grouped_to_depthwise(stock)
    assert count_grouped_depthwise(fast) == 0
    assert sum(isinstance(l, keras.layers.DepthwiseConv2D) for l in fast.layers) == 18
    names = {l.name for l in stock.layers if l.weights}
    assert names == {l.name for l in fast.layers if l.weights} and not fast.trainable
    x = _images(4)
    want, got = make_extractor(stock, spec, 32)(x), make_extractor(fast, spec, 32)(x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_build_base_rewrites_convnext_only():
    assert count_grouped_depthwise(backbones.build_base("ConvNeXtTiny", 32, "random")) == 0
    assert [n for n in backbones.names() if backbones.get(n).depthwise_rewrite] == [
        "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge"]


def test_rewrite_leaves_other_models_alone():
    base = backbones.build_base("MobileNetV3Small", 32, "random")
    assert count_grouped_depthwise(base) == 0 and grouped_to_depthwise(base) is base
