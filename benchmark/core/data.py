"""The labelled images a run works on, stratified seeded splits and data fingerprints.

A `Dataset` is four uint8 arrays and class names. CIFAR-10 is the default and
lives here; `folder:PATH` and `npz:PATH` (a user's own images) are read by
`benchmark.core.datasets`. CIFAR-10 has two sources:

* `keras.datasets.cifar10.load_data()`, the default for online users;
* a local folder in the official `cifar-10-batches-py` layout (`--data-dir`
  or `$CIFAR10_DIR`), e.g. one made by `../shared/assets/cifar10/build_batches.py`.

Batch files are pickles. They are read with an unpickler that only admits the
handful of numpy names a CIFAR batch needs, so a tampered file cannot run
code; the arrays come out exactly as `keras.src.datasets.cifar.load_batch`
returns them (tests check that).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field

import numpy as np

DATA_ENV = "CIFAR10_DIR"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCH_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
# sha256 of data_batch_1 decoded from ../shared/assets (the lossy JPEG copy).
LOSSY_JPEG_BATCH1_SHA256 = "eb2a320c067c883eaaec36981bf0d1220e6d80b8a0a1e519badaf387b3f8f706"


class DataError(ValueError):
    """A data folder is missing, malformed, or too small for the request."""


class _BatchUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads one CIFAR-10 python batch file.

    Returns:
        `(images, labels)`: uint8 (N, 32, 32, 3) channels-last, and int64 (N,).

    Raises:
        DataError: when the file is not a well-formed CIFAR-10 batch.
    """
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as err:
        raise DataError(
            f"{path} is not a CIFAR-10 python batch ({type(err).__name__}: {err}). "
            f"Rebuild the folder, e.g. `python ../shared/assets/cifar10/build_batches.py DIR`."
        ) from err
    if len(images) != len(labels) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels, or labels outside 0..9")
    return np.ascontiguousarray(images), labels


# Where the project's machines keep offline copies: ../shared/assets beside the repository.
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                      "shared", "assets")


def offline_help() -> str:
    """The exact commands that make a local CIFAR-10 folder and point the tool at it and at local weights."""
    script = os.path.join(ASSETS, "cifar10", "build_batches.py")
    weights = os.path.join(ASSETS, "weights")
    if not os.path.isfile(script):
        script, weights = "ASSETS/cifar10/build_batches.py", "/path/to/weights"
    folder = os.path.join(os.path.abspath(os.sep), "tmp", "cifar")
    return (f"Offline, make a local copy and point the tool at it (README: 'Offline use'):\n"
            f"  python {script} {folder}\n"
            f"  export {DATA_ENV}={folder}/cifar-10-batches-py\n"
            f"  export BACKBONE_WEIGHTS_DIR={weights}\n"
            f"or pass --data-dir and --weights-dir.")


def find_batches_dir(data_dir: str) -> str:
    """Returns the `cifar-10-batches-py` folder at or directly under `data_dir`.

    Raises:
        DataError: naming the path and the files it expects.
    """
    for candidate in (data_dir, os.path.join(data_dir, "cifar-10-batches-py")):
        if all(os.path.isfile(os.path.join(candidate, f)) for f in BATCH_FILES):
            return candidate
    if not os.path.isdir(data_dir):
        problem = "does not exist"
    else:
        missing = [f for f in BATCH_FILES if not os.path.isfile(os.path.join(data_dir, f))]
        problem = f"lacks {', '.join(missing)}"
    raise DataError(
        f"CIFAR-10 folder {data_dir!r} {problem}. Expected a `cifar-10-batches-py` folder "
        f"(or its parent) holding {', '.join(BATCH_FILES)}. Make one with "
        f"`python ../shared/assets/cifar10/build_batches.py DIR` and pass --data-dir DIR "
        f"or set ${DATA_ENV}."
    )


@dataclass(frozen=True)
class Dataset:
    """A labelled image set and where it came from.

    Attributes:
        x_train: uint8 (N, S, S, 3), 0..255 RGB (CIFAR-10: (50000, 32, 32, 3)).
        y_train: int64 (N,), labels 0..n_classes-1.
        x_test: uint8 (M, S, S, 3).
        y_test: int64 (M,).
        source: "keras.datasets", or the folder or file read.
        lossy_jpeg: True when the files are the lossy JPEG copy from
            `../shared/assets` (recognised by checksum).
        name: what results rows and the report call it ("cifar10", or the folder's or file's name).
        class_names: one per label, in label order.
        info: how it was read (storage size, images skipped), for the run's environment record.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    lossy_jpeg: bool = False
    name: str = "cifar10"
    class_names: tuple = CLASSES
    info: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict:
        """Plain data for the run's environment record: the report names the dataset and its classes from it."""
        return {"name": self.name, "source": self.source, "class_names": list(self.class_names),
                "n_train_pool": len(self.y_train), "n_test": len(self.y_test),
                "img_size": int(self.x_train.shape[1]), "lossy_jpeg": self.lossy_jpeg, **self.info}


