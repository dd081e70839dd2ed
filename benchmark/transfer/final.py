"""`python 0-transfer.py` as a library: `make_final_model(FinalRun(), preprocess_data)` builds the shipped model.

plan (every user error before the data is read) -> the model file from the
memoised steps (`model_file`) -> the saved file at `run.output` -> the
grader's check and the JPEG check (`evaluate`) -> transfer.json and
transfer.npz beside the output, for the report.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

import backbones

from ..core.atomic import atomic_path, copy_file, probe_writable, write_json, write_npz
from ..core.data import Split, load_cifar10, make_splits
from ..core.features import WeightsUnavailable
from ..core.finetune import cut_tensors
from ..core.progress import format_duration
from ..core.results import N_EXAMPLES, TRANSFER_JSON, TRANSFER_NPZ
from ..core.store import Store
from ..core.weights import weights_problem
from .config import FinalRun
from .ensemble import parse_member
from .evaluate import evaluate, jpeg_robustness
from .model_file import final_model_file
from .select import choose_backbone, final_cut
from .train import Transfer

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")


def save_output(cached: str, output: str) -> None:
    """The cached HDF5 file at `output`: copied, or saved again in the .keras (zip) format its name asks for."""
    if not output.endswith(".keras"):
        copy_file(cached, output)
        return
    import keras

    keras.backend.clear_session()
    with atomic_path(output) as tmp:
        keras.models.load_model(cached, safe_mode=True).save(tmp)


def check_output(output: str) -> None:
    """Raises ValueError/PermissionError naming `output` when the model could not be saved there."""
    if not output.endswith(MODEL_SUFFIXES):
        raise ValueError(f"--output {output!r}: Keras saves a model as .h5 or .keras (or .hdf5); end the name "
                         f"with one")
    folder = os.path.dirname(os.path.abspath(output))
    try:
        probe_writable(folder)
    except OSError as err:
        raise PermissionError(f"--output folder {folder!r} is not writable ({err.strerror or err}); pass "
                              f"--output in a writable folder") from err


def _choose(run: FinalRun, echo) -> tuple[backbones.BackboneSpec, int, str | None]:
    """`(spec, img_size, cut)`: the backbone, its size and the fine-tuning cut (None: head only)."""
    name, img_size, regime = choose_backbone(run.results, run.backbone, run.img_size, echo)
    spec = backbones.get(name)
    tune = run.fine_tune if run.fine_tune is not None else regime == "finetune"
    if run.cut and not tune:
        raise ValueError(f"--cut {run.cut} needs fine-tuning, and "
                         + ("--no-fine-tune turns it off: drop one of the two" if run.fine_tune is False else
                            f"the chosen {spec.name} row is in the frozen regime: add --fine-tune"))
    if run.cut:  # a wrong layer name: one line now, not after the data load (the architecture alone, no weights;
        # the registry's and FINAL_CUTS' cuts are tested, so a run without --cut skips this build)
        cut_tensors(backbones.build_base(spec.name, max(spec.min_size, 32)), run.cut)
    return spec, img_size, (run.cut or final_cut(spec)) if tune else None


def plan(run: FinalRun, echo=print) -> tuple[Transfer, list[str], Split, Store]:
    """`(transfer, members, test split, store)`, every user error raised before the data is read."""
    run.training.check()
    check_output(run.output)
    spec, img_size, cut = _choose(run, echo)
    weights = backbones.resolve_weights(spec.name, run.weights_dir)
    if not weights.pretrained:
        raise ValueError(f"no pretrained weights for {spec.name}: put {spec.weights_filename} in the weights "
                         f"folder or pass --backbone with one that has weights")
    members = [] if [m.lower() for m in run.ensemble] == ["none"] else \
        [parse_member(m, img_size) for m in run.ensemble]
    store = Store(run.cache_dir)
    store.check_writable()
    for name in [spec.name, *members]:  # a bad weights file: one line now, not a traceback after the data load
        problem = weights_problem(backbones.get(name), backbones.resolve_weights(name, run.weights_dir), store)
        if problem:
            raise ValueError(problem)
    data = load_cifar10(run.data_dir)
    splits = make_splits(data, n_val_holdout=run.n_val_holdout, n_train=run.n_train, n_test=run.n_test,
                         seed=run.training.seed)
    echo(f"Data: train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])}"
         f"{'  [lossy JPEG copy of CIFAR-10]' if data.lossy_jpeg else ''}")
    transfer = Transfer(spec, img_size, weights, cut, splits["train"], splits["val"], store.root, run.training,
                        test=splits["test"])
    return transfer, members, splits["test"], store


def make_final_model(run: FinalRun, preprocess_data, echo=print) -> dict:
    """Trains (or takes from the cache), saves and checks the final model; writes transfer.json/.npz.

    Args:
        run: the settings (`FinalRun()`: the shipped model).
        preprocess_data: the script's own (the grader's) `preprocess_data(X, Y)`.

    Returns:
        The transfer.json record.
    """
    t_start = time.perf_counter()
    transfer, members, test, store = plan(run, echo)
    try:
        info = final_model_file(transfer, members, run.mirror, run.weights_dir, store, echo)
    except WeightsUnavailable as err:  # offline without a weights folder: the fix, not a traceback
        raise ValueError(f"{err}; offline, put <Name>_notop_imagenet.weights.h5 files in a folder and pass "
                         f"--weights-dir or set ${backbones.WEIGHTS_ENV} (README: 'Offline use')") from None
    save_output(info["path"], run.output)  # the cache holds it already: a failed save loses no training
    size_mib = os.path.getsize(run.output) / 2**20
    echo(f"Saved {run.output} ({size_mib:.1f} MiB).")
    plain = evaluate(run.output, test, preprocess_data, store, run.recheck, echo=echo)
    echo(f"Test accuracy of {run.output}: {plain['accuracy']:.4f} (loss {plain['loss']:.4f}; "
         f"{plain['n_images']} images, {plain['seconds']:.0f}s).")
    jpeg, shift = jpeg_robustness(run.output, test, plain, run.jpeg_qualities, preprocess_data, store,
                                  run.recheck, echo)
    record = transfer_record(run, transfer, members, info, plain, jpeg, shift)
    record["wall_s_this_run"] = round(time.perf_counter() - t_start, 1)
    folder = os.path.dirname(os.path.abspath(run.output))
    write_json(os.path.join(folder, TRANSFER_JSON), record)
    write_npz(os.path.join(folder, TRANSFER_NPZ), images=test.x[:N_EXAMPLES], labels=test.y.astype("uint8"),
              predictions=np.asarray(plain["predictions"], "uint8"))
    echo(f"Wrote {os.path.join(folder, TRANSFER_JSON)}. Total {format_duration(time.perf_counter() - t_start)}.")
    return record


def transfer_record(run: FinalRun, t: Transfer, members: list[str], info: dict, plain: dict, jpeg: dict,
                    shift: dict | None) -> dict:
    """transfer.json: what was trained and how, each stage, and the saved file's measured scores."""
    # every setting, shift=0 included (as_dict leaves it out of cache keys only)
    ft_settings = dataclasses.asdict(t.config.fine_tune()) if t.cut else None
    ensemble_kept = any(s["stage"] == "ensemble" and s.get("kept") for s in info.get("stages", []))
    stages = [dict(stage) for stage in info.get("stages", [])]
    kept = [stage for stage in stages if stage.get("kept")]
    if kept:
        kept[-1]["test_acc"] = plain["accuracy"]  # the last kept stage's model is the saved file
    return {
        "model_file": os.path.basename(run.output), "backbone": t.spec.name, "img_size": t.img_size,
        "regime": "finetune" if t.cut else "frozen", "cut": t.cut, "fine_tune_settings": ft_settings,
        "members": members if ensemble_kept else [], "test_mirroring": bool(info.get("test_mirroring")),
        "n_train": len(t.train), "n_val": len(t.val), "n_test": plain["n_images"],
        "val_acc": info.get("val_acc"), "test_acc": plain["accuracy"], "test_loss": plain["loss"],
        "file_size_mib": round(os.path.getsize(run.output) / 2**20, 2), "inference_s": plain["seconds"],
        "inference_images": plain["n_images"],
        "inference_s_per_10000": round(plain["seconds"] * 10000 / plain["n_images"], 1),
        "jpeg_robustness": jpeg, "jpeg_shift": shift, "stages": stages, "curves": info.get("curves", {}),
        "sha256": backbones.sha256_file(run.output), "settings": dataclasses.asdict(run),
    }
