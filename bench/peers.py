#!/usr/bin/env python3
"""Tessera against its peers on the same machine, in one run: word count, logistic regression
and PageRank, each under Tessera (`tessera run` of the notebooks/ script, release build), Scala
Spark (`spark-shell -i` of the peers' scala/ scripts), PySpark (the peers' *_spark.py scripts)
and, for word count, polars; and each as a single-threaded plain-Rust loop (`tessera-baseline`),
the physical baseline. PageRank also runs as bench/pagerank_partitioned_spark.py: PySpark given
the partitioning that the Scala script and Tessera's notebook use. PageRank's plain loop, whose
links are in memory before its clock starts, is compared with the notebook's iterations over
its cached links (a row of its own).

Every side's answers are checked against the others' on the benchmark inputs (word count:
distinct and total words, and the full counts of PySpark, polars and a Python Counter, which
wordcount_polars.py compares; LR: the final weights; PageRank: the number of ranked pages, their
sum, and every rank where a side gives them all), and a disagreement stops the run. Prints a
markdown table of the job times (each side's own timing) and one of whole-process times (the
wall clock of `tessera run`, of spark-shell, of the PySpark script's python).

    python3 bench/peers.py --peers PEER_BENCH_DIR [--data DIR] [--bin-dir target/release]
                           [--master 'local[2]'] [--only wordcount,lr,pagerank] [--trials N]
                           [--no-scala] [--no-pyspark] [--spark-shell PATH]

PEER_BENCH_DIR holds gen_data.py, the *_spark.py scripts, wordcount_polars.py and scala/. The
inputs are generated there into --data (default ~/.cache/tessera/bench-data) if missing;
PySpark, polars and this script's answer check (numpy) run from a virtualenv (default
~/.cache/tessera/peers/venv, created with pyspark, polars, numpy and psutil if missing). Scala
Spark runs under --spark-shell (default $SPARK_SHELL, else the venv's PySpark's spark-shell,
so both Spark sides are the same Spark; it needs Java 17).
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
from types import SimpleNamespace

import peer_answers as answers

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tessera"
ITERATIONS = 10


def venv_python(venv):
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "pyspark", "polars", "numpy", "psutil"], check=True)
    return python


def result_line(output):
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("no RESULT line in:\n" + output[-3000:])


def timed(argv, **kwargs):
    """Runs a process to its end: (CompletedProcess, seconds of wall clock)."""
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return out, time.perf_counter() - started


def run_peer_script(python, script, args, workdir, peers):
    """Runs a Python peer script (PySpark's or polars'), with `peers` on its path for
    spark_common.py: (RESULT, seconds of the whole python process)."""
    out, seconds = timed([str(python), str(script), *args], cwd=workdir,
                         env=dict(os.environ, PYTHONPATH=str(peers)))
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return result_line(out.stdout), seconds


def run_scala(spark_shell, peers, script, data, workdir):
    """Runs a Scala Spark script with the peers' scala/run.sh: (RESULT, seconds of the whole
    spark-shell)."""
    argv = [str(peers / "scala" / "run.sh"), script, str(data), str(ITERATIONS)]
    out, seconds = timed(argv, cwd=workdir, env=dict(os.environ, SPARK_SHELL=str(spark_shell)))
    if out.returncode != 0:
        # run.sh drops spark-shell's stderr; say how to see it.
        raise RuntimeError(f"scala/{script} failed (exit {out.returncode}): rerun "
                           f"`SPARK_SHELL={spark_shell} {' '.join(argv)}` without its "
                           f"2>/dev/null to see why.\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return result_line(out.stdout), seconds


def venv_spark_shell(python):
    """spark-shell of the venv's PySpark."""
    out = subprocess.run([str(python), "-c",
                          "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "bin" / "spark-shell"


def executor_processes(process):
    """The executor processes under `process` (psutil's), found by a scan of every process."""
    import psutil
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if child.name() == "tessera-executor":
                found.append(child)
        except psutil.Error:
            pass
    return found


def executors_rss(executors):
    """Resident bytes of `executors` (psutil processes), or None if one of them is gone."""
    import psutil
    try:
        return sum(executor.memory_info().rss for executor in executors)
    except psutil.Error:
        return None


class ExecutorMemory:
    """The resident memory of the executors under a process, sampled cheaply: finding them scans
    every process on the machine (about a millisecond of CPU), so that is done until some are
    found, when one is gone, and otherwise once a second (for executors started later), and a
    sample reads only their own memory. Scanning at every sample (a millisecond each 20 ms)
    took about 5% of a core in the middle of the iterations being timed; three runs each way
    of `--only lr` did not show it in their times, but the sampler should not compete with
    what it watches."""

    RESCAN_S = 1.0

    def __init__(self, process):
        self.process = process
        self.executors = []
        self.scanned = float("-inf")

    def rss(self):
        if self.executors and time.monotonic() - self.scanned < self.RESCAN_S:
            rss = executors_rss(self.executors)
            if rss is not None:
                return rss
        self.executors = executor_processes(self.process)
        self.scanned = time.monotonic()
        return executors_rss(self.executors) or 0


def run_tessera(bin_dir, master, notebook, data_file, workdir, memory=None, env=None):
    """Runs a notebook, with `env` added to the environment; returns its stdout and the seconds
    of the whole `tessera run` process. With `memory` (a dict), also samples the executors'
    resident memory every 20 ms and records it when the notebook prints its `points:` line
    (before the first job), its peak, and its last sample."""
    env = dict(os.environ, TESSERA_EXAMPLE_INPUT=str(data_file),
               TESSERA_EXAMPLE_ITERATIONS=str(ITERATIONS), NO_COLOR="1", **(env or {}))
    started = time.perf_counter()
    process = subprocess.Popen([str(bin_dir / "tessera"), "--master", master,
                                "--executor-memory-mb", "4096", "run",
                                str(REPO / "notebooks" / notebook)],
                               cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    sampler = None
    executors = ExecutorMemory(process)
    if memory is not None:
        def sample():
            while process.poll() is None:
                rss = executors.rss()
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
            memory["start"] = executors.rss()
    process.wait()
    seconds = time.perf_counter() - started
    stderr_reader.join()
    if sampler:
        sampler.join()
    stdout, stderr = "".join(stdout_lines), "".join(stderr_lines)
    if process.returncode != 0:
        raise RuntimeError(f"{notebook} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return stdout, seconds


def run_baseline(bin_dir, workload, data, *extra):
    return result_line(subprocess.run(
        [str(bin_dir / "tessera-baseline"), workload, str(data), *extra],
        capture_output=True, text=True, check=True).stdout)


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


def fresh(path):
    """`path`, removed if a previous run left it, so that a side's answers are this run's."""
    path.unlink(missing_ok=True)
    return path


# One trial of each workload. Each returns its rows of job times, (name, {column: seconds}),
# its rows of whole-process times, its notes and the lines of its answer check; the columns are
# tessera, scala, pyspark, plain and polars, each present when that side ran.

def word_count_trial(run, data):
    rows, whole, given = {}, {}, {}
    results = run.workdir / "results"
    spark_counts = fresh(results / "wordcount_spark.tsv")
    if run.pyspark:
        spark, whole["pyspark"] = run_peer_script(run.python, run.peers / "wordcount_spark.py",
                                                  [str(data)], run.workdir, run.peers)
        rows["pyspark"] = spark["total_s"]
        given["PySpark"] = {"distinct words": spark["distinct_words"],
                            "total words": spark["total_words"]}
    # After PySpark: wordcount_polars.py compares the full counts PySpark wrote with its own.
    polars, _ = run_peer_script(run.python, run.peers / "wordcount_polars.py", [str(data), "1"],
                                run.workdir, run.peers)
    rows["polars"] = polars["polars_lazy_s"][0]
    given["Python Counter"] = {"distinct words": polars["distinct_words"],
                               "total words": polars["total_words"]}
    if run.scala:
        scala, whole["scala"] = run_scala(run.spark_shell, run.peers, "wordcount.scala", data,
                                          run.workdir)
        rows["scala"] = scala["total_s"]
        given["Scala Spark"] = {"distinct words": scala["distinct_words"],
                                "total words": scala["total_words"]}
    out, whole["tessera"] = run_tessera(run.bin_dir, run.master, "word_count.rs", data,
                                        run.workdir)
    rows["tessera"] = millis(out, r"word count took ([\d.]+) ms")[0]
    given["Tessera"] = answers.tessera_word_count(out)
    plain = run_baseline(run.bin_dir, "wordcount", data)
    rows["plain"] = plain["total_s"]
    # tessera-baseline prints the distinct words only.
    given["plain Rust"] = {"distinct words": plain["distinct_words"]}
    checked = answers.check("word count", given)
    checked.append(full_word_counts(polars, spark_counts if run.pyspark else None))
    name = f"word count, {data.stat().st_size / 1e6:.3g} MB"
    return [(name, rows)], [(name, whole)], [], checked


def full_word_counts(polars, spark_counts):
    """Checks wordcount_polars.py's comparison of the full counts: polars (lazy and eager) and
    PySpark's tsv, each against a Python Counter's. Returns the line saying so."""
    compared = {"polars lazy": "polars_lazy_equals_counter",
                "polars eager": "polars_eager_equals_counter"}
    if spark_counts is not None:
        compared[f"PySpark ({spark_counts.name})"] = "spark_equals_counter"
    for side, key in compared.items():
        if key not in polars:
            raise RuntimeError(f"wordcount_polars.py did not compare {side}'s counts: {polars}")
        if polars[key] is not True:
            raise answers.AnswersDiffer(f"word count: the full counts of {side} and of the "
                                        f"Python Counter (wordcount_polars.py) differ")
    return f"every word's count: Python Counter = {' = '.join(compared)}"


def lr_trial(run, data):
    first, later, total, whole, given, notes = {}, {}, {}, {}, {}, []
    if run.pyspark:
        spark, whole["pyspark"] = run_peer_script(run.python, run.peers / "lr_spark.py",
                                                  [str(data), str(ITERATIONS)], run.workdir,
                                                  run.peers)
        first["pyspark"], total["pyspark"] = spark["iter_s"][0], spark["total_s"]
        later["pyspark"] = statistics.mean(spark["iter_s"][1:])
    if run.scala:
        scala, whole["scala"] = run_scala(run.spark_shell, run.peers, "lr.scala", data,
                                          run.workdir)
        first["scala"], later["scala"] = scala["first_iter_s"], scala["later_iter_mean_s"]
        total["scala"] = scala["total_s"]
        given["Scala Spark"] = answers.scala_lr(scala)
    memory = {}
    out, whole["tessera"] = run_tessera(run.bin_dir, run.master, "logistic_regression.rs", data,
                                        run.workdir, memory)
    iterations = millis(out, r"iteration \d+: ([\d.]+) ms")
    first["tessera"], total["tessera"] = iterations[0], sum(iterations)
    later["tessera"] = statistics.mean(iterations[1:])
    given["Tessera"] = answers.tessera_lr(out)
    plain = run_baseline(run.bin_dir, "lr", data, str(ITERATIONS))
    later["plain"] = statistics.mean(plain["iter_s"][1:])
    notes.append("LR's plain loop calls the executors' exp (tessera-libm); with the C library's "
                 "own exp its later iterations take "
                 f"{statistics.mean(plain['iter_s_c_library_exp'][1:]):.4f} s (mean).")
    # tessera-baseline prints only the first of the final weights (as "w0").
    given["plain Rust"] = {"final w[0]": plain["w0"],
                           "last mean loss, 6 decimals": round(plain["mean_loss"], 6)}
    given["numpy reference"] = lr_reference(run, data, answers.LR_START)
    own_start = pyspark_lr(run, data, spark, given) if run.pyspark else []
    checked = answers.check("LR", given) + own_start
    notes.append(memory_note(run.lr_points, out, memory))
    name = f"LR, {run.lr_points:,} points"
    rows = [(f"{name}: first iteration", first), ("LR: later iteration (mean)", later),
            (f"LR: {ITERATIONS} iterations", total)]
    return rows, [(name, whole)], notes, checked


def pyspark_lr(run, data, spark, given):
    """Checks PySpark's final weights. lr_spark.py draws its own start (numpy RandomState(42)):
    from the others' start, its weights join `given`; from another, they are checked against
    numpy's from that start alone. Returns the lines saying so."""
    w = spark["w_final"]
    if all(answers.close(a, b) for a, b in zip(spark["w0"], answers.LR_START)):
        given["PySpark"] = {"final w": w, "final w[0]": w[0]}
        return []
    own = answers.check("LR", {
        "PySpark": {"final w from PySpark's start": w},
        "numpy reference": {"final w from PySpark's start":
                            lr_reference(run, data, spark["w0"])["final w"]}})
    return own + ["PySpark's lr_spark.py starts from a random w (numpy RandomState(42)), not "
                  "from the others' (i/10 - 0.5), so its final w cannot be theirs: it is "
                  "checked against numpy's from its own start"]


def lr_reference(run, data, start):
    """numpy's final weights from `start`, computed once a run for each start (and the points
    loaded once)."""
    if "points" not in run.lr_cache:
        run.lr_cache["points"] = answers.load_points(data)
    key = tuple(start)
    if key not in run.lr_cache:
        w = answers.lr_reference(run.lr_cache["points"], start, ITERATIONS)
        run.lr_cache[key] = {"final w": w, "final w[0]": w[0]}
    return run.lr_cache[key]


def memory_note(lr_points, out, memory):
    raw = lr_points * 10 * 8
    cached = cached_bytes(out)
    start = memory.get("start", 0)
    peak, last = memory.get("peak", 0) - start, memory.get("last", 0) - start
    return (f"LR: {lr_points} points, whose raw features are {raw / 2**20:.0f} MiB of f64. "
            f"Cached, they take {cached / 2**20:.1f} MiB of executor memory "
            f"({cached / raw:.2f}x; `:storage`, from the block manager's accounting). "
            f"The executors' resident memory (from {start / 2**20:.0f} MiB before the "
            f"first job) grew by {peak / 2**20:.0f} MiB at its peak ({peak / raw:.2f}x), "
            f"while the file was parsed and cached, and held {last / 2**20:.0f} MiB more "
            f"({last / raw:.2f}x) with the points cached, at the last iteration.")


def pagerank_trial(run, data):
    times, partitioned, whole, whole_partitioned, given = {}, {}, {}, {}, {}
    if run.pyspark:
        times["pyspark"], whole["pyspark"], given["PySpark"] = pyspark_pagerank(
            run, run.peers / "pagerank_spark.py", data)
        partitioned["pyspark"], whole_partitioned["pyspark"], given["PySpark partitioned"] = \
            pyspark_pagerank(run, REPO / "bench" / "pagerank_partitioned_spark.py", data)
    if run.scala:
        scala, whole["scala"] = run_scala(run.spark_shell, run.peers, "pagerank.scala", data,
                                          run.workdir)
        times["scala"] = scala["total_s"]
        # pagerank.scala prints the count and the sum of the ranks, not the ranks.
        given["Scala Spark"] = {"ranked pages": scala["n_ranked"], "rank sum": scala["rank_sum"]}
    # Every rank printed, to be compared: after the timed job, but inside the whole process.
    out, whole["tessera"] = run_tessera(run.bin_dir, run.master, "pagerank.rs", data,
                                        run.workdir, env={"TESSERA_EXAMPLE_ALL": "1"})
    times["tessera"] = partitioned["tessera"] = millis(out, r"pagerank took ([\d.]+) ms")[0]
    whole_partitioned["tessera"] = whole["tessera"]
    given["Tessera"] = answers.tessera_pagerank(out)
    # The plain loop times its iterations over links already in memory; the notebook prints
    # those apart from reading, grouping and caching the links, which the peers' times include.
    plain = run_baseline(run.bin_dir, "pagerank", data, str(ITERATIONS))
    in_memory = {"tessera": millis(out, r"iterations took ([\d.]+) ms")[0],
                 "plain": plain["total_s"]}
    # tessera-baseline prints the count and the sum of the ranks, not the ranks.
    given["plain Rust"] = {"ranked pages": plain["n_ranked"], "rank sum": plain["rank_sum"]}
    checked = answers.check("PageRank", given)
    name = f"PageRank, {run.edges:,} edges, {ITERATIONS} iterations"
    other = "PageRank: PySpark partitioned as Scala Spark and Tessera"
    rows = [(name, times)]
    whole_rows = [(name, whole)]
    if run.pyspark:
        rows.append((other, partitioned))
        whole_rows.append((other, whole_partitioned))
    rows.append((f"PageRank: the {ITERATIONS} iterations, links in memory", in_memory))
    return rows, whole_rows, [], checked


def pyspark_pagerank(run, script, data):
    """Runs a PySpark PageRank script, which writes its ranks to results/SCRIPT_NAME.txt: its job
    time, its whole process's and its answers."""
    ranks = fresh(run.workdir / "results" / (script.stem + ".txt"))
    result, seconds = run_peer_script(run.python, script, [str(data), str(ITERATIONS)],
                                      run.workdir, run.peers)
    return result["total_s"], seconds, {"ranked pages": result["n_ranked"],
                                        "rank sum": result["rank_sum"],
                                        "every rank": answers.spark_ranks(ranks)}


def medians(trials):
    """The rows of the first trial, each cell the median over the trials (left out when a trial
    lacks it)."""
    rows = []
    for i, (name, _) in enumerate(trials[0]):
        cells = [trial[i][1] for trial in trials]
        columns = {column for row in cells for column in row}
        rows.append((name, {column: statistics.median(row[column] for row in cells)
                            for column in columns if all(column in row for row in cells)}))
    return rows


def seconds(value):
    """Three decimals, or four under a tenth of a second (an LR iteration's few milliseconds)."""
    if value is None:
        return ""
    return f"{value:.4f}" if value < 0.1 else f"{value:.3f}"


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return ""
    r = numerator / denominator
    return f"{r:.2f}x" if r < 2 else f"{r:.1f}x"


def job_table(rows):
    print("| workload | Tessera | Scala Spark | Scala / Tessera | PySpark | PySpark / Tessera "
          "| plain Rust, 1 thread | Tessera / plain | polars (lazy) | Tessera / polars |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, c in rows:
        t, scala, spark, plain, polars = (c.get(k) for k in
                                          ("tessera", "scala", "pyspark", "plain", "polars"))
        print(f"| {name} | {seconds(t)} | {seconds(scala)} | {ratio(scala, t)} | "
              f"{seconds(spark)} | {ratio(spark, t)} | {seconds(plain)} | {ratio(t, plain)} | "
              f"{seconds(polars)} | {ratio(t, polars)} |")


def process_table(rows):
    print("| workload | Tessera | Scala Spark | Scala / Tessera | PySpark | PySpark / Tessera |")
    print("|---|---|---|---|---|---|")
    for name, c in rows:
        t, scala, spark = (c.get(k) for k in ("tessera", "scala", "pyspark"))
        print(f"| {name} | {seconds(t)} | {seconds(scala)} | {ratio(scala, t)} | "
              f"{seconds(spark)} | {ratio(spark, t)} |")


def main():
    parser = common_arguments("wordcount,lr,pagerank")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-scala", action="store_true", help="skip Scala Spark")
    parser.add_argument("--no-pyspark", action="store_true", help="skip PySpark")
    parser.add_argument("--spark-shell", type=Path, default=os.environ.get("SPARK_SHELL") or None,
                        help="spark-shell for the Scala side (default: $SPARK_SHELL, else the "
                             "venv's PySpark's)")
    args = parser.parse_args()
    peers = args.peers.resolve()
    python = venv_python(args.venv)
    try:
        import numpy  # noqa: F401  (the LR answers' reference)
        import psutil  # noqa: F401  (samples the executors' memory)
    except ImportError:
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
    args.data.mkdir(parents=True, exist_ok=True)
    workdir = CACHE / "peers" / "work"
    (workdir / "results").mkdir(parents=True, exist_ok=True)
    files = {"wordcount": "words.txt", "lr": "lr_points.txt", "pagerank": "graph_rmat.txt"}
    wanted = args.only.split(",")
    for name in wanted:
        if not (args.data / files[name]).exists():
            kind = {"wordcount": "words", "lr": "lr", "pagerank": "graph"}[name]
            subprocess.run([str(python), str(peers / "gen_data.py"), kind], check=True,
                           env=dict(os.environ, BENCH_DATA=str(args.data)))

    def lines(name):
        return sum(1 for _ in open(args.data / files[name])) if name in wanted else 0

    run = SimpleNamespace(
        python=python, peers=peers, bin_dir=args.bin_dir.resolve(), master=args.master,
        workdir=workdir, scala=not args.no_scala, pyspark=not args.no_pyspark,
        spark_shell=None if args.no_scala else (args.spark_shell or venv_spark_shell(python)),
        # Counted once: the files are read by every trial's runs already.
        lr_points=lines("lr"), edges=lines("pagerank"), lr_cache={})
    workloads = {"wordcount": word_count_trial, "lr": lr_trial, "pagerank": pagerank_trial}

    def trial():
        rows, whole, notes, checked = [], [], [], {}
        for name in wanted:
            r, w, n, c = workloads[name](run, args.data / files[name])
            rows += r
            whole += w
            notes += n
            checked[name] = c
        return rows, whole, notes, checked

    trials = [trial() for _ in range(args.trials)]

    sides = ["Tessera under " + args.master] + [s for s, on in (
        ("Scala Spark local[2]", run.scala), ("PySpark local[2]", run.pyspark)) if on]
    print(f"{', '.join(sides)}, polars and a plain-Rust loop, same machine, same run; "
          f"seconds, medians of {args.trials} trial(s).\n")
    print("Job time, as each side times itself:\n")
    job_table(medians([t[0] for t in trials]))
    print("\nWhole-process time (wall clock of `tessera run`, of spark-shell -i, of the PySpark "
          "script's python; Tessera's PageRank process also prints every rank, for the answer "
          "check):\n")
    process_table(medians([t[1] for t in trials]))
    if "pagerank" in wanted and run.scala:
        print("\nScala Spark's PageRank hash-partitions the links once and gives the ranks the "
              "same partitioner, as Tessera's notebook does; the PySpark example does not, and "
              "the second PageRank row gives it that help (bench/pagerank_partitioned_spark.py).")
    for note in (note for t in trials for note in t[2]):
        print(f"\n{note}")
    print(f"\nAnswers, checked against each other in each of the {args.trials} trial(s) "
          f"(floats within a relative {answers.REL_TOL:g}):")
    titles = {"wordcount": "word count", "lr": "LR", "pagerank": "PageRank"}
    for name, checked in trials[-1][3].items():
        for line in checked:
            print(f"- {titles[name]}: {line}")


if __name__ == "__main__":
    try:
        main()
    except answers.AnswersDiffer as error:
        sys.exit(f"ANSWERS DIFFER — {error}")
