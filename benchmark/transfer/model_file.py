"""The final model file: the main network, then the optional ensemble and mirroring steps, each memoised.

Each step is a record of the store's "models" kind (`Store.memo`), keyed on
the step before it and its own settings, so a warm rerun copies the last
step's file and trains nothing. Every file goes into the cache before it is
copied anywhere, so a bad output path never loses a training.

The keep/drop rules: an ensemble is kept when it beats the main network by
`config.ENSEMBLE_MIN_GAIN` validation accuracy, and test-time mirroring (in
"auto" mode) when it gains `config.MIRROR_MIN_GAIN`. The rules read the
module `config` when they run, so a test can move a bar.
"""

from __future__ import annotations

import shutil
import time

import backbones

from ..core.keys import ensemble_parts, mirror_parts
from ..core.store import Store
from . import config
from .train import Transfer, train_main


def _copier(src: str):
    return lambda dst: shutil.copyfile(src, dst)


def _load(path: str):
    import keras

    keras.backend.clear_session()
    return keras.models.load_model(path, safe_mode=True)


def _taken(what: str, echo):
    return lambda found: echo(f"Model taken from the cache ({what}, trained with the same data and settings; "
                              f"validation accuracy {found.get('val_acc', float('nan')):.4f}).")


def main_network(t: Transfer, store: Store, echo=print) -> dict:
    """The main network's record: `{"path": cached .h5, "val_acc", "stages", "curves"}`."""
    def compute():
        model, val_acc, record = train_main(t, echo)
        return {"val_acc": val_acc, **record}, model.save

    return store.memo("models", t.model_key(), compute, on_hit=_taken(f"{t.spec.name} alone", echo))


def with_members(t: Transfer, members: list[str], weights_dir: str | None, store: Store, echo=print) -> dict:
    """The main network with head-only `members`, kept above the bar; else the main network's file again."""
    from .ensemble import add_members

    def compute():
        main = main_network(t, store, echo)
        ensemble, val_acc, stage = add_members(t, _load(main["path"]), members, weights_dir, echo)
        gain = val_acc - stage["main_val_acc"]
        stage["kept"] = keep = gain >= config.ENSEMBLE_MIN_GAIN
        echo(f"  ensemble {'kept' if keep else 'not kept'}: {gain * 100:+.2f} points of validation accuracy over "
             f"{t.spec.name} alone (the bar is {config.ENSEMBLE_MIN_GAIN * 100:g}, since every prediction pays for "
             f"all its networks){'' if keep else '; saving the single network'}")
        info = {k: v for k, v in main.items() if k != "path"}
        info = {**info, "val_acc": val_acc if keep else info.get("val_acc"), "stages": [*info.get("stages", []), stage]}
        return info, (ensemble.save if keep else _copier(main["path"]))

    return store.memo("models", _ensemble_parts(t, members, weights_dir), compute,
                      on_hit=_taken(f"{t.spec.name} with {', '.join(members)}", echo))


def _ensemble_parts(t: Transfer, members: list[str], weights_dir: str | None) -> dict:
    return ensemble_parts(t.model_key(), members, config.ENSEMBLE_MIN_GAIN,
                          [backbones.resolve_weights(m, weights_dir).identity for m in members])


def mirrored(t: Transfer, make_before, parts: dict, mode: str, store: Store, echo=print) -> dict:
    """The record from `make_before()` (called only when this step is not cached; `parts` is its key) after
    the test-time mirroring step: wrapped when `mode` is "on", or "auto" and it gains at least
    MIRROR_MIN_GAIN on the validation split; its stage is added to the record either way."""
    from .mirror import mirror_gain, mirrored_model

    def compute():
        before = make_before()
        t0 = time.perf_counter()
        echo(f"Test-time mirroring: scoring {len(t.val)} validation images and their mirror images end to end ...")
        model = _load(before["path"])
        plain, flipped = mirror_gain(model, t.val.x, t.val.y)
        keep = mode == "on" or flipped - plain >= config.MIRROR_MIN_GAIN
        bar = f"{config.MIRROR_MIN_GAIN * 100:g} points"
        echo(f"  validation accuracy {plain:.4f} alone, {flipped:.4f} averaged with the mirror image "
             f"({flipped - plain:+.4f}): " + ("kept (--mirror on)" if mode == "on" else f"kept, at least {bar}"
                                             if keep else f"not kept, under {bar} for twice the inference time"))
        stage = {"stage": "test-time mirroring", "val_acc": flipped, "main_val_acc": plain, "kept": keep,
                 "wall_s": round(time.perf_counter() - t0, 1)}
        info = {k: v for k, v in before.items() if k != "path"}
        info = {**info, "val_acc": flipped if keep else info.get("val_acc"), "test_mirroring": keep,
                "stages": [*info.get("stages", []), stage]}
        return info, (mirrored_model(model).save if keep else _copier(before["path"]))

    return store.memo("models", mirror_parts(parts, mode, config.MIRROR_MIN_GAIN), compute,
                      on_hit=_taken(f"test-time mirroring {mode}", echo))


def final_model_file(t: Transfer, members: list[str], mirror: str, weights_dir: str | None, store: Store,
                     echo=print) -> dict:
    """The final model's record (`{"path": the cached file, "val_acc", "stages", "curves", ...}`): the main
    network, with `members` when given, then the mirroring step unless `mirror` is "off"."""
    if mirror not in config.MIRROR_MODES:
        raise ValueError(f"--mirror {mirror!r}: choose one of {', '.join(config.MIRROR_MODES)}")
    if members:
        parts = _ensemble_parts(t, members, weights_dir)
        make = lambda: with_members(t, members, weights_dir, store, echo)  # noqa: E731
    else:
        parts, make = t.model_key(), lambda: main_network(t, store, echo)
    return make() if mirror == "off" else mirrored(t, make, parts, mirror, store, echo)
