#!/usr/bin/env bash
# Builds the `cuda` feature (release) on a machine with no GPU, as CI does after the tests so the GPU
# path never rots. Installs the toolchain first (idempotent, seconds when already there).
#
#   scripts/build-cuda.sh            # -> $CARGO_TARGET_DIR/release/mspinn (or the cache folder below)
#
# The target folder defaults to a cache OUTSIDE the clone ($HOME/.cache/mspinn/target-cuda): a
# clean build is ~20 min on 2 cores, 15 of them candle-kernels' build script (nvcc on ~30 .cu
# files), and a kept target folder makes the next CI run incremental. The environment comes from
# the install script's env.sh and nothing else, because any change to CUDA_COMPUTE_CAP, NVCC_CCBIN,
# CUDA_HOME or RUSTFLAGS reruns that build script or recompiles everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mspinn/target-cuda}"
DIR="${MSPINN_CUDA_DIR:-$HOME/.cache/mspinn/cuda-13.0}"

scripts/install-cuda-toolchain.sh >/dev/null
# shellcheck source=/dev/null
source "$DIR/env.sh"

start=$(date +%s)
cargo build --release --locked --features cuda "$@"
bin="$CARGO_TARGET_DIR/release/mspinn"
echo "build-cuda: built $bin in $(($(date +%s) - start)) s (target folder $CARGO_TARGET_DIR)"
# The binary must record the CUDA libraries it needs (bound at load time on the GPU machine).
if command -v readelf >/dev/null; then
    needed="$(readelf -d "$bin" | grep NEEDED || true)"
    for lib in libcuda.so.1 libcublas.so.13 libcurand.so.10 libcudart.so.13; do
        grep -q "\[$lib\]" <<<"$needed" || { echo "build-cuda: error: $bin does not need $lib" >&2; exit 1; }
    done
fi
