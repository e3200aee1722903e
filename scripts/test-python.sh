#!/usr/bin/env bash
# The Python package's tests, the last step of scripts/test.sh: `pip install ./crates/python`
# (maturin as the PEP 517 backend, fetched by pip) into a virtual environment of its own under
# cargo's target folder, then `pytest tests/python` against the CLI binary `cargo test` built.
#
# The package is built with the settings of cargo's `test` profile, so that it reuses every
# artifact `cargo test --workspace` has just compiled (candle, faer, the mspinn crates) and costs
# the PyO3 layer and the install (a minute or two), not a second full release build. maturin
# calls `cargo rustc`, where `--profile test` would mean a test harness; the dev profile with
# the test profile's one difference (opt-level 2 for the workspace crates) is the same build
# under the name cargo rustc accepts. `pip install ./crates/python` alone builds in release,
# as a user installs it.
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
CARGO_PROFILE_DEV_OPT_LEVEL=2 MATURIN_PEP517_ARGS="--profile dev --locked" \
    "${pip[@]}" install --force-reinstall --no-deps ./crates/python
echo "test-python: pip install ./crates/python took $(($(date +%s) - start)) s"
# Run from tests/python so that `import mspinn` can only find the installed package.
cd tests/python
MSPINN_BIN="$target/debug/mspinn" "$venv/bin/python" -m pytest -q -p no:cacheprovider .
