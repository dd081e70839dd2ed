"""The one trained-network pipeline: a head on cached frozen features, or a fine-tune above a cut.

`train_network(recipe, data, top)` is the recipe both the benchmark and the
final model run; they differ only by the `Recipe` they pass:

* a head alone (`top` None): the head (`heads.fit_head`) is trained on
  the cached features of the training split(s), early-stopped on validation;
* a fine-tune (`top`, the part of the base above the cut): the cached maps
  go through the frozen `top` to pooled features, the head is trained on
  those, and then `top` and the head are trained together on the maps
  (`finetune.fine_tune`: mirrored and shifted at random, BatchNorm frozen,
  early-stopped on validation).

Kornblith, Shlens & Le (CVPR 2019) rank ImageNet networks twice, as fixed
feature extractors and fine-tuned, and the rankings differ: the benchmark's
fine-tuned regime is the CPU-sized version of the second.

`ensure_head` and `ensure_finetuned` are the benchmark's memoised measurements
(`Store.memo`); they run where the job runs (a worker process, a Dask worker,
a GPU) and leave their scores in the store, which is how the runner collects
them: the same way features travel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import Split, parse_jpeg_split
from .features import BackboneJob, FeatureSet, build_job_base, release_keras, select_splits
from .finetune import FineTuneConfig, fine_tune, pooled_features, split_base, trainable_params
from .heads import HeadConfig, fit_head
from .keys import SCORED, finetune_parts, head_parts
from .metrics import accuracy, classification_report
from .store import Store

FINETUNE_HEAD = HeadConfig(kind="mlp")  # the benchmark's fine-tuned regime trains this head


@dataclass(frozen=True)
class Recipe:
    """How a network is trained on cached features or maps.

    Attributes:
        head: the head's settings.
        fine_tune: the fine-tuning stage's settings; None trains the head alone.
        label_smoothing: of the head's cross-entropy (the fine-tuning stage has its own).
        seed: seeds Keras, numpy and Python for both stages.
        score_every_stage: also score the frozen head on "test" before fine-tuning (a pass of the
            test maps through the frozen top: the final model's record has it; the benchmark skips it).
    """

    head: HeadConfig
    fine_tune: FineTuneConfig | None = None
    label_smoothing: float = 0.0
    seed: int = 0
    score_every_stage: bool = False


@dataclass
class Trained:
    """A trained network and its measurements.

    Attributes:
        head: the trained head (pooled features -> probabilities).
        top: the trained part above the cut (maps -> pooled features), or None.
        val_acc: validation accuracy of the final stage (the best epoch's, when fine-tuned).
        stages: per stage: name, val_acc (and test_acc with a "test" split), epochs, wall_s, trainable_params.
        curves: per-epoch training and validation curves, by stage ("head", "fine_tune").
        test_pred: argmax predictions on the "test" split, or None without one.
    """

    head: object
    top: object
    val_acc: float
    stages: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    test_pred: np.ndarray | None = None
    seconds: dict = field(default_factory=dict)  # each stage's unrounded wall time ("head", "fine_tune")

    def score_test(self, features: np.ndarray, labels: np.ndarray) -> None:
        """Predicts the test split's pooled `features` with the head; the last stage gets its test accuracy."""
        self.test_pred = _predict(self.head, features).argmax(axis=1)
        self.stages[-1]["test_acc"] = accuracy(self.test_pred, labels)

    def scores(self, test_labels: np.ndarray, seed: int = 0) -> dict:
        """The benchmark's result of this network (`store.HEAD_FIELDS`, with the fine-tuning fields when
        fine-tuned): validation and test accuracy, the bootstrap interval, per-class accuracy, confusion."""
        report = classification_report(test_labels, self.test_pred, int(self.head.outputs[0].shape[-1]), seed=seed)
        head = self.stages[0]
        result = {"val_acc": self.val_acc, "test_acc": report["accuracy"], "test_ci_low": report["ci_low"],
                  "test_ci_high": report["ci_high"], "per_class_acc": report["per_class"],
                  "confusion": report["confusion"], "test_pred": np.asarray(self.test_pred).astype(int).tolist(),
                  "epochs": head["epochs"], "head_train_s": self.seconds["head"]}
        if len(self.stages) > 1:
            tuned = self.stages[1]
            result.update(ft_epochs=tuned["epochs"], ft_train_s=self.seconds["fine_tune"],
                          trainable_params=tuned["trainable_params"], frozen_val_acc=head["val_acc"])
        return result


def _curves(history: dict) -> dict:
    return {k: [round(float(v), 5) for v in values] for k, values in history.items()}


def _predict(head, features: np.ndarray) -> np.ndarray:
    return np.asarray(head.predict(np.asarray(features, np.float32), batch_size=1024, verbose=0))


def train_network(recipe: Recipe, data: dict[str, tuple], top=None, echo=print,
                  label: str = "the part above the cut") -> Trained:
    """Trains a head, then (with `recipe.fine_tune` and `top`) fine-tunes `top` with it.

    Args:
        recipe: the settings.
        data: `{"train", "val"[, "test"][, "train-flip"...]: (features, labels)}`: features (N, D)
            for a head alone, maps (N, h, w, c) below the cut with `top`. Every split whose name starts
            with "train" trains the head (e.g. mirrored images' features); "test" is only scored.
        top: the part of the base above the cut (`finetune.split_base`), or None.
        echo: where progress lines go; `label` names what is fine-tuned in them.

    Returns:
        A `Trained`; `top` and the head hold the kept (best validation) weights.
    """
    frozen_only = recipe.fine_tune is None or top is None
    pooled = {name: pooled_features(top, x) if top is not None else x for name, (x, _) in data.items()
              if name != "test" or frozen_only or recipe.score_every_stage}
    y_val = data["val"][1]
    train = [name for name in data if name.startswith("train")]
    x_train, y_train = np.concatenate([pooled[n] for n in train]), np.concatenate([data[n][1] for n in train])
    h = recipe.head
    echo(f"Training the head ({h.kind}, {f'{h.hidden} hidden, dropout {h.dropout}, ' if h.kind == 'mlp' else ''}"
         f"label smoothing {recipe.label_smoothing}) on {len(y_train)} frozen feature vectors ...")
    head, epochs, head_s = fit_head(h, (x_train, y_train), (pooled["val"], y_val), seed=recipe.seed,
                                    label_smoothing=recipe.label_smoothing)
    val_acc = accuracy(_predict(head, pooled["val"]), y_val)
    echo(f"  head: {epochs} epochs in {head_s:.0f}s, validation accuracy {val_acc:.4f} (frozen base)")
    trained = Trained(head, top, val_acc, curves={"head": _curves(head.history.history)}, seconds={"head": head_s})
    trained.stages.append({"stage": "frozen head", "val_acc": val_acc, "epochs": epochs, "wall_s": round(head_s, 1),
                           "trainable_params": trainable_params(head)})
    if "test" in pooled:
        trained.score_test(pooled["test"], data["test"][1])
    if not frozen_only:
        _fine_tune(recipe, trained, data, echo, label)
        if "test" in data:
            trained.score_test(pooled_features(top, data["test"][0]), data["test"][1])
    return trained


def _fine_tune(recipe: Recipe, trained: Trained, data: dict, echo, label: str) -> None:
    ft = recipe.fine_tune
    # Re-encoded copies of the training images are other views of the same images, not more images.
    views = {name: x for name, (x, _) in data.items() if (parsed := parse_jpeg_split(name)) and parsed[0] == "train"}
    schedule = " cosine decay," if ft.schedule == "cosine" else ""
    schedule += " bfloat16 compute," if ft.precision == "bf16" else ""
    mixed = f", each image's maps drawn at random from it and {' and '.join(views)}" if views else ""
    echo(f"Fine-tuning {label} with the head (lr {ft.learning_rate},{schedule} at most {ft.epochs} epochs, "
         f"{'random mirroring, ' if ft.flip else ''}{f'random shifts of up to {ft.shift} cells, ' if ft.shift else ''}"
         f"BatchNorm frozen) on {len(data['train'][1])} cached maps{mixed} ...")
    result = fine_tune(trained.top, trained.head, data["train"], data["val"], ft, seed=recipe.seed, echo=echo,
                       views=tuple(views.values()))
    echo(f"  fine-tune: {result.epochs} epochs in {result.seconds:.0f}s, validation accuracy {result.val_acc:.4f} "
         f"({result.val_acc - trained.val_acc:+.4f} over the frozen base)")
    trained.val_acc = result.val_acc
    trained.stages.append({"stage": "fine-tuned", "val_acc": result.val_acc, "epochs": result.epochs,
                           "wall_s": round(result.seconds, 1), "trainable_params": result.trainable_params})
    trained.curves["fine_tune"] = _curves(result.history)
    trained.seconds["fine_tune"] = result.seconds


def train_head(config: HeadConfig, train: tuple, val: tuple, test: tuple, seed: int = 0) -> dict:
    """One head on frozen features, measured: `(features (N, D), labels (N,))` pairs in, `Trained.scores` out."""
    trained = train_network(Recipe(head=config, seed=seed), {"train": train, "val": val, "test": test},
                            echo=lambda *_: None)
    return trained.scores(test[1], seed=seed)


def ensure_head(kind: str, sets: dict[str, FeatureSet], store: Store, seed: int = 0) -> dict:
    """The benchmark's frozen-regime head of `kind` on a job's features: from the store, or trained now."""
    config = HeadConfig(kind=kind)
    parts = head_parts({name: sets[name].key for name in SCORED}, config.as_dict(), seed)
    return store.memo("heads", parts, lambda: train_head(config, *((sets[n].features, sets[n].labels)
                                                                    for n in SCORED), seed=seed))


def _finetune_parts(job: BackboneJob, map_keys: dict[str, str], seed: int) -> dict:
    return finetune_parts(map_keys, job.finetune, FINETUNE_HEAD.as_dict(), seed)


def load_finetuned(job: BackboneJob, splits: dict[str, Split], store: Store, seed: int) -> dict | None:
    """The stored fine-tuned result for the job on these images, or None (reads no maps)."""
    keys = {name: job.entry(store, split).key for name, split in select_splits(job, splits).items()}
    return store.lookup("heads", _finetune_parts(job, keys, seed))


def ensure_finetuned(job: BackboneJob, sets: dict[str, FeatureSet], store: Store | None = None, seed: int = 0,
                     echo=print) -> dict:
    """The benchmark's fine-tuned network's scores on the job's maps, from the store or trained now.

    Args:
        job: a job with a `cut` and `finetune` settings (a `FineTuneConfig` as a dict).
        sets: its maps, `{"train", "val", "test": FeatureSet}` (N, h, w, c).

    Returns:
        `Trained.scores`: the head fields plus `ft_epochs`, `ft_train_s`,
        `trainable_params` and `frozen_val_acc` (the head before fine-tuning).
    """
    if not job.cut or job.finetune is None:
        raise ValueError(f"the job for {job.backbone} has no cut or no fine-tuning settings")
    store = store or Store(job.cache_dir)
    config = FineTuneConfig(**job.finetune)
    recipe = Recipe(head=FINETUNE_HEAD, fine_tune=config, label_smoothing=config.label_smoothing, seed=seed)

    def compute() -> dict:
        top = trained = None
        try:
            top = split_base(build_job_base(job), job.cut)[1]
            trained = train_network(recipe, {name: (sets[name].features, sets[name].labels) for name in SCORED},
                                    top, echo=lambda line: echo(f"{job.label}  {line.strip()}"),
                                    label=f"{job.backbone} above {job.cut}")
            return trained.scores(sets["test"].labels, seed=seed)
        finally:
            top = trained = None  # noqa: F841 (dropped, so that release_keras can free them)
            release_keras()

    return store.memo("heads", _finetune_parts(job, {name: found.key for name, found in sets.items()}, seed), compute)
