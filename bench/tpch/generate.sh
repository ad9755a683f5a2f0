#!/usr/bin/env bash
# Generates TPC-H data (scale factor 1 unless TPCH_SCALE says otherwise) as CSV, one file per
# table with a header line: $TPCH_DATA/{region,nation,supplier,customer,part,partsupp,orders,
# lineitem}.csv, comma-separated, dates as YYYY-MM-DD, decimals as plain numbers (0.04,
# 901.00). Text fields that may hold commas (addresses, comments) are double-quoted.
# Skips the generation if all eight files are already there.
#
# Uses the `tpchgen-cli` crate, installed with cargo into ~/.cache/tessera/tools on first use
# (its build directory is kept under ~/.cache/tessera so a reinstall is incremental).
#
#     bash bench/tpch/generate.sh          # TPCH_DATA defaults to ~/.cache/tessera/bench-data/tpch-sf1
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tessera"
SCALE="${TPCH_SCALE:-1}"
DATA="${TPCH_DATA:-$CACHE/bench-data/tpch-sf1}"
TOOLS="$CACHE/tools"
TPCHGEN="$TOOLS/bin/tpchgen-cli"
TABLES="region nation supplier customer part partsupp orders lineitem"

complete=1
for table in $TABLES; do
    [ -s "$DATA/$table.csv" ] || complete=0
done
if [ "$complete" = 1 ]; then
    echo "TPC-H data already in $DATA"
    exit 0
fi

if [ ! -x "$TPCHGEN" ]; then
    echo "installing tpchgen-cli into $TOOLS ..."
    start=$(date +%s)
    CARGO_TARGET_DIR="$CACHE/cargo-target-tools" \
        cargo install --locked --root "$TOOLS" tpchgen-cli
    echo "installed tpchgen-cli in $(( $(date +%s) - start )) s"
fi

# Generated into a scratch directory beside the target and moved into place when complete, so
# an interrupted run leaves no half-written table behind.
scratch="$DATA.partial"
rm -rf "$scratch"
mkdir -p "$scratch" "$(dirname "$DATA")"
echo "generating TPC-H SF$SCALE CSV into $DATA ..."
start=$(date +%s)
"$TPCHGEN" csv --scale-factor "$SCALE" --output-dir "$scratch" --quiet \
    --num-threads "${TPCH_THREADS:-2}"
for table in $TABLES; do
    mkdir -p "$DATA"
    mv -f "$scratch/$table.csv" "$DATA/$table.csv"
done
rmdir "$scratch"
echo "generated in $(( $(date +%s) - start )) s"
du -sh "$DATA"/*.csv
