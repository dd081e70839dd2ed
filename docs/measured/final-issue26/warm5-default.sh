#!/bin/bash
# issue 26: the plain default command (5 cosine epochs since this commit) on the 5-epoch cold run's cache, from the repo root
export CIFAR10_DIR=/tmp/cifar/cifar-10-batches-py BACKBONE_WEIGHTS_DIR=/work/shared/assets/weights TF_CPP_MIN_LOG_LEVEL=2
t0=$(date +%s)
python3 0-transfer.py --results docs/measured --cache-dir /work/runs28/cache > default5-warm.log 2>&1
echo "rc $? wall_s $(( $(date +%s) - t0 ))" >> default5-warm.log
