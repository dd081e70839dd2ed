"""The up-front disk and memory estimate of a fine-tuning job."""

import os
from collections import namedtuple

import pytest

import backbones
from benchmark.core import room, sysinfo
from benchmark.core.data import SplitRecipe
from benchmark.core.features import BackboneJob, ensure_features
from benchmark.core.finetune import FineTuneConfig
from benchmark.core.room import NoRoom, Needs, check_room, fine_tune_needs
from benchmark.core.store import Store

Usage = namedtuple("Usage", "total used free")


def test_the_estimate_by_hand():
    needs = fine_tune_needs((2, 2, 512), n_images=100, chunk_size=50, batch_size=8, params=1000, feature_dim=1024)
    assert needs.disk == 2 * 100 * 2048 * 2  # float16 maps, chunks and joined file
    # a chunk in float32 and float16, a batch's activations, the pooled features, the weights four times
    assert needs.memory == 50 * 2048 * 6 + 10 * 8 * 2048 * 4 + 100 * 1024 * 4 + 16 * 1000


def test_a_job_that_does_not_fit_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(room.shutil, "disk_usage", lambda _: Usage(0, 0, 3 * 2 ** 30))
    monkeypatch.setattr(sysinfo, "available_bytes", lambda: 2 * 2 ** 30)
    check_room(Needs(disk=2 * 2 ** 30, memory=2 ** 30), str(tmp_path), "fine-tuning X")  # fits
    with pytest.raises(NoRoom, match=r"fine-tuning X needs about 47\.0 GiB of disk .* has 3\.0 GiB free: .*--cache-dir"):
        check_room(Needs(disk=47 * 2 ** 30, memory=2 ** 30), str(tmp_path), "fine-tuning X")
    with pytest.raises(NoRoom, match=r"about 4\.5 GiB of memory, and 2\.0 GiB is available: .*--chunk-size"):
        check_room(Needs(disk=2 ** 30, memory=int(4.5 * 2 ** 30)), str(tmp_path), "fine-tuning X")
    monkeypatch.setattr(sysinfo, "available_bytes", lambda: None)  # unknown memory is not checked
    check_room(Needs(disk=2 ** 30, memory=10 ** 15), str(tmp_path), "fine-tuning X")


def test_the_check_runs_before_anything_is_extracted(tiny_cifar, tmp_path, monkeypatch):
    recipe = SplitRecipe(n_val_holdout=100, n_train=120, n_val=40, n_test=40)
    splits = recipe.make(tiny_cifar)
    spec = backbones.get("MobileNet")
    job = BackboneJob(spec.name, 32, backbones.WeightsSource("random"), splits=("train", "val", "test"), data=recipe,
                     cache_dir=str(tmp_path), cut=spec.finetune_cut, finetune=FineTuneConfig().as_dict())
    monkeypatch.setattr(room.shutil, "disk_usage", lambda _: Usage(0, 0, 1000))
    with pytest.raises(NoRoom, match="fine-tuning MobileNet @32px needs about"):
        ensure_features(job, splits, echo=lambda *_: None, on_disk=True)
    entry = job.entry(Store(job.cache_dir), splits["train"])
    assert not os.path.exists(entry.partial_dir) and not os.path.exists(entry.npz_path)
