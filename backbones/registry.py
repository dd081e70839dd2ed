"""The backbone registry: one frozen settings record per Keras Application.

Modelled on timm's registry: every model has a `BackboneSpec` with its input
sizes, preprocessing and published metadata, and `list_models` filters names
with shell-style wildcards and returns them in natural order.

Keras itself is imported lazily, so listing the registry is instant.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class BackboneSpec:
    """Settings of one `keras.applications` model used as a frozen backbone.

    Attributes:
        name: the constructor's name in `keras.applications`, e.g. "MobileNetV2".
        module: the `keras.applications` submodule holding its
            `preprocess_input`, e.g. "mobilenet_v2".
        family: architecture family, e.g. "mobilenet".
        native_size: the square input size (pixels) of its ImageNet weights.
        min_size: the smallest square input size Keras accepts for it.
        param_count: parameters of the base built with `include_top=False`
            (independent of input size; checked against a built model in tests).
        feature_dim: width of the globally average-pooled output.
        imagenet_top1: ImageNet top-1 accuracy (%) published for the Keras
            weights (Keras Applications table; MobileNetV3 from its docstring).
        preprocessing: what its `preprocess_input` does to 0..255 RGB input:
            "tf" scales to [-1, 1], "torch" scales to [0, 1] and normalises
            with ImageNet mean/std, "caffe" flips to BGR and subtracts the
            ImageNet mean, "builtin" is a no-op because the model rescales
            inside its own graph.
        interpolation: how 32x32 CIFAR images are upscaled to the input size.
        finetune_cut: where the base is cut when its last stage is
            fine-tuned: everything below stays frozen and its output maps
            are what gets cached (see `_FINETUNE_CUTS` for the forms).
        depthwise_rewrite: True where Keras writes depthwise convolutions as
            grouped `Conv2D` (ConvNeXt): `build_base` swaps them for
            `DepthwiseConv2D` with the same weights, which is about 5x faster
            on CPU (see `backbones.rewrite`).
    """

    name: str
    module: str
    family: str
    native_size: int
    min_size: int
    param_count: int
    feature_dim: int
    imagenet_top1: float
    preprocessing: str
    interpolation: str = "bilinear"
    finetune_cut: str | None = None
    depthwise_rewrite: bool = False

    @property
    def constructor(self) -> Callable:
        """The `keras.applications` constructor, e.g. `keras.applications.Xception`."""
        return getattr(importlib.import_module("keras.applications"), self.name)

    @property
    def preprocess_input(self) -> Callable:
        """The model's own `preprocess_input`: float RGB in 0..255 -> model input."""
        module = importlib.import_module(f"keras.applications.{self.module}")
        return module.preprocess_input

    @property
    def weights_filename(self) -> str:
        """File name of its no-top ImageNet weights inside a weights folder."""
        return f"{self.name}_notop_imagenet.weights.h5"


# Where fine-tuning cuts: the input of the last stage, so only that stage
# (a small share of the FLOPs) is trained on cached maps. A cut names a
# layer's output, "<layer>.input" the tensor that layer reads (where the
# tensor itself has an auto-generated name, which changes between Keras
# sessions), and "a+b" two tensors that together carry everything above them
# (NASNet's cells read the two previous cells' outputs, so no single tensor
# separates its last stage; the cut is after that stage's first cell).
# tests/test_finetune_cuts.py checks top(bottom(x)) == base(x) for each.
_FINETUNE_CUTS = {
    "Xception": "block13_sepconv1_act.input",  # the exit flow
    "VGG16": "block4_pool", "VGG19": "block4_pool",  # block5
    "ResNet50": "conv4_block6_out", "ResNet101": "conv4_block23_out", "ResNet152": "conv4_block36_out",  # conv5
    "ResNet50V2": "conv4_block6_out", "ResNet101V2": "conv4_block23_out", "ResNet152V2": "conv4_block36_out",
    "InceptionV3": "mixed8",  # mixed9, mixed10
    "InceptionResNetV2": "mixed_7a",  # block8_1..10 and conv_7b
    "MobileNet": "conv_pw_11_relu",  # conv 12-13
    "MobileNetV2": "block_12_add",  # blocks 13-16 and Conv_1
    "MobileNetV3Small": "expanded_conv_8_expand.input",  # expanded_conv_8-10 and the last conv
    "MobileNetV3Large": "expanded_conv_12_expand.input",  # expanded_conv_12-14 and the last conv
    "DenseNet121": "pool4_pool", "DenseNet169": "pool4_pool", "DenseNet201": "pool4_pool",  # conv5
    "NASNetMobile": "normal_concat_9+reduction_concat_reduce_8",  # normal cells 10-12
    "NASNetLarge": "normal_concat_13+reduction_concat_reduce_12",  # normal cells 14-18
    **{f"EfficientNet{v}": "block6a_expand_conv.input"  # blocks 6-7 and top_conv
       for v in ("B0", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "V2B0", "V2B1", "V2B2", "V2B3", "V2S", "V2M", "V2L")},
    **{f"ConvNeXt{v}": f"convnext_{v.lower()}_downsampling_block_2.input"  # the last downsampling and stage 3
       for v in ("Tiny", "Small", "Base", "Large", "XLarge")},
}


