"""The grader's check of a saved model file, and its robustness to JPEG re-encoding, each memoised.

An evaluation runs exactly the grader's steps: load the file with
`safe_mode=True`, `preprocess_data`, then the model's predictions. Accuracy
is the share of argmax predictions equal to the label, which is what
`evaluate`'s "accuracy" computes for this model (a test checks it);
predicting instead keeps the predictions for the report at no extra cost.
The result is a store record ("evaluations") under the file's sha256 and
the images' fingerprint, so an unchanged file is not evaluated twice.
"""

from __future__ import annotations

import time

import numpy as np

import backbones

from ..core.data import CLASSES, Split, jpeg_copy
from ..core.keys import evaluation_parts
from ..core.metrics import prediction_shift
from ..core.progress import format_duration
from ..core.store import Store


def evaluate(path: str, test: Split, preprocess_data, store: Store, recheck: bool = False,
             quality: int | None = None, echo=print) -> dict:
    """The grader's steps on the model file at `path`, on `test` or on it re-encoded at JPEG `quality`.

    Returns:
        `{"accuracy", "loss", "n_images", "seconds", "predictions"}`, from the
        store when this exact file was evaluated on these images (`recheck`
        evaluates again).
    """
    what = "the test images" if quality is None else f"the test images re-encoded as JPEG quality {quality}"

    def compute() -> dict:
        import keras

        echo(f"Checking: load {path} and evaluate on {len(test)} of {what} end to end ...")
        keras.backend.clear_session()
        loaded = keras.models.load_model(path, safe_mode=True)
        X_p, Y_p = preprocess_data(test.x if quality is None else jpeg_copy(test.x, quality), test.y)
        t0 = time.perf_counter()
        probs = np.asarray(loaded.predict(X_p, batch_size=128, verbose=0), np.float64)
        seconds = time.perf_counter() - t0
        predicted, Y_p = probs.argmax(axis=1), np.asarray(Y_p)
        acc = float(np.mean(predicted == Y_p.argmax(axis=1)))
        loss = float(-np.mean(np.sum(Y_p * np.log(np.clip(probs, 1e-7, 1.0)), axis=1)))
        echo(f"  accuracy {acc:.4f} (loss {loss:.4f}; {len(test)} images in {format_duration(seconds)})")
        return {"accuracy": acc, "loss": loss, "n_images": len(test), "seconds": round(seconds, 2),
                "predictions": predicted.astype(int).tolist()}

    def hit(found: dict) -> None:
        echo(f"Evaluation of this exact file on {what} from the cache: accuracy {found['accuracy']:.4f} "
             f"(--recheck evaluates again).")

    parts = evaluation_parts(backbones.sha256_file(path), test.fingerprint, quality)
    return store.memo("evaluations", parts, compute, on_hit=hit, refresh=recheck)


def jpeg_robustness(path: str, test: Split, plain: dict, qualities, preprocess_data, store: Store,
                    recheck: bool = False, echo=print) -> tuple[dict, dict | None]:
    """`(accuracies, shift)`: accuracy on the plain images and at each JPEG quality, and, at the strongest
    compression, where the images it breaks go (`metrics.prediction_shift`, with the class's name)."""
    accuracies, shift = {"plain": plain["accuracy"]}, None
    for quality in sorted(qualities):
        found = evaluate(path, test, preprocess_data, store, recheck, quality, echo)
        accuracies[f"quality_{quality}"] = found["accuracy"]
        if shift is None:
            shift = {"quality": quality, **prediction_shift(test.y, plain["predictions"], found["predictions"])}
            shift["to_class_name"] = CLASSES[shift["to_class"]] if shift["to_class"] is not None else None
    if len(accuracies) > 1:
        spread = max(accuracies.values()) - min(accuracies.values())
        echo("JPEG robustness: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracies.items())
             + f"; spread {spread:.4f}" + (" (over a point: the model may lean on compression artefacts)"
                                           if spread > 0.01 else ""))
    if shift and shift["to_class"] is not None:
        name = shift["to_class_name"]
        echo(f"  at quality {shift['quality']}: {shift['n_lost']} test images go from right to wrong "
             f"({shift['n_gained']} the other way); {shift['to_class_share']:.0%} of them are called {name} "
             f"({name}: {shift['class_share_before']:.1%} of all predictions on the plain images, "
             f"{shift['class_share_after']:.1%} at quality {shift['quality']})")
    return accuracies, shift
