#!/usr/bin/env bash
# The project's GPU checks in one run, for a GPU machine at hand for minutes (docs/performance.md):
#   1. the losses' Triton kernels compiled and tested on CUDA tensors against the PyTorch implementation, and the
#      benchmarks' launch counter and CUDA-event timer on the GPU;
#   2. tools/analysis_tools/benchmark_losses.py --device cuda at the distiller's size (B=2, C=19, 64x128), the
#      label size (2x19x512x1024), ADE20K's (2x150x512x512) and the Cityscapes training size: GPU and host time per
#      call from CUDA events, launches, GB/s against the measured copy bandwidth, torch.compile(naive); then a sweep
#      of the kernel's pixels per program and warps;
#   3. tools/analysis_tools/benchmark_distill_step.py on the reference config at 512x1024, batch 2 and 8, the teacher
#      in fp32 and in bf16 (and bf16 + channels_last), with the data-loader report;
#   4. tools/analysis_tools/benchmark_teacher_precision.py: how far the teacher's logits and the GDKD loss move in
#      bf16/fp16.
# Each step has a time limit and writes its log to OUT_DIR (default gpu_logs/); a failed step does not stop the
# others. Run from the repository root with the stack installed.
#
#   bash scripts/gpu_checks.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu_logs}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
config=configs/gdkd/deeplabv3_r101_to_r18_cityscapes.py

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local start
  start=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc, $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$out/summary.log"
  tail -n 40 "$out/$name.log"
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
} > "$out/summary.log" 2>&1
cat "$out/summary.log"

step kernel_tests 240 env TRITON_INTERPRET=0 python -m pytest tests/losses/test_kernels.py \
  tests/benchmark/test_launches.py -q -x -p no:cacheprovider -k '(triton and not hopper) or launches'
step benchmark_losses 300 python tools/analysis_tools/benchmark_losses.py --device cuda --repeats 20 \
  --sizes seg19b2,full19,ade150,city --launch-sweep 128x4 256x4 256x8 512x8
distill() {  # one distillation-step run per argument string, all into one log
  for extra in "$@"; do
    echo "### benchmark_distill_step.py $config --crop 512 1024 --repeats 10 $extra"
    # shellcheck disable=SC2086
    python tools/analysis_tools/benchmark_distill_step.py "$config" --crop 512 1024 --repeats 10 $extra || echo "FAILED: $extra"
  done
}
export -f distill
export config
step distill_step 420 bash -c 'distill "$@"' distill '--batch 2 --data-samples 20' \
  '--batch 2 --teacher-precision bf16 --skip-data' \
  '--batch 2 --teacher-precision bf16 --channels-last --skip-data' '--batch 8 --skip-data' \
  '--batch 8 --teacher-precision bf16 --channels-last --skip-data'
step teacher_precision 150 python tools/analysis_tools/benchmark_teacher_precision.py "$config" --crop 512 1024 --batch 8 --repeats 10
