#!/usr/bin/env bash
# The whole test suite, as the README gives it and .ci/run calls it: formatting, lints, tests,
# then the Python package (installed with pip into a venv under target/, tested with pytest).
# Needs a Rust toolchain (rustup: https://rustup.rs; cargo fetches every dependency) and
# Python ≥ 3.9 with venv and pip (PyPI reachable for maturin, numpy and pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Two cores: one test binary at a time, with both threads, is the fastest way through.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/test-python.sh
