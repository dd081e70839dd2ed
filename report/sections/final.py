"""The final model, from 0-transfer.py's transfer.json: what it trained, each stage's accuracy and cost
(its table), and its robustness to JPEG compression."""

from __future__ import annotations

from ..analysis import N_EXTRACT
from ..doc import Doc
from ..html import esc, table
from ..numbers import fixed, pct, thousands
from .front import final_regime


def final_model(doc: Doc) -> str:
    """The section; left out of another dataset's page (0-transfer.py's model answers CIFAR-10)."""
    t, figs = doc.transfer, doc.figs
    if not doc.is_cifar10:
        return ""
    if not t:
        return ("<h2>The final model</h2><p class=missing>Not in this results folder: copy the "
                "<code>transfer.json</code> and <code>transfer.npz</code> that <code>python 0-transfer.py</code> "
                "writes beside <code>cifar10.h5</code> into it to add this section.</p>")
    members = f", with {esc(', '.join(t['members']))} as ensemble members" if t.get("members") else ""
    members += (", averaging the probabilities of each image and its mirror image inside the saved model"
                if t.get("test_mirroring") else "")
    return (
        f"<h2>The final model</h2><p><code>0-transfer.py</code> trained {esc(t['backbone'])} at {esc(t['img_size'])} "
        f"px, {final_regime(t)}{members}, on {esc(t['n_train'])} training images, choosing on {esc(t['n_val'])} "
        f"validation images. The saved file, loaded back with <code>safe_mode</code> and scored through the "
        f"grader's <code>preprocess_data</code>, reaches <b>{pct(t['test_acc'])}%</b> on {esc(t['n_test'])} test "
        f"images (validation {pct(t['val_acc'])}%). It is {fixed(t['file_size_mib'])} MiB and takes "
        f"{fixed(t['inference_s_per_10000'])} s per {N_EXTRACT // 5} images on this CPU. "
        f"Table {doc.tables['final']} gives each stage; "
        f"{figs.ref('final_curves')} the training curves, {figs.ref('final_confusion')} its errors by class, and "
        f"{figs.ref('final_examples')} its predictions on test images.</p>"
        f"<p><b>Table {doc.tables['final']}.</b> Stages of the final model: validation and test accuracy (test "
        f"images scored on cached features, never used to choose), epochs, wall seconds and trained parameters.</p>"
        + _stages_table(t.get("stages", [])) + _jpeg_text(t) + figs.html("final_curves")
        + figs.html("final_confusion") + figs.body("final_examples"))


def _stages_table(stages: list[dict]) -> str:
    rows = []
    for stage in stages:
        rows.append(([esc(stage["stage"]) + (" (not kept)" if stage.get("kept") is False else ""),
                      pct(stage["val_acc"]), pct(stage["test_acc"]) if stage.get("test_acc") is not None else "–",
                      esc(stage["epochs"]) if stage.get("epochs") is not None else "–",
                      fixed(stage["wall_s"]) if stage.get("wall_s") is not None else "–",
                      thousands(stage["trainable_params"]) if stage.get("trainable_params") else "–"], False))
    return table(["stage", "val acc (%)", "test acc (%)", "epochs", "wall (s)", "trained params (k)"], rows)


def _jpeg_text(t: dict) -> str:
    """The test accuracy on JPEG re-encoded copies, and where the broken images go ("" for one quality)."""
    jpeg = t.get("jpeg_robustness") or {}
    if len(jpeg) <= 1:
        return ""
    parts = ", ".join(f"{esc(k.replace('_', ' '))} {pct(v)}%" for k, v in jpeg.items())
    lean = ("more than a point: stronger compression changes the model's answers. Whether it also "
            "leans on the artefacts of the quality-75 copy it was trained on cannot be told from re-encoding "
            "alone; that needs the original, lossless test images" if t["jpeg_spread"] > 0.01 else
            "within a point: the model does not lean on JPEG compression artefacts")
    return (f"<p><b>Robustness to compression.</b> The same test images, re-encoded as JPEG, give {parts}; "
            f"the spread is {pct(t['jpeg_spread'])} points, {lean}.</p>") + _shift_text(t.get("jpeg_shift"))


def _shift_text(shift: dict | None) -> str:
    """Where the images go that the strongest re-encoding breaks (transfer.json's jpeg_shift)."""
    if not shift or not shift.get("n_lost") or not shift.get("to_class_name"):
        return ""
    name = esc(shift["to_class_name"])
    before, after = shift["class_share_before"], shift["class_share_after"]
    moves = (f"rises from {pct(before)}% of all predictions to {pct(after)}%" if after > before else
             f"goes from {pct(before)}% of all predictions to {pct(after)}%")
    # at least 20 lost images, and twice the share a uniform spread over the nine wrong classes would give
    gathered = shift["n_lost"] >= 20 and shift["to_class_share"] >= 2 / 9 and after > before
    why = (f" The errors gather on one class more than a plain loss of detail would explain; one reading is "
           f"that the block artefacts of strong compression resemble texture the model learnt for {name}."
           if gathered else "")
    return (f"<p>At quality {esc(shift['quality'])}, {esc(shift['n_lost'])} test images that the model gets right go "
            f"wrong, and {esc(shift['n_gained'])} go the other way. {pct(shift['to_class_share'], 0)}% of the lost "
            f"ones are called {name}, and {name} {moves}.{why}</p>")
