import json
import logging
import os
import shutil

import numpy as np
import pytest

from benchmark.core.store import Store, make_key


@pytest.fixture
def cache(tmp_path):
    return Store(str(tmp_path / "cache"))


def _entry(cache, data="d1"):
    return cache.features("MobileNetV2", 96, "train", {"weights": "abc", "data": data})


def _timing(n):  # sidecars must hold the four timing fields
    return {"images_timed": n, "seconds_timed": 1.0, "wall_s": 1.5, "batch_size": 16}


def _save(entry, n=50, d=8):
    feats = np.random.default_rng(0).normal(size=(n, d)).astype(np.float16)
    labels = np.arange(n) % 10
    entry.save(feats, labels, {"timing": _timing(n)})
    return feats, labels


def test_roundtrip(cache):
    entry = _entry(cache)
    assert entry.load() is None
    feats, labels = _save(entry)
    got, got_labels, meta = entry.load()
    assert np.array_equal(got, feats) and np.array_equal(got_labels, labels)
    assert meta["timing"]["images_timed"] == 50 and meta["shape"] == [50, 8]


def test_key_covers_data_and_settings(cache):
    assert _entry(cache, "d1").key != _entry(cache, "d2").key
    assert make_key({"a": 1, "b": 2}) == make_key({"b": 2, "a": 1})