def load_cifar10(data_dir: str | None = None) -> Dataset:
    """Loads CIFAR-10 from a local folder, or through Keras's downloader.

    Args:
        data_dir: a `cifar-10-batches-py` folder or its parent. None means
            `$CIFAR10_DIR` when set, else `keras.datasets.cifar10.load_data()`.
    """
    data_dir = data_dir or os.environ.get(DATA_ENV)
    if not data_dir:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as err:  # offline: urllib/requests errors of many kinds
            raise DataError(f"could not download CIFAR-10 ({type(err).__name__}: {str(err)[:200]}).\n"
                            + offline_help()) from err
        return Dataset(x_train, y_train.reshape(-1).astype(np.int64),
                       x_test, y_test.reshape(-1).astype(np.int64), "keras.datasets")
    folder = find_batches_dir(data_dir)
    parts = [read_batch(os.path.join(folder, f"data_batch_{i}")) for i in range(1, 6)]
    x_test, y_test = read_batch(os.path.join(folder, "test_batch"))
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    with open(os.path.join(folder, "data_batch_1"), "rb") as f:
        lossy = hashlib.sha256(f.read()).hexdigest() == LOSSY_JPEG_BATCH1_SHA256
    return Dataset(x_train, y_train, x_test, y_test, os.path.abspath(folder), lossy)


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 over the arrays' shapes, dtypes and bytes: the identity of a data subset."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype.str}".encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def stratified_take(labels: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified random subset of `size` items, sorted.

    Each class keeps its share of `labels` to within one item. `size=None`
    (or a size equal to the whole) returns every index.
    """
    n = len(labels)
    if size is None or size >= n:
        if size is not None and size > n:
            raise DataError(f"asked for {size} images but only {n} are available")
        return np.arange(n)
    # Rank items within their class by a random order, as a fraction of the
    # class size; the `size` smallest fractions are a proportional sample.
    position = np.empty(n, dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        position[idx[rng.permutation(len(idx))]] = (np.arange(len(idx)) + 0.5) / len(idx)
    order = np.lexsort((rng.random(n), position))
    return np.sort(order[:size])


@dataclass(frozen=True)
class Split:
    """One named part of the data: uint8 images (N, S, S, 3) (S = 32 for CIFAR-10) and int64 labels (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the images and labels, computed once: every cache key of the split hashes it."""
        return fingerprint(self.x, self.y)

    def __len__(self) -> int:
        return len(self.y)


def make_splits(
    data: Dataset,
    *,
    n_val_holdout: int | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> dict[str, Split]:
    """The train/val/test protocol.

    A stratified, seeded `n_val_holdout` images (None: a tenth, 5,000 of
    CIFAR-10's 50,000) are held out of the training images; the rest are the
    training pool. `n_train`, `n_val` and `n_test` then take stratified
    subsets of the pool, of the held-out validation images and of the test
    images (None keeps all).

    Returns:
        {"train": Split, "val": Split, "test": Split}.

    Raises:
        DataError: naming the flag whose value does not fit the data.
    """
    n_pool = len(data.y_train)
    n_val_holdout = default_val_holdout(n_pool) if n_val_holdout is None else n_val_holdout
    if not 0 < n_val_holdout < n_pool:
        raise DataError(f"--val-holdout must be between 1 and {n_pool - 1}; got {n_val_holdout}")
    for flag, want, have in (("--train-size", n_train, n_pool - n_val_holdout),
                             ("--val-size", n_val, n_val_holdout), ("--test-size", n_test, len(data.y_test))):
        if want is not None and want <= 0:
            raise DataError(f"{flag} must be a positive number of images; got {want}")
        if want is not None and want > have:
            raise DataError(f"{flag} {want} is larger than the data: at most {have} images are available")
    # One generator per part, so changing one size leaves the other parts
    # (and their cached features) as they were.
    rngs = [np.random.default_rng([seed, part]) for part in range(4)]
    val_idx = stratified_take(data.y_train, n_val_holdout, rngs[0])
    pool_idx = np.setdiff1d(np.arange(n_pool), val_idx)
    train_idx = pool_idx[stratified_take(data.y_train[pool_idx], n_train, rngs[1])]
    val_idx = val_idx[stratified_take(data.y_train[val_idx], n_val, rngs[2])]
    test_idx = stratified_take(data.y_test, n_test, rngs[3])
    unseen = sorted(set(range(data.n_classes)) - set(np.unique(data.y_train[train_idx]).tolist()))
    if unseen:  # a head cannot learn a class it never sees
        names = ", ".join(repr(data.class_names[c]) for c in unseen[:5])
        raise DataError(f"the training split has no image of class {names} ({len(train_idx)} training images "
                        f"for {data.n_classes} classes); raise --train-size, or add images to that class")
    return {
        "train": Split("train", data.x_train[train_idx], data.y_train[train_idx]),
        "val": Split("val", data.x_train[val_idx], data.y_train[val_idx]),
        "test": Split("test", data.x_test[test_idx], data.y_test[test_idx]),
    }


def default_val_holdout(n_pool: int) -> int:
    """Training images held out for validation when --val-holdout is not given: a tenth (5,000 for CIFAR-10)."""
    return max(1, round(n_pool / 10))


def splits_fingerprint(splits: dict[str, Split]) -> str:
    """One sha256 over every split's images and labels, in order: the identity of a run's data."""
    return fingerprint(*(a for s in splits.values() for a in (s.x, s.y)))


@dataclass(frozen=True)
class SplitRecipe:
    """How to rebuild a run's splits: plain data, so a worker process (or another
    machine) can make exactly the images the runner planned for.

    Attributes:
        data_dir: a `cifar-10-batches-py` folder (or its parent); None means
            `$CIFAR10_DIR`, else the `keras.datasets` download. CIFAR-10 only.
        n_val_holdout, n_train, n_val, n_test, seed: as in `make_splits`.
        data: "cifar10", "folder:PATH" or "npz:PATH" (`benchmark.core.datasets.parse_data`).
        data_size: storage size in pixels of a folder's decoded images (None: the default rule).
        bad_images: "skip" or "stop" at an image that cannot be decoded.
        cache_dir: where a folder's decoded array is cached (None: the default cache).
    """

    data_dir: str | None = None
    n_val_holdout: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    seed: int = 0
    data: str = "cifar10"
    data_size: int | None = None
    bad_images: str = "skip"
    cache_dir: str | None = None

    def load(self, echo=print) -> Dataset:
        """The whole dataset this recipe names (a folder's is decoded once and cached)."""
        from .datasets import load_dataset

        return load_dataset(self.data, data_dir=self.data_dir, data_size=self.data_size,
                            bad_images=self.bad_images, cache_dir=self.cache_dir, echo=echo)

    def make(self, data: Dataset | None = None) -> dict[str, Split]:
        """The splits, from `data` when given, else loaded as `load` does."""
        data = data if data is not None else self.load(echo=lambda *_: None)
        return make_splits(data, n_val_holdout=self.n_val_holdout, n_train=self.n_train, n_val=self.n_val,
                           n_test=self.n_test, seed=self.seed)


def timing_split(train: Split, n_images: int) -> Split:
    """The first `n_images` training images, for timing-only rows."""
    n = min(len(train), n_images)
    return Split("timing", train.x[:n], train.y[:n])


def flip_left_right(x: np.ndarray) -> np.ndarray:
    """Images `x` (N, H, W, C) mirrored left-right (the width axis reversed): a contiguous copy, same dtype."""
    return np.ascontiguousarray(x[:, :, ::-1])


def mirrored(split: Split) -> Split:
    """`split` flipped left-right, named `<name>-flip`: a free augmentation, cached like the rest."""
    return Split(f"{split.name}-flip", flip_left_right(split.x), split.y)


def jpeg_copy(x: np.ndarray, quality) -> np.ndarray:
    """`x` (N, H, W, 3) uint8 re-encoded as JPEG and decoded again (Pillow, 4:2:0 chroma as its default).

    `quality` (1..95) is one number for every image or an array (N,) of one per image.
    """
    from PIL import Image

    qualities = np.broadcast_to(np.asarray(quality, dtype=int), (len(x),))
    out = np.empty_like(x)
    for i, (image, q) in enumerate(zip(x, qualities)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(q))
        out[i] = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


JPEG_SUFFIX = "-jpeg"  # of a re-encoded split, e.g. "train-jpeg30-95"


def jpeg_split_name(name: str, band: tuple[int, int]) -> str:
    """The name of `name`'s copy re-encoded at JPEG qualities in `band` (low, high)."""
    return f"{name}{JPEG_SUFFIX}{band[0]}-{band[1]}"


def parse_jpeg_split(name: str) -> tuple[str, tuple[int, int]] | None:
    """`(base split name, (low, high))` of a `jpeg_split_name`, None for any other name."""
    base, sep, band = name.rpartition(JPEG_SUFFIX)
    low, dash, high = band.partition("-")
    if not (sep and base and dash and low.isdigit() and high.isdigit()):
        return None
    return base, (int(low), int(high))


def jpeg_recoded(split: Split, band: tuple[int, int], seed: int = 0) -> Split:
    """`split` with each image re-encoded as JPEG at a quality drawn uniformly from `band` (inclusive),
    seeded, so the copy (and its cache key) is the same on every run: training on it and on `split`
    teaches the network that compression is not a feature."""
    low, high = band
    qualities = np.random.default_rng([seed, low, high]).integers(low, high + 1, size=len(split))
    return Split(jpeg_split_name(split.name, band), jpeg_copy(split.x, qualities), split.y)
