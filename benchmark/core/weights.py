"""Weights files checked before any work: a bad file is one line naming it, not a traceback
from a worker after the data load."""

from __future__ import annotations

import os

import backbones

from .atomic import write_text
from .store import Store


def weights_problem(spec: backbones.BackboneSpec, weights: backbones.WeightsSource, store: Store) -> str | None:
    """None when `weights` is not a file, or a file that opens and fits `spec`; else one line naming
    the file, the backbone and the mismatch. A good verdict is cached under the file's sha256."""
    if weights.kind != "file":
        return None
    marker = os.path.join(store.root, "weights-ok", f"{spec.name}-{weights.identity}.ok")
    if os.path.exists(marker):
        return None
    import keras

    try:  # built at its smallest size, which is enough to load and match every weight
        backbones.build_base(spec.name, spec.min_size, weights, rewrite=False)
    except Exception as err:  # h5py, Keras and OS errors of many kinds
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        return (f"weights file {weights.path} does not fit {spec.name} ({type(err).__name__}: {reason}); "
                f"replace it with {spec.name}'s include_top=False weights (README: 'Offline use')")
    finally:
        keras.backend.clear_session()
    write_text(marker, "ok\n")
    return None
