#!/bin/bash
# issue 26, lever "bf16 fine-tuning": the 5-epoch default plus --ft-precision bf16, on the 5-epoch default's cold-run
# cache (its plain maps); --mirror off and no JPEG checks to fit the session (the test accuracy only)
cd /work/runs30
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
python3 -c "from benchmark.core.flops import matmul_peak_gflops as m; print('matmul peak GFLOP/s', [round(m(),1) for _ in range(3)])" 2>/dev/null > out/bf16.log
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs28/cache --output out/bf16/cifar10.h5 --ft-precision bf16 --mirror off --jpeg-qualities >> out/bf16.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/bf16.log
