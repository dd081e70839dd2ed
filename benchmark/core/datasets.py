"""A user's own labelled images: `--data folder:PATH` and `--data npz:PATH`, beside the default `cifar10`.

* `folder:PATH` is the layout `keras.utils.image_dataset_from_directory` reads:
  one sub-folder per class (its name is the class name), holding images of
  any size and mode (.jpg, .jpeg, .png, .bmp, .gif; grayscale, RGBA and
  palette images become RGB, a GIF gives its first frame). When PATH holds
  `train/` and `test/`, each laid out that way, they are the two splits;
  otherwise a stratified, seeded fifth of every class is held out as the test
  split (and the validation split is held out of the rest, as for CIFAR-10).
* `npz:PATH` holds uint8 `x_train (N, H, W, 3)`, `y_train (N,)`, `x_test`,
  `y_test`, and optionally `class_names`.

A folder is decoded once, with Pillow in threads (it releases the GIL while it
decodes and resizes), into square uint8 images of a storage size
(`data_size`: by default the median of the images' longer sides, at most
`DATA_SIZE_CAP`), and the array is cached in the store as one record, keyed
by the folder's listing (paths, sizes, modification times) and the decoding
settings. From there on the images are plain arrays like CIFAR-10's: their
fingerprints key every cache entry and every results row.
"""

from __future__ import annotations

import hashlib
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .data import DataError, Dataset, load_cifar10, stratified_take

DATA_FORMS = "cifar10, folder:PATH or npz:PATH"
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # those image_dataset_from_directory reads
DATA_SIZE_CAP = 224  # default storage size at most: the commonest native input size; larger only costs memory
BAD_IMAGES = ("skip", "stop")
TEST_FRACTION = 0.2  # held out as the test split of a folder without train/ and test/
DATASET_VERSION = 1  # bump when decoding changes the pixels
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def parse_data(text: str) -> tuple[str, str | None]:
    """`--data` as `(kind, absolute path or None)`: `("cifar10", None)`, `("folder", PATH)` or `("npz", PATH)`.

    Raises:
        ValueError: naming the flag and the accepted forms.
    """
    value = str(text).strip()
    if value.lower() == "cifar10":
        return "cifar10", None
    kind, _, path = value.partition(":")
    if kind in ("folder", "npz") and path:
        return kind, os.path.abspath(os.path.expanduser(path))
    raise ValueError(f"--data {text!r} is not one of: {DATA_FORMS}")


def canonical_data(text: str) -> str:
    """`--data` with an absolute path ("folder:/abs/path"), as workers on other machines must see it."""
    kind, path = parse_data(text)
    return kind if path is None else f"{kind}:{path}"


def dataset_name(path: str) -> str:
    """A folder's or file's name, as results rows and file names carry it: "flowers" for /data/flowers.npz."""
    stem = os.path.basename(os.path.normpath(path))
    kind = "npz" if stem.lower().endswith(".npz") else "folder"
    stem = os.path.splitext(stem)[0] if kind == "npz" else stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "data"
    return f"{kind}-{name}" if name.lower() == "cifar10" else name  # "cifar10" is CIFAR-10's alone


def data_name(text: str) -> str:
    """The name the rows of `--data text` carry: "cifar10", or the folder's or file's name."""
    kind, path = parse_data(text)
    return "cifar10" if path is None else dataset_name(path)


def load_dataset(data: str = "cifar10", *, data_dir: str | None = None, data_size: int | None = None,
                 bad_images: str = "skip", cache_dir: str | None = None, echo=print) -> Dataset:
    """The dataset `data` names (see `parse_data`).

    Args:
        data_dir: CIFAR-10's local folder (`load_cifar10`); only with "cifar10".
        data_size: storage size in pixels (None: CIFAR-10's 32, a folder's default rule, an npz's own size).
        bad_images: "skip" (count and name them) or "stop" at a folder image that cannot be decoded.
        cache_dir: the store that caches a folder's decoded array.

    Raises:
        DataError: one line naming the problem, the file and the fix.
    """
    kind, path = parse_data(data)
    if bad_images not in BAD_IMAGES:
        raise ValueError(f"--bad-images must be one of {', '.join(BAD_IMAGES)}; got {bad_images!r}")
    if data_size is not None and data_size < 8:
        raise ValueError(f"--data-size must be at least 8 pixels; got {data_size}")
    if kind == "cifar10":
        if data_size is not None:
            raise ValueError("--data-size applies to --data folder:PATH or npz:PATH; CIFAR-10 is kept at 32 px")
        return load_cifar10(data_dir)
    if data_dir:
        raise ValueError(f"--data-dir is CIFAR-10's folder; with --data {kind}:PATH leave it out")
    if kind == "npz":
        return load_npz_dataset(path, data_size)
    return load_folder_dataset(path, data_size, bad_images, cache_dir, echo)


