#!/bin/bash
cd /work/runs26
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache > out/default-warm.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/default-warm.log
t1=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache --mirror on --jpeg-qualities --output out/mirror.h5 > out/mirror-on.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t1 ))" >> out/mirror-on.log
