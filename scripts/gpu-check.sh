#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU, with a `--features cuda` binary built
# elsewhere (scripts/gpu-bundle.sh on a machine without a GPU). Designed to finish in < 8 minutes:
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
# 3. `mspinn gpu-check`: GPU against CPU on fresh random inputs: jets, residual, loss, gradient and
#    ‖K_uu‖_F of the 4×40 Darcy PINN through candle, and through the GPU engine (`gpu:` rows:
#    loss, gradient, residuals, Jacobian rows, ‖K_uu‖_F, one LM step, θ after 10 Adam steps on
#    the device) against its host backend; 1e-10 relative in f64, 1e-4 in f32; a PASS/FAIL table
#    and $OUT/gpu-check.json;
# 4. `mspinn bench --device cuda`: the CPU engine beside the GPU engine (Adam step, dense K_uu,
#    LM iteration, gemm peak; ratio and crossover N_c), then the GPU alone at N_c = 10⁶ (Gram,
#    Adam step); every table also as $OUT/bench-*/bench.json;
# 5. JAX-jit's Adam step on the same card, when JAX with a GPU backend is importable (else a
#    message);
# 6. prints the timing tables last. Exits non-zero when the check failed or could not run.
#
# Environment: MSPINN_BIN (the binary), OUT (where the results go; default a fresh temporary
# folder), GPU_CHECK_ARGS (extra gpu-check options, e.g. --seed 7), BENCH_ARGS (extra options of
# the CPU-beside-GPU bench), CHECK_TIMEOUT, BENCH_TIMEOUT, BENCH_LARGE_TIMEOUT (seconds; 120, 150
# and 80 by default; with JAX's 4 × 25 s the worst case is 450 s), PYTHON (for JAX).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# $OUT is the device tool's folder that comes back; elsewhere a fresh temporary one.
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/mspinn-gpu-check.XXXXXX")}"
mkdir -p "$OUT"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-120}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-150}"
BENCH_LARGE_TIMEOUT="${BENCH_LARGE_TIMEOUT:-80}"
start=$(date +%s)

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - start)) s"; }

# scripts/gpu-bundle.sh carries the binary compressed: unpack it (xz, or Python's lzma where the
# machine has no xz) next to the results.
if [[ -z "${1:-}" && -z "${MSPINN_BIN:-}" && -f "$ROOT/gpu-bundle/mspinn.xz" && ! -x "$ROOT/gpu-bundle/mspinn" ]]; then
    if command -v xz >/dev/null; then
        xz -d -c "$ROOT/gpu-bundle/mspinn.xz" >"$ROOT/gpu-bundle/mspinn"
    else
        "${PYTHON:-python3}" -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], "wb") as g: shutil.copyfileobj(f, g)' \
            "$ROOT/gpu-bundle/mspinn.xz" "$ROOT/gpu-bundle/mspinn"
    fi
    chmod +x "$ROOT/gpu-bundle/mspinn"
fi

find_binary() {
    local c
    for c in "${1:-}" "${MSPINN_BIN:-}" "$ROOT/gpu-bundle/mspinn" "$ROOT/target/release/mspinn" \
        "${CARGO_TARGET_DIR:-/nonexistent}/release/mspinn" \
        "$HOME/.cache/mspinn/target-cuda/release/mspinn"; do
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
"$BIN" info | tee "$OUT/info.txt"
if grep -q "cuda=no" "$OUT/info.txt"; then
    echo "gpu-check.sh: $BIN was built without the cuda feature (scripts/gpu-bundle.sh builds one)" >&2
    exit 2
fi

say "gpu-check (GPU vs CPU, fresh random inputs) [$(elapsed)]"
# shellcheck disable=SC2086 # GPU_CHECK_ARGS is a list of options
timeout "$CHECK_TIMEOUT" "$BIN" gpu-check --device cuda --json "$OUT/gpu-check.json" ${GPU_CHECK_ARGS:-} 2>&1 |
    tee "$OUT/gpu-check.txt"
check=${PIPESTATUS[0]}

# The timing tables: mspinn's CPU engine against the GPU engine (bench --device cuda puts the CPU
# beside the GPU and prints the ratio and the crossover N_c), then the GPU alone at the sizes the
# CPU would take minutes over (the Gram at N_c = 10⁶).
bench() { # name timeout args...
    local name=$1 limit=$2
    shift 2
    say "bench $name: $* (at most $limit s) [$(elapsed)]"
    timeout "$limit" "$BIN" bench "$@" --out "$OUT/bench-$name" >"$OUT/bench-$name.txt" 2>"$OUT/bench-$name.err"
    local rc=$?
    tail -n 3 "$OUT/bench-$name.err"
    [[ $rc -eq 0 ]] || echo "bench $name exited $rc (124: hit the $limit s limit)"
}
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
bench cpu-gpu "$BENCH_TIMEOUT" --device cuda --only gemm,adam,dense,lm --reps 3 ${BENCH_ARGS:-}
bench gpu-large "$BENCH_LARGE_TIMEOUT" --device cuda --alone --only gram,adam --dtype f64,f32 \
    --gram-sizes 1048576 --sizes 1048576 --reps 3

# JAX-jit on the same card, when JAX with CUDA is importable here (bench/peers/jax_bench.py: the
# same PINN, loss checked against mspinn's before timing).
PY="${PYTHON:-python3}"
if "$PY" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 1)' 2>/dev/null; then
    for dt in f32 f64; do
        for nc in 65536 1048576; do
            say "JAX adam $dt N_c=$nc [$(elapsed)]"
            timeout 25 "$PY" "$ROOT/bench/peers/jax_bench.py" --measure adam --dtype "$dt" --nc "$nc" \
                --reps 5 >>"$OUT/jax.jsonl" 2>>"$OUT/jax.err" || echo "jax_bench exited $?"
            tail -n 1 "$OUT/jax.jsonl" 2>/dev/null
        done
    done
else
    say "JAX: not importable with a GPU backend here; the JAX column is skipped"
fi

say "timings [$(elapsed) in all]"
grep -E '^gpu-check: (f32|f64) all quantities' "$OUT/gpu-check.txt" || true
for name in cpu-gpu gpu-large; do
    echo "--- mspinn bench $name"
    cat "$OUT/bench-$name.txt" 2>/dev/null
done
[[ -s "$OUT/jax.jsonl" ]] && { echo "--- JAX (bench/peers/jax_bench.py)"; cat "$OUT/jax.jsonl"; }
echo
if [[ $check -eq 0 ]]; then
    echo "gpu-check.sh: PASS (outputs in $OUT)"
else
    why="exited $check"
    [[ $check -eq 124 ]] && why="timed out"
    echo "gpu-check.sh: FAIL: mspinn gpu-check $why; outputs in $OUT"
fi
exit "$check"
