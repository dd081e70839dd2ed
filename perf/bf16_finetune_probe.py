"""bf16 fine-tuning probe (issue 26's bf16 lever): seconds per training step of the final model's fine-tuned
part, DenseNet121 at 160 px above `pool3_pool` (conv4 + conv5, BatchNorm frozen, and the final model's MLP head
from `build_head`), batch 64 of random 10x10x256 maps, in fp32 and in Keras's `mixed_bfloat16`
(`build_base(precision="bf16")`). Speed only:
random weights and data, so it says nothing of accuracy. Each precision runs in its own process, alternating,
`REPEATS` times; each run times `STEPS` steps after `WARMUP` untimed ones and prints their median.

    PYTHONPATH=. python perf/bf16_finetune_probe.py

Output of 2026-12-05 (slow CPU, idle machine): docs/measured/final-issue26/bf16-probe.log.
"""
import subprocess
import sys
import time

import numpy as np

STEPS, WARMUP, REPEATS, BATCH = 20, 3, 2, 64


def one(precision: str) -> float:
    import keras

    import backbones
    from benchmark.core.finetune import split_base, unfreeze
    from benchmark.core.heads import build_head
    from benchmark.transfer.config import TransferConfig

    base = backbones.build_base("DenseNet121", 160, backbones.WeightsSource("random"), precision=precision)
    _, top = split_base(base, "pool3_pool")
    unfreeze(top)
    dim = top.output.shape[-1]  # the final model's head, float32 as there (the policy covers the base only)
    head = build_head(TransferConfig().head(), dim, mean=np.zeros(dim), variance=np.ones(dim))
    maps = keras.Input(top.input.shape[1:])
    model = keras.Model(maps, head(top(maps)))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, *top.input.shape[1:])).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, BATCH)]
    seconds = []
    for _ in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - t0)
    return float(np.median(seconds[WARMUP:]))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(f"{sys.argv[1]} median s/step {one(sys.argv[1]):.3f}", flush=True)
    else:
        for _ in range(REPEATS):
            for precision in ("fp32", "bf16"):
                subprocess.run([sys.executable, __file__, precision], check=True)
