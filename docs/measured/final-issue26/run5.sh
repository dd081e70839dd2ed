#!/bin/bash
# issue 26, lever "schedule length": 5 epochs with cosine decay (default: 4), everything else the default; empty cache
cd /work/runs28
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
python3 -c "from benchmark.core.flops import matmul_peak_gflops as m; print('matmul peak GFLOP/s', [round(m(),1) for _ in range(3)])" 2>/dev/null > out/cold5.log
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs28/cache --output out/cifar10.h5 --ft-epochs 5 --ft-schedule cosine >> out/cold5.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/cold5.log
t1=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs28/cache --output out/cifar10.h5 --ft-epochs 5 --ft-schedule cosine > out/warm5.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t1 ))" >> out/warm5.log
