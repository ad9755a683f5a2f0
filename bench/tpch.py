#!/usr/bin/env python3
"""The TPC-H benchmark: queries 1, 3, 5, 6 and 10 (bench/tpch/q*.sql) over the CSV tables that
bench/tpch/generate.sh writes (scale factor 1 by default), in one run under Tessera (its SQL
over cached DataFrames, `tessera --master local[2] run bench/tpch/tpch.rs`, release build),
polars (one process, in-memory DataFrames, `pl.SQLContext`) and Spark SQL (PySpark
`local[2]`, cached DataFrames as temporary views). Each side loads the tables once (timed
apart), then runs each query `--trials` times; the table reports medians and ratios, and
every side's answers are compared with the others'.

    cargo build --release --workspace --bins
    python3 bench/tpch.py [--bin-dir target/release] [--data DIR] [--trials 9] [--only q1,q6]
                          [--skip spark] [--sides-apart]

The data is generated into --data (default ~/.cache/tessera/bench-data/tpch-sf1) if missing.
polars and PySpark run from a virtualenv (default ~/.cache/tessera/peers/venv, created or
completed with polars, pyspark, numpy and psutil if needed): the script re-runs itself under it.
Prints a markdown table and a `RESULT {json}` line.

Every side (Spark SQL too, unless skipped) loads its tables first, and then each query runs on
each side in turn, which side goes first rotating from trial to trial (the Tessera script takes
its queries through a named pipe): this machine's speed drifts by a fifth from minute to minute,
and a comparison of sides run minutes apart measures the drift as much as the sides. Every
ratio the table reports comes from the same minutes. With --sides-apart, each side instead
loads and runs all its queries in a process of its own, one side after the other (its load
and resident memory then measured alone).

Choices, so that the numbers can be read:
- Only the tables the chosen queries read are loaded (part and partsupp never are).
- polars: `pl.read_csv` with the explicit schema below (dates parsed as `pl.Date`, decimals as
  `Float64`, keys as `Int64`) into eager DataFrames, registered `.lazy()` in a `pl.SQLContext`;
  a query is timed as `ctx.execute(sql).collect()`. Its thread pool is POLARS_MAX_THREADS
  (set from --polars-threads, default 2, before polars is imported).
- Spark: `local[2]` bound to 127.0.0.1, `spark.sql.shuffle.partitions=4` (the default 200
  would mean 200 tiny tasks per shuffle on two cores; adaptive execution stays on, as by
  default), UI and console progress bar off, driver memory from --spark-memory (default 6g:
  cached SF1 tables need more than the default 1g). Each CSV is read with an explicit schema
  (dates as DateType, decimals as DoubleType, keys as LongType), `.cache()`d and `.count()`ed
  (which materializes the cache) and registered with `createOrReplaceTempView`; a query is
  timed as `spark.sql(q).collect()`, so planning is included, as it is for polars.
- The query texts are the spec's, comma joins included. polars' SQL joins them in the order of
  the FROM list, with no cost-based reordering: in Q5 that starts with customer joined to
  supplier on the nation key (about 60M rows at SF1), which makes its Q5 some 50x slower than
  with the FROM list reordered (region, nation, customer, orders, lineitem, supplier).
"""
import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERY_DIR = REPO / "bench" / "tpch"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tessera"
DEFAULT_DATA = CACHE / "bench-data" / "tpch-sf1"
DEFAULT_VENV = CACHE / "peers" / "venv"
QUERIES = ["q1", "q3", "q5", "q6", "q10"]
PACKAGES = ["polars", "pyspark", "numpy", "psutil"]

