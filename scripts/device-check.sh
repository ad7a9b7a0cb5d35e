#!/usr/bin/env bash
# The GPU check of issue #14, for a bare GPU machine with CUDA, CMake, a compiler and Python with a
# CUDA PyTorch (whose package folder is a full libtorch), and no network: run from a copy of the
# working tree that carries .device/ (made here by scripts/device-bundle.sh: the Node binary and the
# node_modules it needs).
#   1. Node from .device/ (unless a Node >= 20 is on the PATH), node_modules from .device/;
#   2. the addon built against that PyTorch's libtorch (LIBTORCH = its torch package folder), with
#      NCCL when nccl.h is found (the nvidia-nccl wheel's), else without;
#   3. the GPU tests (test/gpu.test.ts; test/moco-parity.test.ts with MOCO_TEST_DEVICE=cuda), then a
#      subset of the CPU tests against that (2.x) PyTorch: the claim that the addon works from 1.13 to 2.x;
#   4. the GPU bench entries (ours vs PyTorch eager on the same GPU);
#   5. a report under $OUT (default ./device-report): report.md (versions, GPU, test counts, bench
#      table) and the logs.
# usage: bash scripts/device-check.sh [--no-bench] [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-report}
mkdir -p "$OUT"
REPORT="$OUT/report.md"
START=$(date +%s)
BENCH=1
CPU_TESTS=1
QUICK=""
for arg in "$@"; do
  case "$arg" in
    --no-bench) BENCH=0 ;;
    --no-cpu-tests) CPU_TESTS=0 ;;
    --quick) QUICK="--quick" ;;
    *) echo "device-check: unknown argument $arg" >&2; exit 2 ;;
  esac
done
say() { echo "$*" | tee -a "$REPORT"; }
stamp() { say "- [$(($(date +%s) - START)) s] $*"; }
: >"$REPORT"
say "# moco-ts device check, $(date -u +%Y-%m-%dT%H:%MZ)"

# ---- 1. Node and node_modules ------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  packed=$(ls .device/node-*.xz 2>/dev/null | head -1)
  [ -n "$packed" ] || { say "no Node on the PATH and no .device/node-*.xz: run scripts/device-bundle.sh first"; exit 1; }
  mkdir -p /tmp/moco-node/bin
  # xz where the image has it, else Python's lzma (the GPU image's Python is certain, xz-utils is not).
  if command -v xz >/dev/null 2>&1; then
    xz -T0 -dc "$packed" >/tmp/moco-node/bin/node
  else
    "${MOCO_PYTHON:-python3}" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$packed" /tmp/moco-node/bin/node
  fi
  chmod +x /tmp/moco-node/bin/node
  export PATH=/tmp/moco-node/bin:$PATH
fi
if [ ! -d node_modules/tsx ]; then
  [ -f .device/modules.tar.xz ] || { say "no node_modules and no .device/modules.tar.xz"; exit 1; }
  if command -v xz >/dev/null 2>&1; then
    xz -T0 -dc .device/modules.tar.xz | tar -xf -
  else
    "${MOCO_PYTHON:-python3}" -c 'import tarfile; tarfile.open(".device/modules.tar.xz").extractall()'
  fi
fi
stamp "node $(node --version) ready"

