#!/usr/bin/env bash
# Training on a Slurm cluster (MMSeg's tools/slurm_train.sh): one task per GPU, MMEngine's launcher='slurm'.
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] [PYTHON=python] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py flags]
# e.g. GPUS=16 tools/slurm_train.sh gpu gdkd configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py --work-dir work_dirs/gdkd
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

# SRUN_ARGS is split into words on purpose (several srun flags in one variable, as in MMSeg)
# shellcheck disable=SC2086
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "${PYTHON}" -u "$(dirname "$0")/train.py" "${CONFIG}" --launcher="slurm" "${@:4}"
