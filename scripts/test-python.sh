#!/usr/bin/env bash
# The Python package's tests, the last step of scripts/test.sh: `pip install ./crates/python`
# (maturin as the PEP 517 backend, fetched by pip) into a virtual environment of its own under
# cargo's target folder, then `pytest tests/python` against the CLI binary `cargo test` built.
#
# The package is built in cargo's `test` profile, whose dependencies `cargo test --workspace`
# has just compiled, so this costs the PyO3 layer and the install (about a minute), not a second
# full release build of candle and faer. `pip install ./crates/python` without
# MATURIN_PEP517_ARGS builds the same package in release, as a user installs it.
# Needs Python ≥ 3.9 with venv and pip (PYTHON=... picks the interpreter) and PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
target=$(cargo metadata --format-version 1 --no-deps --locked |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
venv="$target/py-test-venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install numpy pytest
start=$(date +%s)
MATURIN_PEP517_ARGS="--profile test --locked" \
    "${pip[@]}" install --force-reinstall --no-deps ./crates/python
echo "test-python: pip install ./crates/python took $(($(date +%s) - start)) s"
# Run from tests/python so that `import mspinn` can only find the installed package.
cd tests/python
MSPINN_BIN="$target/debug/mspinn" "$venv/bin/python" -m pytest -q -p no:cacheprovider .
