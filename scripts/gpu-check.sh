#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU, with a `--features cuda` binary built
# elsewhere (scripts/build-cuda.sh on a machine without a GPU). Designed to finish in < 5 minutes:
#
#   scripts/gpu-check.sh [path/to/mspinn]      # or MSPINN_BIN=...; default: see find_binary below
#
# 1. prints the device (nvidia-smi);
# 2. makes sure the binary's CUDA 13 libraries load: the binary records libcuda.so.1 (the
#    driver's), libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudart.so.13 and
#    libnvrtc.so.13; where the loader does not find one (`ldd`: "not found"), the folders of the
#    copies on the machine (e.g. a PyTorch install's nvidia/*/lib) go on LD_LIBRARY_PATH. The
#    link-time stubs of scripts/install-cuda-toolchain.sh are never used here: they would shadow
#    the real driver;
# 3. `mspinn gpu-check`: GPU against CPU on fresh random inputs (jets, residual, loss, gradient,
#    ‖K_uu‖_F of the 4×40 Darcy PINN, and the GPU engine's step — cuBLAS and engine.cu — against
#    its host backend: step-loss, step-grad; 1e-10 relative in f64, 1e-4 in f32), a PASS/FAIL table;
# 4. `mspinn bench --device cuda` and `--device cpu`, when this binary has a bench command;
# 5. prints the timing tables last. Exits non-zero when the check failed or could not run.
#
# Environment: MSPINN_BIN (the binary), GPU_CHECK_ARGS (extra gpu-check options, e.g. --seed 7),
# BENCH_ARGS (extra bench options), BENCH_TIMEOUT (seconds per bench run, default 100).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/mspinn-gpu-check.XXXXXX")"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-100}"
start=$(date +%s)

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - start)) s"; }

find_binary() {
    local c
    for c in "${1:-}" "${MSPINN_BIN:-}" "$ROOT/target/release/mspinn" \
        "${CARGO_TARGET_DIR:-/nonexistent}/release/mspinn" "$HOME/.cache/mspinn/target-cuda/release/mspinn"; do
        [[ -n "$c" && -x "$c" ]] && { echo "$c"; return 0; }
    done
    return 1
}
BIN="$(find_binary "${1:-}")" || {
    echo "gpu-check.sh: no mspinn binary: pass its path or set MSPINN_BIN (build it with scripts/build-cuda.sh)" >&2
    exit 2
}

say "device"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total,memory.used --format=csv
    nvidia-smi | sed -n '1,4p'
else
    echo "nvidia-smi not found: no NVIDIA driver on this machine?"
fi
echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"

say "CUDA libraries"
# The stub folder must never be on the run-time path.
if [[ "${LD_LIBRARY_PATH:-}" == *link-stubs* ]]; then
    echo "LD_LIBRARY_PATH contains the link-time stubs; removing them"
    LD_LIBRARY_PATH="$(tr ':' '\n' <<<"$LD_LIBRARY_PATH" | grep -v link-stubs | paste -sd: -)"
    export LD_LIBRARY_PATH
fi
missing() { ldd "$BIN" 2>/dev/null | awk '/not found/ { print $1 }'; }
want="$(missing | grep -v '^libcuda\.so\.1$' || true)" # libcuda.so.1 is the driver's: not searched for
if [[ -n "$want" ]]; then
    echo "not found by the loader: $(paste -sd' ' - <<<"$want"); searching the file system"
    names=()
    for lib in $want; do names+=(-o -name "$lib*"); done
    # One pass over the whole file system (other mounts included: a container's libraries may sit
    # on one), skipping /proc and /sys and the link-time stubs.
    hits="$(find / \( -path /proc -o -path /sys \) -prune -o \( -false "${names[@]}" \) -print 2>/dev/null |
        grep -v link-stubs || true)"
    for lib in $want; do
        found="$(grep -m1 "/$lib" <<<"$hits" || true)"
        if [[ -n "$found" ]]; then
            dir="$(dirname "$found")"
            echo "$lib: using $dir"
            case ":${LD_LIBRARY_PATH:-}:" in *":$dir:"*) ;; *) export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
        fi
    done
fi
if [[ -n "$(missing)" ]]; then
    echo "still not found by the loader: $(missing | paste -sd' ' -)"
    echo "gpu-check.sh: the binary cannot start here; install the CUDA 13 runtime libraries" \
        "(cuBLAS, cuRAND, NVRTC, cudart) or put their folders on LD_LIBRARY_PATH" >&2
    exit 3
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
"$BIN" info

say "gpu-check (GPU vs CPU, fresh random inputs) [$(elapsed)]"
# shellcheck disable=SC2086 # GPU_CHECK_ARGS is a list of options
timeout 240 "$BIN" gpu-check --device cuda ${GPU_CHECK_ARGS:-} 2>&1 | tee "$OUT/gpu-check.txt"
check=${PIPESTATUS[0]}

have_bench=0
if "$BIN" bench --help >/dev/null 2>&1; then
    have_bench=1
    for dev in cuda cpu; do
        say "bench --device $dev (at most $BENCH_TIMEOUT s) [$(elapsed)]"
        # shellcheck disable=SC2086
        timeout "$BENCH_TIMEOUT" "$BIN" bench --device "$dev" ${BENCH_ARGS:-} >"$OUT/bench-$dev.txt" 2>"$OUT/bench-$dev.err"
        rc=$?
        tail -n 3 "$OUT/bench-$dev.err"
        [[ $rc -eq 0 ]] || echo "bench --device $dev exited $rc (124: hit the $BENCH_TIMEOUT s limit)"
    done
else
    say "bench: this binary has no bench command; skipped"
fi

say "timings [$(elapsed) in all]"
grep -E '^gpu-check: (f32|f64) all quantities' "$OUT/gpu-check.txt" || true
if [[ $have_bench -eq 1 ]]; then
    for dev in cuda cpu; do
        echo "--- mspinn bench --device $dev"
        cat "$OUT/bench-$dev.txt"
    done
fi
echo
if [[ $check -eq 0 ]]; then
    echo "gpu-check.sh: PASS (outputs in $OUT)"
else
    why="exited $check"
    [[ $check -eq 124 ]] && why="timed out"
    echo "gpu-check.sh: FAIL: mspinn gpu-check $why; outputs in $OUT"
fi
exit "$check"
