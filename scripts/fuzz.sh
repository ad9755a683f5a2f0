#!/usr/bin/env bash
# Fuzzes the decoders of bytes that come from the network or disk: runs only their property
# tests (every test named `*never_panic*`: the cell protocol, tasks and task outcomes, map output
# frames, cached block files, the manifests of partitions kept in host memory, shuffle pieces,
# records of shipped partitions, shuffle buckets and checkpoint files, the agent's checkpoint,
# the engine's child protocol, the Jupyter wire format) with CASES cases each
# (default 100000; the ordinary test run uses proptest's 256) and reports how long they took.
# A failing case is shrunk and saved under the crate's `proptest-regressions/`, and replayed
# first on every later run.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-100000}"
export PROPTEST_CASES="$cases"
cargo test --workspace --lib --bins --locked --no-run
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
started=$(date +%s)
status=0
cargo test --workspace --lib --bins --locked -- never_panic --test-threads 2 >"$log" 2>&1 || status=$?
grep -E '^test .*never_panic|FAILED|panicked|minimal failing input' "$log" || true
echo "fuzzed with $cases cases per test in $(( $(date +%s) - started )) s; cargo test exited with $status"
exit "$status"