# The TPC-H tables, column by column, in file order: "int" (keys, sizes, counts), "float"
# (the spec's decimals), "date" (YYYY-MM-DD) or "str".
SCHEMAS = {
    "region": [("r_regionkey", "int"), ("r_name", "str"), ("r_comment", "str")],
    "nation": [("n_nationkey", "int"), ("n_name", "str"), ("n_regionkey", "int"),
               ("n_comment", "str")],
    "supplier": [("s_suppkey", "int"), ("s_name", "str"), ("s_address", "str"),
                 ("s_nationkey", "int"), ("s_phone", "str"), ("s_acctbal", "float"),
                 ("s_comment", "str")],
    "customer": [("c_custkey", "int"), ("c_name", "str"), ("c_address", "str"),
                 ("c_nationkey", "int"), ("c_phone", "str"), ("c_acctbal", "float"),
                 ("c_mktsegment", "str"), ("c_comment", "str")],
    "part": [("p_partkey", "int"), ("p_name", "str"), ("p_mfgr", "str"), ("p_brand", "str"),
             ("p_type", "str"), ("p_size", "int"), ("p_container", "str"),
             ("p_retailprice", "float"), ("p_comment", "str")],
    "partsupp": [("ps_partkey", "int"), ("ps_suppkey", "int"), ("ps_availqty", "int"),
                 ("ps_supplycost", "float"), ("ps_comment", "str")],
    "orders": [("o_orderkey", "int"), ("o_custkey", "int"), ("o_orderstatus", "str"),
               ("o_totalprice", "float"), ("o_orderdate", "date"), ("o_orderpriority", "str"),
               ("o_clerk", "str"), ("o_shippriority", "int"), ("o_comment", "str")],
    "lineitem": [("l_orderkey", "int"), ("l_partkey", "int"), ("l_suppkey", "int"),
                 ("l_linenumber", "int"), ("l_quantity", "float"),
                 ("l_extendedprice", "float"), ("l_discount", "float"), ("l_tax", "float"),
                 ("l_returnflag", "str"), ("l_linestatus", "str"), ("l_shipdate", "date"),
                 ("l_commitdate", "date"), ("l_receiptdate", "date"),
                 ("l_shipinstruct", "str"), ("l_shipmode", "str"), ("l_comment", "str")],
}

# The tables each query reads.
TABLES = {
    "q1": ["lineitem"],
    "q3": ["customer", "orders", "lineitem"],
    "q5": ["customer", "orders", "lineitem", "supplier", "nation", "region"],
    "q6": ["lineitem"],
    "q10": ["customer", "orders", "lineitem", "nation"],
}


# ---------------------------------------------------------------------------------------------
# Set-up: the virtualenv, the data, the query texts.

def venv_python(venv=DEFAULT_VENV):
    """The virtualenv's python, the venv created, or completed with PACKAGES, if needed."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import " + ", ".join(PACKAGES)],
                           capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    return python


def ensure_data(data_dir):
    """Generates the TPC-H CSV tables into `data_dir` unless they are there."""
    subprocess.run(["bash", str(QUERY_DIR / "generate.sh")], check=True,
                   env=dict(os.environ, TPCH_DATA=str(data_dir)))


def read_query(name):
    """The text of bench/tpch/`name`.sql, without its comments and a trailing semicolon."""
    text = (QUERY_DIR / f"{name}.sql").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def tables_for(queries):
    return sorted({table for q in queries for table in TABLES[q]})


def median(values):
    return statistics.median(values) if values else None


def rss_bytes(pid):
    import psutil
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


# ---------------------------------------------------------------------------------------------
# polars

def polars_schema(table):
    import polars as pl
    types = {"int": pl.Int64, "float": pl.Float64, "date": pl.Date, "str": pl.String}
    return {name: types[kind] for name, kind in SCHEMAS[table]}


def polars_load(data_dir, tables):
    """Reads the tables into eager DataFrames and registers them, lazy, in an SQLContext.
    Returns (ctx, frames, seconds per table)."""
    import polars as pl
    frames, load_s = {}, {}
    for table in tables:
        start = time.perf_counter()
        frames[table] = pl.read_csv(Path(data_dir) / f"{table}.csv", has_header=True,
                                    schema=polars_schema(table))
        load_s[table] = time.perf_counter() - start
    ctx = pl.SQLContext({table: frame.lazy() for table, frame in frames.items()})
    return ctx, frames, load_s


def polars_query(ctx, sql):
    """Runs one query; returns (seconds, its rows)."""
    start = time.perf_counter()
    result = ctx.execute(sql).collect()
    return time.perf_counter() - start, result.rows()


def loaded_side(queries, load_s, rss_after_load):
    """A side's results as its tables are loaded: {"load_s": {table: s}, "rss_after_load":
    bytes, "times": {q: []}, "answers": {}}, to which `record` adds each query's run."""
    return {"load_s": load_s, "rss_after_load": rss_after_load,
            "times": {q: [] for q in queries}, "answers": {}}


