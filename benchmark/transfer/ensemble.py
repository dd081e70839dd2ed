"""Head-only ensemble members added to the main network, weighted on the validation split.

Each member is a frozen base with an MLP head trained on its cached
features. All branches share the main model's first `Resizing` layer, their
probabilities are added with greedy validation-chosen weights and
renormalised, and the file still holds only built-in layers.
"""

from __future__ import annotations

import numpy as np

import backbones

from ..core.features import build_job_base
from ..core.finetune import pooled_features, split_base, trainable_params
from ..core.metrics import accuracy
from ..core.networks import Recipe, train_network
from .train import Transfer, compiled

# The measured gain of members is beside `config.ENSEMBLE_MIN_GAIN`, the bar they must clear.


def parse_member(text: str, img_size: int) -> str:
    """`Name` or `Name@img_size` -> a registry name; the size must be the main model's."""
    name, _, at = text.partition("@")
    spec = backbones.get(name)
    if at and at != str(img_size):
        raise ValueError(f"--ensemble {text}: members share the model's first Resizing layer, so they run at "
                         f"{img_size} px like the main backbone; pass {spec.name} or {spec.name}@{img_size}")
    return spec.name


def train_member(t: Transfer, name: str, weights_from: str | None, echo=print):
    """`(branch, val_probs)`: `branch` maps upscaled images (img_size, img_size, 3) in 0..255 to probabilities."""
    import keras

    spec = backbones.get(name)
    weights = backbones.resolve_weights(spec.name, weights_from)
    if not weights.pretrained:
        raise ValueError(f"no pretrained weights for ensemble member {spec.name}: put {spec.weights_filename} "
                         f"in the weights folder")
    job = t.job(spec.name, weights)
    base = build_job_base(job)
    sets = t.features(job, base, echo)
    c = t.config
    trained = train_network(Recipe(head=c.head(), label_smoothing=c.label_smoothing, seed=c.seed),
                            {name: (found.features, found.labels) for name, found in sets.items()},
                            echo=lambda *_: None)
    head = trained.head
    probs = head.predict(sets["val"].features.astype(np.float32), verbose=0)
    echo(f"  member {spec.name}: head {trained.stages[0]['epochs']} epochs in {trained.stages[0]['wall_s']:.0f}s, "
         f"validation accuracy {accuracy(probs, t.val.y):.4f}")
    inputs = keras.Input((t.img_size, t.img_size, 3), name=f"{spec.name.lower()}_input")
    x = inputs
    for layer in backbones.preprocessing_layers(spec):
        x = layer(x)
    return keras.Model(inputs, head(base(x, training=False)), name=f"member_{spec.name.lower()}"), probs


def main_val_probs(t: Transfer, single, echo=print) -> np.ndarray:
    """Validation probabilities of the saved main network, through its cached features or maps."""
    import keras

    base = next(layer for layer in single.layers if isinstance(layer, keras.Model))
    head = single.layers[-1]
    val = t.features(t.job(cut=t.cut, splits=("val",)), base, echo)["val"].features
    if t.cut:
        return head.predict(pooled_features(split_base(base, t.cut)[1], val), verbose=0)
    return head.predict(val.astype(np.float32), verbose=0)


def choose_weights(main_probs, member_probs, y, grid=(0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float]:
    """Greedy per-member weights for `main + sum(w_i * member_i)`, best validation accuracy first."""
    total, weights = main_probs.copy(), []
    for probs in member_probs:
        scores = [accuracy(total + w * probs, y) for w in grid]
        w = grid[int(np.argmax(scores))]  # ties go to the smaller weight
        weights.append(float(w))
        total = total + w * probs
    return weights


def build_ensemble(single, branches, weights):
    """`single`'s layers plus weighted member branches on the same upscaled input, renormalised."""
    import keras

    inputs = keras.Input((32, 32, 3), name="cifar10_image")
    upscale = single.get_layer(backbones.UPSCALE_LAYER)
    upscaled = x = upscale(inputs)
    for layer in single.layers[single.layers.index(upscale) + 1:]:  # the main chain, in order
        x = layer(x)
    terms = [x] + [keras.layers.Rescaling(w, name=f"weight_{b.name}")(b(upscaled))
                   for b, w in zip(branches, weights) if w > 0]
    total = 1.0 + sum(w for w in weights if w > 0)
    outputs = keras.layers.Rescaling(1.0 / total, name="average")(keras.layers.Add(name="sum")(terms)) \
        if len(terms) > 1 else x
    return compiled(keras.Model(inputs, outputs, name=f"{single.name}_ensemble"))


def add_members(t: Transfer, single, members: list[str], weights_from: str | None, echo=print):
    """`(ensemble, val_acc, stage)`: the main network `single` with `members` added, and the
    ensemble's stage record for transfer.json (members, their weights, validation accuracies)."""
    import time

    t0 = time.perf_counter()
    echo(f"Ensemble: adding {', '.join(members)} at {t.img_size} px ...")
    main_probs = main_val_probs(t, single, echo)
    trained = [train_member(t, m, weights_from, echo) for m in members]
    member_weights = choose_weights(main_probs, [p for _, p in trained], t.val.y)
    combined = main_probs + sum(w * p for w, (_, p) in zip(member_weights, trained))
    val_acc = accuracy(combined, t.val.y)
    echo(f"  weights (chosen on the validation split): {t.spec.name} 1.0, "
         + ", ".join(f"{m} {w:g}" for m, w in zip(members, member_weights))
         + f"; validation accuracy {val_acc:.4f} (main model alone {accuracy(main_probs, t.val.y):.4f})")
    ensemble = build_ensemble(single, [b for b, _ in trained], member_weights)
    stage = {"stage": "ensemble", "val_acc": val_acc, "wall_s": round(time.perf_counter() - t0, 1),
             "main_val_acc": accuracy(main_probs, t.val.y),
             "members": [{"model": m, "weight": w, "val_acc": accuracy(p, t.val.y)}
                         for m, w, (_, p) in zip(members, member_weights, trained)],
             "trainable_params": trainable_params(*(b.layers[-1] for b, _ in trained))}
    return ensemble, val_acc, stage