def _spec(name, module, family, native, minimum, params, dim, top1, prep):
    return BackboneSpec(name, module, family, native, minimum, params, dim, top1, prep,
                        finetune_cut=_FINETUNE_CUTS.get(name), depthwise_rewrite=family == "convnext")


# fmt: off
_SPECS = [
    _spec("Xception",          "xception",            "xception",        299, 71, 20_861_480, 2048, 79.0, "tf"),
    _spec("VGG16",             "vgg16",               "vgg",             224, 32, 14_714_688,  512, 71.3, "caffe"),
    _spec("VGG19",             "vgg19",               "vgg",             224, 32, 20_024_384,  512, 71.3, "caffe"),
    _spec("ResNet50",          "resnet",              "resnet",          224, 32, 23_587_712, 2048, 74.9, "caffe"),
    _spec("ResNet101",         "resnet",              "resnet",          224, 32, 42_658_176, 2048, 76.4, "caffe"),
    _spec("ResNet152",         "resnet",              "resnet",          224, 32, 58_370_944, 2048, 76.6, "caffe"),
    _spec("ResNet50V2",        "resnet_v2",           "resnet_v2",       224, 32, 23_564_800, 2048, 76.0, "tf"),
    _spec("ResNet101V2",       "resnet_v2",           "resnet_v2",       224, 32, 42_626_560, 2048, 77.2, "tf"),
    _spec("ResNet152V2",       "resnet_v2",           "resnet_v2",       224, 32, 58_331_648, 2048, 78.0, "tf"),
    _spec("InceptionV3",       "inception_v3",        "inception",       299, 75, 21_802_784, 2048, 77.9, "tf"),
    _spec("InceptionResNetV2", "inception_resnet_v2", "inception",       299, 75, 54_336_736, 1536, 80.3, "tf"),
    _spec("MobileNet",         "mobilenet",           "mobilenet",       224, 32,  3_228_864, 1024, 70.4, "tf"),
    _spec("MobileNetV2",       "mobilenet_v2",        "mobilenet",       224, 32,  2_257_984, 1280, 71.3, "tf"),
    _spec("MobileNetV3Small",  "mobilenet_v3",        "mobilenet",       224, 32,    939_120,  576, 68.1, "builtin"),
    _spec("MobileNetV3Large",  "mobilenet_v3",        "mobilenet",       224, 32,  2_996_352,  960, 75.6, "builtin"),
    _spec("DenseNet121",       "densenet",            "densenet",        224, 32,  7_037_504, 1024, 75.0, "torch"),
    _spec("DenseNet169",       "densenet",            "densenet",        224, 32, 12_642_880, 1664, 76.2, "torch"),
    _spec("DenseNet201",       "densenet",            "densenet",        224, 32, 18_321_984, 1920, 77.3, "torch"),
    _spec("NASNetMobile",      "nasnet",              "nasnet",          224, 32,  4_269_716, 1056, 74.4, "tf"),
    _spec("NASNetLarge",       "nasnet",              "nasnet",          331, 32, 84_916_818, 4032, 82.5, "tf"),
    _spec("EfficientNetB0",    "efficientnet",        "efficientnet",    224, 32,  4_049_571, 1280, 77.1, "builtin"),
    _spec("EfficientNetB1",    "efficientnet",        "efficientnet",    240, 32,  6_575_239, 1280, 79.1, "builtin"),
    _spec("EfficientNetB2",    "efficientnet",        "efficientnet",    260, 32,  7_768_569, 1408, 80.1, "builtin"),
    _spec("EfficientNetB3",    "efficientnet",        "efficientnet",    300, 32, 10_783_535, 1536, 81.6, "builtin"),
    _spec("EfficientNetB4",    "efficientnet",        "efficientnet",    380, 32, 17_673_823, 1792, 82.9, "builtin"),
    _spec("EfficientNetB5",    "efficientnet",        "efficientnet",    456, 32, 28_513_527, 2048, 83.6, "builtin"),
    _spec("EfficientNetB6",    "efficientnet",        "efficientnet",    528, 32, 40_960_143, 2304, 84.0, "builtin"),
    _spec("EfficientNetB7",    "efficientnet",        "efficientnet",    600, 32, 64_097_687, 2560, 84.3, "builtin"),
    _spec("EfficientNetV2B0",  "efficientnet_v2",     "efficientnet_v2", 224, 32,  5_919_312, 1280, 78.7, "builtin"),
    _spec("EfficientNetV2B1",  "efficientnet_v2",     "efficientnet_v2", 240, 32,  6_931_124, 1280, 79.8, "builtin"),
    _spec("EfficientNetV2B2",  "efficientnet_v2",     "efficientnet_v2", 260, 32,  8_769_374, 1408, 80.5, "builtin"),
    _spec("EfficientNetV2B3",  "efficientnet_v2",     "efficientnet_v2", 300, 32, 12_930_622, 1536, 82.0, "builtin"),
    _spec("EfficientNetV2S",   "efficientnet_v2",     "efficientnet_v2", 384, 32, 20_331_360, 1280, 83.9, "builtin"),
    _spec("EfficientNetV2M",   "efficientnet_v2",     "efficientnet_v2", 480, 32, 53_150_388, 1280, 85.3, "builtin"),
    _spec("EfficientNetV2L",   "efficientnet_v2",     "efficientnet_v2", 480, 32, 117_746_848, 1280, 85.7, "builtin"),
    _spec("ConvNeXtTiny",      "convnext",            "convnext",        224, 32, 27_820_128,  768, 81.3, "builtin"),
    _spec("ConvNeXtSmall",     "convnext",            "convnext",        224, 32, 49_454_688,  768, 82.3, "builtin"),
    _spec("ConvNeXtBase",      "convnext",            "convnext",        224, 32, 87_566_464, 1024, 85.3, "builtin"),
    _spec("ConvNeXtLarge",     "convnext",            "convnext",        224, 32, 196_230_336, 1536, 86.3, "builtin"),
    _spec("ConvNeXtXLarge",    "convnext",            "convnext",        224, 32, 348_147_968, 2048, 86.7, "builtin"),
]
# fmt: on

