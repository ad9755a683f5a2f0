#!/usr/bin/env python3
"""Tessera against its peers on the same machine, in one run: word count, logistic regression
and PageRank, each under Tessera (`tessera run` of the notebooks/ script, release build) and
PySpark local[2] (the peer scripts), and LR and PageRank as a single-threaded plain-Rust loop
(`tessera-baseline`), the physical baseline. Prints a markdown table of times and ratios.

    python3 bench/peers.py --peers PEER_BENCH_DIR [--data DIR] [--bin-dir target/release]
                           [--master 'local[2]'] [--only wordcount,lr,pagerank] [--trials N]

PEER_BENCH_DIR holds gen_data.py and the *_spark.py scripts. The inputs are generated there
into --data (default ~/.cache/tessera/bench-data) if missing; PySpark runs from a virtualenv
(default ~/.cache/tessera/peers/venv, created with pyspark, numpy and psutil if missing).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tessera"


def venv_python(venv):
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "pyspark", "numpy", "psutil"], check=True)
    return python


def result_line(output):
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("no RESULT line in:\n" + output[-3000:])


def run_spark(python, peers, script, args, workdir):
    out = subprocess.run([str(python), str(peers / script), *args], cwd=workdir,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(peers)))
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return result_line(out.stdout)


def executors_rss(process):
    """Resident bytes of the executor processes under `process`."""
    import psutil
    total = 0
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                if child.name() == "tessera-executor":
                    total += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def run_tessera(bin_dir, master, notebook, data_file, workdir, memory=None):
    """Runs a notebook; returns its stdout. With `memory` (a dict), also samples the executors'
    resident memory every 20 ms and records it when the notebook prints its `points:` line
    (before the first job), its peak, and its last sample."""
    env = dict(os.environ, TESSERA_EXAMPLE_INPUT=str(data_file), NO_COLOR="1")
    process = subprocess.Popen([str(bin_dir / "tessera"), "--master", master,
                                "--executor-memory-mb", "4096", "run",
                                str(REPO / "notebooks" / notebook)],
                               cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    sampler = None
    if memory is not None:
        def sample():
            while process.poll() is None:
                rss = executors_rss(process)
                if rss:
                    memory["peak"] = max(memory.get("peak", 0), rss)
                    memory["last"] = rss
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    stderr_lines = []
    stderr_reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr),
                                     daemon=True)
    stderr_reader.start()
    stdout_lines = []
    for line in process.stdout:
        stdout_lines.append(line)
        if memory is not None and line.startswith("points: "):
            memory["start"] = executors_rss(process)
    process.wait()
    stderr_reader.join()
    if sampler:
        sampler.join()
    stdout, stderr = "".join(stdout_lines), "".join(stderr_lines)
    if process.returncode != 0:
        raise RuntimeError(f"{notebook} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return stdout


UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def cached_bytes(output):
    """Bytes in memory of the MEMORY_ONLY RDD in a `:storage` table the output ends with."""
    match = re.search(r"MEMORY_ONLY\s*\S\s*\S+\s*\S\s*([\d.]+) (B|KiB|MiB|GiB)", output)
    if not match:
        raise RuntimeError("no cached RDD in the `:storage` table of:\n" + output[-3000:])
    return float(match.group(1)) * UNITS[match.group(2)]


def millis(output, pattern):
    return [float(m) / 1e3 for m in re.findall(pattern, output)]


def common_arguments(only):
    """The options every benchmark script takes; `only` lists its workloads."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=CACHE / "bench-data")
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release")
    parser.add_argument("--venv", type=Path, default=CACHE / "peers" / "venv")
    parser.add_argument("--only", default=only)
    parser.add_argument("--trials", type=int, default=1,
                        help="run everything this many times and report medians")
    return parser