def record(side, q, seconds, rows):
    """Adds a run of query `q` to `side`: its time, and its rows as the answer."""
    side["times"][q].append(seconds)
    side["answers"][q] = rows


def timed_queries(side, queries, trials, run):
    """Runs each query `trials` times with `run` (SQL text -> (seconds, rows)), recorded in
    `side`."""
    for q in queries:
        sql = read_query(q)
        for _ in range(trials):
            record(side, q, *run(sql))


def run_polars(data_dir, queries, trials):
    """Loads, then runs each query `trials` times. Returns {"load_s": {table: s},
    "times": {q: [s, ...]}, "answers": {q: [tuple, ...]}, "rss_after_load": bytes}."""
    ctx, frames, load_s = polars_load(data_dir, tables_for(queries))
    out = loaded_side(queries, load_s, rss_bytes(os.getpid()))
    timed_queries(out, queries, trials, lambda sql: polars_query(ctx, sql))
    del ctx, frames
    gc.collect()
    return out


# ---------------------------------------------------------------------------------------------
# Spark

def spark_session(master="local[2]", shuffle_partitions=4, driver_memory="6g"):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master(master).appName("tpch-peers")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.memory", driver_memory)
             .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_schema(table):
    from pyspark.sql import types as T
    kinds = {"int": T.LongType(), "float": T.DoubleType(), "date": T.DateType(),
             "str": T.StringType()}
    return T.StructType([T.StructField(name, kinds[kind], True) for name, kind in SCHEMAS[table]])


def spark_load(spark, data_dir, tables):
    """Reads, caches (materialized by a count) and registers each table as a temporary view.
    Returns (frames, seconds per table)."""
    frames, load_s = {}, {}
    for table in tables:
        start = time.perf_counter()
        frame = spark.read.csv(str(Path(data_dir) / f"{table}.csv"), header=True,
                               schema=spark_schema(table), dateFormat="yyyy-MM-dd",
                               mode="FAILFAST").cache()
        frame.count()
        frame.createOrReplaceTempView(table)
        frames[table] = frame
        load_s[table] = time.perf_counter() - start
    return frames, load_s


def spark_query(spark, sql):
    """Runs one query; returns (seconds, its rows as tuples)."""
    start = time.perf_counter()
    rows = spark.sql(sql).collect()
    return time.perf_counter() - start, [tuple(row) for row in rows]


def jvm_rss(spark):
    """Resident bytes of the Spark driver JVM (a child of this process)."""
    import psutil
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def open_spark(data_dir, queries, master="local[2]", shuffle_partitions=4, driver_memory="6g"):
    """Starts a Spark session and loads the tables `queries` read. Returns (the session, its
    cached frames, the side as `loaded_side` makes it, with "session_s", the time to start the
    session, and "version")."""
    start = time.perf_counter()
    spark = spark_session(master, shuffle_partitions, driver_memory)
    session_s = time.perf_counter() - start
    try:
        frames, load_s = spark_load(spark, data_dir, tables_for(queries))
    except BaseException:
        spark.stop()
        raise
    side = loaded_side(queries, load_s, jvm_rss(spark))
    side.update(session_s=session_s, version=spark.version)
    return spark, frames, side


def close_spark(spark, frames):
    for frame in frames.values():
        frame.unpersist()
    spark.stop()


def run_spark(data_dir, queries, trials, master="local[2]", shuffle_partitions=4,
              driver_memory="6g"):
    """Like run_polars, for Spark SQL; also "session_s", the time to start the session."""
    spark, frames, out = open_spark(data_dir, queries, master, shuffle_partitions,
                                    driver_memory)
    try:
        timed_queries(out, queries, trials, lambda sql: spark_query(spark, sql))
    finally:
        close_spark(spark, frames)
    return out