_REGISTRY: dict[str, BackboneSpec] = {s.name.lower(): s for s in _SPECS}


class UnknownBackboneError(KeyError):
    """Raised for a backbone name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def names() -> list[str]:
    """All registered backbone names, in natural order."""
    return sorted((s.name for s in _SPECS), key=_natural_key)


def get(name: str) -> BackboneSpec:
    """Returns the spec for `name`, in any letter case.

    Raises:
        UnknownBackboneError: with the closest valid names, when `name` is unknown.
    """
    spec = _REGISTRY.get(str(name).lower())
    if spec is not None:
        return spec
    close = difflib.get_close_matches(str(name).lower(), list(_REGISTRY), n=3, cutoff=0.5)
    hint = ", ".join(_REGISTRY[c].name for c in close)
    msg = f"unknown backbone {name!r}."
    if hint:
        msg += f" Did you mean: {hint}?"
    msg += f" Valid names: {', '.join(names())}. Run `python -m benchmark --list` to see them all."
    raise UnknownBackboneError(msg)


def list_models(
    filters: str | Iterable[str] = "*",
    pretrained: bool = False,
    weights_dir: str | None = None,
    exclude_filters: str | Iterable[str] = (),
) -> list[str]:
    """Names matching shell-style wildcards, like `timm.list_models`.

    Args:
        filters: one pattern or several, e.g. "efficientnet*" or
            ["mobilenet*", "xception"]; matching ignores letter case. A
            pattern without wildcards must name a backbone exactly.
        pretrained: keep only backbones whose weights file is in `weights_dir`.
        weights_dir: the folder checked when `pretrained` is true.
        exclude_filters: patterns to drop from the result.

    Returns:
        Matching names in natural order (EfficientNetB2 before EfficientNetB10).

    Raises:
        UnknownBackboneError: when a pattern without wildcards names no backbone
            or a wildcard pattern matches nothing.
    """
    import os

    patterns = [filters] if isinstance(filters, str) else list(filters)
    excludes = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    chosen: set[str] = set()
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?["):
            chosen.add(get(pattern).name)
            continue
        hits = {s.name for s in _SPECS if fnmatch.fnmatchcase(s.name.lower(), pattern.lower())}
        if not hits:
            raise UnknownBackboneError(
                f"pattern {pattern!r} matches no backbone. Valid names: {', '.join(names())}."
            )
        chosen |= hits
    for pattern in excludes:
        chosen = {n for n in chosen if not fnmatch.fnmatchcase(n.lower(), pattern.lower())}
    if pretrained:
        if weights_dir is None:
            raise ValueError("list_models(pretrained=True) needs weights_dir")
        chosen = {n for n in chosen if os.path.isfile(os.path.join(weights_dir, get(n).weights_filename))}
    return sorted(chosen, key=_natural_key)
