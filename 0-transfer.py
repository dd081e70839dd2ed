#!/usr/bin/env python3
"""Transfer learning on CIFAR-10 from the benchmark's top-scoring ImageNet backbone.

Importing this file does nothing heavy; it only defines `preprocess_data`:

    preprocess_data = __import__('0-transfer').preprocess_data
    X_p, Y_p = preprocess_data(X, Y)          # X (m, 32, 32, 3) in 0..255, Y (m,) or (m, 1)
    model = keras.models.load_model('cifar10.h5')
    model.evaluate(X_p, Y_p, batch_size=128)

Running it (`python 0-transfer.py`, `--help` for the flags) trains and saves a
compiled `cifar10.h5` in the working directory, then loads it back and checks
it as above, also on the test images re-encoded as JPEG (`--jpeg-qualities`).
The backbone, its size and its regime are the benchmark's top scorer across
the frozen and fine-tuned regimes (DenseNet121 without results), at no less
than 160 px. The saved model is

    Input float32 (32, 32, 3), 0..255
      -> Resizing(img_size, img_size, bilinear)   the first layer scales the input up
      -> the backbone's preprocessing, as built-in layers (no Lambda: loads with safe_mode=True)
      -> base (trainable=False, include_top=False, average pooling); in the fine-tuned
         regime everything above the cut was trained on cached maps, mirrored and
         shifted at random (`--ft-shift`): for DenseNet121 the cut is pool3_pool,
         so conv4 and conv5 are fine-tuned (`--cut` picks another layer)
      -> head: Normalization -> Dense(hidden, relu) -> Dropout -> Dense(10, softmax)

wrapped, when it gains enough on the validation split (`--mirror auto`), in
test-time mirroring: the average over the image and its mirror image. One
network by default; `--ensemble NAME ...` adds head-only members, saved only
when they beat the single network by a point of validation accuracy. The
frozen base's outputs are computed once and cached, and so is every finished
step, so a rerun takes the model from the cache. The settings and their
measured defaults live in `benchmark/transfer/config.py`, the training in
`benchmark/transfer/`, the command line in `benchmark/cli/transfer.py`.
"""

import numpy as np

N_CLASSES = 10


def preprocess_data(X, Y):
    """Prepares CIFAR-10 arrays for the saved model.

    Args:
        X: numpy array (m, 32, 32, 3), uint8 or float, pixels in 0..255.
        Y: numpy array (m,) or (m, 1) of integer labels 0..9.

    Returns:
        `(X_p, Y_p)`: X_p float32 (m, 32, 32, 3) in 0..255 (the model does its
        own upscaling and preprocessing), Y_p one-hot float32 (m, 10).

    Raises:
        ValueError: naming the expected and actual shape or dtype.
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 4:
        raise ValueError(f"X must have shape (m, 32, 32, 3); got rank {X.ndim} with shape {X.shape}")
    if X.shape[1:] != (32, 32, 3):
        raise ValueError(f"X must have shape (m, 32, 32, 3); got {X.shape}")
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise ValueError(f"X must hold numbers (uint8 or float in 0..255); got dtype {X.dtype}")
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim != 1:
        raise ValueError(f"Y must have shape (m,) or (m, 1); got {Y.shape}")
    if len(Y) != len(X):
        raise ValueError(f"X and Y must have the same length; got {len(X)} images and {len(Y)} labels")
    if not np.issubdtype(Y.dtype, np.integer):
        if not np.issubdtype(Y.dtype, np.floating) or not np.all(np.mod(Y, 1) == 0):
            raise ValueError(f"Y must hold integer labels 0..9; got dtype {Y.dtype}")
    if len(Y) and (Y.min() < 0 or Y.max() >= N_CLASSES):
        raise ValueError(f"Y labels must be in 0..9; got values from {Y.min()} to {Y.max()}")
    X_p = X.astype(np.float32)
    if not np.isfinite(X_p).all():
        raise ValueError(f"X holds {np.size(X_p) - np.isfinite(X_p).sum()} NaN or infinite pixel values; "
                         f"pixels must be numbers in 0..255")
    if len(X_p) and (X_p.min() < 0 or X_p.max() > 255):
        raise ValueError(f"X pixels must be in 0..255; got values from {X_p.min()} to {X_p.max()}")
    dim = np.issubdtype(X.dtype, np.floating) and (X_p.reshape(len(X_p), -1).max(axis=1) <= 1.0).sum()
    if dim > max(5, len(X_p) // 100):  # a few all-black images are fine; 0..1 scaling is not
        raise ValueError(f"{dim} of {len(X_p)} float images have no pixel above 1.0: the model expects pixels "
                         f"in 0..255, not 0..1; pass the uint8 images or multiply by 255")
    return X_p, np.eye(N_CLASSES, dtype=np.float32)[Y.astype(np.int64)]


def main(argv=None) -> int:
    """`python 0-transfer.py [flags]`: train, save and check cifar10.h5 (see `--help`)."""
    from benchmark.cli.transfer import main as transfer_main

    return transfer_main(preprocess_data, argv)


if __name__ == "__main__":
    raise SystemExit(main())
