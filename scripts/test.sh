#!/usr/bin/env bash
# Runs every test: checks formatting and lints, builds the binaries (end-to-end tests start
# them as real processes on 127.0.0.1), runs the Rust tests, then the Python ones (the REPL
# through a pty, the Jupyter kernel and notebooks through jupyter_client).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

cargo fmt --all --check
# Lints first: they check every crate in a few seconds once the dependencies are checked
# (about three minutes on a fresh machine), before the build and the tests take their time.
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked -- --test-threads 2
bash tests/run_python_tests.sh "$target/debug"
