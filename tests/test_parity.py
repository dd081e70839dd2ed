"""End-to-end parity: the cached-feature path that trains and scores heads, and the saved
`cifar10.h5`-style model (Resizing and preprocessing as layers), predict the same on real images.

Extraction resizes with `tf.image.resize` and calls the backbone's own
`preprocess_input`; the saved model uses `keras.layers.Resizing` and stock
layers (`backbones.preprocessing_layers`), and the cached features are
float16. This test bounds what those differences do to the predictions.
"""

import numpy as np
import pytest

import backbones
from benchmark.core.data import Split
from benchmark.core.features import BackboneJob, ensure_features
from benchmark.core.heads import HeadConfig, fit_head
from benchmark.transfer.train import build_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# (backbone, img_size, real weights?): every preprocessing mode ("tf", "torch", "caffe", "builtin").
CASES = [("MobileNetV2", 96, True), ("MobileNet", 96, True), ("Xception", 96, True), ("DenseNet121", 96, True),
         ("VGG16", 48, False), ("EfficientNetB0", 48, False)]


@pytest.mark.parametrize("name, img_size, pretrained", CASES)
def test_cached_features_and_saved_model_agree(name, img_size, pretrained, real_cifar, weights_dir, tmp_path):
    import keras

    spec = backbones.get(name)
    weights = backbones.resolve_weights(name, weights_dir if pretrained else "random")
    assert weights.pretrained == pretrained
    splits = {"train": Split("train", real_cifar.x_train[:400], real_cifar.y_train[:400]),
              "test": Split("test", real_cifar.x_test[:200], real_cifar.y_test[:200])}
    base = backbones.build_base(name, img_size, weights)
    job = BackboneJob(name, img_size, weights, splits=("train", "test"), cache_dir=str(tmp_path / "cache"))
    sets = ensure_features(job, splits, base=base, echo=lambda *_: None)
    head = fit_head(HeadConfig(kind="linear", max_epochs=30), (sets["train"].features, splits["train"].y),
                    (sets["test"].features, splits["test"].y))[0]
    cached = head.predict(sets["test"].features.astype(np.float32), verbose=0)

    path = str(tmp_path / "model.h5")
    build_model(spec, img_size, base, head).save(path)
    keras.backend.clear_session()
    saved = keras.models.load_model(path, safe_mode=True).predict(splits["test"].x.astype(np.float32), verbose=0)

    max_abs = float(np.abs(cached - saved).max())
    agree = float((cached.argmax(1) == saved.argmax(1)).mean())
    print(f"\nparity {name} @{img_size}px ({'imagenet' if pretrained else 'random'} weights): max |p_cached - "
          f"p_saved| = {max_abs:.2e}, argmax agreement {agree:.3f} on 200 real test images")
    assert max_abs < 0.02 and agree >= 0.99
