#!/bin/bash
# issue 26, lever "test-time mirroring" measured on test: the 4-epoch default's network with --mirror on, from its cache
cd /work/runs27
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs27/cache --output outm/cifar10.h5 --ft-epochs 4 --ft-schedule cosine --mirror on > outm/mirror-on.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> outm/mirror-on.log
