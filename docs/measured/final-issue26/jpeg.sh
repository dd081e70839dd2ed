#!/bin/bash
# issue 26, lever "compression as augmentation": the new default plus --train-jpeg 30 95, on the cache of the default's cold run
cd /work/runs26
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs26/cache --output out/jpeg/cifar10.h5 --train-jpeg 30 95 --mirror off > out/jpeg-cold.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> out/jpeg-cold.log
