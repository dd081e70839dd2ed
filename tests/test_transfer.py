"""0-transfer.py: the import contract, preprocess_data, and a tiny end-to-end run."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module():
    spec = importlib.util.spec_from_file_location("transfer0", os.path.join(ROOT, "0-transfer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_weights(folder, *names, size: int = 48):
    """`folder` holding random-weight `<Name>_notop_imagenet.weights.h5` files, as the weights folder."""
    import keras

    folder.mkdir()
    for name in names:
        getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3),
                                          pooling="avg").save_weights(str(folder / f"{name}_notop_imagenet.weights.h5"))
    return folder


def test_import_has_no_side_effects(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); m = __import__('0-transfer'); "
            "assert callable(m.preprocess_data); "
            "heavy = [k for k in ('tensorflow', 'keras') if k in sys.modules]; "
            "assert not heavy, heavy" % ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert os.listdir(tmp_path) == []  # nothing written, nothing trained


def test_preprocess_data_shapes_and_dtypes():
    pre = _module().preprocess_data
    X = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3)).astype(np.uint8)
    for Y in (np.arange(7) % 10, (np.arange(7) % 10).reshape(-1, 1)):
        X_p, Y_p = pre(X, Y)
        assert X_p.shape == (7, 32, 32, 3) and X_p.dtype == np.float32
        assert np.array_equal(X_p, X.astype(np.float32))
        assert Y_p.shape == (7, 10) and Y_p.dtype == np.float32
        assert np.array_equal(Y_p.argmax(1), np.arange(7) % 10) and np.all(Y_p.sum(1) == 1)
    X_p, _ = pre(X.astype(np.float64), np.arange(7) % 10)  # float input in 0..255 is fine
    assert X_p.dtype == np.float32


@pytest.mark.parametrize("X, Y, message", [
    (np.zeros((4, 32, 32)), np.zeros(4, int), "rank 3"),
    (np.zeros((4, 28, 28, 3)), np.zeros(4, int), r"\(m, 32, 32, 3\); got \(4, 28, 28, 3\)"),
    (np.zeros((4, 32, 32, 3)), np.array([0, 1, 2, 10]), "0..9"),
    (np.zeros((4, 32, 32, 3)), np.array([0, 1, -1, 2]), "0..9"),
    (np.zeros((4, 32, 32, 3)), np.zeros(3, int), "same length; got 4 images and 3 labels"),
    (np.zeros((4, 32, 32, 3)), np.zeros((4, 10)), r"\(m,\) or \(m, 1\)"),
    (np.full((4, 32, 32, 3), 300.0), np.zeros(4, int), "0..255"),
    (np.zeros((4, 32, 32, 3)), np.array([0.5, 1, 2, 3]), "integer labels"),
])
def test_preprocess_data_errors(X, Y, message):
    with pytest.raises(ValueError, match=message):
        _module().preprocess_data(X, Y)


def test_tiny_end_to_end(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    import keras

    weights = _random_weights(tmp_path / "weights", "MobileNetV2")
    monkeypatch.chdir(tmp_path)
    module = _module()
    rc = module.main(["--backbone", "mobilenetv2", "--size", "48", "--data-dir", tiny_cifar_dir,
                      "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"),
                      "--val-holdout", "100", "--train-size", "200", "--test-size", "100", "--epochs", "3",
                      "--hidden", "32", "--batch-size", "50", "--no-fine-tune", "--mirror", "off"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "chosen with --backbone" in out and "Test accuracy of cifar10.h5" in out
    assert os.path.exists(tmp_path / "cifar10.h5")

    keras.backend.clear_session()
    model = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    assert model.optimizer is not None and "categorical_crossentropy" in str(getattr(model.loss, "__name__", model.loss))
    assert model.input_shape == (None, 32, 32, 3)
    assert isinstance(model.layers[1], keras.layers.Resizing) and model.layers[1].height == 48
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    base = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    assert base.trainable is False
    X = np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    X_p, Y_p = module.preprocess_data(X, np.arange(20) % 10)
    loss, acc = model.evaluate(X_p, Y_p, batch_size=128, verbose=0)
    assert 0 <= acc <= 1 and np.isfinite(loss)

    # the same settings again: the finished model comes from the cache
    keras.backend.clear_session()
    args = ["--backbone", "mobilenetv2", "--size", "48", "--data-dir", tiny_cifar_dir,
            "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"),
            "--val-holdout", "100", "--train-size", "200", "--test-size", "100", "--hidden", "32", "--no-fine-tune",
            "--mirror", "off"]
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert report["regime"] == "frozen" and report["n_test"] == 100 and report["file_size_mib"] > 0
    assert [s["stage"] for s in report["stages"]] == ["frozen head"]
    assert 0 <= report["stages"][0]["test_acc"] <= 1 and report["stages"][0]["epochs"] >= 1
    assert len(report["curves"]["head"]["val_accuracy"]) == report["stages"][0]["epochs"]
    assert set(report["jpeg_robustness"]) == {"plain", "quality_50", "quality_95"}
    assert report["inference_images"] == 100 and report["inference_s"] > 0
    # the accuracy taken from the predictions is what the grader's evaluate() reports
    keras.backend.clear_session()
    from benchmark.core.data import load_cifar10, make_splits

    test = make_splits(load_cifar10(tiny_cifar_dir), n_val_holdout=100, n_train=200, n_test=100)["test"]
    X_t, Y_t = module.preprocess_data(test.x, test.y)
    _, evaluated = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True).evaluate(
        X_t, Y_t, batch_size=128, verbose=0)
    assert report["test_acc"] == pytest.approx(evaluated, abs=1e-6)
    assert (tmp_path / "transfer.npz").exists()
    assert module.main(args + ["--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "Model taken from the cache" in out and "Test accuracy of cifar10.h5" in out
    # the same file: its evaluations (plain and JPEG) come from the cache; --recheck evaluates again
    assert out.count("from the cache: accuracy") == 3 and "Checking:" not in out
    assert json.loads((tmp_path / "transfer.json").read_text())["stages"] == report["stages"]
    keras.backend.clear_session()
    assert module.main(args + ["--epochs", "3", "--recheck", "--jpeg-qualities"]) == 0
    out = capsys.readouterr().out
    assert out.count("Checking:") == 1 and "JPEG robustness" not in out
    # another head setting retrains, but every feature comes from the cache
    keras.backend.clear_session()
    assert module.main(args + ["--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("features from the cache") == 4 and "Model taken from the cache" not in out  # train, flip, val, test
    keras.backend.clear_session()
    other = [("16" if a == "32" else a) for a in args]  # another head width: another file, evaluated again
    assert module.main(other + ["--epochs", "3", "--jpeg-qualities"]) == 0
    assert "Checking:" in capsys.readouterr().out


def test_tiny_fine_tune_trains_only_above_the_cut(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    import keras

    weights = tmp_path / "weights"
    weights.mkdir()
    original = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3),
                                              pooling="avg")
    original.save_weights(str(weights / "DenseNet121_notop_imagenet.weights.h5"))
    monkeypatch.chdir(tmp_path)
    module = _module()
    # no JPEG checks (--jpeg-qualities with none): each costs a model load and evaluation, tested elsewhere
    args = ["--jpeg-qualities", "--backbone", "DenseNet121", "--size", "32", "--data-dir", tiny_cifar_dir,
            "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"),
            "--val-holdout", "100", "--train-size", "200", "--test-size", "100", "--epochs", "2",
            "--hidden", "32", "--batch-size", "50", "--mirror", "off", "--cut", "pool4_pool", "--ft-epochs", "2",
            "--ft-lr", "1e-2"]
    assert module.main(args) == 0
    out = capsys.readouterr().out
    assert "Fine-tuning DenseNet121 above pool4_pool" in out and "fine-tune epoch 1" in out
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert report["regime"] == "finetune" and report["cut"] == "pool4_pool"
    assert [s["stage"] for s in report["stages"]] == ["frozen head", "fine-tuned"]
    tuned = report["stages"][1]
    assert tuned["trainable_params"] > report["stages"][0]["trainable_params"] and 0 <= tuned["test_acc"] <= 1
    assert len(report["curves"]["fine_tune"]["val_accuracy"]) == tuned["epochs"]

    keras.backend.clear_session()
    model = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    base = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    assert base.trainable is False

    def kernel(m, name):
        return np.asarray(m.get_layer(name).kernel)

    # below the cut: untouched; above it: trained; BatchNorm statistics above it: untouched
    np.testing.assert_array_equal(kernel(base, "conv4_block24_2_conv"), kernel(original, "conv4_block24_2_conv"))
    assert not np.allclose(kernel(base, "conv5_block16_2_conv"), kernel(original, "conv5_block16_2_conv"))
    np.testing.assert_array_equal(np.asarray(base.get_layer("conv5_block1_0_bn").moving_mean),
                                  np.asarray(original.get_layer("conv5_block1_0_bn").moving_mean))

    # a rerun with another head setting takes the maps from the cache
    keras.backend.clear_session()
    assert module.main(args[:-4] + ["--ft-epochs", "1"]) == 0
    assert capsys.readouterr().out.count("maps at pool4_pool from the cache") == 3  # train, val, test

    # JPEG-compressed copies of the training images: extracted once, the rest from the cache; the head
    # trains on both sets, fine-tuning draws each image from either
    keras.backend.clear_session()
    assert module.main(args[:-4] + ["--ft-epochs", "1", "--train-jpeg", "30", "95"]) == 0
    out = capsys.readouterr().out
    assert out.count("maps at pool4_pool from the cache") == 3 and "train-jpeg30-95:" not in out
    assert "on 400 frozen feature vectors" in out and "drawn at random from it and train-jpeg30-95" in out
    assert json.loads((tmp_path / "transfer.json").read_text())["settings"]["training"]["train_jpeg"] == [30, 95]
    keras.backend.clear_session()
    assert module.main(args[:-4] + ["--ft-epochs", "1", "--train-jpeg", "30", "95"]) == 0
    assert "Model taken from the cache" in capsys.readouterr().out  # the band is in the model's key, stably

    # bf16 fine-tuning: another model (in its key), saved in float32
    keras.backend.clear_session()
    assert module.main(args[:-4] + ["--ft-epochs", "1", "--ft-precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "bfloat16 compute" in out and "Model taken from the cache" not in out
    assert json.loads((tmp_path / "transfer.json").read_text())["fine_tune_settings"]["precision"] == "bf16"
    keras.backend.clear_session()
    saved = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    base = [layer for layer in saved.layers if isinstance(layer, keras.Model)][0]
    assert {layer.dtype_policy.name for layer in base.layers} == {"float32"}
    assert {w.dtype for w in saved.weights} == {"float32"}

    # the default cut, one stage deeper, trains conv4 too, on shifted maps; conv3 stays as it was
    keras.backend.clear_session()
    assert module.main([a for a in args[:-4] if a not in ("--cut", "pool4_pool")]
                       + ["--ft-epochs", "1", "--ft-lr", "1e-2"]) == 0
    assert "above pool3_pool" in capsys.readouterr().out
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert report["cut"] == "pool3_pool" and report["fine_tune_settings"]["shift"] == 1
    keras.backend.clear_session()
    base = [layer for layer in keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True).layers
            if isinstance(layer, keras.Model)][0]
    np.testing.assert_array_equal(kernel(base, "conv3_block12_2_conv"), kernel(original, "conv3_block12_2_conv"))
    assert not np.allclose(kernel(base, "conv4_block24_2_conv"), kernel(original, "conv4_block24_2_conv"))


def test_cut_errors_come_before_the_data(tmp_path, capsys):
    common = ["--backbone", "DenseNet121", "--results", str(tmp_path), "--cache-dir", str(tmp_path / "cache"),
              "--data-dir", str(tmp_path / "no-data")]
    assert _module().main(common + ["--no-fine-tune", "--cut", "pool3_pool"]) == 2
    assert "--cut pool3_pool needs fine-tuning, and --no-fine-tune turns it off" in capsys.readouterr().err
    assert _module().main(common + ["--cut", "pool9_pool"]) == 2
    err = capsys.readouterr().err
    assert "no layer 'pool9_pool'" in err and "cifar" not in err.lower()
    assert _module().main(common + ["--ft-shift", "-1"]) == 2
    assert "--ft-shift is a number of map cells" in capsys.readouterr().err


def test_fine_tune_settings_without_shift_keep_their_keys():
    from benchmark.core.finetune import FineTuneConfig

    assert "shift" not in FineTuneConfig().as_dict()  # cached fine-tuned rows from before stay valid
    assert FineTuneConfig(shift=1).as_dict()["shift"] == 1
    assert "schedule" not in FineTuneConfig().as_dict()
    assert FineTuneConfig(schedule="cosine").as_dict()["schedule"] == "cosine"
    with pytest.raises(ValueError, match="one of constant, cosine; got 'step'"):
        FineTuneConfig(schedule="step")


def test_jpeg_recoded_training_images_are_named_seeded_and_parsed():
    from benchmark.core.data import Split, jpeg_copy, jpeg_recoded, parse_jpeg_split

    rng = np.random.default_rng(0)
    train = Split("train", rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 10)
    recoded = jpeg_recoded(train, (30, 95))
    assert recoded.name == "train-jpeg30-95" and parse_jpeg_split(recoded.name) == ("train", (30, 95))
    assert recoded.fingerprint == jpeg_recoded(train, (30, 95)).fingerprint  # the same copy on every run
    assert recoded.fingerprint != jpeg_recoded(train, (30, 94)).fingerprint
    np.testing.assert_array_equal(recoded.y, train.y)
    assert np.abs(recoded.x.astype(int) - train.x).mean() > 1  # noise images lose much to JPEG
    np.testing.assert_array_equal(jpeg_recoded(train, (50, 50)).x, jpeg_copy(train.x, 50))  # one quality: as the check
    assert parse_jpeg_split("train-flip") is None and parse_jpeg_split("train-jpeg30") is None
    assert parse_jpeg_split("test") is None and parse_jpeg_split("-jpeg1-2") is None


def test_fine_tuning_batches_draw_each_image_from_one_view():
    from benchmark.core.finetune import _batches

    x, view, y = np.zeros((400, 2, 2, 1), np.float16), np.ones((400, 2, 2, 1), np.float16), np.arange(400) % 10
    plain, rng, order = _batches(x, y, 400, True, 0), np.random.default_rng(0), np.arange(400)
    rng.shuffle(order)
    np.testing.assert_array_equal(plain.order, order)  # without views, the draws of every run before them
    plain.on_epoch_end()
    rng.shuffle(order)
    np.testing.assert_array_equal(plain.order, order)
    assert plain[0][0].max() == 0
    with pytest.raises(ValueError, match=r"same images as the training maps, shape \(400, 2, 2, 1\); got \(399"):
        _batches(x, y, 400, True, 0, views=(view[1:],))
    mixed = _batches(x, y, 400, True, 0, views=(view,))
    first = mixed[0][0]
    assert set(np.unique(first)) == {0.0, 1.0} and (first.min(axis=(1, 2, 3)) == first.max(axis=(1, 2, 3))).all()
    assert 0.4 < first.mean() < 0.6
    mixed.on_epoch_end()
    assert not np.array_equal(mixed[0][0], first)  # drawn again each epoch


def test_train_jpeg_band_is_checked(tmp_path, capsys):
    common = ["--backbone", "DenseNet121", "--results", str(tmp_path), "--cache-dir", str(tmp_path / "cache"),
              "--data-dir", str(tmp_path / "no-data")]
    assert _module().main(common + ["--train-jpeg", "0", "95"]) == 2
    assert "--train-jpeg is a band of JPEG qualities LOW HIGH with 1 <= LOW <= HIGH <= 95; got 0 95" in \
        capsys.readouterr().err
    from benchmark.transfer.config import TransferConfig

    with pytest.raises(ValueError, match="--ft-precision is one of fp32, bf16; got 'fp16'"):
        TransferConfig(ft_precision="fp16").check()


def test_settings_recorded_before_a_training_flag_existed_still_give_their_command():
    import dataclasses

    from benchmark.cli.commands import transfer_command
    from benchmark.transfer.config import FinalRun

    settings = dataclasses.asdict(FinalRun())
    assert transfer_command({"backbone": "DenseNet121", "settings": settings}) == "python 0-transfer.py"
    for newer in ("ft_schedule", "ft_precision", "train_jpeg"):  # a record from before: a constant rate, fp32
        del settings["training"][newer]
    settings["training"]["ft_epochs"] = 3  # not the default, so the command names it
    assert transfer_command({"backbone": "DenseNet121", "settings": settings}) == \
        "python 0-transfer.py --ft-epochs 3 --ft-schedule constant"


def test_the_report_names_the_schedule_and_the_jpeg_copies():
    from report.sections.front import final_regime

    plain = {"cut": "pool3_pool", "fine_tune_settings": {"epochs": 5}, "settings": {"training": {"train_jpeg": None}}}
    assert final_regime(plain) == "fine-tuned above pool3_pool"
    both = {"cut": "pool3_pool", "fine_tune_settings": {"schedule": "cosine"},
            "settings": {"training": {"train_jpeg": [30, 95]}}}
    assert final_regime(both) == ("fine-tuned above pool3_pool with a cosine decay of the learning rate and "
                                  "JPEG-re-encoded copies (qualities 30-95) of the training images")
    assert final_regime({"cut": None}) == "a head on the frozen base"
    bf16 = {"cut": "pool3_pool", "fine_tune_settings": {"schedule": "cosine", "precision": "bf16"}}
    assert final_regime(bf16) == ("fine-tuned above pool3_pool with a cosine decay of the learning rate "
                                  "(fine-tuning computed in bfloat16)")


def test_model_key_without_jpeg_copies_is_unchanged():
    import keras

    from benchmark.core.keys import PIPELINE_VERSION, model_parts

    args = ("DenseNet121", 160, "w", "pool3_pool", "t", "v", False, {"kind": "mlp"}, 0.1, {"epochs": 5}, 0)
    assert set(model_parts(*args)) == {"backbone", "size", "weights", "cut", "train", "val", "flip_features", "head",
                                       "label_smoothing", "fine_tune", "seed", "versions"}
    assert model_parts(*args)["versions"][0] == PIPELINE_VERSION and keras.__version__ in model_parts(*args)["versions"]
    assert model_parts(*args, train_jpeg=(30, 95))["train_jpeg"]["band"] == [30, 95]


def test_cosine_schedule_falls_to_zero_over_the_epochs():
    from benchmark.core.finetune import FineTuneConfig

    assert FineTuneConfig(learning_rate=1e-3, epochs=3).rate(steps_per_epoch=10) == 1e-3
    rate = FineTuneConfig(learning_rate=1e-3, epochs=3, schedule="cosine").rate(steps_per_epoch=10)
    assert float(rate(0)) == pytest.approx(1e-3) and float(rate(15)) == pytest.approx(5e-4, rel=1e-3)
    assert float(rate(30)) == pytest.approx(0, abs=1e-9)


def test_every_backbone_has_a_cut_to_fine_tune_above(tiny_cifar_dir, tmp_path, capsys):
    import keras

    weights = _random_weights(tmp_path / "weights", "MobileNetV2")
    rc = _module().main(["--backbone", "MobileNetV2", "--size", "48", "--fine-tune", "--data-dir", tiny_cifar_dir,
                         "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"),
                         "--val-holdout", "100", "--train-size", "200", "--test-size", "100", "--epochs", "2",
                         "--hidden", "16", "--ft-epochs", "1", "--ensemble", "none", "--jpeg-qualities",
                         "--output", str(tmp_path / "m.h5")])
    assert rc == 0
    assert "Fine-tuning MobileNetV2 above block_12_add" in capsys.readouterr().out


def test_chooses_top_scorer_from_results(tmp_path):
    from benchmark.core.results import write_results
    from benchmark.transfer.select import choose_backbone

    rows = [
        {"model": "MobileNetV2", "img_size": 128, "head": "mlp", "weights": "imagenet", "val_acc": 0.7},
        {"model": "Xception", "img_size": 160, "head": "linear", "weights": "imagenet", "val_acc": 0.8},
        {"model": "VGG16", "img_size": 128, "head": "none", "weights": "random", "val_acc": None},
    ]
    write_results(rows, str(tmp_path))
    messages = []
    assert choose_backbone(str(tmp_path), None, None, messages.append) == ("Xception", 160, "frozen")
    assert choose_backbone(str(tmp_path), None, "160", messages.append) == ("Xception", 160, "frozen")
    assert "top scorer" in messages[0]
    assert choose_backbone(str(tmp_path), None, "native", messages.append) == ("Xception", 299, "frozen")
    assert choose_backbone(str(tmp_path / "none"), None, None, messages.append) == ("DenseNet121", 160, "finetune")
    assert choose_backbone(str(tmp_path), "densenet121", None, messages.append) == ("DenseNet121", 160, "finetune")
    with pytest.raises(ValueError, match="at least 71"):
        choose_backbone(str(tmp_path), "Xception", "64", messages.append)
    rows.append({"model": "MobileNet", "img_size": 128, "head": "mlp", "weights": "imagenet", "val_acc": 0.85,
                 "regime": "finetune"})
    write_results(rows, str(tmp_path))
    assert choose_backbone(str(tmp_path), None, None, messages.append) == ("MobileNet", 160, "finetune")
    assert "finetune regime" in messages[-1] and "trained at 160 px" in messages[-1]


def test_final_cut_is_the_measured_deeper_one_else_the_registry_cut():
    import backbones
    from benchmark.transfer.select import final_cut

    assert final_cut(backbones.get("DenseNet121")) == "pool3_pool"
    assert final_cut(backbones.get("MobileNetV2")) == backbones.get("MobileNetV2").finetune_cut == "block_12_add"


def test_old_results_schema_is_a_clear_error(tmp_path, capsys):
    from benchmark.core.results import write_results

    frame = write_results([{"model": "Xception", "img_size": 160, "head": "mlp", "weights": "imagenet",
                            "val_acc": 0.8}], str(tmp_path))
    frame.assign(schema_version=0).to_csv(tmp_path / "results.csv", index=False)
    assert _module().main(["--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "schema" in err and "Traceback" not in err


def test_missing_weights_file_is_a_clear_error(tmp_path, capsys):
    assert _module().main(["--backbone", "VGG16", "--weights-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no pretrained weights for VGG16" in err and "VGG16_notop_imagenet.weights.h5" in err


def test_tiny_ensemble(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    import keras

    weights = _random_weights(tmp_path / "weights", "MobileNetV2", "MobileNet")
    monkeypatch.chdir(tmp_path)
    import benchmark.transfer.config as cli

    monkeypatch.setattr(cli, "ENSEMBLE_MIN_GAIN", -1.0)  # kept whatever random weights score
    module = _module()

    def run(member, mirror, *extra):
        """`0-transfer.py` on MobileNetV2 at 48 px with one ensemble member, on the tiny data; its exit code."""
        return module.main(["--backbone", "MobileNetV2", "--size", "48", "--ensemble", member,
                            "--data-dir", tiny_cifar_dir, "--weights-dir", str(weights),
                            "--cache-dir", str(tmp_path / "c"), "--val-holdout", "100", "--train-size", "200",
                            "--test-size", "100", "--epochs", "2", "--hidden", "32", *extra, "--mirror", mirror,
                            "--jpeg-qualities"])

    assert run("MobileNet@48", "off", "--batch-size", "50") == 0
    out = capsys.readouterr().out
    assert "member MobileNet: head" in out and "weights (chosen on the validation split)" in out

    keras.backend.clear_session()
    model = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    assert isinstance(model.layers[1], keras.layers.Resizing)
    X = np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    X_p, Y_p = module.preprocess_data(X, np.arange(20) % 10)
    probs = model.predict(X_p, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    # rerun: the ensemble file comes from the cache
    keras.backend.clear_session()
    assert run("MobileNet", "off") == 0
    out = capsys.readouterr().out
    assert "Model taken from the cache" in out and "member MobileNet" not in out
    kept = json.loads((tmp_path / "transfer.json").read_text())
    assert kept["members"] == ["MobileNet"] and kept["stages"][-1]["kept"] is True

    # a kept ensemble, mirrored: it saves and loads safely, and the ensemble stage is not the scored one
    keras.backend.clear_session()
    assert run("MobileNet", "on") == 0
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert [s["stage"] for s in report["stages"]][-2:] == ["ensemble", "test-time mirroring"]
    assert report["stages"][-1]["test_acc"] == report["test_acc"] and "test_acc" not in report["stages"][-2]
    keras.backend.clear_session()
    mirrored = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    np.testing.assert_allclose(mirrored.predict(X_p, verbose=0), mirrored.predict(X_p[:, :, ::-1], verbose=0),
                               atol=1e-6)
    capsys.readouterr()

    # an ensemble under the bar is not saved: the single network is, and the log says why
    monkeypatch.setattr(cli, "ENSEMBLE_MIN_GAIN", 2.0)
    keras.backend.clear_session()
    assert run("MobileNet", "off") == 0
    out = capsys.readouterr().out
    assert "ensemble not kept" in out and "saving the single network" in out
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert report["members"] == [] and report["stages"][-1]["kept"] is False
    keras.backend.clear_session()
    model = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    assert not any(layer.name.startswith("member_") for layer in model.layers)


def test_mirrored_model_is_exact_and_loads_safely(tmp_path):
    import keras

    from benchmark.transfer.mirror import mirror_images, mirrored_model

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs))
    single = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))  # not mirror-symmetric
    X = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype(np.float32)
    want = (single.predict(X, verbose=0) + single.predict(mirror_images(X), verbose=0)) / 2
    assert np.abs(single.predict(X, verbose=0) - want).max() > 1e-3
    mirrored_model(single).save(str(tmp_path / "m.h5"))
    keras.backend.clear_session()
    loaded = keras.models.load_model(str(tmp_path / "m.h5"), safe_mode=True)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), want, atol=1e-6)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded.layers)


def test_tiny_mirroring_on_then_from_the_cache(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    import keras

    weights = _random_weights(tmp_path / "weights", "MobileNetV2")
    monkeypatch.chdir(tmp_path)
    module = _module()
    args = ["--backbone", "MobileNetV2", "--size", "48", "--no-fine-tune", "--data-dir", tiny_cifar_dir,
            "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"), "--val-holdout", "100",
            "--train-size", "200", "--test-size", "100", "--epochs", "2", "--hidden", "32", "--jpeg-qualities"]
    assert module.main(args + ["--mirror", "on"]) == 0
    assert "kept (--mirror on)" in capsys.readouterr().out
    report = json.loads((tmp_path / "transfer.json").read_text())
    last = report["stages"][-1]
    assert report["test_mirroring"] is True and last["stage"] == "test-time mirroring" and last["kept"] is True
    assert last["test_acc"] == report["test_acc"] and report["val_acc"] == last["val_acc"]

    keras.backend.clear_session()
    model = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True)
    X, _ = module.preprocess_data(np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8),
                                  np.arange(8))
    # averaged over an image and its mirror image, the model cannot tell them apart
    np.testing.assert_allclose(model.predict(X, verbose=0), model.predict(X[:, :, ::-1], verbose=0), atol=1e-6)

    keras.backend.clear_session()
    assert module.main(args + ["--mirror", "on"]) == 0
    out = capsys.readouterr().out
    assert "test-time mirroring on" in out and "Test-time mirroring: scoring" not in out
    # auto decides on the validation split from the cached network, without training it again; under
    # its bar the saved file is the plain network
    import benchmark.transfer.config as cli

    monkeypatch.setattr(cli, "MIRROR_MIN_GAIN", 1.0)
    keras.backend.clear_session()
    assert module.main(args) == 0
    out = capsys.readouterr().out
    assert "Test-time mirroring: scoring" in out and "Training the head" not in out and "not kept" in out
    report = json.loads((tmp_path / "transfer.json").read_text())
    assert report["test_mirroring"] is False and report["stages"][-1]["kept"] is False
    assert "test_acc" not in report["stages"][-1]  # a dropped stage is not what was scored
    keras.backend.clear_session()
    layers = keras.models.load_model(str(tmp_path / "cifar10.h5"), safe_mode=True).layers
    assert not any(layer.name == "reverse_width" for layer in layers)


def test_prediction_shift_names_where_the_lost_images_go():
    from benchmark.core.metrics import prediction_shift

    labels = np.array([0, 1, 2, 3, 4, 5])
    before = np.array([0, 1, 2, 3, 4, 0])  # right on 5
    after = np.array([6, 6, 2, 6, 1, 5])  # 0, 1, 3 -> class 6 and 4 -> 1 lost; 5 gained
    shift = prediction_shift(labels, before, after)
    assert shift["n_lost"] == 4 and shift["n_gained"] == 1 and shift["to_class"] == 6
    assert shift["to_class_count"] == 3 and shift["to_class_share"] == 0.75
    assert shift["class_share_before"] == 0.0 and shift["class_share_after"] == 0.5
    assert prediction_shift(labels, before, before)["to_class"] is None


def test_ensemble_weights_and_member_size():
    from benchmark.transfer import ensemble as module
    y = np.array([0, 1, 2, 3])
    main = np.array([[.9, .1, 0, 0], [.1, .9, 0, 0], [.5, 0, .4, .1], [.5, 0, 0, .45]])  # right on 2 of 4
    helpful = np.eye(4)[[0, 1, 2, 3]]           # right on all: the smallest weight that fixes both wins
    useless = np.eye(4)[[3, 3, 3, 0]]           # wrong on all: left out
    assert module.choose_weights(main, [helpful, useless], y) == [0.25, 0.0]
    with pytest.raises(ValueError, match="run at 224 px like the main backbone"):
        module.parse_member("Xception@299", 224)
    assert module.parse_member("xception@224", 224) == "Xception"



@pytest.mark.parametrize("run", [
    {},
    {"backbone": "MobileNetV2", "img_size": 96, "n_train": 200, "n_test": 100, "fine_tune": False, "mirror": "off",
     "jpeg_qualities": (), "training": {"hidden": 32, "epochs": 3, "flip": False, "seed": 4}},
    {"backbone": "DenseNet121", "img_size": "native", "cut": "pool4_pool", "fine_tune": True, "ensemble": ("MobileNet",),
     "output": "m.keras", "training": {"ft_shift": 0, "ft_lr": 3e-4, "label_smoothing": 0.0, "chunk_size": 512}},
    {"training": {"ft_epochs": 3, "ft_schedule": "cosine", "train_jpeg": (30, 95)}},
    {"training": {"ft_precision": "bf16"}},
])
def test_recorded_settings_give_the_exact_command(run):
    """transfer.json's "settings" -> a command whose parsed FinalRun is the same run (folders aside)."""
    import dataclasses
    import shlex

    from benchmark.cli.commands import transfer_command
    from benchmark.cli.transfer import build_parser, run_from_args
    from benchmark.transfer.config import FinalRun, TransferConfig

    final = FinalRun(**{**run, "training": TransferConfig(**run.get("training", {})), "data_dir": "/d"})
    command = transfer_command({"backbone": final.backbone, "settings": dataclasses.asdict(final)})
    assert command.startswith("python 0-transfer.py")
    again = run_from_args(build_parser().parse_args(shlex.split(command)[2:]))
    assert dataclasses.replace(again, data_dir="/d", img_size=final.img_size) == final
    assert str(again.img_size) == str(final.img_size) if final.img_size else again.img_size is None
    if not run:
        assert command == "python 0-transfer.py"  # the shipped model: every flag at its default


def test_keras_output_is_a_keras_zip(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    """The model cache keeps HDF5; an --output ending in .keras gets the .keras (zip) format it names."""
    import zipfile

    import keras

    weights = _random_weights(tmp_path / "weights", "MobileNetV2")
    monkeypatch.chdir(tmp_path)
    assert _module().main(["--backbone", "MobileNetV2", "--size", "32", "--data-dir", tiny_cifar_dir,
                           "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"), "--val-holdout",
                           "100", "--train-size", "100", "--test-size", "50", "--epochs", "1", "--hidden", "16",
                           "--no-fine-tune", "--mirror", "off", "--jpeg-qualities", "--output", "model.keras"]) == 0
    assert zipfile.is_zipfile(tmp_path / "model.keras")
    keras.backend.clear_session()
    assert keras.models.load_model(str(tmp_path / "model.keras"), safe_mode=True).input_shape == (None, 32, 32, 3)
    assert json.loads((tmp_path / "transfer.json").read_text())["model_file"] == "model.keras"
