"""Extraction throughput of one backbone under one engine setting, in a fresh process.

TensorFlow reads its thread counts and `TF_ENABLE_ONEDNN_OPTS` once, at start-up,
so each setting needs its own process:

    python perf/engine_probe.py ResNet50 224 128              # TF's default threads
    python perf/engine_probe.py ResNet50 224 128 2 1          # intra-op 2, inter-op 1
    TF_ENABLE_ONEDNN_OPTS=0 python perf/engine_probe.py ResNet50 224 128
    PRECISION=bf16 python perf/engine_probe.py ResNet50 224 128

Prints the median and range of images/s over 3 passes of N images (batch 32,
random weights and inputs, one untimed warm-up batch).
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> None:
    import keras
    import tensorflow as tf

    name, size, n = argv[0], int(argv[1]), int(argv[2])
    if len(argv) > 3:
        tf.config.threading.set_intra_op_parallelism_threads(int(argv[3]))
        tf.config.threading.set_inter_op_parallelism_threads(int(argv[4]))
    if os.environ.get("PRECISION") == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    model = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(size, size, 3),
                                              pooling="avg")
    step = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((32, size, size, 3))
    step(x)
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n // 32):
            step(x).numpy()
        rates.append(n // 32 * 32 / (time.perf_counter() - t0))
    print(f"{name}@{size} oneDNN={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')} "
          f"precision={os.environ.get('PRECISION', 'fp32')} threads={argv[3:5] or 'default'}: "
          f"median {statistics.median(rates):.1f} img/s, range {min(rates):.1f}-{max(rates):.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
