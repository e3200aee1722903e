#!/usr/bin/env bash
# Installs what `cargo build --release --features cuda` needs on a machine WITHOUT a GPU, a driver
# or a system CUDA toolkit, and writes `env.sh` to source before that build. Idempotent: a second
# run checks what is there and only redoes what is missing.
#
#   scripts/install-cuda-toolchain.sh          # installs into ${MSPINN_CUDA_DIR:-$HOME/.cache/mspinn/cuda-13.0}
#   source "$HOME/.cache/mspinn/cuda-13.0/env.sh"
#   cargo build --release --features cuda
#
# Why each step (facts measured on this project's 2-core build machines, see shared/notes):
#
# 1. Five pinned CUDA 13.0 wheels from PyPI, `pip install --no-deps --target`:
#    - nvidia-cuda-nvcc: nvcc itself, which candle-kernels' build script runs to make PTX and a
#      static sm_90 library;
#    - nvidia-nvvm: `cicc`, the device front end nvcc calls;
#    - nvidia-cuda-crt: `crt/host_config.h`, included by every .cu file;
#    - nvidia-cuda-runtime: `cuda_runtime.h` and `libcudart.so.13` (candle-kernels links -lcudart);
#    - nvidia-cuda-cccl: `nv/target` and the CUB/Thrust headers candle's kernels include.
#    `--no-deps` because nvidia-cuda-nvcc declares unpinned dependencies that would pull 13.5 parts,
#    and a 13.5 nvcc emits PTX that the GPU machines' driver 580 (CUDA 13.0) may refuse to JIT.
#    Everything lands in DIR/nvidia/cu13/{bin,include,lib,nvvm}, which works as CUDA_HOME.
# 2. `libcudart.so -> libcudart.so.13`: the wheel ships only the versioned file, and the linker's
#    `-lcudart` looks for the unversioned name.
# 3. Link-time stubs in DIR/link-stubs: candle-core 0.11.1 turns on cudarc's `dynamic-linking`, so
#    the final link wants -lcuda -lnvrtc -lcurand -lcublas -lcublasLt. The real libraries are the
#    driver (only on a GPU machine) and ~570 MB of wheels; a stub with the right soname and every
#    function name cudarc declares (taken from cudarc's `src/*/sys/mod.rs`, of the version in
#    Cargo.lock) lets the link succeed and records the right DT_NEEDED names, so the binary binds
#    to the real libraries on the GPU machine. The stubs are ONLY for linking: they are found
#    through LIBRARY_PATH (read by the `cc` linker driver), never LD_LIBRARY_PATH. Every stub
#    function returns an error code (the driver's is CUDA_ERROR_NO_DEVICE = 100), so even a
#    misplaced stub fails loudly instead of computing garbage.
# 4. env.sh: CUDA_HOME and PATH (candle-kernels finds nvcc via NVCC, PATH, then $CUDA_HOME/bin;
#    cudarc adds $CUDA_HOME/lib to the link search), CUDA_COMPUTE_CAP=90 (without it the build
#    script runs nvidia-smi and fails; H200 = sm_90), CUDARC_CUDA_VERSION is NOT set (the version is
#    pinned by the `cuda-13000` feature in Cargo.toml), LIBRARY_PATH for the stubs. RUSTFLAGS are
#    deliberately left alone: changing them recompiles every crate, and LIBRARY_PATH is enough.
#    Keep this environment identical between builds: a changed CUDA_COMPUTE_CAP or NVCC_CCBIN reruns
#    candle-kernels' 15-minute build script. CUDAFORGE_THREADS (read by cudaforge, the crate that
#    drives nvcc in that build script, and not a rerun trigger) is set to every core: its default is
#    half the cores, i.e. one nvcc at a time on a 2-core machine.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${MSPINN_CUDA_DIR:-$HOME/.cache/mspinn/cuda-13.0}"
CUDA_HOME_DIR="$DIR/nvidia/cu13"
STUBS="$DIR/link-stubs"
PYTHON="${PYTHON:-python3}"

WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
)

