"""Weights files checked before any work: a bad file is one line naming it, not a traceback
from a worker after the data load."""

from __future__ import annotations

import backbones

from .keys import weights_parts
from .store import Store


class WeightsMismatch(ValueError):
    """A weights file that does not load into its backbone (the message names both and the fix)."""


def weights_problem(spec: backbones.BackboneSpec, weights: backbones.WeightsSource, store: Store) -> str | None:
    """None when `weights` is not a file, or a file that opens and fits `spec`; else one line naming
    the file, the backbone and the mismatch. A good verdict is remembered under the file's sha256."""
    if weights.kind != "file":
        return None
    try:
        store.memo("weights", weights_parts(spec.name, weights.identity), lambda: _check(spec, weights))
    except WeightsMismatch as err:
        return str(err)
    return None


def _check(spec: backbones.BackboneSpec, weights: backbones.WeightsSource) -> dict:
    import keras

    try:  # built at its smallest size, which is enough to load and match every weight
        backbones.build_base(spec.name, spec.min_size, weights, rewrite=False)
    except Exception as err:  # h5py, Keras and OS errors of many kinds
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise WeightsMismatch(f"weights file {weights.path} does not fit {spec.name} ({type(err).__name__}: "
                              f"{reason}); replace it with {spec.name}'s include_top=False weights (README: "
                              f"'Offline use')") from None
    finally:
        keras.backend.clear_session()
    return {"fits": True, "path": weights.path}