def _assert_discarded(entry, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert entry.load() is None
    warnings = [r for r in caplog.records if "discarding" in r.getMessage()]
    assert len(warnings) == 1
    assert not os.path.exists(entry.npz_path) and not os.path.exists(entry.meta_path)


def test_truncated_file_is_recomputed(cache, caplog):
    entry = _entry(cache)
    _save(entry)
    with open(entry.npz_path, "r+b") as f:
        f.truncate(os.path.getsize(entry.npz_path) // 2)
    _assert_discarded(entry, caplog)


def test_flipped_byte_is_recomputed(cache, caplog):
    entry = _entry(cache)
    _save(entry)
    blob = bytearray(open(entry.npz_path, "rb").read())
    blob[len(blob) // 2] ^= 0x01
    open(entry.npz_path, "wb").write(bytes(blob))
    _assert_discarded(entry, caplog)


def test_wrong_shape_is_recomputed(cache, caplog):
    entry = _entry(cache)
    _save(entry)
    other = _entry(cache, "other")
    _save(other, n=7)
    # a well-formed file of the wrong shape, with a sidecar whose checksum matches it
    os.replace(other.npz_path, entry.npz_path)
    meta = json.load(open(entry.meta_path))
    meta["sha256"] = json.load(open(other.meta_path))["sha256"]
    json.dump(meta, open(entry.meta_path, "w"))
    _assert_discarded(entry, caplog)


def test_entry_from_other_data_is_not_loaded(cache, caplog):
    entry = _entry(cache)
    _save(entry)
    meta = json.load(open(entry.meta_path))
    meta["key"] = "0" * 64
    json.dump(meta, open(entry.meta_path, "w"))
    _assert_discarded(entry, caplog)


def test_file_without_sidecar_counts_as_absent(cache):
    entry = _entry(cache)
    _save(entry)
    os.unlink(entry.meta_path)  # a crash between the two writes
    assert entry.load() is None


def test_chunks_resume_and_are_verified(cache, caplog):
    entry = _entry(cache)
    entry.save_chunk(0, np.ones((4, 3), np.float16), _timing(4))
    got, timing = entry.load_chunk(0, 4)
    assert got.shape == (4, 3) and timing["images_timed"] == 4
    assert entry.load_chunk(1, 4) is None
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert entry.load_chunk(0, 5) is None  # wrong length: discarded
    assert entry.load_chunk(0, 4) is None
    entry.save_chunk(0, np.ones((4, 3), np.float16), _timing(4))
    _save(entry)
    assert not os.path.exists(entry.partial_dir)  # finished entries drop their chunks


def test_head_results(cache, caplog):
    parts = {"features": "k", "head": {"kind": "linear"}}
    assert cache.lookup("heads", parts) is None
    result = {"val_acc": 0.5, "test_acc": 0.5, "test_ci_low": 0.4, "test_ci_high": 0.6, "per_class_acc": [0.5] * 10,
              "confusion": [[0] * 10] * 10, "test_pred": [0], "epochs": 3, "head_train_s": 0.1}
    cache.write("heads", parts, result)
    assert cache.lookup("heads", parts) == result
    path = cache.paths("heads", parts)[0]
    assert path == os.path.join(cache.root, "heads", make_key(parts) + ".json")  # where older caches have them
    open(path, "w").write("{not json")
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert cache.lookup("heads", parts) is None


def test_unwritable_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="--cache-dir"):
        Store(str(blocker / "cache")).check_writable()


def test_model_files(cache, tmp_path, caplog):
    src = tmp_path / "model.h5"
    src.write_bytes(b"weights" * 100)
    parts = {"backbone": "DenseNet121", "size": 224}
    assert cache.lookup("models", parts) is None
    cache.write("models", parts, {"val_acc": 0.9}, lambda tmp: shutil.copyfile(src, tmp))
    info = cache.lookup("models", parts)
    path = info.pop("path")
    assert open(path, "rb").read() == src.read_bytes() and info == {"val_acc": 0.9}
    assert cache.lookup("models", {**parts, "size": 299}) is None
    with open(path, "r+b") as f:  # a flipped byte is caught by the checksum
        f.seek(10)
        f.write(b"X")
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert cache.lookup("models", parts) is None
    assert "checksum mismatch" in caplog.text and not os.path.exists(path)


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    from benchmark.core.atomic import atomic_path

    target = tmp_path / "cifar10.h5"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            assert tmp.endswith(".h5") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["cifar10.h5"]
    with atomic_path(str(target)) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new"


def test_memo_computes_once_and_stores_nothing_on_failure(cache):
    calls = []
    parts = {"model_sha256": "abc", "test": "fp", "jpeg_quality": None}
    result = {"accuracy": 0.5, "loss": 1.0, "n_images": 2, "seconds": 0.1, "predictions": [0, 1]}

    def compute():
        calls.append(1)
        return result

    assert cache.memo("evaluations", parts, compute) == result
    assert cache.memo("evaluations", parts, compute) == result and len(calls) == 1
    with pytest.raises(RuntimeError):
        cache.memo("evaluations", {**parts, "test": "other"}, lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert cache.lookup("evaluations", {**parts, "test": "other"}) is None
    with pytest.raises(ValueError, match="lacks predictions"):  # a record that could never be read is not written
        cache.write("evaluations", {**parts, "test": "third"}, {"accuracy": 0.5, "loss": 1.0, "n_images": 2,
                                                                "seconds": 0.1})


def test_model_sidecars_are_sealed_and_older_ones_still_read(cache, tmp_path, caplog):
    parts = {"backbone": "DenseNet121", "size": 160}
    found = cache.memo("models", parts, lambda: ({"val_acc": 0.9}, lambda tmp: open(tmp, "wb").write(b"m" * 64)))
    meta_path, file_path = cache.paths("models", parts)
    assert found == {"val_acc": 0.9, "path": file_path}
    record = json.load(open(meta_path))
    assert "meta_sha256" in record
    record["result"]["val_acc"] = 0.99  # an edited sidecar: the seal no longer holds
    json.dump(record, open(meta_path, "w"))
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert cache.lookup("models", parts) is None
    assert "modified" in caplog.text and not os.path.exists(file_path)
    # a sidecar written before the seal: {"key", "parts", "sha256", "info"}
    open(file_path, "wb").write(b"m" * 64)
    from backbones import sha256_file

    json.dump({"key": make_key(parts), "parts": parts, "sha256": sha256_file(file_path), "info": {"val_acc": 0.8}},
              open(meta_path, "w"))
    assert cache.lookup("models", parts) == {"val_acc": 0.8, "path": file_path}


def test_stale_temp_sweep_leaves_other_files_alone(tmp_path):
    import time

    root = tmp_path / "home"
    (root / "features").mkdir(parents=True)
    theirs = [root / ".bashrc.tmp", root / ".notes.abcdefgh.tmp", root / "features" / ".x.tmp-mine"]
    ours = root / "features" / ".32px-train-x.npz.abcdefgh.tmp"
    old = time.time() - 3 * 24 * 3600
    for path in [*theirs, ours]:
        path.write_text("x")
        os.utime(path, (old, old))
    assert Store(str(root)).remove_stale_temp() == 1
    assert not ours.exists() and all(path.exists() for path in theirs)


def test_a_compute_of_the_wrong_shape_stores_nothing(cache):
    parts = {"backbone": "x"}
    with pytest.raises(TypeError, match="a models record is a dict and a function that writes its file"):
        cache.memo("models", parts, lambda: ({"val_acc": 1.0}, None))
    with pytest.raises(TypeError, match="a heads record is a dict"):
        cache.memo("heads", parts, lambda: [1, 2])
    assert cache.lookup("models", parts) is None and cache.lookup("heads", parts) is None


def test_chunks_join_on_disk_and_the_entry_reads_in_place(cache, caplog):
    """Maps larger than memory: the entry is written from its chunks one at a time and read row by row."""
    entry = _entry(cache)
    small = np.arange(4 * 6, dtype=np.float16).reshape(4, 2, 3)
    big = np.full((2, 2, 3), 1e6, np.float32)  # beyond float16: this chunk stayed float32, so the entry does
    entry.save_chunk(0, small, _timing(4))
    entry.save_chunk(1, big, _timing(2))
    assert entry.chunk_timing(1, 2) == (None, _timing(2)) and entry.chunk_timing(1, 3) is None  # wrong length
    entry.save_chunk(1, big, _timing(2))
    written = entry.save_chunks(6, 4, np.arange(6), {"timing": _timing(6)})
    assert not os.path.exists(entry.partial_dir) and written.shape == (6, 2, 3) and written.dtype == np.float32
    features, labels, meta = entry.load_on_disk()
    whole = np.concatenate([small, big])
    assert features.dtype == np.float32 and features.shape == (6, 2, 3) and meta["shape"] == [6, 2, 3]
    assert np.array_equal(features[np.array([5, 0, 3])], whole[[5, 0, 3]]) and np.array_equal(features[1:4], whole[1:4])
    assert np.array_equal(entry.load()[0], whole) and np.array_equal(labels, np.arange(6))
    with open(entry.npz_path, "r+b") as f:  # a flipped byte is found by the streamed checksum
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    with caplog.at_level(logging.WARNING, logger="benchmark"):
        assert entry.load_on_disk() is None
    assert not os.path.exists(entry.npz_path)
