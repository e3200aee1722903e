#!/usr/bin/env bash
# Installs the JAX peer of `mspinn bench` into bench/peers/.venv (idempotent: a second run only
# checks the pins). CPU-only jax/jaxlib pinned to one exact version so every recorded number names
# the code that produced it. neural-tangents is optional: its empirical-NTK path is timed when it
# imports, skipped (and reported as skipped) when it does not. It is opt-in (WITH_NT=1): its last
# release, 0.6.5 (Dec 2023), pulls in TensorFlow (~600 MB) and then fails to import under jax 0.10
# ("cannot import name 'Jaxpr' from 'jax.core'"), so by default it is not installed.
#
# Usage: bench/peers/install.sh     (VENV=DIR puts the venv elsewhere; WITH_NT=1 tries neural-tangents)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-$PWD/.venv}"
JAX_VERSION=0.10.2
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
    "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" "numpy==2.4.6" "safetensors==0.8.0"
if [ "${WITH_NT:-0}" = 1 ] && ! "$VENV/bin/python" -c "import neural_tangents" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet "neural-tangents==0.6.5" "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" \
        || echo "install.sh: neural-tangents did not install; jax_bench.py will skip its empirical NTK"
fi
"$VENV/bin/python" - <<'PY'
import jax, jaxlib, numpy
print(f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpy {numpy.__version__}, devices {jax.devices()}")
try:
    import neural_tangents as nt
    print(f"neural-tangents {nt.__version__}")
except Exception as e:  # noqa: BLE001 - report whatever stopped it
    print(f"neural-tangents unavailable: {type(e).__name__}: {e}")
PY
