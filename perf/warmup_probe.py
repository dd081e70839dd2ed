"""Warm-up probe: the first batch's seconds, and the 4 timed batches after it, when the warm-up batch has 32
images (the runner's) or 2. Each model is built fresh for each of 4 alternating trials, at 128 px, random weights.

    PYTHONPATH=. python perf/warmup_probe.py MobileNetV3Small ResNet50 ConvNeXtTiny EfficientNetB0

Output of 2026-12-03 (slow CPU, idle machine): docs/measured/overhead/warmup-probe.log.
"""
import time, sys, numpy as np
import backbones, keras
from benchmark.core.extract import make_extractor
rng = np.random.default_rng(0)
imgs = rng.integers(0, 255, (32*5, 32, 32, 3), dtype=np.uint8)
for name in sys.argv[1:]:
    for warm in (32, 2, 32, 2):
        keras.backend.clear_session()
        base = backbones.build_base(name, 128, backbones.WeightsSource("random"))
        f = make_extractor(base, backbones.get(name), 128)
        t = time.perf_counter(); f(imgs[:warm]); tw = time.perf_counter() - t
        ts = []
        for b in range(1, 5):
            t = time.perf_counter(); f(imgs[32*b:32*(b+1)]); ts.append(time.perf_counter() - t)
        print(f"{name} warm={warm:2d} warm_s={tw:.2f} batches_s=" + " ".join(f"{x:.3f}" for x in ts), flush=True)
