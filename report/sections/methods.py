"""The introduction, and materials and methods: data, backbones, regimes and heads, statistics, hardware."""

from __future__ import annotations

import pandas as pd

from ..doc import Doc
from ..html import box, esc
from ..numbers import fixed
from .front import data_name
from .references import cite


def introduction(doc: Doc) -> str:
    return "\n".join([
        "<h2>Introduction</h2>",
        "<p><i>Transfer learning</i> reuses a network trained on a large dataset (here ImageNet) for a new task. "
        "The cheapest form keeps the pretrained layers <i>frozen</i> and trains only a small head on their "
        "outputs; <i>fine-tuning</i> also trains some of the pretrained layers, at a low learning rate. Freezing "
        "keeps the small target dataset from destroying general features through large early gradients, cuts the "
        "training cost to the head, and lets the frozen outputs be computed once and cached. Keras Applications "
        f"{cite('keras')} provides the architectures compared here with ImageNet weights and a matching "
        "<code>preprocess_input</code> per model. Which of them transfers best is an empirical question: better "
        f"ImageNet models tend to transfer better, and the ranking differs between fixed features and fine-tuning "
        f"{cite('kornblith')}; on a CPU the cost of extraction matters as much as accuracy.</p>",
    ])


def methods(doc: Doc) -> str:
    return "\n".join([
        "<h2>Materials and methods</h2>",
        f"<h3>Data</h3><p>{_data_text(doc)}</p>",
        f"<h3>Backbones, preprocessing and {'upscaling' if _upscaled(doc) else 'resizing'}</h3>",
        "<p>Each backbone is built with <code>include_top=False</code> and global average pooling, and fed "
        f"{_stored_images(doc)} (bilinear) to the input size, then passed through the model's own "
        "<code>preprocess_input</code>. Resizing and preprocessing run inside the same TensorFlow graph as the "
        "base, batch by batch. Throughput excludes the first (warm-up) batch. Backbones without pretrained "
        "weights on the machine are timed with random weights, which does not change their speed, and get no "
        "accuracy. ConvNeXt's depthwise convolutions, which Keras writes as grouped convolutions (slow on CPU), "
        f"are run as the equivalent depthwise layers. {_engine_text(doc)}{timing_note(doc.frame)}</p>",
        f"<h3>Regimes and heads</h3>{_regime_text(doc)}<p>{_head_text(doc.env.get('heads', {}))}</p>",
        "<h3>Statistics</h3><p>Test accuracy is reported with a percentile bootstrap 95% interval "
        f"{cite('bootstrap')}; per-class accuracy with a Wilson interval {cite('wilson')}. Two rows are compared on "
        f"the same test images with the exact McNemar test {cite('mcnemar')}. Rows are ranked by validation "
        "accuracy; test accuracy is never used to choose.</p>",
        f"<h3>Hardware and software</h3>{_hardware_box(doc.env)}{_mixed_hardware(doc.frame)}",
    ])


def _data_text(doc: Doc) -> str:
    n_train, n_val, n_test = doc.split_sizes
    sets = ("the official training set", "the official test set") if doc.is_cifar10 else \
        ("its training split", "its test split")
    text = (f"{_dataset(doc)}: {n_train} training, {n_val} validation and {n_test} test images, stratified "
            f"and seeded (seed {int(doc.env.get('config', {}).get('seed', 0))}); the validation images are held out "
            f"of {sets[0]} and the test images come from {sets[1]}." if n_train else f"{_dataset(doc)}.")
    skipped = doc.dataset.get("n_skipped")
    if skipped:
        text += (f" {esc(skipped)} of its image files could not be decoded and were left out "
                 f"(<code>--bad-images skip</code>).")
    if doc.is_cifar10 and doc.env.get("data_lossy_jpeg"):
        text += (" <b>This run used a lossy JPEG copy of CIFAR-10</b> (quality-75 JPEGs of the original "
                 "images); accuracies on the original, lossless images will differ (see Limitations).")
    return text


def _dataset(doc: Doc) -> str:
    """The dataset, cited, or named with its classes, the folder or file it was read from and its image size."""
    d = doc.dataset
    source = f", read from <code>{esc(d['source'])}</code>" if d.get("source") else ""
    size = f", images stored at {esc(d['img_size'])}×{esc(d['img_size'])} px" if d.get("img_size") else ""
    names = list(d.get("class_names") or [])
    if names and not doc.is_cifar10:  # a user's classes, named (the first dozen: a long list says little more)
        shown = ", ".join(esc(n) for n in names[:12])
        source = f": {shown}{f' and {len(names) - 12} more' if len(names) > 12 else ''}" + source.replace(",", ";", 1)
    return data_name(doc, source + size)


def _stored_images(doc: Doc) -> str:
    """The dataset's stored images and what resizing does to them, e.g. "CIFAR-10's 32×32 images upscaled"."""
    size = doc.dataset.get("img_size")
    verb = "upscaled" if _upscaled(doc) else "resized"
    return f"{esc(doc.data)}'s {esc(size)}×{esc(size)} images {verb}" if size else f"{esc(doc.data)}'s images {verb}"


