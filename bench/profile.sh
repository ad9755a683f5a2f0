#!/usr/bin/env bash
# Profiles the executors of one benchmark notebook and draws the flame graph that
# BENCHMARKS.md's profiles come from:
#
#     bench/profile.sh WORKLOAD INPUT [OUT_DIR]
#
# WORKLOAD is word_count, logistic_regression or pagerank (a notebook in notebooks/), INPUT its
# input file (bench/peers.py generates them into ~/.cache/tessera/bench-data). Runs
# `tessera --master local[2] run` of the notebook with release binaries (from $BIN_DIR, default
# target/release), records every executor with `perf record` from the moment it starts
# until the session ends, and writes OUT_DIR/WORKLOAD.svg (default bench/profiles) and the
# collapsed stacks beside it (WORKLOAD.folded, for a text search of the shares). Stacks are
# unwound from DWARF (the binaries and cell libraries have no frame pointers). Needs `perf`
# and root (or perf_event_paranoid at most 1). TESSERA_EXAMPLE_ITERATIONS sets the iterations
# (default 10; 40 gives LR's later iterations more samples).
set -euo pipefail
workload="${1:?usage: bench/profile.sh word_count|logistic_regression|pagerank INPUT [OUT_DIR]}"
input="${2:?usage: bench/profile.sh WORKLOAD INPUT [OUT_DIR]}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${3:-$repo/bench/profiles}"
bin_dir="${BIN_DIR:-$repo/target/release}"
notebook="$repo/notebooks/$workload.rs"
[ -f "$notebook" ] || { echo "no notebook $notebook: pick word_count, logistic_regression or pagerank" >&2; exit 2; }
[ -x "$bin_dir/tessera" ] || { echo "no $bin_dir/tessera: build with cargo build --release, or set BIN_DIR" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
mkdir -p "$out"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

TESSERA_EXAMPLE_INPUT="$input" TESSERA_EXAMPLE_ITERATIONS="${TESSERA_EXAMPLE_ITERATIONS:-10}" \
    NO_COLOR=1 "$bin_dir/tessera" --master 'local[2]' --executor-memory-mb 4096 \
    run "$notebook" >"$scratch/stdout" 2>"$scratch/stderr" &
session=$!
# Each executor is recorded from its start: a perf per process, attached as soon as it shows.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}
# (`ps` gives a command name of at most 15 characters.)
declare -A recorded=()
while kill -0 "$session" 2>/dev/null; do
    for pid in $(descendants "$session"); do
        if [ -z "${recorded[$pid]:-}" ] && [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == tessera-executo* ]]; then
            recorded[$pid]=1
            perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$scratch/perf-$pid.data" 2>/dev/null &
        fi
    done
    sleep 0.02
done
wait "$session" || { cat "$scratch/stderr" >&2; echo "the notebook failed" >&2; exit 1; }
wait # every perf ends with the process it records
[ "${#recorded[@]}" -gt 0 ] || { echo "no executor was seen" >&2; exit 1; }
# The executors loaded their copies of the cell libraries and libstd from their work
# directories, removed as they ended: perf finds the same files by build id in its cache.
cells="${XDG_CACHE_HOME:-$HOME/.cache}/tessera/cells/cells"
for library in "$cells"/*.so "$(rustc --print sysroot)"/lib/rustlib/*/lib/libstd-*.so; do
    [ -f "$library" ] && perf buildid-cache --add "$library" 2>/dev/null || true
done
for data in "$scratch"/perf-*.data; do
    perf script -i "$data" 2>/dev/null
    echo
done >"$scratch/stacks"
python3 "$repo/bench/flamegraph.py" --folded "$out/$workload.folded" \
    --title "$workload: the executors of tessera --master local[2] run" \
    <"$scratch/stacks" >"$out/$workload.svg"
echo "$out/$workload.svg ($(wc -l <"$out/$workload.folded") distinct stacks; $(grep -c . "$scratch/stdout") lines of notebook output)"
