"""Building frozen bases, and deciding where their weights come from.

Weights come from exactly one of three sources:

* a weights folder (`--weights-dir` or `BACKBONE_WEIGHTS_DIR`) holding
  `<Name>_notop_imagenet.weights.h5` files, as in `../shared/assets/weights`;
* `"imagenet"`, the normal Keras download, for users who are online;
* random initialisation, which is right for timing but never for accuracy.

When a weights folder is given, Keras's downloader is never reached: a
backbone whose file is missing there is built with random weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from .registry import BackboneSpec, get

WEIGHTS_ENV = "BACKBONE_WEIGHTS_DIR"

# Compute precision -> Keras dtype policy. Variables stay float32 under
# "mixed_bfloat16", so the same weights files load either way.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}


@dataclass(frozen=True)
class WeightsSource:
    """Where a base's weights come from.

    Attributes:
        kind: "file", "imagenet" or "random".
        path: the weights file for kind "file", else None.
        identity: what the feature cache keys on: the file's sha256, or
            "imagenet" / "random".
    """

    kind: str
    path: str | None = None
    identity: str = "random"

    @property
    def pretrained(self) -> bool:
        return self.kind in ("file", "imagenet")

    @property
    def label(self) -> str:
        """The value written to the results' `weights` column."""
        return "random" if self.kind == "random" else "imagenet"


@lru_cache(maxsize=None)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: part of the memo's key only
    return sha256_file(path)


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (the project's one file hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights(name: str, weights: str | None = None) -> WeightsSource:
    """Decides where `name`'s weights come from.

    Args:
        name: a registry name.
        weights: "imagenet", "random", a weights folder, or None. None means
            the folder in `$BACKBONE_WEIGHTS_DIR` when set, else "imagenet".

    Returns:
        The `WeightsSource`. A folder without the backbone's file gives
        random weights, never a download.

    Raises:
        FileNotFoundError: when `weights` is a folder that does not exist.
    """
    spec = get(name)
    if weights is None:
        weights = os.environ.get(WEIGHTS_ENV) or "imagenet"
    if weights == "random":
        return WeightsSource("random")
    if weights == "imagenet":
        return WeightsSource("imagenet", identity="imagenet")
    if not os.path.isdir(weights):
        raise FileNotFoundError(
            f"weights folder {weights!r} does not exist. Pass a folder holding "
            f"<Name>_notop_imagenet.weights.h5 files (e.g. ../shared/assets/weights) "
            f"to --weights-dir or ${WEIGHTS_ENV}, or use 'imagenet' to download."
        )
    path = os.path.join(weights, spec.weights_filename)
    if os.path.isfile(path):
        st = os.stat(path)  # weights files are large and read often: hashed once per (path, size, mtime)
        return WeightsSource("file", path=path, identity=_weights_sha256(os.path.abspath(path), st.st_size,
                                                                        st.st_mtime_ns))
    return WeightsSource("random")


MAX_IMG_SIZE = 1024  # above this one batch's activations outgrow a workstation's memory for most bases


def max_img_size(spec: BackboneSpec) -> int:
    """The largest input size accepted: twice the native size, and at most MAX_IMG_SIZE."""
    return min(2 * spec.native_size, MAX_IMG_SIZE)


def check_size(spec: BackboneSpec, img_size: int) -> None:
    """Raises ValueError when `img_size` is below the backbone's minimum or above `max_img_size`."""
    if int(img_size) < spec.min_size:
        raise ValueError(
            f"{spec.name} needs an input size of at least {spec.min_size} px; got {img_size}. "
            f"Pick a size >= {spec.min_size} or 'native' ({spec.native_size})."
        )
    if int(img_size) > max_img_size(spec):
        raise ValueError(
            f"{img_size} px is too large for {spec.name}: CIFAR-10's 32 px images gain nothing past twice the "
            f"native {spec.native_size} px, and activation memory grows with the square of the size. "
            f"Pick at most {max_img_size(spec)} px."
        )


def resolve_img_size(spec: BackboneSpec, img_size: int | str) -> int:
    """Pixels for `img_size`, an int or "native" (any case): checked against `spec.min_size`."""
    if str(img_size).lower() == "native":
        return spec.native_size
    try:
        value = int(img_size)
    except ValueError:
        raise ValueError(f"an input size is a number of pixels or 'native'; got {img_size!r}") from None
    check_size(spec, value)
    return value


def check_precision(precision: str) -> str:
    """Returns `precision` if it is one of `PRECISIONS`, else raises ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision


def build_base(name: str, size: int, weights: WeightsSource | str | None = "random", precision: str = "fp32",
               rewrite: bool = True):
    """Builds a frozen feature extractor.

    Args:
        name: a registry name, any letter case.
        size: square input size in pixels, at least the backbone's `min_size`.
        weights: a `WeightsSource`, or anything `resolve_weights` accepts.
        precision: "fp32", or "bf16" for Keras's `mixed_bfloat16` policy
            (bfloat16 compute, float32 variables).
        rewrite: apply the registry's graph rewrite where it has one
            (`spec.depthwise_rewrite`); same outputs, faster on CPU.

    Returns:
        A `keras.Model` with `include_top=False` and global average pooling:
        input (batch, size, size, 3) already passed through the backbone's
        `preprocess_input`, output (batch, feature_dim), float32 for "fp32"
        and bfloat16 for "bf16". It is frozen (`trainable=False`).
    """
    import keras

    spec = get(name)
    check_size(spec, size)
    policy = PRECISIONS[check_precision(precision)]
    source = weights if isinstance(weights, WeightsSource) else resolve_weights(spec.name, weights)
    keras_weights = "imagenet" if source.kind == "imagenet" else None
    # keras.applications take no dtype argument: the global policy is set
    # for the construction only, so no other model is affected.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        base = spec.constructor(
            include_top=False,
            weights=keras_weights,
            input_shape=(int(size), int(size), 3),
            pooling="avg",
        )
    finally:
        keras.config.set_dtype_policy(previous)
    if source.kind == "file":
        base.load_weights(source.path)
    if spec.depthwise_rewrite and rewrite:
        from .rewrite import grouped_to_depthwise

        base = grouped_to_depthwise(base)
    base.trainable = False
    return base
