import os

import numpy as np
import pytest

import backbones
from backbones import UnknownBackboneError, get, list_models, names
from conftest import every_entry

EXPECTED = (
    ["Xception", "VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2",
     "ResNet152V2", "InceptionV3", "InceptionResNetV2", "MobileNet", "MobileNetV2", "MobileNetV3Small",
     "MobileNetV3Large", "DenseNet121", "DenseNet169", "DenseNet201", "NASNetMobile", "NASNetLarge"]
    + [f"EfficientNetB{i}" for i in range(8)]
    + [f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")]
    + [f"ConvNeXt{v}" for v in ("Tiny", "Small", "Base", "Large", "XLarge")]
)


def test_registry_holds_every_keras_application():
    assert sorted(names()) == sorted(EXPECTED)
    assert len(names()) == 40


@pytest.mark.parametrize("name", EXPECTED)
def test_entry_metadata(name):
    import keras

    spec = get(name)
    assert spec.constructor is getattr(keras.applications, name)
    assert callable(spec.preprocess_input)
    assert spec.min_size >= 32 and spec.native_size >= spec.min_size
    assert spec.param_count > 500_000 and spec.feature_dim >= 512
    assert 60 < spec.imagenet_top1 < 90
    assert spec.preprocessing in ("tf", "torch", "caffe", "builtin")
    assert spec.weights_filename == f"{name}_notop_imagenet.weights.h5"
    with pytest.raises(Exception):
        spec.native_size = 1  # frozen


def test_get_ignores_case():
    assert get("mobilenetv2") is get("MOBILENETV2") is get("MobileNetV2")


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownBackboneError) as info:
        get("MobileNetV4")
    message = str(info.value)
    assert "MobileNetV2" in message and "Did you mean" in message and "Xception" in message


def test_list_models_wildcards_and_natural_sort():
    assert list_models("efficientnetb*") == [f"EfficientNetB{i}" for i in range(8)]
    assert list_models("resnet*") == ["ResNet50", "ResNet50V2", "ResNet101", "ResNet101V2",
                                      "ResNet152", "ResNet152V2"]
    assert list_models(["mobilenet*", "xception"], exclude_filters="*v3*") == ["MobileNet", "MobileNetV2",
                                                                               "Xception"]
    with pytest.raises(UnknownBackboneError):
        list_models("nothing*")


def test_list_models_pretrained_filters_on_weight_files(tmp_path):
    (tmp_path / "MobileNet_notop_imagenet.weights.h5").write_bytes(b"x")
    assert list_models("*", pretrained=True, weights_dir=str(tmp_path)) == ["MobileNet"]


def test_resolve_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(backbones.WEIGHTS_ENV, raising=False)
    assert backbones.resolve_weights("VGG16").kind == "imagenet"
    assert backbones.resolve_weights("VGG16", "random").identity == "random"
    path = tmp_path / "VGG16_notop_imagenet.weights.h5"
    path.write_bytes(b"abc")
    src = backbones.resolve_weights("vgg16", str(tmp_path))
    assert src.kind == "file" and src.pretrained and len(src.identity) == 64
    # a folder without the file gives random weights, never a download
    assert backbones.resolve_weights("VGG19", str(tmp_path)).kind == "random"
    monkeypatch.setenv(backbones.WEIGHTS_ENV, str(tmp_path))
    assert backbones.resolve_weights("VGG16").kind == "file"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backbones.resolve_weights("VGG16", str(tmp_path / "nope"))


def test_size_below_minimum_names_the_minimum():
    with pytest.raises(ValueError, match="at least 71"):
        backbones.build_base("Xception", 64)


def _check_built(name, size):
    spec = get(name)
    base = backbones.build_base(name, size, "random")
    assert base.trainable is False
    assert base.count_params() == spec.param_count
    assert base.output_shape == (None, spec.feature_dim)
    out = base(np.zeros((1, size, size, 3), np.float32), training=False)
    assert tuple(out.shape) == (1, spec.feature_dim)
    import keras

    keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("name", every_entry(EXPECTED))
def test_build_every_entry(name):
    _check_built(name, max(get(name).min_size, 32))


def test_build_loads_weight_files(weights_dir):
    import keras

    src = backbones.resolve_weights("MobileNetV2", weights_dir)
    assert src.kind == "file"
    a = backbones.build_base("MobileNetV2", 64, src)
    b = backbones.build_base("MobileNetV2", 64, "random")
    wa, wb = a.get_weights()[0], b.get_weights()[0]
    assert wa.shape == wb.shape and not np.allclose(wa, wb)
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["Xception", "ResNet50", "DenseNet121", "EfficientNetB0", "VGG16"])
def test_preprocessing_layers_match_preprocess_input(name):
    import keras

    spec = get(name)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = np.asarray(spec.preprocess_input(x.copy()))
    y = x
    for layer in backbones.preprocessing_layers(spec):
        y = layer(y)
    assert np.allclose(np.asarray(y), expected, atol=1e-4)
    for layer in backbones.preprocessing_layers(spec):
        assert not isinstance(layer, keras.layers.Lambda)


def test_weights_folder_never_reaches_the_downloader(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def no_download(*args, **kwargs):
        raise AssertionError("keras.utils.get_file was called while a weights folder was given")

    monkeypatch.setattr(file_utils, "get_file", no_download)
    source = backbones.resolve_weights("MobileNetV3Small", str(tmp_path))  # empty folder
    assert source.kind == "random" and not source.pretrained
    base = backbones.build_base("MobileNetV3Small", 32, source)
    assert base.output_shape == (None, 576)
