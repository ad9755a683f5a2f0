#!/usr/bin/env bash
# What replacing a lost executor costs in CPU: a session on `local-cluster[2,2,1024]` (a master
# and two agents on loopback, one executor each), sampled by `perf record -a` for 2.5 s in
# which it runs four short tasks, with one of its executors killed by SIGKILL just before (two
# tasks wait for a core, and the session starts a replacement, as after any loss) and, paired
# with it, without. Prints, per pair, the CPU each process took in the window: the difference
# is the price of a replacement, paid on the cores the session's other executors compute on
# when the cluster shares one machine.
#
#     scripts/replacement-price.sh [PAIRS]     # 5 by default
#
# Needs `perf` (Debian's linux-perf) and root, or perf_event_paranoid at most 0.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-5}"
cargo build --release --workspace --bins --locked
bin="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/session.rs" <<'EOF'
// %%
// Waits for the script's go (after its kill, if any), then runs four tasks of 50 ms on the
// executors' four cores: with one executor gone two wait, and the session replaces it.
let go = std::env::var("PRICE_GO").unwrap();
while !std::path::Path::new(&go).exists() {
    std::thread::sleep(std::time::Duration::from_millis(5));
}
let tasks = sc
    .parallelize((0..4).collect::<Vec<i64>>(), 4)
    .map(|x: i64| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        x
    })
    .count();
println!("{tasks} tasks");
std::thread::sleep(std::time::Duration::from_secs(2));
EOF

# One session, idle until the window starts; then, after killing one of its executors when $1
# is "kill", it runs four short tasks. Prints the milliseconds of CPU per process (by the name
# of its main thread) in the window.
window() {
    rm -f "$work/go"
    PRICE_GO="$work/go" "$bin/tessera" --master 'local-cluster[2,2,1024]' run "$work/session.rs" \
        > "$work/session.log" 2>&1 &
    local session=$!
    # Registered and idle by then (the cell compiled in an earlier session is not compiled again).
    sleep 2.5
    ps -eo pid=,comm= > "$work/names"
    local victim
    victim="$(pgrep -f tessera-executor | head -1)"
    perf record -q -F 4000 -a -o "$work/perf.data" -- sleep 2.5 2> /dev/null &
    local recording=$!
    # perf takes a while to start sampling every CPU.
    sleep 0.6
    if [ "$1" = kill ]; then
        kill -9 "$victim"
    fi
    touch "$work/go"
    wait "$recording"
    wait "$session" || true
    perf script -i "$work/perf.data" -F pid,tid,comm 2> /dev/null | python3 -c '
import collections, sys
names = dict(line.split(None, 1) for line in open(sys.argv[1]).read().splitlines() if line.strip())
names = {pid: comm.strip() for pid, comm in names.items()}
before = set(names)
samples = collections.Counter()
for line in sys.stdin:
    fields = line.split()
    if not fields or "/" not in fields[-1]:
        continue
    pid, tid = fields[-1].split("/")
    if pid == "0":
        continue
    if pid == tid and pid not in before:
        names[pid] = " ".join(fields[:-1])  # the last name: after its exec
    samples[pid] += 1
by_name = collections.Counter()
for pid, n in samples.items():
    by_name[names.get(pid, "?")[:15]] += n / 4  # 4000 samples a second: 0.25 ms each
tessera = {k: v for k, v in by_name.items() if k.startswith("tessera")}
print(" ".join(f"{k}={v:.1f}" for k, v in sorted(tessera.items())),
      f"together={sum(tessera.values()):.1f} all={sum(by_name.values()):.1f}")
' "$work/names"
}

# The first session compiles the cell; later ones load it.
window none > /dev/null
echo "CPU in ms over 2.5 s per process (tessera = the session and its driver), then all processes"
for i in $(seq 1 "$pairs"); do
    echo "pair $i"
    echo "  without a kill: $(window none)"
    echo "  with a kill:    $(window kill)"
done
