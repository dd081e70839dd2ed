"""What each cached record depends on: the parts of every cache key, in one place.

The store hashes the parts (`store.make_key`) and keeps the parts beside
each record. The keys of existing caches are pinned by `tests/test_layout.py`:
optional parts are left out at their defaults, so adding one keeps old keys.
"""

from __future__ import annotations

from .finetune import FINETUNE_VERSION
from .heads import HEAD_VERSION
from .store import PIPELINE_VERSION

SCORED = ("train", "val", "test")  # the splits a head or a fine-tuned network is scored on


def feature_parts(spec, weights, split, batch_size: int | None = None, precision: str = "fp32",
                  cut: str | None = None) -> dict:
    """One split's features, beyond backbone, img_size and split name (which `Store.features` adds).

    `batch_size` only for timing entries.
    """
    parts = {"weights": weights.identity, "data": split.fingerprint, "batch_size": batch_size}
    if precision != "fp32":
        parts["precision"] = precision
    if spec.depthwise_rewrite:  # timings from before the rewrite are not reused
        parts["graph"] = "depthwise_rewrite"
    if cut:
        parts["cut"] = cut
    return parts


def head_parts(feature_keys: dict[str, str], head: dict, seed: int) -> dict:
    """A head trained on frozen features: the features' cache keys, its settings (`HeadConfig.as_dict`), the seed."""
    return {"features": {name: feature_keys[name] for name in SCORED}, "head": head, "seed": seed,
            "version": HEAD_VERSION}


def transferability_parts(feature_key: str, version: int) -> dict:
    """The transferability scores of one split's cached features (their cache key)."""
    return {"features": feature_key, "version": version}


def finetune_parts(map_keys: dict[str, str], finetune: dict, head: dict, seed: int) -> dict:
    """The benchmark's fine-tuned network: the maps' cache keys, `FineTuneConfig.as_dict`, the head, the seed."""
    return {"maps": {name: map_keys[name] for name in SCORED}, "finetune": finetune, "head": head, "seed": seed,
            "version": [FINETUNE_VERSION, HEAD_VERSION]}


def model_parts(backbone: str, img_size: int, weights: str, cut: str | None, train: str, val: str,
                flip_features: bool, head: dict, label_smoothing: float, fine_tune: dict | None, seed: int,
                train_jpeg: tuple | None = None) -> dict:
    """The final model's main network (unchanged since v1): `weights` is the weights identity, `train` and
    `val` the splits' fingerprints, `fine_tune` `FineTuneConfig.as_dict` or None, `train_jpeg` the band of
    the re-encoded training images (with the Pillow and libjpeg versions that encode them) or None."""
    import keras

    parts = {"backbone": backbone, "size": img_size, "weights": weights, "cut": cut, "train": train, "val": val,
             "flip_features": flip_features, "head": head, "label_smoothing": label_smoothing,
             "fine_tune": fine_tune, "seed": seed,
             "versions": [PIPELINE_VERSION, HEAD_VERSION, FINETUNE_VERSION, keras.__version__]}
    if train_jpeg is not None:
        import PIL
        from PIL import features

        parts["train_jpeg"] = {"band": list(train_jpeg), "pillow": PIL.__version__, "libjpeg": features.version("jpg")}
    return parts


def ensemble_parts(main: dict, members: list[str], min_gain: float, member_weights: list[str]) -> dict:
    """The main network with head-only `members` (their weights identities), kept above `min_gain`."""
    return {**main, "ensemble": members, "ensemble_min_gain": min_gain, "member_weights": member_weights}


def mirror_parts(model: dict, mirror: str, min_gain: float) -> dict:
    """A model file after the test-time mirroring step (`mirror` "auto" keeps it above `min_gain`)."""
    return {**model, "mirror": mirror, **({"mirror_min_gain": min_gain} if mirror == "auto" else {})}


def evaluation_parts(model_sha256: str, test: str, jpeg_quality: int | None) -> dict:
    """One evaluation of a model file (its sha256) on test images (their fingerprint), maybe re-encoded."""
    return {"model_sha256": model_sha256, "test": test, "jpeg_quality": jpeg_quality}


def weights_parts(backbone: str, weights: str) -> dict:
    """A verdict that the weights file (its sha256) loads into `backbone`."""
    return {"backbone": backbone, "weights": weights}


def dataset_parts(root: str, listing: str, data_size: int | None, bad_images: str, version: int) -> dict:
    """A folder's decoded images: the folder, its listing's digest (`datasets.listing_digest`), the requested
    storage size (None: the default rule), the bad-image rule, and the decoder (Pillow's version)."""
    import PIL

    return {"folder": root, "listing": listing, "data_size": data_size, "bad_images": bad_images,
            "version": [version, PIL.__version__]}
