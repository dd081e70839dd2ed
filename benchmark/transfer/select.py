"""Which backbone the final model trains on, at which input size, and in which regime."""

from __future__ import annotations

import backbones

from ..core.results import DEFAULT_DATASET, load_results, of_dataset, top_scorer
from .config import FALLBACK_BACKBONE, FALLBACK_REGIME, FINAL_CUTS, FINAL_IMG_SIZE

def final_cut(spec: backbones.BackboneSpec) -> str | None:
    """Where the final model fine-tunes `spec`: a measured deeper cut, else the registry's."""
    return FINAL_CUTS.get(spec.name, spec.finetune_cut)


def choose_backbone(results_dir: str, backbone: str | None = None, img_size: int | str | None = None,
                    echo=print) -> tuple[str, int, str]:
    """`(name, img_size, regime)`: the overrides, else the results' top scorer, else the fallback.

    The top scorer is `benchmark.core.results.top_scorer`, the rule the report
    uses too, across both regimes; the final model is trained in its regime
    ("finetune": the upper stages too; "frozen": the head only). It is
    trained at its scored size or FINAL_IMG_SIZE, whichever is larger: the
    benchmark's quick default scores at 128 px. An override (`backbone`,
    at `img_size` or FINAL_IMG_SIZE) and the fallback fine-tune.

    Raises:
        ValueError: when the results hold no row with pretrained weights and an accuracy.
    """
    if backbone:
        spec = backbones.get(backbone)
        chosen = backbones.resolve_img_size(spec, img_size or FINAL_IMG_SIZE)
        echo(f"Backbone {spec.name} at {chosen} px: chosen with --backbone/--size.")
        return spec.name, chosen, FALLBACK_REGIME
    try:
        frame = load_results(results_dir)
    except FileNotFoundError:
        chosen = backbones.resolve_img_size(backbones.get(FALLBACK_BACKBONE), img_size or FINAL_IMG_SIZE)
        echo(f"No benchmark results in {results_dir}/: using the default, {FALLBACK_BACKBONE} at {chosen} px "
             f"(the best pretrained backbone measured here; run `python -m benchmark` to choose from data).")
        return FALLBACK_BACKBONE, chosen, FALLBACK_REGIME
    others = sorted(set(frame["dataset"]) - {DEFAULT_DATASET})
    frame = of_dataset(frame, DEFAULT_DATASET)  # the final model answers CIFAR-10: other datasets' rows never choose
    if frame.empty and others:
        raise ValueError(f"{results_dir}/results.csv holds rows of {', '.join(others)} only; 0-transfer.py trains a "
                         f"CIFAR-10 model from CIFAR-10 rows: run `python -m benchmark` without --data into that "
                         f"folder, pass another --results, or pass --backbone")
    best = top_scorer(frame)
    if best is None:
        raise ValueError(f"{results_dir}/results.csv has no rows with pretrained weights and an accuracy; "
                         f"run the benchmark with weights, or pass --backbone")
    spec = backbones.get(best["model"])
    scored_at = int(best["img_size"])
    chosen = max(scored_at, FINAL_IMG_SIZE) if img_size is None else backbones.resolve_img_size(spec, img_size)
    n_scored = int(((frame["weights"] == "imagenet") & frame["val_acc"].notna()).sum())
    regime = best.get("regime") or "frozen"
    echo(f"Backbone {spec.name} at {chosen} px, {regime} regime: the top scorer in {results_dir}/results.csv "
         f"(validation accuracy {best['val_acc']:.4f} with the {best['head']} head at {scored_at} px, "
         f"best of {n_scored} rows with pretrained weights)"
         f"{f'; trained at {chosen} px, the smallest size for the final model' if chosen > scored_at else ''}.")
    return spec.name, chosen, regime
