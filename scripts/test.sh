#!/usr/bin/env bash
# The whole test suite, as the README gives it and .ci/run calls it: formatting, lints, tests.
# Needs only a Rust toolchain (rustup: https://rustup.rs); cargo fetches every dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Two cores: one test binary at a time, with both threads, is the fastest way through.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
