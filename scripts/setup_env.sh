#!/usr/bin/env bash
# Creates .venv in the repo root and installs the pinned stack (requirements/pinned.txt) plus gdkd_seg in
# editable mode. Idempotent: a second run with unchanged requirements only checks a stamp file.
#
# Environment:
#   GDKD_WHEELHOUSE  extra folder(s) of prebuilt wheels (space separated), e.g. ../shared/wheels holding
#                    mmcv-2.1.0 built for torch 2.13.0; appended to pip's find-links, never replacing them.
#                    Default: ../shared/wheels when it exists.
#   TORCH_CPU_INDEX  where to get the CPU build of torch when none is installed and none lies in find-links
#                    (default: PyTorch's CPU wheel index).
#   PYTHON           interpreter for the venv (default: python3.11, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
TORCH_VERSION=2.13.0
TRITON_VERSION=3.9.0
STAMP="$VENV/.gdkd_seg_installed"

if [[ -z "${GDKD_WHEELHOUSE:-}" && -d "$ROOT/../shared/wheels" ]]; then
  GDKD_WHEELHOUSE="$ROOT/../shared/wheels"
fi
FIND_LINKS=()
for dir in ${GDKD_WHEELHOUSE:-}; do
  [[ -d "$dir" ]] && FIND_LINKS+=(--find-links "$(cd "$dir" && pwd)")
done

want=$(cat requirements/pinned.txt setup.py scripts/setup_env.sh | sha256sum | cut -c1-16)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "[setup_env] .venv is up to date"
  exit 0
fi

start=$(date +%s)
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
# Command-line --find-links add to the machine's configured find-links (pip merges them).
PIP_INSTALL=("${PIP[@]}" install --progress-bar off "${FIND_LINKS[@]}")

# 1. torch: keep whatever build is installed (users with GPUs install their CUDA torch first); otherwise take the
#    CPU build, from find-links when it lies there, else from PyTorch's CPU index, never PyPI's CUDA default.
torch_version() { "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null; }
if [[ -z "$(torch_version)" ]]; then
  if ! "${PIP_INSTALL[@]}" --no-index --no-deps "torch==${TORCH_VERSION}+cpu" 2>/dev/null \
     && ! "${PIP_INSTALL[@]}" --no-index --no-deps "torch==${TORCH_VERSION}" 2>/dev/null; then
    "${PIP_INSTALL[@]}" "torch==${TORCH_VERSION}+cpu" \
      --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
  fi
fi
TORCH_INSTALLED=$(torch_version)
# torch's own dependencies (sympy, networkx, ...) from the normal indexes; the installed torch stays
"${PIP_INSTALL[@]}" "torch==${TORCH_INSTALLED}"
CONSTRAINTS="$VENV/torch-constraint.txt"
echo "torch==${TORCH_INSTALLED}" > "$CONSTRAINTS"
# triton: the losses' GPU kernel. CUDA builds of torch bring the triton they were built with (kept); beside the CPU
# build it runs the kernel's tests through Triton's interpreter.
if ! "$VENV/bin/python" -c 'import triton' 2>/dev/null; then
  "${PIP_INSTALL[@]}" -c "$CONSTRAINTS" "triton==${TRITON_VERSION}"
fi

# 2. mmcv with compiled ops. A wheel from the wheelhouse when one matches; otherwise a source build against the
#    installed torch (--no-build-isolation: an isolated build would fetch another torch) with the setuptools it is
#    known to build with (< 70; its setup.py imports pkg_resources). Step 3 then pins the runtime setuptools.
"${PIP_INSTALL[@]}" -c "$CONSTRAINTS" "setuptools<70" wheel ninja packaging addict yapf pyyaml Pillow \
  "numpy==$(grep -E '^numpy==' requirements/pinned.txt | cut -d= -f3)" \
  "mmengine==$(grep -E '^mmengine==' requirements/pinned.txt | cut -d= -f3)"
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
  "${PIP_INSTALL[@]}" -c "$CONSTRAINTS" --no-build-isolation \
  "mmcv==$(grep -E '^mmcv==' requirements/pinned.txt | cut -d= -f3)"

# 3. the rest of the pinned stack and gdkd_seg itself (editable)
"${PIP_INSTALL[@]}" -c "$CONSTRAINTS" -r requirements/pinned.txt
"${PIP_INSTALL[@]}" -c "$CONSTRAINTS" --no-build-isolation --no-deps -e .

"$VENV/bin/python" -c "import gdkd_seg, mmcv.ops, mmseg.models, mmpretrain.models; print('[setup_env] stack OK')"
echo "$want" > "$STAMP"
echo "[setup_env] installed in $(( $(date +%s) - start )) s"