def _upscaled(doc: Doc) -> bool:
    """Whether every input size is at least the stored images' size (CIFAR-10's 32 px always is)."""
    size = doc.dataset.get("img_size")
    return bool(size) and all(s >= size for s in doc.sizes)


def _engine_text(doc: Doc) -> str:
    names = {"fp32": "float32", "bf16": "bfloat16 (Keras mixed_bfloat16, float32 weights)"}
    text = ("Computation is in " + " and ".join(names.get(p) or esc(p) for p in sorted(set(doc.frame["precision"]
                                                                                             .dropna()))) + ".")
    if doc.env.get("config", {}).get("isolate"):
        text += (" Each backbone is built and extracted in a fresh process, so its peak memory and timing do not "
                 "carry over from the backbones before it.")
    return text


def _span(values) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def timing_note(frame: pd.DataFrame) -> str:
    """How many images the random-weight and the pretrained backbones were timed on ("" unless both)."""
    random = frame.loc[frame["weights"] == "random", "images_timed"].dropna()
    scored = frame.loc[frame["weights"] == "imagenet", "images_timed"].dropna()
    if not (len(random) and len(scored)):
        return ""
    return (f" Backbones with random weights were timed on {_span(random)} images after a warm-up batch, the "
            f"pretrained ones on the {_span(scored)} images they extracted (warm-up excluded), so the former are "
            f"noisier.")


def _head_text(heads: dict) -> str:
    if not heads:
        return ""
    lin, mlp = heads.get("linear", {}), heads.get("mlp", {})
    return (f"Two heads are trained on the standardised cached features: a linear softmax layer, and an MLP with "
            f"{esc(mlp.get('hidden'))} ReLU units and dropout {esc(mlp.get('dropout'))}. Both use Adam (learning rate "
            f"{esc(lin.get('learning_rate'))}, batch {esc(lin.get('batch_size'))}) for at most "
            f"{esc(lin.get('max_epochs'))} epochs with early stopping on validation accuracy (patience "
            f"{esc(lin.get('patience'))}), keeping the best weights.")


def _regime_text(doc: Doc) -> str:
    text = "<p><b>Frozen.</b> The heads above are trained on the frozen base's pooled features.</p>"
    if not doc.has_finetune:
        return text
    ft = doc.env.get("finetune") or {}
    return text + (
        f"<p><b>Fine-tuned.</b> Each base is cut at the input of its last stage (the registry's "
        f"<code>finetune_cut</code>, e.g. DenseNet's conv5 block or Xception's exit flow). The maps below the "
        f"cut are extracted once and cached; an MLP head is trained on the frozen features, then the last "
        f"stage and the head are trained together on the cached maps, mirrored at random, with BatchNorm "
        f"statistics frozen, Adam at learning rate {esc(ft.get('learning_rate'))}, label smoothing "
        f"{esc(ft.get('label_smoothing'))}, at most {esc(ft.get('epochs'))} epochs with early stopping on "
        f"validation accuracy (patience {esc(ft.get('patience'))}). This is the CPU-sized form of the "
        f"fine-tuning regime of Kornblith et al. {cite('kornblith')}, who train every layer.</p>")


def _hardware_box(env: dict) -> str:
    peak = (env.get("statistics") or {}).get("matmul_peak_median")
    flags = env.get("isa_flags")
    return box([
        ("CPU", f"{esc(env.get('cpu_model', 'not recorded'))}, {esc(env.get('cpu_count', '?'))} cores"
                + (f"; GPU {esc(', '.join(env['gpus']))}" if env.get("gpus") else "; no GPU")),
        ("ISA flags", esc(" ".join(flags)) + (" (no AMX)" if not any(f.startswith("amx") for f in flags) else "")
         if flags else "not recorded by this run"),
        ("RAM", f"{fixed(env['ram_gib'])} GiB" if env.get("ram_gib") else "not recorded by this run"),
        ("fp32 matmul peak", f"{fixed(peak)} GFLOP/s (median over the rows; tf.matmul, measured in each run)"
         if peak else "not measured"),
        ("Software", f"Python {esc(env.get('python'))}, TensorFlow {esc(env.get('tensorflow'))}, Keras "
                     f"{esc(env.get('keras'))}, NumPy {esc(env.get('numpy'))}, pandas {esc(env.get('pandas'))}"),
        ("Date, commit", f"{esc(str(env.get('date', ''))[:10])}, git {esc(env.get('git_sha'))}"),
    ])


def _mixed_hardware(frame: pd.DataFrame) -> str:
    """A warning when the rows were extracted on more than one device (a cluster sweep)."""
    devices = sorted(frame["device"].dropna().unique())
    if len(devices) < 2:
        return ""
    hosts = sorted(frame["host"].dropna().unique())
    return (f"<p><b>Mixed hardware.</b> These rows were extracted on {len(hosts)} hosts with different devices "
            f"({esc('; '.join(devices))}). Throughputs, GFLOP/s and % of peak are each measured against the device "
            f"that did the work (see the host and device columns), so speeds from different devices are not "
            f"comparable with each other on one axis.</p>")
