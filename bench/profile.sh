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
restored=()
cleanup() {
    local library
    for library in "${restored[@]}"; do
        rm -f "$library"
        rmdir -p --ignore-fail-on-non-empty "$(dirname "$library")" 2>/dev/null || true
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

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
# An executor loads the cell libraries and libstd from copies in its work directory, which
# goes with it: a link to each copy is kept under $scratch/kept, at the same path, and put
# back for `perf script` to read their symbols (libstd has no build id to find it by).
declare -A kept=()
keep_libraries() {
    local library
    for library in $(awk '$6 ~ /\.so$/ {print $6}' "/proc/$1/maps" 2>/dev/null | sort -u); do
        if [ -z "${kept[$library]:-}" ] && [[ "$library" == */tessera/sessions/* ]]; then
            mkdir -p "$scratch/kept$(dirname "$library")"
            ln "$library" "$scratch/kept$library" 2>/dev/null || cp "$library" "$scratch/kept$library" 2>/dev/null || continue
            kept[$library]=1
        fi
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
    for pid in "${!recorded[@]}"; do keep_libraries "$pid"; done
    sleep 0.02
done
wait "$session" || { cat "$scratch/stderr" >&2; echo "the notebook failed" >&2; exit 1; }
wait # every perf ends with the process it records
[ "${#recorded[@]}" -gt 0 ] || { echo "no executor was seen" >&2; exit 1; }
for library in "${!kept[@]}"; do
    if [ ! -e "$library" ]; then
        mkdir -p "$(dirname "$library")"
        ln "$scratch/kept$library" "$library" 2>/dev/null || cp "$scratch/kept$library" "$library"
        restored+=("$library")
    fi
done
for data in "$scratch"/perf-*.data; do
    perf script -i "$data" 2>/dev/null
    echo
done >"$scratch/stacks"
python3 "$repo/bench/flamegraph.py" --folded "$out/$workload.folded" \
    --title "$workload: the executors of tessera --master local[2] run" \
    <"$scratch/stacks" >"$out/$workload.svg"
echo "$out/$workload.svg ($(wc -l <"$out/$workload.folded") distinct stacks; $(grep -c . "$scratch/stdout") lines of notebook output)"
