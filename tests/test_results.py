import json
import os

import pandas as pd
import pytest

from benchmark.core.results import COLUMNS, SCHEMA_VERSION, ResultsSchemaError, load_results, write_results

NEW_IN_5 = ["regime", "ft_epochs", "ft_train_s", "trainable_params", "dataset",  # and 6
            "logme", "hscore", "knn_acc", "logme_ms", "hscore_ms", "knn_acc_ms",  # and 7
            "job_rss_mb"]  # and 8
ROW = {"model": "MobileNetV2", "img_size": 96, "head": "linear", "weights": "imagenet", "test_acc": 0.7,
       "per_class_acc": json.dumps([0.7] * 10), "train_size": 100}
TIMING_ROW = {"model": "VGG16", "img_size": 96, "head": "none", "weights": "random", "samples_per_sec": 12.0}


def test_write_and_load_roundtrip(tmp_path):
    frame = write_results([ROW, TIMING_ROW], str(tmp_path), {"python": "3"})
    assert list(frame.columns) == list(COLUMNS)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS)
    assert loaded.loc[0, "test_acc"] == 0.7 and pd.isna(loaded.loc[1, "test_acc"])
    assert (loaded["schema_version"] == SCHEMA_VERSION).all()
    records = json.load(open(tmp_path / "results.json"))
    assert records[0]["model"] == "MobileNetV2" and records[1]["test_acc"] is None
    assert json.load(open(tmp_path / "environment.json")) == {"python": "3"}
    # integer columns stay integers even with empty cells
    assert "train_size,val_size" in open(tmp_path / "results.csv").readline()
    assert ",100," in open(tmp_path / "results.csv").read().splitlines()[1]


def test_no_temp_files_left(tmp_path):
    write_results([ROW], str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.json"]


def test_older_schema_is_refused_with_advice(tmp_path):
    frame = write_results([ROW], str(tmp_path))
    frame["schema_version"] = 1
    frame.to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ResultsSchemaError, match="schema"):
        load_results(str(tmp_path))
    frame.drop(columns=["seed"]).assign(schema_version=SCHEMA_VERSION).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ResultsSchemaError, match="missing columns: seed"):
        load_results(str(tmp_path))


def test_schema_2_is_read_as_fp32(tmp_path):
    # schema 2 is schema 3 without the precision column (all its rows were fp32)
    frame = write_results([ROW, TIMING_ROW], str(tmp_path))
    frame.drop(columns=["precision", "host", "device", *NEW_IN_5]).assign(schema_version=2) \
        .to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS)
    assert list(loaded["precision"]) == ["fp32", "fp32"] and (loaded["schema_version"] == SCHEMA_VERSION).all()
    assert loaded["host"].isna().all()


def test_schema_3_is_read_with_unknown_host_and_device(tmp_path):
    # schema 3 is schema 4 without the host and device columns
    frame = write_results([ROW, TIMING_ROW], str(tmp_path))
    frame.drop(columns=["host", "device", *NEW_IN_5]).assign(schema_version=3) \
        .to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS) and (loaded["schema_version"] == SCHEMA_VERSION).all()
    assert loaded["host"].isna().all() and loaded["device"].isna().all()


def test_schema_4_is_read_as_the_frozen_regime(tmp_path):
    # schema 4 is schema 5 without the regime and fine-tuning columns (every row was frozen)
    frame = write_results([ROW, TIMING_ROW], str(tmp_path))
    frame.drop(columns=NEW_IN_5).assign(schema_version=4).to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS) and (loaded["schema_version"] == SCHEMA_VERSION).all()
    assert list(loaded["regime"]) == ["frozen", "frozen"] and loaded["ft_epochs"].isna().all()


def test_schema_5_is_read_as_cifar10(tmp_path):
    # schema 5 is schema 6 without the dataset column (every row was CIFAR-10)
    frame = write_results([ROW, TIMING_ROW], str(tmp_path))
    frame.drop(columns=["dataset", *NEW_IN_5[-7:]]).assign(schema_version=5).to_csv(tmp_path / "results.csv",
                                                                                 index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS) and (loaded["schema_version"] == SCHEMA_VERSION).all()
    assert list(loaded["dataset"]) == ["cifar10", "cifar10"]


def test_schema_6_is_read_without_transferability_scores(tmp_path):
    frame = write_results([{**ROW, "logme": 0.5}], str(tmp_path))
    frame.drop(columns=NEW_IN_5[-7:]).assign(schema_version=6).to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS) and loaded["logme"].isna().all()


def test_schema_7_is_read_without_the_jobs_own_memory(tmp_path):
    frame = write_results([{**ROW, "peak_rss_mb": 900.0, "job_rss_mb": 300.0}], str(tmp_path))
    frame.drop(columns=["job_rss_mb"]).assign(schema_version=7).to_csv(tmp_path / "results.csv", index=False)
    loaded = load_results(str(tmp_path))
    assert list(loaded.columns) == list(COLUMNS) and loaded["job_rss_mb"].isna().all()
    assert list(loaded["peak_rss_mb"]) == [900.0]


def test_rows_without_a_dataset_are_cifar10_and_the_top_scorer_keeps_to_one_dataset():
    from benchmark.core.results import of_dataset, to_frame, top_scorer

    mini = {**ROW, "dataset": "mini", "val_acc": 0.99, "data_fingerprint": "other"}
    frame = to_frame([{**ROW, "val_acc": 0.5}, mini])
    assert list(frame["dataset"]) == ["cifar10", "mini"]
    assert top_scorer(frame, "cifar10")["val_acc"] == 0.5
    assert top_scorer(frame, "mini")["val_acc"] == 0.99 and top_scorer(frame, "flowers") is None
    assert len(of_dataset(frame, None)) == 2


def test_a_bad_regime_names_line_and_column(tmp_path):
    frame = write_results([ROW, {**ROW, "regime": "thawed"}], str(tmp_path))
    with pytest.raises(ResultsSchemaError, match="line 3, column regime"):
        load_results(str(tmp_path))
    assert list(frame["regime"]) == ["frozen", "thawed"]


def test_missing_results_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m benchmark"):
        load_results(str(tmp_path))
