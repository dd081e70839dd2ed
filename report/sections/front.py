"""The title, the other datasets of the folder, the top picture and the abstract."""

from __future__ import annotations

import shlex

from ..doc import Doc
from ..html import esc
from ..load import label
from ..numbers import fixed, pct
from .references import cite


def title(doc: Doc) -> str:
    return "\n".join(s for s in [
        f"<h1>Which ImageNet backbone for {esc(doc.data)}? Frozen and fine-tuned Keras Applications on one CPU</h1>",
        f"<p class=authors>{esc(doc.author)}</p>",
        _other_datasets(doc),
        doc.figs.html(doc.figs.top),
    ] if s)


def _other_datasets(doc: Doc) -> str:
    """One sentence naming the folder's other datasets and the command that builds each one's page ("" when
    the folder holds this dataset's rows only)."""
    others = doc.env.get("other_datasets") or []
    if not others:
        return ""
    folder = shlex.quote(doc.results.results_dir)
    commands = [f"<code>{esc(f'python -m report --results {folder} --dataset {shlex.quote(name)}')}</code>"
                for name in others]
    return (f"<p class=muted>This page covers {esc(doc.data)} only; the results folder also holds rows of "
            f"{_and([esc(label(name)) for name in others])}, whose {'page' if len(others) == 1 else 'pages'} "
            f"{_and(commands)} {'builds' if len(others) == 1 else 'build'}.</p>")


def _and(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def data_name(doc: Doc, more: str = "") -> str:
    """The dataset as a sentence introduces it: CIFAR-10 with its citation, another with its number of classes
    and `more` (already escaped) in parentheses."""
    if doc.is_cifar10:
        return f"CIFAR-10 {cite('cifar')}"
    return f"{esc(doc.data)} ({esc(doc.dataset['n_classes'])} classes{more})"


def headline(doc: Doc) -> str:
    """The top scorer and its test accuracy, in one sentence ("" without a scored row)."""
    top = doc.top
    if top is None:
        return ""
    return (f"By validation accuracy the top scorer is <b>{esc(top['model'])}</b> at {int(top['img_size'])} px "
            f"({esc(top['regime'])} regime, {esc(top['head'])} head): {pct(top['test_acc'])}% test accuracy (95% CI "
            f"{pct(top['test_ci_low'])}–{pct(top['test_ci_high'])}%).")


def final_regime(t: dict) -> str:
    """How transfer.json's model was trained: fine-tuned above its cut (with the learning rate's decay, the
    JPEG-compressed training copies and bfloat16 compute when used), or a head on the frozen base."""
    regime = "fine-tuned above " + esc(t["cut"]) if t.get("cut") else "a head on the frozen base"
    if (t.get("fine_tune_settings") or {}).get("schedule") == "cosine":
        regime += " with a cosine decay of the learning rate"
    band = ((t.get("settings") or {}).get("training") or {}).get("train_jpeg")
    if band:
        regime += f" and JPEG-re-encoded copies (qualities {esc(band[0])}-{esc(band[1])}) of the training images"
    if (t.get("fine_tune_settings") or {}).get("precision") == "bf16":
        regime += " (fine-tuning computed in bfloat16)"
    return regime


def abstract(doc: Doc) -> str:
    test, stats = doc.stats.get("mcnemar"), doc.stats
    distinguishable = ("" if not test else
                       " It is not distinguishable from the runner-up on the same test images (exact McNemar test)."
                       if test["p"] >= stats["threshold"] else
                       " Its lead over the runner-up is significant (exact McNemar test).")
    fastest = doc.timed.sort_values("samples_per_sec", ascending=False).iloc[0] if not doc.timed.empty else None
    fastest_txt = (f" The fastest extractor is {esc(fastest['model'])} at {int(fastest['img_size'])} px, "
                   f"{fixed(fastest['samples_per_sec'])} images/s." if fastest is not None else "")
    return "\n".join(["<h2>Abstract</h2>", f"<p class=abstract>{_scale(doc)} {headline(doc)}{distinguishable}"
                                           f"{fastest_txt}{_final_result(doc)}</p>"])


def _scale(doc: Doc) -> str:
    """What was timed and what was scored."""
    frame, n_train, n_val, n_test = doc.frame, *doc.split_sizes
    sizes = ", ".join(str(s) for s in doc.sizes)
    timed = (f"We time {frame['model'].nunique()} ImageNet backbones from Keras Applications {cite('keras')} as "
             f"feature extractors for {data_name(doc)} on one {esc(doc.env.get('cpu_count', '?'))}-core CPU, "
             f"at {sizes} px.")
    if not doc.scored["model"].nunique():
        return (f"{timed} None of them was scored in this run (no pretrained weights, or timing only), so no "
                f"accuracy is reported.")
    scored_sizes = sorted({int(s) for s in frame.loc[frame["val_acc"].notna(), "img_size"]})
    n = len(doc.pretrained)
    return (f"{timed} Only {n} of them had ImageNet weights on this machine ({esc(', '.join(doc.pretrained))}); "
            f"those {n} are scored, at {', '.join(str(s) for s in scored_sizes)} px, on a stratified subset of "
            f"{n_train} training, {n_val} validation and {n_test} test images"
            + (", as frozen feature extractors and with their last stage fine-tuned" if doc.has_finetune else
               ", as frozen feature extractors") + ". The others are timed with random weights and have no accuracy.")


def _final_result(doc: Doc) -> str:
    """The final model's result, from transfer.json ("" without one)."""
    t = doc.transfer
    if not t:
        return ""
    return (f" The final model that <code>0-transfer.py</code> trained, {esc(t['backbone'])} at "
            f"{esc(t['img_size'])} px, {final_regime(t)}, reaches <b>{pct(t['test_acc'])}%</b> test accuracy on "
            f"{esc(t['n_test'])} test images.")
