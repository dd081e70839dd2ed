#!/bin/bash
# issue 26, lever "schedule": 3 epochs with cosine decay, everything else the default
cd /work/runs26
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache --output out/cifar10.h5 --ft-epochs 3 --ft-schedule cosine > out/cold.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/cold.log
t1=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache --output out/cifar10.h5 --ft-epochs 3 --ft-schedule cosine > out/warm.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t1 ))" >> out/warm.log
