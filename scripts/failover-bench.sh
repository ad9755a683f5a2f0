#!/usr/bin/env bash
# Measures masters' failover (BENCHMARKS.md, "Masters that fail over"): ROUNDS times (default
# 10) the leading master is killed with SIGKILL under a framework taking offers, on a loopback
# cluster with a three-server ZooKeeper ensemble (Debian's zookeeper package); prints the time
# from SIGKILL to the next leader's first offer.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-10}"
cargo build --workspace --bins --locked
TESSERA_FAILOVER_ROUNDS="$rounds" cargo test --locked --test master_ha failover_times \
    -- --ignored --nocapture 2>&1 | grep -E '^(round|failover)'