# -- npz --

def load_npz_dataset(path: str, data_size: int | None = None) -> Dataset:
    """`x_train, y_train, x_test, y_test` (and optionally `class_names`) from an .npz file, checked."""
    if not os.path.isfile(path):
        raise DataError(f"--data npz:{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NPZ_ARRAYS if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}; an npz dataset holds "
                                f"{', '.join(NPZ_ARRAYS)} (and optionally class_names)")
            arrays = {k: f[k] for k in NPZ_ARRAYS}
            names = f["class_names"] if "class_names" in f.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as err:  # not a zip, truncated, or pickled objects
        raise DataError(f"{path} is not a readable .npz of plain arrays ({type(err).__name__}: {err}); write it "
                        f"with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from None
    x_train, x_test = (_npz_images(path, k, arrays[k]) for k in ("x_train", "x_test"))
    y_train, y_test = (_npz_labels(path, k, arrays[k], arrays["x" + k[1:]]) for k in ("y_train", "y_test"))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: x_train images are {x_train.shape[1:3]} but x_test images {x_test.shape[1:3]}; "
                        f"store both splits at one size")
    if names is None and y_train.min() >= 0 and len(np.unique(y_train)) != int(y_train.max()) + 1:  # gaps, huge
        raise DataError(f"{path}: y_train has {len(np.unique(y_train))} distinct labels but reaches "
                        f"{int(y_train.max())}; number the classes 0..K-1, or give class_names")
    n_classes = len(names) if names is not None else int(max(y_train.max(), y_test.max())) + 1
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if y.min() < 0 or y.max() >= n_classes:
            bad = int(y.min() if y.min() < 0 else y.max())
            raise DataError(f"{path}: {key} holds label {bad}, outside 0..{n_classes - 1}"
                            + (f" (class_names names {n_classes} classes)" if names is not None else ""))
    if names is not None and names.ndim != 1:
        raise DataError(f"{path}: class_names must be a 1-D array of names; got shape {names.shape}")
    class_names = (tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()) if names is not None
                   else tuple(str(i) for i in range(n_classes)))
    if len(set(class_names)) != len(class_names):
        raise DataError(f"{path}: class_names repeats a name ({', '.join(class_names)})")
    if data_size is not None and x_train.shape[1:3] != (data_size, data_size):
        x_train, x_test = resize_all(x_train, data_size), resize_all(x_test, data_size)
    return Dataset(x_train, y_train, x_test, y_test, path, name=dataset_name(path), class_names=class_names,
                   info={"data_size": int(x_train.shape[1]), "n_skipped": 0})


def _npz_images(path: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:  # grayscale (N, H, W)
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4) or len(x) == 0:
        raise DataError(f"{path}: {key} has shape {x.shape}; expected images (N, H, W, 3) "
                        f"(or (N, H, W) / (N, H, W, 1) grayscale, (N, H, W, 4) RGBA)")
    if x.dtype != np.uint8:
        if np.issubdtype(x.dtype, np.floating) and x.max() <= 1.0:
            raise DataError(f"{path}: {key} holds floats in 0..1; store uint8 pixels in 0..255 (x * 255)")
        if not (np.issubdtype(x.dtype, np.number) and x.min() >= 0 and x.max() <= 255):
            raise DataError(f"{path}: {key} is {x.dtype} with values outside 0..255; store uint8 pixels")
        x = np.rint(x).astype(np.uint8)
    x = x[..., :3] if x.shape[-1] == 4 else np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
    return np.ascontiguousarray(x)


