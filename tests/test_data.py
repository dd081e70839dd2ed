import os
import pickle

import numpy as np
import pytest

from benchmark.core.data import (CLASSES, DataError, fingerprint, find_batches_dir, load_cifar10, make_splits,
                            read_batch, stratified_take)


def test_stratified_take_keeps_class_shares():
    labels = np.repeat(np.arange(10), [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    idx = stratified_take(labels, 550, np.random.default_rng(0))
    assert len(idx) == len(set(idx)) == 550
    counts = np.bincount(labels[idx], minlength=10)
    expected = np.bincount(labels, minlength=10) * 550 / len(labels)
    assert np.all(np.abs(counts - expected) <= 1)


def test_stratified_take_is_seeded():
    labels = np.arange(1000) % 10
    a = stratified_take(labels, 100, np.random.default_rng(1))
    b = stratified_take(labels, 100, np.random.default_rng(1))
    c = stratified_take(labels, 100, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_make_splits_disjoint_and_independent(tiny_cifar):
    s = make_splits(tiny_cifar, n_val_holdout=100, n_train=200, n_val=50, n_test=100, seed=3)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (200, 50, 100)
    assert s["train"].x.dtype == np.uint8 and s["train"].x.shape[1:] == (32, 32, 3)
    train_rows = {r.tobytes() for r in s["train"].x}
    assert not train_rows & {r.tobytes() for r in s["val"].x}
    # changing the training subset leaves val and test (and their cache keys) alone
    t = make_splits(tiny_cifar, n_val_holdout=100, n_train=250, n_val=50, n_test=100, seed=3)
    assert s["val"].fingerprint == t["val"].fingerprint and s["test"].fingerprint == t["test"].fingerprint
    assert s["train"].fingerprint != t["train"].fingerprint


def test_make_splits_rejects_sizes_larger_than_the_data(tiny_cifar):
    with pytest.raises(DataError, match="--train-size 1000 is larger than the data: at most 300"):
        make_splits(tiny_cifar, n_val_holdout=100, n_train=1000)
    with pytest.raises(DataError, match="--test-size"):
        make_splits(tiny_cifar, n_val_holdout=100, n_test=201)


def test_fingerprint_changes_with_one_pixel():
    x = np.zeros((4, 32, 32, 3), np.uint8)
    a = fingerprint(x)
    x[2, 5, 5, 1] = 1
    assert fingerprint(x) != a


def _write_batch(path, n=20):
    data = {b"data": np.arange(n * 3072, dtype=np.int64).astype(np.uint8).reshape(n, 3072),
            b"labels": [i % 10 for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(data, f)


def test_read_batch_layout(tmp_path):
    _write_batch(tmp_path / "b")
    x, y = read_batch(str(tmp_path / "b"))
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    # channel-major rows: pixel (0, 0) of image 0 holds bytes 0, 1024, 2048
    assert list(x[0, 0, 0]) == [0, 1024 % 256, 2048 % 256]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_read_batch_refuses_code_in_pickles(tmp_path):
    with open(tmp_path / "b", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="refusing to load"):
        read_batch(str(tmp_path / "b"))


def test_truncated_batch_is_a_clear_error(tmp_path):
    _write_batch(tmp_path / "b")
    blob = (tmp_path / "b").read_bytes()
    (tmp_path / "b").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="is not a CIFAR-10 python batch"):
        read_batch(str(tmp_path / "b"))


def test_missing_folder_names_the_path_and_expected_files(tmp_path):
    with pytest.raises(DataError) as info:
        find_batches_dir(str(tmp_path / "nowhere"))
    assert "nowhere" in str(info.value) and "data_batch_1" in str(info.value) and "does not exist" in str(info.value)
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(DataError, match="lacks data_batch_2"):
        find_batches_dir(str(tmp_path))


@pytest.mark.integration
def test_real_assets_load(real_cifar, cifar_dir):
    d = real_cifar
    assert d.x_train.shape == (50000, 32, 32, 3) and d.x_test.shape == (10000, 32, 32, 3)
    assert d.x_train.dtype == np.uint8
    assert np.all(np.bincount(d.y_train, minlength=10) == 5000)
    assert np.all(np.bincount(d.y_test, minlength=10) == 1000)
    assert d.lossy_jpeg  # the shared copy is recognised and recorded
    assert len(CLASSES) == 10
    # the train mean the assets README gives, on the 0-255 scale
    assert np.allclose(d.x_train.reshape(-1, 3).mean(axis=0), [125.27, 122.93, 113.86], atol=0.05)


@pytest.mark.integration
def test_safe_reader_matches_keras_reader(cifar_dir):
    from keras.src.datasets.cifar import load_batch

    x_ref, y_ref = load_batch(os.path.join(find_batches_dir(cifar_dir), "test_batch"))
    x, y = read_batch(os.path.join(find_batches_dir(cifar_dir), "test_batch"))
    assert np.array_equal(x, x_ref.transpose(0, 2, 3, 1)) and np.array_equal(y, np.asarray(y_ref))


@pytest.mark.integration
def test_load_accepts_parent_folder_and_env(cifar_dir, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", os.path.dirname(find_batches_dir(cifar_dir)))
    d = load_cifar10()
    assert d.source.endswith("cifar-10-batches-py") and len(d.y_test) == 10000


def test_failed_download_prints_the_whole_offline_fix(monkeypatch):
    import keras

    def offline():
        raise OSError("URL fetch failure: Name or service not known")

    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError) as err:
        load_cifar10()
    message = str(err.value)
    assert "could not download CIFAR-10" in message and "export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py" in message
    assert "export BACKBONE_WEIGHTS_DIR=" in message and "--data-dir and --weights-dir" in message
    script = message.split("python ", 1)[1].split()[0]
    assert os.path.isabs(script) or script.startswith("ASSETS/")
