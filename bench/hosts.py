#!/usr/bin/env python3
"""The cost of crossing hosts: logistic regression and PageRank (the notebooks/ scripts) on a
cluster whose master, two agents and session are four hosts, against the same cluster on
loopback (`local-cluster[2,1,M]`, one host), in one run. Prints a markdown table of times and
their ratio, and checks that both computed the same answer.

    sudo python3 bench/hosts.py --peers PEER_BENCH_DIR [--data DIR] [--bin-dir target/release]
                                [--only lr,pagerank] [--trials N]

The hosts are Linux network namespaces on a private bridge (addresses from 198.18.0.0/15), made
here and removed at the end, so this needs root and iproute2. Both sides run two executors of
one core each and mutual TLS on every link (it is on by default, loopback included): what
differs is the network between the processes (veth pairs and a bridge, versus loopback) and
that the driver is on a host of its own. The inputs are those of bench/peers.py, generated with
PEER_BENCH_DIR/gen_data.py into --data when missing.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import REPO, common_arguments, millis, venv_python

HOSTS = ["a", "b", "c", "d"]
MASTER_PORT = 5050
EXECUTOR_MEMORY_MB = 4096


def ip(*args):
    subprocess.run(["ip", *args], check=True)


class Network:
    """One namespace per host on a bridge in a hub namespace; host i has 198.18.0.(i+1)."""

    def __init__(self):
        self.prefix = f"tb{os.getpid()}"
        self.made = []
        hub = self.ns("hub")
        ip("netns", "add", hub)
        self.made.append(hub)
        ip("-n", hub, "link", "add", "br0", "type", "bridge")
        ip("-n", hub, "link", "set", "br0", "up")
        for i, host in enumerate(HOSTS):
            ns = self.ns(host)
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}",
               "netns", hub)
            ip("-n", hub, "link", "set", f"p{i}", "master", "br0")
            ip("-n", hub, "link", "set", f"p{i}", "up")
            ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def ns(self, host):
        return f"{self.prefix}-{host}"

    @staticmethod
    def address(host):
        return f"198.18.0.{HOSTS.index(host) + 1}"

    def command(self, host, argv):
        """`argv` run on `host`, under its own host name."""
        return ["ip", "netns", "exec", self.ns(host), "unshare", "--uts", "--", "sh", "-c",
                'hostname "$0" && exec "$@"', host, *argv]

    def remove(self):
        for ns in reversed(self.made):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns])


def run_notebook(argv, notebook, data_file, workdir):
    """Runs `argv` + `run NOTEBOOK`; returns its stdout."""
    env = dict(os.environ, TESSERA_EXAMPLE_INPUT=str(data_file), NO_COLOR="1",
               # The session host has no route to a package registry: cargo uses its cache.
               CARGO_NET_OFFLINE="true")
    done = subprocess.run([*argv, "--executor-memory-mb", str(EXECUTOR_MEMORY_MB), "run",
                           str(REPO / "notebooks" / notebook)],
                          cwd=workdir, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{notebook} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def answer(output, prefix):
    """The lines of `output` that carry the answer (they must be equal on both sides)."""
    return [line for line in output.splitlines() if line.startswith(prefix)]


def main():
    args = common_arguments("lr,pagerank").parse_args()
    if os.geteuid() != 0:
        sys.exit("this benchmark makes network namespaces: run it as root")
    bin_dir = args.bin_dir.resolve()
    files = {"lr": "lr_points.txt", "pagerank": "graph_rmat.txt"}
    wanted = args.only.split(",")
    args.data.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        if not (args.data / files[name]).exists():
            kind = {"lr": "lr", "pagerank": "graph"}[name]
            subprocess.run([str(venv_python(args.venv)), str(args.peers.resolve() / "gen_data.py"),
                            kind], check=True, env=dict(os.environ, BENCH_DATA=str(args.data)))

    scratch = Path(tempfile.mkdtemp(prefix="tessera-bench-hosts-"))
    net = Network()
    children = []
    try:
        creds = scratch / "creds"
        subprocess.run([str(bin_dir / "tessera"), "cluster", "init-credentials", str(creds),
                        "--agent", "b", "--agent", "c", "--framework", "bench"], check=True,
                       capture_output=True)
        log = open(scratch / "cluster.log", "w")
        children.append(subprocess.Popen(net.command("a", [
            str(bin_dir / "tessera-master"), "--bind", net.address("a"), "--port",
            str(MASTER_PORT), "--credentials", str(creds / "master")]), stdout=log, stderr=log))
        master = f"{net.address('a')}:{MASTER_PORT}"
        for agent in ["b", "c"]:
            children.append(subprocess.Popen(net.command(agent, [
                str(bin_dir / "tessera-agent"), "--master", master, "--bind",
                net.address(agent), "--port", "5051", "--cpus", "1",
                "--mem-mb", str(EXECUTOR_MEMORY_MB + 1024),
                "--credentials", str(creds / "agents" / agent),
                "--work-dir", str(scratch / f"work-{agent}")]), stdout=log, stderr=log))
        session = [str(bin_dir / "tessera"), "--credentials", str(creds / "frameworks" / "bench")]
        for _ in range(100):
            status = subprocess.run(net.command("d", [*session, "--master", f"tessera://{master}",
                                                      "cluster", "status"]),
                                    capture_output=True, text=True)
            if status.returncode == 0 and all(re.search(rf"\b{h}\b", status.stdout)
                                              for h in ["b", "c"]):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the agents did not register:\n" + status.stdout + status.stderr
                               + (scratch / "cluster.log").read_text())
        sides = {
            "loopback": [str(bin_dir / "tessera"), "--master",
                         f"local-cluster[2,1,{EXECUTOR_MEMORY_MB + 1024}]"],
            "hosts": net.command("d", [*session, "--master", f"tessera://{master}"]),
        }

        def trial():
            rows = []
            if "lr" in wanted:
                iterations, answers = {}, {}
                for side, argv in sides.items():
                    out = run_notebook(argv, "logistic_regression.rs", args.data / files["lr"],
                                       scratch)
                    iterations[side] = millis(out, r"iteration \d+: ([\d.]+) ms")
                    answers[side] = answer(out, "w: ")
                if answers["loopback"] != answers["hosts"] or not answers["hosts"]:
                    raise RuntimeError(f"LR answers differ: {answers}")
                rows.append(("LR, 1M points: first iteration",
                             *(iterations[s][0] for s in sides)))
                rows.append(("LR: later iteration (mean)",
                             *(statistics.mean(iterations[s][1:]) for s in sides)))
            if "pagerank" in wanted:
                times, answers = {}, {}
                for side, argv in sides.items():
                    out = run_notebook(argv, "pagerank.rs", args.data / files["pagerank"],
                                       scratch)
                    times[side] = millis(out, r"pagerank took ([\d.]+) ms")[0]
                    answers[side] = answer(out, "top: ") + answer(out, "ranked pages: ")
                if answers["loopback"] != answers["hosts"] or not answers["hosts"]:
                    raise RuntimeError(f"PageRank answers differ: {answers}")
                rows.append(("PageRank, 1M edges, 10 iterations", *(times[s] for s in sides)))
            return rows

        trials = [trial() for _ in range(args.trials)]
    finally:
        for child in children:
            child.kill()
        net.remove()
        subprocess.run(["rm", "-rf", str(scratch)])

    print(f"Loopback local-cluster[2,1,M] against master, two agents and the session on four "
          f"hosts (network namespaces); medians of {args.trials} trial(s), seconds; both sides "
          f"computed the same answers.\n")
    print("| workload | loopback | four hosts | hosts / loopback |")
    print("|---|---|---|---|")
    for i, (name, *_) in enumerate(trials[0]):
        loopback = statistics.median(t[i][1] for t in trials)
        hosts = statistics.median(t[i][2] for t in trials)
        print(f"| {name} | {loopback:.3f} | {hosts:.3f} | {hosts / loopback:.2f} |")


if __name__ == "__main__":
    main()
