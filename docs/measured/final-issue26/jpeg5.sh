#!/bin/bash
# issue 26, lever "compression as augmentation" on the 5-epoch default: --train-jpeg 30 95, everything else the default
# (mirroring off as in jpeg.sh); on the cache of the 3-epoch runs (plain and train-jpeg30-95 maps already extracted)
cd /work/runs29
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
python3 -c "from benchmark.core.flops import matmul_peak_gflops as m; print('matmul peak GFLOP/s', [round(m(),1) for _ in range(3)])" 2>/dev/null > out/jpeg5.log
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache --output out/jpeg5/cifar10.h5 --train-jpeg 30 95 --mirror off >> out/jpeg5.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/jpeg5.log
