"""A user's own images (`--data folder:PATH`, `--data npz:PATH`): decoding, caching, splits and bad input."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from benchmark.core.data import CLASSES, DataError, make_splits, splits_fingerprint
from benchmark.core.datasets import canonical_data, load_dataset, parse_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICKED = (0, 1, 2)  # airplane, automobile, bird


def _pick(data, per_class: int, split: str = "train"):
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in PICKED])
    return x[idx], y[idx]


def make_mixed_folder(root, data, per_class: int = 24) -> str:
    """CIFAR-10 images of three classes as a folder of mixed files: 32 px JPEGs, 48 px PNGs, grayscale PNGs,
    RGBA PNGs, palette GIFs and BMPs, one broken JPEG and one text file (ignored)."""
    from PIL import Image

    x, y = _pick(data, per_class)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = os.path.join(root, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        pil = Image.fromarray(img)
        kind = i % 6
        if kind == 0:
            pil.resize((48, 48)).save(os.path.join(folder, f"{i:03d}.png"))
        elif kind == 1:
            pil.convert("L").save(os.path.join(folder, f"{i:03d}.png"))
        elif kind == 2:
            pil.convert("RGBA").save(os.path.join(folder, f"{i:03d}.PNG"))
        elif kind == 3:
            pil.convert("P").save(os.path.join(folder, f"{i:03d}.gif"))
        elif kind == 4:
            pil.save(os.path.join(folder, f"{i:03d}.bmp"))
        else:
            pil.save(os.path.join(folder, f"{i:03d}.jpg"), quality=90)
    with open(os.path.join(root, CLASSES[0], "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    with open(os.path.join(root, CLASSES[1], "notes.txt"), "w") as f:
        f.write("not an image")
    return str(root)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, real_cifar):
    return make_mixed_folder(tmp_path_factory.mktemp("mini") / "mini", real_cifar)


def test_data_forms():
    assert parse_data("cifar10") == ("cifar10", None) and parse_data("CIFAR10") == ("cifar10", None)
    assert parse_data("folder:/x/y") == ("folder", "/x/y") and canonical_data("npz:/a.npz") == "npz:/a.npz"
    assert canonical_data("folder:rel") == f"folder:{os.path.abspath('rel')}"
    for bad in ("imagenet", "folder:", "zip:/x"):
        with pytest.raises(ValueError, match="cifar10, folder:PATH or npz:PATH"):
            parse_data(bad)


def test_a_mixed_folder_decodes_once_to_rgb_at_one_size(mixed_folder, tmp_path):
    lines = []
    data = load_dataset(f"folder:{mixed_folder}", cache_dir=str(tmp_path), echo=lines.append)
    assert data.name == "mini" and data.class_names == CLASSES[:3] and data.n_classes == 3
    assert data.x_train.dtype == np.uint8 and data.x_train.shape[1:] == (32, 32, 3)  # the median side
    assert data.info["n_skipped"] == 1 and data.info["skipped"] == [os.path.join("airplane", "broken.jpg")]
    assert len(data.y_train) + len(data.y_test) == 3 * 24
    assert set(np.bincount(data.y_test).tolist()) <= {4, 5}  # a stratified fifth of each class
    gray = data.x_train[np.all(data.x_train[..., 0] == data.x_train[..., 2], axis=(1, 2))]
    assert len(gray) >= 3  # the grayscale files came out as RGB with equal channels
    assert any("Skipped 1 image" in line for line in lines)
    again = []
    cached = load_dataset(f"folder:{mixed_folder}", cache_dir=str(tmp_path), echo=again.append)
    assert any("from the cache" in line for line in again) and not any("Decoding" in line for line in again)
    assert np.array_equal(cached.x_train, data.x_train) and np.array_equal(cached.y_test, data.y_test)
    bigger = load_dataset(f"folder:{mixed_folder}", data_size=40, cache_dir=str(tmp_path), echo=lambda *_: None)
    assert bigger.x_train.shape[1:] == (40, 40, 3) and len(bigger.y_train) == len(data.y_train)


def test_a_broken_image_stops_the_load_when_asked(mixed_folder, tmp_path):
    with pytest.raises(DataError, match=r"broken\.jpg cannot be decoded.*--bad-images skip"):
        load_dataset(f"folder:{mixed_folder}", bad_images="stop", cache_dir=str(tmp_path), echo=lambda *_: None)


def _write_split_folder(root, x_train, y_train, x_test, y_test) -> None:
    from PIL import Image

    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (img, label) in enumerate(zip(x, y)):
            folder = os.path.join(root, split, CLASSES[label])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(img).save(os.path.join(folder, f"{i:04d}.png"))  # lossless


def test_the_same_images_as_npz_and_as_folder_give_the_same_splits(real_cifar, tmp_path):
    x_train, y_train = _pick(real_cifar, 20)
    x_test, y_test = _pick(real_cifar, 6, "test")
    _write_split_folder(tmp_path / "same", x_train, y_train, x_test, y_test)
    # the folder lists class by class, file by file: the npz holds the images in that order
    np.savez(tmp_path / "same.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             class_names=np.array(CLASSES[:3]))
    folder = load_dataset(f"folder:{tmp_path / 'same'}", cache_dir=str(tmp_path / "c"), echo=lambda *_: None)
    npz = load_dataset(f"npz:{tmp_path / 'same.npz'}")
    assert folder.name == npz.name == "same" and folder.class_names == npz.class_names
    assert np.array_equal(folder.x_test, x_test) and len(folder.y_test) == 18  # test/ is the test split as given
    a, b = (make_splits(d, n_val_holdout=6, seed=1) for d in (folder, npz))
    assert splits_fingerprint(a) == splits_fingerprint(b)


def _one_class(root):
    os.makedirs(root / "cats")
    _png(root / "cats" / "a.png")


def _empty_class(root):
    for name in ("cats", "dogs"):
        os.makedirs(root / name)
    for i in range(4):
        _png(root / "cats" / f"{i}.png")


def _tiny_class(root):
    for name, n in (("cats", 5), ("dogs", 2)):
        os.makedirs(root / name)
        for i in range(n):
            _png(root / name / f"{i}.png")


def _test_class_missing_in_train(root):
    for split, names in (("train", ("cats", "dogs")), ("test", ("cats", "dogs", "owls"))):
        for name in names:
            os.makedirs(root / split / name)
            for i in range(3):
                _png(root / split / name / f"{i}.png")


def _png(path):
    from PIL import Image

    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def _train_only(root):
    _classes_in(root / "train", ("cats", "dogs"), 3)


def _empty_test(root):
    _classes_in(root / "train", ("cats", "dogs"), 3)
    _classes_in(root / "test", ("cats", "dogs"), 0)


def _one_training_image(root):
    _classes_in(root / "train", ("cats",), 3)
    _classes_in(root / "train", ("dogs",), 1)
    _classes_in(root / "test", ("cats", "dogs"), 1)


def _classes_in(folder, names, n):
    for name in names:
        os.makedirs(folder / name, exist_ok=True)
        for i in range(n):
            _png(folder / name / f"{i}.png")


FOLDER_CASES = {
    "missing": (lambda root: None, "no such folder"),
    "one class": (_one_class, "has 1 class folder(s); a folder dataset needs at least two"),
    "empty class": (_empty_class, "dogs has no images"),
    "too few in a class": (_tiny_class, "class 'dogs' has 2 image(s)"),
    "test class not in train": (_test_class_missing_in_train, "owls that"),
    "train/ without test/": (_train_only, "has train/ but not both train/ and test/ (or val/)"),
    "empty test/": (_empty_test, "test holds no images"),
    "one training image": (_one_training_image, "dogs has 1 image; each class needs at least 2"),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_bad_folders_name_the_problem(case, tmp_path):
    make, message = FOLDER_CASES[case]
    root = tmp_path / "data"
    if case != "missing":
        os.makedirs(root)
        make(root)
    with pytest.raises(DataError, match=re.escape(message)):
        load_dataset(f"folder:{root}", cache_dir=str(tmp_path / "c"), echo=lambda *_: None)


def _npz(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8), "y_train": np.arange(12) % 3,
              "x_test": rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), "y_test": np.arange(6) % 3, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


NPZ_CASES = {
    "labels out of range": ({"y_test": np.array([0, 1, 2, 3, 0, 1]), "class_names": np.array(["a", "b", "c"])},
                            "y_test holds label 3, outside 0..2"),
    "negative label": ({"y_train": np.arange(12) % 3 - 1}, "y_train holds label -1"),
    "lengths differ": ({"y_train": np.arange(11) % 3}, "12 images in x_train but 11 labels in y_train"),
    "missing array": ({"x_test": None}, "lacks x_test"),
    "not images": ({"x_train": np.zeros((12, 8), np.uint8)}, r"x_train has shape \(12, 8\)"),
    "float out of range": ({"x_train": np.full((12, 8, 8, 3), 300.0)}, "values outside 0..255"),
    "floats in 0..1": ({"x_train": np.full((12, 8, 8, 3), 0.5)}, "holds floats in 0..1"),
    "gapped labels": ({"y_train": np.arange(12) % 3 * 1000}, "3 distinct labels but reaches 2000"),
}


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_bad_npz_files_name_the_problem(case, tmp_path):
    changes, message = NPZ_CASES[case]
    with pytest.raises(DataError, match=message):
        load_dataset(f"npz:{_npz(tmp_path / 'd.npz', **changes)}")


def test_a_val_folder_is_the_test_split_and_cifar10_is_a_reserved_name(tmp_path):
    root = tmp_path / "cifar10"
    _classes_in(root / "train", ("cats", "dogs"), 4)
    _classes_in(root / "val", ("cats", "dogs"), 2)
    data = load_dataset(f"folder:{root}", cache_dir=str(tmp_path / "c"), echo=lambda *_: None)
    assert (len(data.y_train), len(data.y_test)) == (8, 4) and data.class_names == ("cats", "dogs")
    assert data.name == "folder-cifar10"  # never mixed with CIFAR-10's own rows


def test_a_decompression_bomb_is_a_bad_image_not_a_crash(tmp_path, monkeypatch):
    from PIL import Image

    _classes_in(tmp_path / "d", ("cats", "dogs"), 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # 8x8 images are now "bombs" (over twice the limit)
    with pytest.raises(DataError, match=r"0\.png cannot be decoded \(DecompressionBombError"):
        load_dataset(f"folder:{tmp_path / 'd'}", bad_images="stop", cache_dir=str(tmp_path / "c"),
                     echo=lambda *_: None)


def test_a_second_folder_of_the_same_name_is_refused_in_one_results_folder(tmp_path):
    from benchmark.core.data import Dataset
    from benchmark.core.results_db import ResultsDB
    from benchmark.run.runner import check_dataset_name

    def flowers(source):
        return Dataset(*[np.zeros((2, 8, 8, 3), np.uint8), np.arange(2)] * 2, source, name="flowers",
                       class_names=("x", "y"))

    first = flowers("/a/flowers")
    db = ResultsDB(str(tmp_path))
    run = db.start_run({"dataset": "flowers", "dataset_info": first.describe()})
    db.add(run, [{"model": "MobileNetV2", "img_size": 32, "head": "none", "weights": "random",
                  "dataset": "flowers"}], {})
    db.close()
    check_dataset_name(str(tmp_path), first)  # the same folder again: fine
    with pytest.raises(ValueError, match="dataset named flowers from /a/flowers; /b/flowers has the same name"):
        check_dataset_name(str(tmp_path), flowers("/b/flowers"))


def test_examples_of_many_classes_keep_their_predictions(tmp_path):
    from benchmark.core.data import Split
    from benchmark.core.results import load_examples, write_examples

    test = Split("test", np.zeros((3, 8, 8, 3), np.uint8), np.array([0, 1, 2]))  # labels below 256
    write_examples(str(tmp_path), test, {"k": np.array([290, 1, 2])}, "many")
    assert load_examples(str(tmp_path), "many")[2]["k"].tolist() == [290, 1, 2]


def test_an_npz_of_grayscale_floats_and_column_labels_is_accepted(tmp_path):
    path = _npz(tmp_path / "g.npz", x_train=np.full((12, 8, 8), 7.0), y_train=(np.arange(12) % 3)[:, None])
    data = load_dataset(f"npz:{path}", data_size=16)
    assert data.x_train.shape == (12, 16, 16, 3) and data.x_train.dtype == np.uint8 and data.x_train.max() == 7
    assert data.class_names == ("0", "1", "2") and data.y_train.shape == (12,)


def test_a_run_on_a_folder_gives_rows_a_report_and_a_cached_rerun(mixed_folder, weights_dir, tmp_path):
    """End to end: `python -m benchmark --data folder:PATH` with real MobileNetV2 weights."""
    args = [sys.executable, "-m", "benchmark", "--data", f"folder:{mixed_folder}", "--backbones", "MobileNetV2",
            "--sizes", "32", "--heads", "linear", "--weights-dir", weights_dir, "--out", str(tmp_path / "r"),
            "--cache-dir", str(tmp_path / "c")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Splits of mini (3 classes, 32 px)" in first.stdout and "Skipped 1 image" in first.stdout
    import pandas as pd

    rows = pd.read_csv(tmp_path / "r" / "results.csv")
    assert list(rows["dataset"]) == ["mini"] and rows["test_acc"].notna().all()
    assert len(rows.loc[0, "per_class_acc"].split(",")) == 3
    page = (tmp_path / "r" / "report-mini" / "index.html").read_text()  # each dataset its own page
    assert "mini" in page and all(name in page for name in CLASSES[:3])
    assert os.path.exists(tmp_path / "r" / "examples-mini.npz")
    second = subprocess.run([*args, "--no-report"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "from the cache" in second.stdout and "Decoding" not in second.stdout
    assert "built and extracted" not in second.stdout  # features, and the head, from the cache
    rerun = pd.read_csv(tmp_path / "r" / "results.csv")
    assert bool(rerun.loc[0, "from_cache"]) and rerun.loc[0, "test_acc"] == rows.loc[0, "test_acc"]


def test_the_final_model_refuses_rows_of_another_dataset(tmp_path):
    from benchmark.core.results import write_results
    from benchmark.transfer.select import choose_backbone

    row = {"model": "MobileNetV2", "img_size": 96, "head": "linear", "weights": "imagenet", "val_acc": 0.9,
           "test_acc": 0.9, "samples_per_sec": 50.0, "dataset": "mini"}
    write_results([row], str(tmp_path))
    with pytest.raises(ValueError, match="holds rows of mini only; 0-transfer.py trains a CIFAR-10 model"):
        choose_backbone(str(tmp_path), echo=lambda *_: None)
    write_results([row, {**row, "model": "DenseNet121", "val_acc": 0.8, "dataset": "cifar10"}], str(tmp_path))
    assert choose_backbone(str(tmp_path), echo=lambda *_: None)[0] == "DenseNet121"  # mini's better row is not used
