#!/usr/bin/env bash
# The GPU check of issue #13 in one command, on a machine with an NVIDIA GPU:
#
#     bash bench/gpu_check.sh [FIGURES]     # FIGURES: default bench/results/gpu_check.txt
#
# 1. bench/gpu_levers.py --device cuda: the captured step's levers on JANet-50, vae_mlp, conv_same
#    and the U-Net (MNIST): steps per replay K = 1, 4, 16, K = 1 in bf16 (TrainConfig.precision),
#    and for the conv models NCHW against channels-last and cudnn.benchmark, and for conv_same a
#    plain script's step and a compiled one; each variant's final
#    loss, and a torch.profiler table of one JANet, one vae_mlp and one conv_same epoch, and one
#    conv_same epoch in bf16 (top kernels by GPU time, host against GPU time). First: it is what
#    the next change needs, and it is short.
# 2. bench/speed.py --device cuda on the same four models: the step captured as CUDA graphs, in
#    float32 and in bf16, against eager training, our command line and the tutorial pipeline, on
#    the same data in the same run, with the H100 targets; then a few small runs one at a time
#    against all at once (the job manager's GPU workers).
# 3. bench/click.py: the app's default Train configuration from click to test results.
# 4. The unit and app tests with every model on the GPU (AECORE_TEST_DEVICE=cuda, see
#    tests/conftest.py), the CUDA-graph tests (tests/unit/test_cudagraph.py) included, spread over
#    processes with pytest-xdist where it is installed. The browser tests drive Chromium, not the
#    GPU, and are left out.
# 5. The 30-session load test (tests/load/test_load.py) with the server training on the GPU.
# Everything printed also goes to FIGURES, headed by the GPU, torch and CUDA versions, with each
# part's wall seconds. Exit status: 0 only if every part passed in time.
# Budget: about 9 minutes; each part has a limit in seconds, 650 in all (GPU_CHECK_LEVERS_S 120,
# GPU_CHECK_BENCH_S 200, GPU_CHECK_CLICK_S 40, GPU_CHECK_TESTS_S 210, GPU_CHECK_LOAD_S 80).
# Measured on an H200 with 16 cores (bench/measured/gpu_check-h200-bf16.txt): the levers 54 s,
# the bench 178 s, the click 13 s, the load test 47 s; the tests, given 8 processes instead of 15
# and 180 s, had passed 1305 (none failed) when the limit stopped them (with 15: all of them in
# 132 s, bench/measured/gpu_check-h200.txt). About 8 minutes with the packages' install. The
# levers start no variant after 60 s and save their JSON after each one; since that run they
# also time conv_same's plain and compiled steps (a compile: tens of seconds).
# GPU_CHECK_PARTS (default "levers bench click tests load") runs only the parts it names, and
# GPU_CHECK_TESTS the test paths of part 4 (default "tests/unit tests/app"), for a second look
# within one lease: for example GPU_CHECK_PARTS="bench load".
# Packages carried to a machine that lacks them (Streamlit, Plotly, websockets, pytest-xdist):
# install them with `pip install --target DIR` and put DIR on PYTHONPATH.
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
py="${PYTHON:-python3}"  # the interpreter that has torch (python3 on the lent GPU machines)

"$py" - <<'PY' 2>&1 | tee -a "$figures"
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
    "$py" -c "from tests.datafiles import write_idx_dataset as w; \
w('$data', 'MNIST', n_train=60000, n_test=10000)" || exit 1
fi
export AECORE_DATA_DIR="$data"

parts=" ${GPU_CHECK_PARTS:-levers bench click tests load} "
wanted() { [[ "$parts" == *" $1 "* ]]; }

# part NAME LIMIT COMMAND...: run COMMAND with a time limit, its output into FIGURES. At the limit
# it gets SIGINT first (pytest then still prints its summary of failures), SIGKILL 20 s later.
part() {
    local name="$1" limit="$2"
    shift 2
    say "== $name"
    local t0=$SECONDS
    timeout -s INT -k 20 "$limit" "$@" 2>&1 | tee -a "$figures"
    local rc=${PIPESTATUS[0]}
    say "$name: exit $rc in $((SECONDS - t0)) s$([ "$rc" -eq 124 ] && echo ' (over the time limit)')"
    [ "$rc" -eq 0 ] || status=1
}

if wanted levers; then
    part "1. bench/gpu_levers.py --device cuda" "${GPU_CHECK_LEVERS_S:-120}" \
        "$py" -m bench.gpu_levers --device cuda --out "$tmp/gpu-levers.json"
    [ -f "$tmp/gpu-levers.json" ] && { say "-- gpu-levers.json"; cat "$tmp/gpu-levers.json" >> "$figures"; }
fi

if wanted bench; then
    AECORE_RUNS_DIR="$tmp/runs" part "2. bench/speed.py --device cuda" "${GPU_CHECK_BENCH_S:-200}" \
        "$py" -m bench.speed --device cuda --models janet vae_mlp conv_same unet --epochs 3 \
        --conv-epochs 2 --out "$tmp/speed-cuda.json"
    [ -f "$tmp/speed-cuda.json" ] && { say "-- speed-cuda.json"; cat "$tmp/speed-cuda.json" >> "$figures"; }
fi

if wanted click; then
    part "3. bench/click.py --device cuda" "${GPU_CHECK_CLICK_S:-40}" \
        "$py" -m bench.click --device cuda --out "$tmp/click.json"
    [ -f "$tmp/click.json" ] && cat "$tmp/click.json" >> "$figures"
fi

if wanted tests; then
    spread=()
    "$py" -c "import xdist" 2>/dev/null && spread=(-n "${GPU_CHECK_PROCESSES:-15}" --dist loadfile)
    # Two OpenMP threads per test process, as on the 2-core CI machine: 15 processes with a
    # thread per core each would fight over the 16 cores.
    OMP_NUM_THREADS=2 AECORE_TEST_DEVICE=cuda part "4. unit and app tests on cuda" \
        "${GPU_CHECK_TESTS_S:-210}" "$py" -m pytest ${GPU_CHECK_TESTS:-tests/unit tests/app} -q \
        -rfE --tb=short -p no:cacheprovider --durations=10 "${spread[@]}"
fi

if wanted load; then
    if "$py" -c "import streamlit, websockets" 2>/dev/null; then
        part "5. the 30-session load test, the server on the GPU" "${GPU_CHECK_LOAD_S:-80}" \
            "$py" -m pytest tests/load/test_load.py -q -s -p no:cacheprovider
    else
        say "== 5. the load test: skipped (no streamlit or websockets here)"; status=1
    fi
fi

say "gpu_check: $([ "$status" -eq 0 ] && echo passed || echo FAILED); figures in $figures"
exit "$status"