def main():
    parser = common_arguments("wordcount,lr,pagerank")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    peers = args.peers.resolve()
    bin_dir = args.bin_dir.resolve()
    python = venv_python(args.venv)
    try:
        import psutil  # noqa: F401  (samples the executors' memory)
    except ImportError:
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
    args.data.mkdir(parents=True, exist_ok=True)
    workdir = CACHE / "peers" / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    files = {"wordcount": "words.txt", "lr": "lr_points.txt", "pagerank": "graph_rmat.txt"}
    wanted = args.only.split(",")
    for name in wanted:
        if not (args.data / files[name]).exists():
            kind = {"wordcount": "words", "lr": "lr", "pagerank": "graph"}[name]
            subprocess.run([str(python), str(peers / "gen_data.py"), kind], check=True,
                           env=dict(os.environ, BENCH_DATA=str(args.data)))

    def baseline(workload, data, *extra):
        return result_line(subprocess.run(
            [str(bin_dir / "tessera-baseline"), workload, str(data), *extra],
            capture_output=True, text=True, check=True).stdout)

    # Counted once: the file is read by every trial's runs already.
    lr_points = sum(1 for _ in open(args.data / files["lr"])) if "lr" in wanted else 0

    def trial():
        """One run of each side of each workload: rows (name, Tessera, PySpark, plain Rust or
        None) and notes."""
        rows, notes = [], []
        if "wordcount" in wanted:
            data = args.data / files["wordcount"]
            spark = run_spark(python, peers, "wordcount_spark.py", [str(data)], workdir)
            tessera = millis(run_tessera(bin_dir, args.master, "word_count.rs", data, workdir),
                             r"word count took ([\d.]+) ms")[0]
            rows.append(("word count, 105 MB", tessera, spark["total_s"],
                         baseline("wordcount", data)["total_s"]))
        if "lr" in wanted:
            data = args.data / files["lr"]
            spark = run_spark(python, peers, "lr_spark.py", [str(data), "10"], workdir)
            memory = {}
            out = run_tessera(bin_dir, args.master, "logistic_regression.rs", data, workdir,
                              memory)
            iterations = millis(out, r"iteration \d+: ([\d.]+) ms")
            plain = baseline("lr", data, "10")
            rows.append(("LR, 1M points: first iteration", iterations[0], spark["iter_s"][0],
                         None))
            rows.append(("LR: later iteration (mean)", statistics.mean(iterations[1:]),
                         statistics.mean(spark["iter_s"][1:]),
                         statistics.mean(plain["iter_s"][1:])))
            rows.append(("LR: 10 iterations", sum(iterations), spark["total_s"], None))
            raw = lr_points * 10 * 8
            cached = cached_bytes(out)
            start = memory.get("start", 0)
            peak, last = memory.get("peak", 0) - start, memory.get("last", 0) - start
            notes.append(
                f"LR: {lr_points} points, whose raw features are {raw / 2**20:.0f} MiB of f64. "
                f"Cached, they take {cached / 2**20:.1f} MiB of executor memory "
                f"({cached / raw:.2f}x; `:storage`, from the block manager's accounting). "
                f"The executors' resident memory (from {start / 2**20:.0f} MiB before the "
                f"first job) grew by {peak / 2**20:.0f} MiB at its peak ({peak / raw:.2f}x), "
                f"while the file was parsed and cached, and held {last / 2**20:.0f} MiB more "
                f"({last / raw:.2f}x) with the points cached, at the last iteration.")
        if "pagerank" in wanted:
            data = args.data / files["pagerank"]
            spark = run_spark(python, peers, "pagerank_spark.py", [str(data), "10"], workdir)
            tessera = millis(run_tessera(bin_dir, args.master, "pagerank.rs", data, workdir),
                             r"pagerank took ([\d.]+) ms")[0]
            rows.append(("PageRank, 1M edges, 10 iterations", tessera, spark["total_s"],
                         baseline("pagerank", data, "10")["total_s"]))
        return rows, notes

    trials = [trial() for _ in range(args.trials)]
    # Each cell of the table is the median over the trials.
    rows = []
    for i, (name, *_) in enumerate(trials[0][0]):
        columns = zip(*(rows_of_trial[i][1:] for rows_of_trial, _ in trials))
        rows.append((name, *(None if None in c else statistics.median(c) for c in columns)))
    notes = [note for _, trial_notes in trials for note in trial_notes]

    print(f"Tessera under {args.master} and PySpark local[2], same machine, same run; "
          f"seconds, medians of {args.trials} trial(s)\n")
    print("| workload | Tessera | PySpark | PySpark / Tessera | plain Rust, 1 thread | Tessera / plain Rust |")
    print("|---|---|---|---|---|---|")
    for name, tessera, spark, plain in rows:
        plain_cells = f"{plain:.3f} | {tessera / plain:.1f}" if plain else " | "
        print(f"| {name} | {tessera:.3f} | {spark:.3f} | {spark / tessera:.1f}x | {plain_cells} |")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
