"""`--recommend`: the best row within a time budget and what the paired test cannot tell from it (small fixture)."""

import types

import numpy as np
import pytest

from benchmark.cli.bench import main
from benchmark.core.results import prediction_key, to_frame, write_examples, write_results
from report.analysis import against_truth, quick_size, recommend

N = 40  # test images


def _row(model, size, val, test, ms, regime="frozen", head="linear"):
    return {"model": model, "img_size": size, "precision": "fp32", "head": head, "regime": regime,
            "weights": "imagenet", "val_acc": val, "test_acc": test, "test_ci_low": test - 0.1,
            "test_ci_high": test + 0.1, "samples_per_sec": 1000 / ms, "ms_per_img": ms, "train_size": 200,
            "val_size": 50, "test_size": N, "weights_id": "w", "data_fingerprint": "d", "matmul_peak_gflops": 100.0}


ROWS = [_row("DenseNet121", 128, 0.80, 0.80, 8.0),  # best overall
        _row("MobileNet", 128, 0.78, 0.75, 2.0),  # 2 images apart from the best: not distinguishable
        _row("MobileNetV2", 96, 0.70, 0.55, 1.0),  # 10 images worse: distinguishable
        _row("Xception", 299, 0.90, 0.90, 40.0)]  # the best of all, but over most budgets


def _predictions():
    labels = np.zeros(N, np.int64)
    wrong = {"DenseNet121": 8, "MobileNet": 10, "MobileNetV2": 18, "Xception": 4}  # images each gets wrong
    predictions = {}
    for row in to_frame(ROWS).to_dict("records"):
        pred = labels.copy()
        pred[:wrong[row["model"]]] = 1
        predictions[prediction_key(row)] = pred
    return labels, predictions


def test_the_best_within_the_budget_and_its_equals():
    labels, predictions = _predictions()
    frame = to_frame(ROWS)
    found = recommend(frame, labels, predictions, max_ms=10)
    assert found["n_scored"] == 4 and found["n_within"] == 3 and found["best"]["model"] == "DenseNet121"
    assert [a["model"] for a in found["alike"]] == ["MobileNet"]  # 2 discordant images: p = 0.5
    assert found["alike"][0]["p"] == pytest.approx(0.5) and found["untested"] == 0
    assert recommend(frame, labels, predictions, max_ms=50)["best"]["model"] == "Xception"
    tight = recommend(frame, labels, predictions, max_ms=1.5)
    assert tight["best"]["model"] == "MobileNetV2" and tight["alike"] == []
    none = recommend(frame, labels, predictions, max_ms=0.5)
    assert none["best"] is None and none["fastest_ms"] == 1.0
    without = recommend(frame, None, {}, max_ms=10)  # no predictions: nothing is tested, nothing claimed alike
    assert without["alike"] == [] and without["untested"] == 2


