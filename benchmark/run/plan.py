"""The sweep's work list, checked before anything runs."""

from __future__ import annotations

import backbones

from .config import RunConfig


def plan(config: RunConfig) -> list[tuple[backbones.BackboneSpec, int]]:
    """`(spec, img_size)` pairs in the order given, without repeats; raises on an unknown name or bad size."""
    pairs, seen = [], set()
    for name in config.backbones:
        spec = backbones.get(name)
        for img_size in config.img_sizes:
            pair = (spec.name, backbones.resolve_img_size(spec, img_size))
            if pair not in seen:
                seen.add(pair)
                pairs.append((spec, pair[1]))
    return pairs