say() { printf 'install-cuda-toolchain: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed for pip); set PYTHON=..."
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip module"
command -v gcc >/dev/null || die "gcc not found (needed to build the link-time stubs)"

mkdir -p "$DIR"

# ---- 1. wheels -------------------------------------------------------------------------------
# A stamp file records the pinned set that was installed; a changed pin list reinstalls.
STAMP="$DIR/.wheels"
WANT="$(printf '%s\n' "${WHEELS[@]}")"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$CUDA_HOME_DIR/bin/nvcc" ]]; then
    say "wheels already installed in $DIR"
else
    say "installing ${WHEELS[*]} into $DIR (about 100 MiB download)"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --no-deps --upgrade --target "$DIR" "${WHEELS[@]}"
    printf '%s\n' "$WANT" >"$STAMP"
fi
[[ -x "$CUDA_HOME_DIR/bin/nvcc" ]] || die "nvcc missing from $CUDA_HOME_DIR/bin after install"
for h in cuda_runtime.h crt/host_config.h nv/target; do
    [[ -e "$CUDA_HOME_DIR/include/$h" ]] || die "$h missing from $CUDA_HOME_DIR/include"
done

# ---- 2. libcudart.so symlink -----------------------------------------------------------------
[[ -e "$CUDA_HOME_DIR/lib/libcudart.so.13" ]] || die "libcudart.so.13 missing from $CUDA_HOME_DIR/lib"
ln -sfn libcudart.so.13 "$CUDA_HOME_DIR/lib/libcudart.so"

# ---- 3. link-time stubs ----------------------------------------------------------------------
# The cudarc version is the one Cargo.lock pins; its sources are in cargo's registry once fetched.
CUDARC_VERSION="$(awk '/^name = "cudarc"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
[[ -n "$CUDARC_VERSION" ]] || die "no cudarc in $ROOT/Cargo.lock"
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
find_cudarc() {
    local d
    for d in "$CARGO_HOME_DIR"/registry/src/*/cudarc-"$CUDARC_VERSION"; do
        [[ -d "$d/src" ]] && { echo "$d"; return 0; }
    done
    return 1
}
if ! CUDARC_SRC="$(find_cudarc)"; then
    say "fetching crate sources (cudarc $CUDARC_VERSION) with cargo fetch"
    (cd "$ROOT" && cargo fetch --locked >/dev/null)
    CUDARC_SRC="$(find_cudarc)" || die "cudarc-$CUDARC_VERSION not found under $CARGO_HOME_DIR/registry/src"
fi

# library name : soname : cudarc module : error code every stub returns
STUB_SPECS=(
    "cuda:libcuda.so.1:driver:100"        # CUDA_ERROR_NO_DEVICE
    "nvrtc:libnvrtc.so.13:nvrtc:11"       # NVRTC_ERROR_INTERNAL_ERROR
    "curand:libcurand.so.10:curand:203"   # CURAND_STATUS_INITIALIZATION_FAILED
    "cublas:libcublas.so.13:cublas:1"     # CUBLAS_STATUS_NOT_INITIALIZED
    "cublasLt:libcublasLt.so.13:cublaslt:1"
)
mkdir -p "$STUBS"
STUB_STAMP="$STUBS/.cudarc-$CUDARC_VERSION"
if [[ -f "$STUB_STAMP" ]]; then
    say "link stubs for cudarc $CUDARC_VERSION already in $STUBS"
else
    for spec in "${STUB_SPECS[@]}"; do
        IFS=: read -r lib soname module code <<<"$spec"
        src="$CUDARC_SRC/src/$module/sys/mod.rs"
        [[ -f "$src" ]] || die "$src not found"
        c="$STUBS/$lib.c"
        {
            echo "/* Link-time stub for $soname, generated from cudarc $CUDARC_VERSION $module/sys/mod.rs."
            echo "   Never load this at run time on a GPU machine. Every function returns $code. */"
            grep -oE '^pub unsafe fn [A-Za-z_][A-Za-z0-9_]*' "$src" | awk '{print $4}' | sort -u |
                awk -v code="$code" '{ printf "int %s(void) { return %s; }\n", $1, code }'
        } >"$c"
        n="$(grep -c '^int ' "$c")"
        [[ "$n" -gt 10 ]] || die "only $n functions found in $src"
        gcc -shared -fPIC -fno-builtin -w -Wl,-soname,"$soname" -o "$STUBS/lib$lib.so" "$c"
        say "stub lib$lib.so ($soname): $n functions"
    done
    touch "$STUB_STAMP"
fi
# Soname links, so that on a machine WITHOUT a GPU the cuda binary can start on the stubs (they
# answer "no device"); the linker itself only looks for the lib*.so names.
for spec in "${STUB_SPECS[@]}"; do
    IFS=: read -r lib soname _ _ <<<"$spec"
    ln -sfn "lib$lib.so" "$STUBS/$soname"
done

# ---- 4. env.sh -------------------------------------------------------------------------------
ENV_FILE="$DIR/env.sh"
cat >"$ENV_FILE" <<EOF
# Generated by scripts/install-cuda-toolchain.sh: source before \`cargo build --features cuda\`.
export CUDA_HOME="$CUDA_HOME_DIR"
case ":\$PATH:" in *":$CUDA_HOME_DIR/bin:"*) ;; *) export PATH="$CUDA_HOME_DIR/bin:\$PATH" ;; esac
export CUDA_COMPUTE_CAP=90
# nvcc jobs in candle-kernels' build script (cudaforge's default is half the cores).
export CUDAFORGE_THREADS="\${CUDAFORGE_THREADS:-\$(nproc 2>/dev/null || echo 2)}"
# Link-time only (the cc linker driver searches LIBRARY_PATH for -l); never LD_LIBRARY_PATH.
case ":\${LIBRARY_PATH:-}:" in *":$STUBS:"*) ;; *) export LIBRARY_PATH="$STUBS\${LIBRARY_PATH:+:\$LIBRARY_PATH}" ;; esac
EOF

"$CUDA_HOME_DIR/bin/nvcc" --version | tail -n 2 >&2
say "done; the environment for the build (also in $ENV_FILE):"
cat <<EOF
export CUDA_HOME="$CUDA_HOME_DIR"
export PATH="$CUDA_HOME_DIR/bin:\$PATH"
export CUDA_COMPUTE_CAP=90
export CUDAFORGE_THREADS="\$(nproc)"
export LIBRARY_PATH="$STUBS\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
# then: source "$ENV_FILE" && cargo build --release --features cuda
EOF