# ---------------------------------------------------------------------------------------------
# Tessera

def tessera_value(text):
    """A value as the Tessera script prints it, typed as the peers' values are."""
    if text == "null":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def tessera_command(bin_dir, master, memory_mb):
    return [str(Path(bin_dir) / "tessera"), "--master", master, "--executor-memory-mb",
            str(memory_mb), "run", str(QUERY_DIR / "tpch.rs")]


def tessera_env(data_dir, queries, trials, **extra):
    return dict(os.environ, TESSERA_TPCH_DATA=str(data_dir), TESSERA_TPCH_QUERIES=str(QUERY_DIR),
                TESSERA_TPCH_ONLY=",".join(queries), TESSERA_TPCH_TRIALS=str(trials),
                NO_COLOR="1", **extra)


def parse_tessera(lines, out):
    """Adds what the Tessera script printed (`lines`) to `out`: tables' rows, load time, query
    times and rows."""
    for line in lines:
        if line.startswith("LOAD "):
            out["load_s"] = {"all tables": float(line.split()[1])}
        elif line.startswith("TABLE "):
            _, table, rows = line.split()
            out["rows"][table] = int(rows)
        elif line.startswith("TIME "):
            _, q, seconds = line.split()
            out["times"][q].append(float(seconds))
        elif line.startswith("ROW "):
            name, *values = line[len("ROW "):].split("\t")
            out["answers"][name].append(tuple(tessera_value(v) for v in values))


def empty_side(queries):
    return {"load_s": {"all tables": None}, "times": {q: [] for q in queries},
            "answers": {q: [] for q in queries}, "rows": {}, "rss_after_load": None}


def run_tessera(bin_dir, data_dir, queries, trials, master="local[2]", memory_mb=8192):
    """Like run_polars, for Tessera: `tessera run` of bench/tpch/tpch.rs; also "rows" (the
    tables' row counts, as the script counted them when caching them)."""
    done = subprocess.run(tessera_command(bin_dir, master, memory_mb), cwd=REPO,
                          env=tessera_env(data_dir, queries, trials), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tessera failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    out = empty_side(queries)
    parse_tessera(done.stdout.splitlines(), out)
    return out


def run_interleaved(bin_dir, data_dir, queries, trials, master="local[2]", memory_mb=8192,
                    spark=None):
    """Every side with its tables loaded (one side after the other, so that the loads are timed
    apart), then each query run by each side in turn, `trials` times, which side goes first
    rotating from trial to trial, so that a slow minute of the machine falls on every side
    alike. Tessera and polars always run; Spark SQL too when `spark` holds run_spark's
    settings (master, shuffle_partitions, driver_memory). Returns {side name: its results},
    as run_tessera, run_polars and run_spark give them."""
    import tempfile
    sides, runners = {}, {}
    ctx, frames, load_s = polars_load(data_dir, tables_for(queries))
    sides["polars"] = loaded_side(queries, load_s, rss_bytes(os.getpid()))
    runners["polars"] = lambda q, sql: record(sides["polars"], q, *polars_query(ctx, sql))
    session = None
    if spark is not None:
        session, spark_frames, sides["Spark SQL"] = open_spark(data_dir, queries, **spark)
        runners["Spark SQL"] = lambda q, sql: record(sides["Spark SQL"], q,
                                                     *spark_query(session, sql))

    ours = sides["Tessera"] = empty_side(queries)
    try:
        with tempfile.TemporaryDirectory(prefix="tpch-") as pipes:
            commands, replies = Path(pipes) / "commands", Path(pipes) / "replies"
            os.mkfifo(commands)
            os.mkfifo(replies)
            printed = Path(pipes) / "stdout"
            with open(printed, "w") as stdout:
                tessera = subprocess.Popen(
                    tessera_command(bin_dir, master, memory_mb), cwd=REPO, stdout=stdout,
                    stderr=subprocess.STDOUT,
                    env=tessera_env(data_dir, queries, trials,
                                    TESSERA_TPCH_COMMANDS=str(commands),
                                    TESSERA_TPCH_REPLIES=str(replies)))
                # Each open waits for the script's, which come after its load.
                with open(commands, "w") as ask, open(replies) as answer:
                    def tessera_once(q, sql):
                        ask.write(q + "\n")
                        ask.flush()
                        lines = []
                        for line in answer:
                            if line.rstrip("\n") == "END":
                                break
                            lines.append(line.rstrip("\n"))
                        else:
                            raise RuntimeError(
                                f"tessera stopped during {q}: {printed.read_text()[-3000:]}")
                        parse_tessera(lines, ours)
                    runners["Tessera"] = tessera_once

                    names = list(runners)
                    for q in queries:
                        sql = read_query(q)
                        for trial in range(trials):
                            first = trial % len(names)
                            for name in names[first:] + names[:first]:
                                runners[name](q, sql)
                    ask.write("STOP\n")
            if tessera.wait() != 0:
                raise RuntimeError(f"tessera failed:\n{printed.read_text()[-3000:]}")
            parse_tessera(printed.read_text().splitlines(), ours)
    finally:
        if session is not None:
            close_spark(session, spark_frames)
    del ctx, frames
    gc.collect()
    return {name: sides[name] for name in ("Tessera", "polars", "Spark SQL") if name in sides}


# ---------------------------------------------------------------------------------------------
# Answers

def normalize_value(value):
    import datetime
    import decimal
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, int):
        return value
    return str(value)