# ---- 2. versions and the build --------------------------------------------------------------------
PY=${MOCO_PYTHON:-python3}
export MOCO_PYTHON=$PY
TORCH_DIR=$($PY -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -d "$CUDA_HOME/bin" ] && export PATH=$CUDA_HOME/bin:$PATH
NVIDIA_DIR=$($PY -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
NCCL_H=$( { [ -n "$NVIDIA_DIR" ] && find "$NVIDIA_DIR" -name nccl.h 2>/dev/null; find "$CUDA_HOME" /usr/include -maxdepth 3 -name nccl.h 2>/dev/null; } | head -1)
[ -n "$NCCL_H" ] && export NCCL_INCLUDE_DIR=$(dirname "$NCCL_H")
{
  echo
  echo "## Machine"
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
  $PY -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else None, "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
  echo "libtorch: $TORCH_DIR"
  echo "nccl.h: ${NCCL_H:-not found}"
  (nvcc --version 2>/dev/null | tail -1) || echo "nvcc: none"
  cmake --version | head -1
  c++ --version | head -1
  echo "CPU: $(lscpu | sed -n 's/^Model name:\s*//p'), $(nproc) cores"
  echo '```'
} 2>&1 | tee -a "$REPORT"

if [ -d "$TORCH_DIR/share/cmake/Torch" ]; then
  export LIBTORCH=$TORCH_DIR
else
  say "($TORCH_DIR has no share/cmake/Torch: building against the system's libtorch)"
fi
build() {
  rm -rf native/build
  MOCO_BUILD_JOBS=$(nproc) node scripts/build-native.mjs >"$OUT/build.log" 2>&1
}
say
say "## Build"
if build; then
  stamp "addon built against ${LIBTORCH:-the system libtorch} (log: build.log)"
else
  stamp "build failed; retrying without NCCL (MOCO_NCCL=0)"
  cp "$OUT/build.log" "$OUT/build-nccl.log"
  if MOCO_NCCL=0 build; then
    stamp "built without NCCL (the NCCL attempt's log: build-nccl.log)"
  else
    stamp "build failed (build.log):"
    grep -E "error|Error" "$OUT/build.log" | head -30 | tee -a "$REPORT"
    exit 1
  fi
fi
grep -E "moco-ts: (with|without)" "$OUT/build.log" | sed 's/^/    /' | tee -a "$REPORT"
node --import tsx scripts/build-info.ts 2>&1 | sed 's/^/    build info: /' | tee -a "$REPORT"

# ---- 3. tests ----------------------------------------------------------------------------------
say
say "## Tests"
say "| test file | setting | pass | fail | skipped | seconds |"
say "| --- | --- | --- | --- | --- | --- |"
run_test() {  # file, label, env...
  local file=$1 label=$2
  shift 2
  local t0=$(date +%s)
  env "$@" timeout "${TEST_TIMEOUT:-300}" node --import tsx --test --test-concurrency=1 "$file" >>"$OUT/tests.log" 2>&1
  local rc=$?
  local pass fail skipped
  pass=$(tac "$OUT/tests.log" | grep -m1 '^# pass' | awk '{print $3}')
  fail=$(tac "$OUT/tests.log" | grep -m1 '^# fail' | awk '{print $3}')
  skipped=$(tac "$OUT/tests.log" | grep -m1 '^# skipped' | awk '{print $3}')
  [ $rc -eq 124 ] && fail="timeout"
  say "| $file | $label | ${pass:-?} | ${fail:-?} | ${skipped:-?} | $(($(date +%s) - t0)) |"
}
: >"$OUT/tests.log"
run_test test/gpu.test.ts "CUDA" MOCO_TEST_DEVICE=cuda
run_test test/moco-parity.test.ts "MoCo steps on cuda" MOCO_TEST_DEVICE=cuda
grep -E "^not ok|# Subtest|Error|expected|actual" "$OUT/tests.log" | grep -B2 -A6 "^not ok" | head -80 >"$OUT/failures.txt"

# ---- 4. bench ----------------------------------------------------------------------------------
if [ $BENCH -eq 1 ]; then
  say
  say "## Bench (ours vs PyTorch eager on the same GPU)"
  timeout 300 node --import tsx bench/index.ts gpu-moco-v2-r50 gpu-moco-cifar gpu-cifar-epoch $QUICK >"$OUT/bench.log" 2>&1
  stamp "bench exit $?"
  say '```'
  sed -n '/^entry /,$p' "$OUT/bench.log" | tee -a "$REPORT"
  say '```'
  latest=$(ls -t runs/bench-*.json 2>/dev/null | head -1)
  [ -n "$latest" ] && cp "$latest" "$OUT/bench.json"
fi

# ---- 5. the CPU tests against this (2.x) PyTorch: the build's claim of 1.13 to 2.x ---------------
if [ $CPU_TESTS -eq 1 ]; then
run_test test/grad-scaler.test.ts "CPU" MOCO_TEST_DEVICE=cpu
say
say "## CPU tests against this machine's PyTorch"
say "| test file | setting | pass | fail | skipped | seconds |"
say "| --- | --- | --- | --- | --- | --- |"
TEST_TIMEOUT=150
for f in test/autocast.test.ts test/ops-nn.test.ts test/serialize.test.ts test/moco-parity.test.ts test/optim-foreach.test.ts; do
  run_test "$f" "CPU, torch $($PY -c 'import torch; print(torch.__version__)')" MOCO_TEST_DEVICE=cpu
done
fi
grep -E "^not ok|# Subtest|Error|expected|actual" "$OUT/tests.log" | grep -B2 -A6 "^not ok" | head -80 >"$OUT/failures.txt"
stamp "done"