def test_the_command_line(tmp_path, capsys):
    labels, predictions = _predictions()
    write_results(ROWS, str(tmp_path))
    write_examples(str(tmp_path), types.SimpleNamespace(x=np.zeros((N, 4, 4, 3), np.uint8), y=labels), predictions)
    assert main(["--recommend", "--max-ms-per-img", "10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4 scored rows of cifar10" in out and "Best: DenseNet121 @128px (frozen, linear head)" in out
    assert "MobileNet @128px (frozen, linear head): test 75.0%, 2.0 ms/image, p = 0.50  (4.0x faster)" in out
    assert main(["--recommend", "--max-ms-per-img", "0.5", "--out", str(tmp_path)]) == 0
    assert "the fastest takes 1.0 ms" in capsys.readouterr().out
    for argv, says in [(["--recommend"], "--max-ms-per-img MS"), (["--max-ms-per-img", "3"], "add --recommend"),
                       (["--recommend", "--max-ms-per-img", "3", "--all"], "runs nothing"),
                       (["--recommend", "--max-ms-per-img", "3", "--data", "npz:x.npz"], "no rows of x")]:
        assert main([*argv, "--out", str(tmp_path)]) == 2
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--recommend", "--max-ms-per-img", "-1"])


# The truth: the same backbones fine-tuned on all the training images (a --full --regime finetune folder).
TRUTH = [_row("MobileNet", 160, 0.88, 0.87, 3.0, regime="finetune", head="mlp"),
         _row("DenseNet121", 160, 0.86, 0.85, 9.0, regime="finetune", head="mlp"),
         _row("MobileNetV2", 160, 0.84, 0.83, 2.0, regime="finetune", head="mlp")]
for truth_row in TRUTH:
    truth_row.update(train_size=45000, val_size=5000, test_size=10000, test_ci_low=truth_row["test_acc"] - 0.007,
                     test_ci_high=truth_row["test_acc"] + 0.007)


def test_the_quick_ranking_against_the_truth():
    frame, truth = to_frame(ROWS), to_frame(TRUTH)
    checked = against_truth(frame, truth)
    assert checked["size"] == 128 and checked["train_size"] == 45000 and checked["n"] == 3
    # the quick frozen accuracies at 128 px exist for DenseNet121 and MobileNet only: n = 2, reversed
    assert checked["predictors"]["quick_frozen"] == {"tau": pytest.approx(-1.0), "rho": None, "n": 2}
    top1 = {"DenseNet121": 75.0, "MobileNet": 70.4, "MobileNetV2": 71.3}  # the truth: MobileNet, DenseNet121, V2
    with_top1 = frame.assign(imagenet_top1=frame["model"].map(top1))
    found = against_truth(with_top1, truth)["predictors"]["imagenet_top1"]
    assert found["n"] == 2 and found["tau"] == pytest.approx(-1.0)  # MobileNetV2 has no quick row at 128 px
    assert against_truth(frame, None) == {} and against_truth(frame, truth.iloc[0:0]) == {}
    assert quick_size(frame, ["MobileNetV2"]) == 96 and quick_size(frame, ["Xception"]) == 299
    assert quick_size(frame, ["ResNet50"]) is None


def test_the_recommendation_checked_against_the_truth():
    labels, predictions = _predictions()
    frame, truth = to_frame(ROWS), to_frame(TRUTH)
    misled = recommend(frame, labels, predictions, max_ms=10, truth=truth)["truth"]
    assert misled == {"agrees": False, "model": "MobileNet", "test_acc": 0.87, "test_ci": [0.863, 0.877],
                      "best_test_acc": 0.85, "best_test_ci": [0.843, 0.857], "n": 3}
    assert recommend(frame, labels, predictions, max_ms=1.5, truth=truth)["truth"] is None  # one backbone within
    agrees = recommend(frame, labels, predictions, max_ms=10, truth=to_frame(TRUTH[1:]))["truth"]
    assert agrees["agrees"] and agrees["model"] == "DenseNet121" and agrees["n"] == 2
    assert recommend(frame, labels, predictions, max_ms=50, truth=truth)["truth"] is None  # Xception: not in it


def test_the_command_line_with_a_truth(tmp_path, capsys):
    labels, predictions = _predictions()
    quick, full = str(tmp_path / "quick"), str(tmp_path / "full")
    write_results(ROWS, quick)
    write_examples(quick, types.SimpleNamespace(x=np.zeros((N, 4, 4, 3), np.uint8), y=labels), predictions)
    write_results(TRUTH, full)
    assert main(["--recommend", "--max-ms-per-img", "10", "--out", quick, "--truth", full]) == 0
    out = capsys.readouterr().out
    assert (f"The quick ranking misleads here: fine-tuned on all 45000 training images ({full}), MobileNet reaches "
            f"87.0% test (95% CI 86.3%-87.7%) against 85.0% (84.3%-85.7%) for DenseNet121. If you will fine-tune on "
            f"all the images, prefer MobileNet.") in out
    assert main(["--recommend", "--max-ms-per-img", "10", "--out", quick]) == 0
    assert "is not checked (--truth DIR" in capsys.readouterr().out
    write_results(ROWS, str(tmp_path / "frozen-only"))
    for argv, says in [(["--max-ms-per-img", "3", "--truth", full], "add --recommend"),
                       (["--recommend", "--max-ms-per-img", "3", "--truth", str(tmp_path / "frozen-only")],
                        "no fine-tuned row of cifar10"),
                       (["--recommend", "--max-ms-per-img", "3", "--truth", str(tmp_path / "none")], "no results at")]:
        assert main([*argv, "--out", quick]) == 2
        assert says in capsys.readouterr().err


def test_a_run_into_a_folder_of_another_protocol_says_so(tmp_path):
    from benchmark.run.runner import warn_mixed_protocols

    said = []
    warn_mixed_protocols(str(tmp_path / "none"), "cifar10", 45000, said.append)  # no folder yet: nothing to say
    write_results(ROWS, str(tmp_path))
    warn_mixed_protocols(str(tmp_path), "cifar10", 200, said.append)  # the same protocol: nothing to say
    assert said == []
    warn_mixed_protocols(str(tmp_path), "cifar10", 45000, said.append)
    assert len(said) == 1 and "holds cifar10 rows trained on 200 images; this run's (45000)" in said[0]
    assert "--truth DIR" in said[0] and "another --out" in said[0]
