#!/usr/bin/env bash
# The GPU check of issue #13 in one command, on a machine with an NVIDIA GPU:
#
#     bash bench/gpu_check.sh [FIGURES]     # FIGURES: default bench/results/gpu_check.txt
#
# 1. The unit and app tests with every model on the GPU (AECORE_TEST_DEVICE=cuda, see
#    tests/conftest.py), the CUDA-graph tests (tests/unit/test_cudagraph.py) included. The browser
#    tests drive Chromium, not the GPU, and are left out.
# 2. bench/speed.py --device cuda on JANet-50 and conv_same (MNIST): the step captured as CUDA
#    graphs against eager training and against the tutorial pipeline, on the same data in the
#    same run, with the H100 targets of the captured step; then a few small runs one at a time
#    against all at once (the job manager's GPU workers).
# Everything printed also goes to FIGURES, headed by the GPU, torch and CUDA versions, with each
# part's wall seconds. Exit status: 0 only if every test passed and both parts ran in time.
# Budget: under 5 minutes; each part has a limit (GPU_CHECK_TESTS_S, default 200 s;
# GPU_CHECK_BENCH_S, default 90 s).
# MNIST comes from AECORE_DATA_DIR, else ../shared/data; else MNIST-sized synthetic data in
# MNIST's format is written to a temp folder (the timings hold; the test losses are not MNIST's).
set -uo pipefail
cd "$(dirname "$0")/.."

figures="${1:-bench/results/gpu_check.txt}"
mkdir -p "$(dirname "$figures")"
: > "$figures"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say() { echo "$@" | tee -a "$figures"; }
status=0

python - <<'PY' 2>&1 | tee -a "$figures"
import torch
assert torch.cuda.is_available(), "no CUDA GPU: this check needs one"
p = torch.cuda.get_device_properties(0)
print(f"gpu_check: {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}")
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

data="${AECORE_DATA_DIR:-../shared/data}"
if [ ! -f "$data/MNIST/raw/train-images-idx3-ubyte" ]; then
    data="$tmp/data"
    say "no MNIST in AECORE_DATA_DIR or ../shared/data: synthetic MNIST-sized data in $data"
    python -c "from tests.datafiles import write_idx_dataset as w; \
w('$data', 'MNIST', n_train=60000, n_test=10000)" || exit 1
fi
export AECORE_DATA_DIR="$data"

say "== 1. unit and app tests on cuda"
t0=$SECONDS
AECORE_TEST_DEVICE=cuda timeout "${GPU_CHECK_TESTS_S:-200}" \
    python -m pytest tests/unit tests/app -q -p no:cacheprovider --durations=10 2>&1 \
    | tee -a "$figures"
rc=${PIPESTATUS[0]}
say "tests: exit $rc in $((SECONDS - t0)) s$([ "$rc" -eq 124 ] && echo ' (over the time limit)')"
[ "$rc" -eq 0 ] || status=1

say "== 2. bench/speed.py --device cuda"
t0=$SECONDS
AECORE_RUNS_DIR="$tmp/runs" timeout "${GPU_CHECK_BENCH_S:-90}" \
    python -m bench.speed --device cuda --models janet conv_same --epochs 2 --conv-epochs 2 \
    --out "$tmp/speed-cuda.json" 2>&1 | tee -a "$figures"
rc=${PIPESTATUS[0]}
say "bench: exit $rc in $((SECONDS - t0)) s$([ "$rc" -eq 124 ] && echo ' (over the time limit)')"
[ "$rc" -eq 0 ] || status=1
[ -f "$tmp/speed-cuda.json" ] && { say "-- speed-cuda.json"; cat "$tmp/speed-cuda.json" >> "$figures"; }

say "gpu_check: $([ "$status" -eq 0 ] && echo passed || echo FAILED); figures in $figures"
exit "$status"