def _npz_labels(path: str, key: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.number) or (len(y) and not np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{path}: {key} must be integer class labels (N,); got {y.dtype} {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{path}: {len(x)} images in x{key[1:]} but {len(y)} labels in {key}; give one label per image")
    return y.astype(np.int64)


# -- folder --

def scan_folder(root: str) -> tuple[tuple, dict[str, list[tuple[str, int]]]]:
    """`(class_names, {"train"/"test" or "all": [(relative path, label)]})` of an image folder, checked.

    Raises:
        DataError: a path that does not exist, fewer than two classes, an empty class folder, a test class
            that training lacks.
    """
    if not os.path.isdir(root):
        raise DataError(f"--data folder:{root}: " + ("not a folder" if os.path.exists(root) else "no such folder"))
    split_dirs = _split_dirs(root)
    classes = _class_dirs(split_dirs.get("train", root))
    if len(classes) < 2:
        raise DataError(f"{split_dirs.get('train', root)} has {len(classes)} class folder(s); a folder dataset needs "
                        f"at least two: one sub-folder of images per class, e.g. cat/1.jpg, dog/2.jpg")
    listing = {}
    for split, folder in split_dirs.items():
        extra = sorted(set(_class_dirs(folder)) - set(classes))
        if extra:
            raise DataError(f"{folder} has class folder(s) {', '.join(extra)} that {split_dirs['train']} lacks; "
                            f"give both splits the same classes")
        listing[split] = []
        for label, name in enumerate(classes):
            files = _image_files(os.path.join(folder, name))
            if not files and split != "test":
                raise DataError(f"class folder {os.path.join(folder, name)} has no images "
                                f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
            if split == "train" and len(files) < 2:  # found before decoding anything
                raise DataError(f"class folder {os.path.join(folder, name)} has 1 image; each class needs at "
                                f"least 2 for training (one for training, one for validation): add images")
            listing[split] += [(os.path.relpath(f, root), label) for f in files]
        if split == "test" and not listing[split]:
            raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders; add "
                            f"test images, or remove it to hold out a fifth of each class")
    return tuple(classes), listing


SPLIT_NAMES = {"train": ("train",), "test": ("test", "val", "validation")}  # a user's val/ serves as our test split


def _split_dirs(root: str) -> dict[str, str]:
    """`{"train": PATH/train, "test": PATH/test (or val/)}` for a folder laid out by split, else `{"all": root}`.

    Raises:
        DataError: a folder with some split folders but not both a training and a test (or val) one.
    """
    found = {name: os.path.join(root, name) for names in SPLIT_NAMES.values() for name in names
             if os.path.isdir(os.path.join(root, name))}
    if not found:
        return {"all": root}
    test = next((found[name] for name in SPLIT_NAMES["test"] if name in found), None)
    if "train" not in found or test is None:
        raise DataError(f"{root} has {', '.join(n + '/' for n in found)} but not both train/ and test/ (or val/): "
                        f"add the missing one, or move the class folders up to hold out a fifth of each class")
    return {"train": found["train"], "test": test}


def _class_dirs(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _image_files(folder: str) -> list[str]:
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(top, f) for f in files
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    return sorted(found)


def listing_digest(root: str, listing: dict) -> str:
    """sha256 of every listed file's path, label, size and modification time: changes when any image does."""
    digest = hashlib.sha256()
    for split, items in listing.items():
        for rel, label in items:
            stat = os.stat(os.path.join(root, rel))
            digest.update(f"{split}\0{rel}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_image(path: str, size: int | None) -> np.ndarray:
    """One image file as uint8 RGB (size, size, 3), resized bilinearly when it is another size
    (`size` None: as it is). Raises OSError, ValueError or SyntaxError when the file cannot be decoded."""
    from PIL import Image

    with Image.open(path) as img:
        img.seek(0)  # a GIF's first frame
        if img.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grayscale: scaled, not clipped, to 8 bits
            wide = np.asarray(img, dtype=np.float64)
            img = Image.fromarray(np.rint(wide / 257 if wide.max() > 255 else wide).clip(0, 255).astype(np.uint8))
        if img.mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")  # a palette with transparency: Pillow wants RGBA before RGB
        img = img.convert("RGB")  # grayscale, RGBA (alpha dropped, as Keras does), palette, CMYK
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def resize_all(x: np.ndarray, size: int) -> np.ndarray:
    """uint8 images (N, H, W, 3) resized to (N, size, size, 3) the way folder images are (Pillow, bilinear)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
                     for img in x])


def default_data_size(root: str, files: list[str]) -> int:
    """The median of the images' longer sides (read from their headers), at most `DATA_SIZE_CAP`."""
    from PIL import Image

    sides = []
    for rel in files:
        try:
            with Image.open(os.path.join(root, rel)) as img:
                sides.append(max(img.size))
        except Exception:  # noqa: BLE001 (a broken file, a decompression bomb: decoding reports it)
            pass
    return int(min(DATA_SIZE_CAP, statistics.median_low(sides))) if sides else 32


def load_folder_dataset(root: str, data_size: int | None = None, bad_images: str = "skip",
                        cache_dir: str | None = None, echo=print) -> Dataset:
    """An image folder as a `Dataset`, decoded once and then read from the store (see the module's docstring)."""
    from .keys import dataset_parts
    from .store import Store

    class_names, listing = scan_folder(root)
    parts = dataset_parts(root, listing_digest(root, listing), data_size, bad_images, DATASET_VERSION)
    decoded: dict = {}  # filled on a miss, so the arrays just made are not read back from the file
    record = Store(cache_dir).memo("datasets", parts,
                                   lambda: _decode_folder(root, class_names, listing, data_size, bad_images, echo,
                                                          decoded),
                                   on_hit=lambda found: echo(f"Images of {root}: from the cache "
                                                             f"({found['data_size']} px)"))
    if not decoded:
        with np.load(record["path"], allow_pickle=False) as f:
            decoded = {k: f[k] for k in NPZ_ARRAYS}
    if record["n_skipped"]:
        echo(f"Skipped {record['n_skipped']} image(s) that could not be decoded, e.g. "
             f"{', '.join(record['skipped'][:3])} (--bad-images stop: stop at the first instead)")
    info = {k: record[k] for k in ("data_size", "n_skipped", "skipped", "decode_images_per_sec")}
    return Dataset(*(decoded[k] for k in NPZ_ARRAYS), root, name=dataset_name(root),
                   class_names=tuple(record["class_names"]), info=info)


def _decode_folder(root: str, class_names: tuple, listing: dict, data_size: int | None, bad_images: str,
                   echo, out: dict) -> tuple:
    """Decodes every listed image into one array, training images first, so that the two splits are views of
    it: fresh memory is slow to touch on some machines, and a copy of 3,000 images at 224 px cost seconds."""
    listing = listing if "all" not in listing else _hold_out_test(root, class_names, listing["all"])
    items = [(split, rel, label) for split in ("train", "test") for rel, label in listing[split]]
    size = data_size or default_data_size(root, [rel for _, rel, _ in items])
    echo(f"Decoding {len(items)} images of {root} at {size} px (once; then cached) ...")
    t0 = time.perf_counter()
    x = np.empty((len(items), size, size, 3), np.uint8)  # filled in place by the threads
    ok = np.ones(len(items), bool)
    skipped: list[str] = []

    def decode(i: int):
        try:
            x[i] = decode_image(os.path.join(root, items[i][1]), size)
            return i, None
        except Exception as err:  # noqa: BLE001 (truncated, not an image, a decompression bomb, a bad header)
            return i, err

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        try:
            _collect(pool.map(decode, range(len(items))), items, root, bad_images, ok, skipped, t0, echo)
        except BaseException:  # Ctrl-C or a stop: the queued images are not decoded first
            pool.shutdown(cancel_futures=True)
            raise
    seconds = time.perf_counter() - t0
    y = np.array([label for _, _, label in items], np.int64)
    is_train = np.array([split == "train" for split, _, _ in items])
    if skipped:  # rare: one copy without the broken files
        x, y, is_train = x[ok], y[ok], is_train[ok]
    n_train = int(is_train.sum())
    counts = np.bincount(y[:n_train], minlength=len(class_names))
    if (counts < 2).any():
        c = int(np.argmin(counts))
        raise DataError(f"class {class_names[c]!r} has {counts[c]} decodable training image(s) in {root}; each "
                        f"class needs at least 2 (one for training, one for validation): add images")
    out.update(x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:])
    result = {"class_names": list(class_names), "data_size": size, "n_train": n_train, "n_test": len(y) - n_train,
              "n_skipped": len(skipped), "skipped": skipped[:100], "decode_s": round(seconds, 3),
              "decode_images_per_sec": round(len(items) / seconds, 1)}
    echo(f"Decoded {len(y)} images in {seconds:.1f}s ({result['decode_images_per_sec']:.0f} img/s)"
         + (f"; skipped {len(skipped)}" if skipped else ""))

    def make_file(path: str) -> None:
        with open(path, "wb") as f:  # the store renames it into place once written
            np.savez(f, **out)

    return result, make_file


def _collect(results, items: list, root: str, bad_images: str, ok: np.ndarray, skipped: list, t0: float,
             echo) -> None:
    """Marks the images that failed (or stops at the first, with `bad_images` "stop"), with a progress line."""
    last = t0
    for done, (i, err) in enumerate(results, 1):
        if err is not None:
            if bad_images == "stop":
                raise DataError(f"{os.path.join(root, items[i][1])} cannot be decoded ({type(err).__name__}: "
                                f"{err}); fix or remove it, or pass --bad-images skip")
            skipped.append(items[i][1])
            ok[i] = False
        if time.perf_counter() - last > 5 or done == len(items):
            last = time.perf_counter()
            echo(f"  decoded {done}/{len(items)} images ({done / (last - t0):.0f} img/s)")


def _hold_out_test(root: str, class_names: tuple, items: list) -> dict:
    """A folder without train/ and test/: a stratified fifth of each class's files (fixed seed) is the test
    split. `items` are (relative path, label); returns {"train": [...], "test": [...]} in listing order."""
    y = np.array([label for _, label in items], np.int64)
    counts = np.bincount(y, minlength=len(class_names))
    if (counts < 3).any():
        c = int(np.argmin(counts))
        raise DataError(f"class {class_names[c]!r} has {counts[c]} image(s) in {root}; without train/ and test/ "
                        f"folders each class needs at least 3 (one each for training, validation and test)")
    test = set(stratified_take(y, max(len(class_names), round(TEST_FRACTION * len(y))),
                               np.random.default_rng([0, 99])).tolist())
    return {"train": [item for i, item in enumerate(items) if i not in test],
            "test": [item for i, item in enumerate(items) if i in test]}
