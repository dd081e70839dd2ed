"""Every registry backbone's fine-tuning cut splits it exactly: top(bottom(x)) == base(x)."""

import numpy as np
import pytest

import backbones
from benchmark.core.finetune import cut_tensors, split_base, unfreeze
from conftest import every_entry


def _size(spec) -> int:
    return max(spec.min_size, 64)  # small, but every stage still has maps of at least 1x1


@pytest.mark.slow
@pytest.mark.parametrize("name", every_entry(backbones.names()))
def test_cut_splits_the_base_exactly(name):
    import keras

    spec = backbones.get(name)
    assert spec.finetune_cut, f"{name} has no fine-tuning cut"
    img_size = _size(spec)
    base = backbones.build_base(name, img_size, backbones.WeightsSource("random"))
    try:
        bottom, top = split_base(base, spec.finetune_cut)
        x = np.random.default_rng(0).uniform(0, 255, (2, img_size, img_size, 3)).astype("float32")
        whole = np.asarray(base.predict_on_batch(x))
        maps = np.asarray(bottom.predict_on_batch(x))
        assert maps.ndim == 4 and maps.shape[0] == 2
        parted = np.asarray(top.predict_on_batch(maps))
        scale = max(float(np.abs(whole).max()), 1e-30)  # random weights can make tiny activations
        np.testing.assert_allclose(parted / scale, whole / scale, atol=1e-5)
        # The cut is in the last stage: its maps are at the final resolution or twice it.
        final = next(layer for layer in reversed(base.layers)
                     if isinstance(layer, keras.layers.GlobalAveragePooling2D)).input.shape[1]
        side = maps.shape[1]
        assert final in (side, -(-side // 2), side // 2), (maps.shape, final)  # one stride-2 step at most
        # It leaves something to train, and less than the whole base.
        trainable = unfreeze(top)
        assert 0 < trainable < spec.param_count
    finally:
        keras.backend.clear_session()


def test_a_bad_cut_names_the_layer():
    import keras

    base = backbones.build_base("MobileNet", 32, backbones.WeightsSource("random"))
    with pytest.raises(ValueError, match="no layer 'nope'"):
        cut_tensors(base, "nope.input")
    with pytest.raises(ValueError, match="must be a layer name or '<layer>.input'"):
        cut_tensors(base, "conv_pw_11_relu.output")
    keras.backend.clear_session()


def test_a_two_tensor_cut_is_one_concatenated_map():
    """NASNet's cut carries two cells' outputs; the bottom concatenates them and the top splits them again."""
    import keras

    spec = backbones.get("NASNetMobile")
    base = backbones.build_base(spec.name, 64, backbones.WeightsSource("random"))
    parts = cut_tensors(base, spec.finetune_cut)
    bottom, _ = split_base(base, spec.finetune_cut)
    assert len(parts) == 2
    assert bottom.output.shape[-1] == sum(t.shape[-1] for t in parts)
    keras.backend.clear_session()


def test_bf16_fine_tuning_trains_in_bfloat16_and_leaves_a_float32_part():
    """`FineTuneConfig(precision="bf16")`: the part above the cut computes in bfloat16 while it trains only;
    its weights stay float32 variables, are trained, and the part computes in float32 again afterwards."""
    import keras

    from benchmark.core.finetune import FineTuneConfig, computing_in, fine_tune
    from benchmark.core.heads import HeadConfig, build_head

    keras.utils.set_random_seed(0)
    base = backbones.build_base("MobileNetV2", 32, backbones.WeightsSource("random"))
    _, top = split_base(base, backbones.get("MobileNetV2").finetune_cut)
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((64, *top.input.shape[1:])).astype("float32")
    with computing_in(top, "bf16"):
        assert top(maps[:2]).dtype == "bfloat16"
        assert {layer.compute_dtype for layer in top.layers} == {"bfloat16"}
    assert top(maps[:2]).dtype == "float32" and {layer.compute_dtype for layer in top.layers} == {"float32"}
    with pytest.raises(RuntimeError), computing_in(top, "bf16"):
        raise RuntimeError("an interrupted fine-tuning")
    assert {layer.compute_dtype for layer in top.layers} == {"float32"}  # restored all the same

    dim = int(top.output.shape[-1])
    head = build_head(HeadConfig(kind="mlp", hidden=8), dim, mean=np.zeros(dim), variance=np.ones(dim))
    before = [np.array(w) for w in top.weights]
    labels = np.arange(64) % 10
    result = fine_tune(top, head, (maps, labels), (maps[:20], labels[:20]),
                       FineTuneConfig(epochs=1, batch_size=16, learning_rate=1e-2, precision="bf16"), echo=lambda *_: 0)
    assert result.epochs == 1 and 0 <= result.val_acc <= 1
    head_scores = head.predict(top.predict(maps[:20], verbose=0), verbose=0)
    assert result.val_acc == np.mean(head_scores.argmax(-1) == labels[:20])  # the saved, float32 network's
    assert {w.dtype for w in top.weights} == {"float32"} and top(maps[:2]).dtype == "float32"
    assert any(not np.allclose(a, np.array(w)) for a, w in zip(before, top.weights))  # trained
    assert FineTuneConfig(precision="bf16").as_dict()["precision"] == "bf16"
    assert "precision" not in FineTuneConfig().as_dict()  # fp32 keys stay what they were before the setting
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose from fp32, bf16"):
        FineTuneConfig(precision="fp16")
