#!/usr/bin/env bash
# The chaos suite's long mode: RUNS runs (default 100) of PageRank and logistic regression per
# process killed (an executor, an agent, the leading master, a ZooKeeper server) on a loopback
# cluster with standby masters; prints each target's correct runs and how much longer the jobs
# took than a run without faults made right after each; an executor is killed both with the
# notebooks' data cached as they cache it (MEMORY_ONLY) and with two copies (MEMORY_ONLY_2).
# CI runs one run per target (`cargo test --test chaos`, debug build); the long mode runs the
# release build, as users do, so that the costs it reports are what they would see. Needs
# Debian's zookeeper package.
# TESSERA_CHAOS_SEED=N repeats a sequence of moments;
# TESSERA_CHAOS_TARGETS=executor,agent,master,zookeeper picks the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
cargo build --release --workspace --bins --locked
TESSERA_CHAOS_RUNS="$runs" cargo test --release --locked --test chaos -- --nocapture 2>&1 \
    | grep -v '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T'
