"""Registry of Keras Applications used as frozen ImageNet backbones.

    >>> from backbones import get, list_models, build_base
    >>> list_models("efficientnetv2*")
    ['EfficientNetV2B0', 'EfficientNetV2B1', ...]
    >>> get("mobilenetv2").native_size
    224
"""

from .build import (PRECISIONS, WEIGHTS_ENV, WeightsSource, build_base, check_precision, check_size,
                    resolve_img_size, resolve_weights, sha256_file)
from .layers import UPSCALE_LAYER, preprocessing_layers, upscaling_model
from .registry import BackboneSpec, UnknownBackboneError, get, list_models, names

__all__ = [
    "BackboneSpec",
    "PRECISIONS",
    "UPSCALE_LAYER",
    "UnknownBackboneError",
    "WEIGHTS_ENV",
    "WeightsSource",
    "build_base",
    "check_precision",
    "check_size",
    "get",
    "list_models",
    "names",
    "preprocessing_layers",
    "resolve_img_size",
    "resolve_weights",
    "sha256_file",
    "upscaling_model",
]