def normalize(rows):
    """A result (polars' `.rows()`, Spark's Rows, or any sequence of sequences) as a list of
    tuples: floats rounded to 2 decimals, dates as ISO strings, strings and ints as they are."""
    return [tuple(normalize_value(v) for v in row) for row in rows]


def same_value(a, b, rel_tol=1e-9):
    """Numbers are equal within 1e-9 relative (sums of 6M doubles added in another order
    differ in their last digits, which can move a rounding to 2 decimals by 0.01), or 0.01."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0100001)
    return a == b


def same_answer(a, b):
    """Whether two normalized results are the same rows in the same order; with the first
    difference, as a sentence, if not."""
    if len(a) != len(b):
        return False, f"{len(a)} rows against {len(b)}"
    for i, (row_a, row_b) in enumerate(zip(a, b)):
        if len(row_a) != len(row_b) or not all(map(same_value, row_a, row_b)):
            return False, f"row {i}: {row_a} against {row_b}"
    return True, ""


def compare_answers(answers, reference):
    """{query: (agree, first difference)} for the queries both sides answered."""
    return {q: same_answer(normalize(answers[q]), normalize(reference[q]))
            for q in answers if q in reference}


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release",
                        help="where the tessera binaries are (a release build)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--trials", type=int, default=9,
                        help="runs of each query after the load; the table shows medians")
    parser.add_argument("--only", default=",".join(QUERIES))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--spark-memory", default="6g")
    parser.add_argument("--polars-threads", default="2")
    parser.add_argument("--skip", default="",
                        help="tessera, polars or spark (comma-separated): leave those sides out")
    parser.add_argument("--sides-apart", action="store_true",
                        help="run each side's queries all together, one side after the other, "
                             "instead of each query on every side in turn")
    args = parser.parse_args()
    queries = [q.strip() for q in args.only.split(",") if q.strip()]
    unknown = [q for q in queries if q not in QUERIES]
    if unknown:
        parser.error(f"unknown queries {unknown}; known: {QUERIES}")

    os.environ.setdefault("POLARS_MAX_THREADS", args.polars_threads)
    try:
        import polars  # noqa: F401
        import psutil  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        python = venv_python(args.venv)
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
    import polars as pl
    import pyspark

    ensure_data(args.data)
    data = args.data.resolve()
    skip = set(args.skip.split(",")) if args.skip else set()
    sides = {}
    interleave = not args.sides_apart
    if interleave:
        if {"tessera", "polars"} & skip:
            parser.error("taking turns needs both Tessera and polars: add --sides-apart")
        spark = (None if "spark" in skip else
                 {"master": args.master, "shuffle_partitions": args.shuffle_partitions,
                  "driver_memory": args.spark_memory})
        sides = run_interleaved(args.bin_dir, data, queries, args.trials, args.master,
                                spark=spark)
        print("done, interleaved: " + "; ".join(f"{name} {json.dumps(side['times'])}"
                                                for name, side in sides.items()),
              file=sys.stderr)
    if "tessera" not in skip and not interleave:
        sides["Tessera"] = run_tessera(args.bin_dir, data, queries, args.trials, args.master)
        print(f"Tessera done: {json.dumps(sides['Tessera']['times'])}", file=sys.stderr)
    if "polars" not in skip and not interleave:
        sides["polars"] = run_polars(data, queries, args.trials)
        print(f"polars done: {json.dumps(sides['polars']['times'])}", file=sys.stderr)
    if "spark" not in skip and not interleave:
        sides["Spark SQL"] = run_spark(data, queries, args.trials, args.master,
                                       args.shuffle_partitions, args.spark_memory)
        print(f"Spark done: {json.dumps(sides['Spark SQL']['times'])}", file=sys.stderr)
    # Every side's answers against the first side's (Tessera's when it ran).
    names = list(sides)
    agreement = {other: compare_answers(sides[other]["answers"], sides[names[0]]["answers"])
                 for other in names[1:]}

    def med(name, q):
        return median(sides[name]["times"][q]) if name in sides else None

    print(f"\nTPC-H over {data.name} ({data}) under {args.master}: Tessera "
          f"(release build), polars {pl.__version__} (POLARS_MAX_THREADS="
          f"{os.environ['POLARS_MAX_THREADS']}), Spark {pyspark.__version__} (shuffle "
          f"partitions {args.shuffle_partitions}); seconds, medians of {args.trials} trial(s), "
          f"tables cached before the first query"
          f"{'; the sides taking turns query by query' if interleave else ''}\n")
    print("| query | " + " | ".join(names) + " | Tessera / polars | Spark SQL / Tessera | answers |")
    print("|---|" + "---|" * len(names) + "---|---|---|")
    for q in queries:
        cells = [f"{med(n, q):.3f}" for n in names]
        tp = (f"{med('Tessera', q) / med('polars', q):.2f}x"
              if "Tessera" in sides and "polars" in sides else "")
        st = (f"{med('Spark SQL', q) / med('Tessera', q):.1f}x"
              if "Tessera" in sides and "Spark SQL" in sides else "")
        agree = [ok for ok, _ in (agreement[o][q] for o in agreement if q in agreement[o])]
        verdict = ("all equal" if all(agree) else "DIFFER") if agree else ""
        print(f"| {q} | " + " | ".join(cells) + f" | {tp} | {st} | {verdict} |")
    for name, out in sides.items():
        total = sum(v for v in out["load_s"].values() if v is not None)
        tables = ", ".join(f"{t} {v:.2f}" for t, v in out["load_s"].items() if v is not None)
        extra = f"; session start {out['session_s']:.1f} s" if "session_s" in out else ""
        memory = (f"; resident memory after the load {out['rss_after_load'] / 2**20:.0f} MiB"
                  if out.get("rss_after_load") else "")
        print(f"\n{name} load: {total:.2f} s ({tables}){extra}{memory}")
    differ = [(other, q, why) for other, per_query in agreement.items()
              for q, (ok, why) in per_query.items() if not ok]
    for other, q, why in differ:
        print(f"\n{q}: {other} differs from {names[0]}: {why}")
    if agreement and not differ:
        print(f"\nAll sides agree on {', '.join(queries)}.")

    result = {
        "data": str(data), "trials": args.trials, "master": args.master,
        "shuffle_partitions": args.shuffle_partitions,
        "polars_version": pl.__version__, "pyspark_version": pyspark.__version__,
        "agree": {other: {q: ok for q, (ok, _) in per_query.items()}
                  for other, per_query in agreement.items()},
    }
    for name, out in sides.items():
        result[name] = {
            "load_s": out["load_s"], "times_s": out["times"],
            "median_s": {q: median(t) for q, t in out["times"].items()},
            **({"session_s": out["session_s"]} if "session_s" in out else {}),
        }
    print("RESULT " + json.dumps(result))
    if differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
