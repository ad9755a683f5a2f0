#!/usr/bin/env bash
# Runs every test: builds the binaries (end-to-end tests start them as real processes on
# 127.0.0.1), runs the Rust tests, then the Python ones (the REPL through a pty, the Jupyter
# kernel and notebooks through jupyter_client).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

cargo build --workspace --bins --locked
cargo test --workspace --locked -- --test-threads 2
bash tests/run_python_tests.sh "$target/debug"
