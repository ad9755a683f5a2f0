#!/usr/bin/env python3
"""The interactive path against evcxr, measured in one run (`bench/interactive.py`).

    cargo build --release --workspace --bins
    python3 bench/interactive.py --bin-dir target/release --trials 5

Installs evcxr's own front ends, `evcxr` (crate evcxr_repl) and `evcxr_jupyter`, version
0.22.0 (the evcxr Tessera embeds), with `cargo install --locked` under
~/.cache/tessera/bench-tools (skipped when they are there), then, alternating Tessera and
evcxr within every trial, times:

* session ready: from starting the front end to the result of a first cell, for the REPL
  (`40 + 2` in a pseudo-terminal, typed at once into `tessera`, at evcxr's first prompt, which
  comes within milliseconds: its line editor drops what was typed before), for a one-cell script (`tessera run`; evcxr
  reads the same cell from a pipe) and for the Jupyter kernel (jupyter_client: start the
  kernel, execute `1 + 1`, receive its result);
* a trivial cell's round trip, in the kernel (execute to reply);
* a cell with three closures: on an RDD in Tessera
  (`sc.parallelize(v.clone(), 4).map(..).filter(..).map(..).count()`), on a plain iterator in
  evcxr (`v.iter().map(..).filter(..).map(..).count()`), in the kernel.

Every session runs under Tessera's per-user build cache, warmed by one untimed start of each
front end before the trials. It prints a Markdown table of medians, the ratio to evcxr and the
goals of the interactive path; it asserts nothing about times. jupyter_client and pexpect come
from the test virtualenv (TESSERA_VENV, default ~/.cache/tessera/venv), created with
tests/requirements.txt if missing.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import itertools
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tessera"
EVCXR_VERSION = "0.22.0"
REPO = Path(__file__).resolve().parent.parent

SETUP = "let v: Vec<u64> = (0..100_000).collect();"
# Tessera keeps compiled cells per user by a hash of their source, so a cell run again (a
# notebook, a script) is not compiled again. Timed cells are never run twice: each carries a
# number of its own (`(N + 2) - N`), so every timing includes compiling the cell, on both sides.
_FRESH = itertools.count(int(time.time() * 1000) % 10**6)


def trivial(result=2):
    """A cell giving `result` that no session has compiled before."""
    n = next(_FRESH)
    return f"({n} + {result}) - {n}"


def tessera_closures():
    n = next(_FRESH)
    return ("sc.parallelize(v.clone(), 4).map(|x| x * 2).filter(|x| x % 3 == 0)"
            f".map(|x| x + {n} - {n} + 1).count()")


def evcxr_closures():
    n = next(_FRESH)
    return f"v.iter().map(|x| x * 2).filter(|x| x % 3 == 0).map(|x| x + {n} - {n} + 1).count()"


# Both count the multiples of 3 among 0, 2, ..., 199_998.
CLOSURES_RESULT = "33334"
# The goals of the interactive path, in seconds.
READY_GOAL = 3.0
CLOSURES_GOAL = 0.4
TRIVIAL_GOAL = 0.15
TIMEOUT = 600
# Seconds between the keys of a cell typed into a REPL.
KEY_INTERVAL = 0.01


def ensure_venv():
    """Re-executes this script under the test virtualenv unless jupyter_client and pexpect
    import here."""
    try:
        import jupyter_client  # noqa: F401
        import pexpect  # noqa: F401

        return
    except ImportError:
        pass
    venv = Path(os.environ.get("TESSERA_VENV", CACHE / "venv"))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(REPO / "tests" / "requirements.txt")],
        check=True,
    )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def ensure_evcxr(root):
    """`evcxr` and `evcxr_jupyter` under root/bin, installed with cargo when missing."""
    bins = {name: root / "bin" / name for name in ("evcxr", "evcxr_jupyter")}
    if all(path.exists() for path in bins.values()):
        return bins
    print(f"installing evcxr_repl and evcxr_jupyter {EVCXR_VERSION} into {root} (once)",
          file=sys.stderr)
    subprocess.run(
        ["cargo", "install", "--locked", "--version", EVCXR_VERSION, "evcxr_repl",
         "evcxr_jupyter", "--root", str(root),
         "--target-dir", str(root.parent / (root.name + "-target"))],
        check=True,
    )
    return bins


def median(samples):
    return statistics.median(samples)


class Scratch:
    """Environment shared by every process of the run: history in scratch files, evcxr without
    a user's init files, no colour."""

    def __init__(self, master):
        self.dir = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
        (self.dir / "evcxr-config").mkdir()
        self.env = dict(
            os.environ,
            NO_COLOR="1",
            TERM="xterm",
            TESSERA_MASTER=master,
            TESSERA_HISTORY=str(self.dir / "repl-history.txt"),
            TESSERA_HISTORY_FILE=str(self.dir / "kernel-history.jsonl"),
            EVCXR_CONFIG_DIR=str(self.dir / "evcxr-config"),
        )
        self.script = self.dir / "one.rs"

    def fresh_script(self):
        """The one-cell script, with a cell no session has compiled."""
        self.script.write_text(trivial() + "\n")
        return self.script

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The REPLs, in a pseudo-terminal.


def repl_ready(argv, scratch, prompt=None):
    """Seconds from starting a REPL to the result of a first cell, typed at once, or as soon
    as `prompt` shows when given (evcxr's line editor drops what was typed before its first
    prompt, which it shows within milliseconds, initialising in the background)."""
    import pexpect

    started = time.monotonic()
    child = pexpect.spawn(argv[0], argv[1:], env=scratch.env, cwd=str(scratch.dir),
                          encoding="utf-8", codec_errors="replace", dimensions=(50, 400),
                          timeout=TIMEOUT)
    # pexpect waits 50 ms before every send by default: not part of either REPL.
    child.delaybeforesend = None
    try:
        if prompt:
            child.expect_exact(prompt)
        # Key by key, as typed: evcxr's line editor loses a line that arrives in one read.
        for key in trivial(42) + "\r":
            child.send(key)
            time.sleep(KEY_INTERVAL)
        # The echo is the cell; the result is `42` on a line of its own.
        child.expect(r"[\r\n]42\r?\n")
        return time.monotonic() - started
    finally:
        child.close(force=True)


# ---------------------------------------------------------------------------------------------
# A one-cell script.


def script_ready(argv, stdin_path, scratch):
    """Seconds from starting `argv` to the line `2` on its standard output."""
    started = time.monotonic()
    with open(stdin_path) if stdin_path else contextlib.nullcontext(subprocess.DEVNULL) as stdin:
        proc = subprocess.Popen(argv, env=scratch.env, cwd=str(scratch.dir), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            for line in proc.stdout:
                if line.strip() == "2":
                    return time.monotonic() - started
            raise RuntimeError(f"{argv[0]} ended without printing the result of `1 + 1`")
        finally:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# The kernels, through jupyter_client.


def write_kernelspec(dir, name, argv):
    spec = dir / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "rust"}))


def execute(kc, code):
    """Runs `code` in the kernel; gives (seconds to the reply, text of its result)."""
    outputs = []
    started = time.monotonic()
    reply = kc.execute_interactive(code, output_hook=outputs.append, timeout=TIMEOUT,
                                   allow_stdin=False)
    seconds = time.monotonic() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"`{code}` failed: {reply['content']}")
    text = "".join(m["content"]["data"].get("text/plain", "") for m in outputs
                   if m["msg_type"] == "execute_result")
    return seconds, text.strip()


def kernel_session(name, scratch, cells):
    """Starts kernel `name`, times a first trivial cell from the start, then each of `cells`
    (a function making the code, expected result or None); gives (ready seconds, [seconds per
    cell])."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    ksm = KernelSpecManager(kernel_dirs=[str(scratch.dir / "kernels")])
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    saved = os.environ.copy()
    os.environ.update(scratch.env)
    started = time.monotonic()
    try:
        # Quiet: evcxr_jupyter says on its standard output which configuration it read.
        km.start_kernel(cwd=str(scratch.dir), stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        _, result = execute(kc, trivial())
        ready = time.monotonic() - started
        if result != "2":
            raise RuntimeError(f"{name}: the first cell gave {result!r}")
        times = []
        for make, expected in cells:
            code = make()
            seconds, result = execute(kc, code)
            if expected is not None and result != expected:
                raise RuntimeError(f"{name}: `{code}` gave {result!r}, not {expected!r}")
            times.append(seconds)
        return ready, times
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ---------------------------------------------------------------------------------------------


def main():
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release",
                        help="where tessera and tessera-kernel are (a release build)")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--cells", type=int, default=3,
                        help="timed runs of each cell per kernel session")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--tools", type=Path, default=CACHE / "bench-tools",
                        help="where evcxr_repl and evcxr_jupyter are installed")
    args = parser.parse_args()

    evcxr = ensure_evcxr(args.tools)
    tessera = str(args.bin_dir / "tessera")
    kernel = str(args.bin_dir / "tessera-kernel")
    scratch = Scratch(args.master)
    write_kernelspec(scratch.dir, "tessera", [kernel, "--connection-file", "{connection_file}"])
    write_kernelspec(scratch.dir, "evcxr",
                     [str(evcxr["evcxr_jupyter"]), "--control_file", "{connection_file}"])

    tessera_cells = [(lambda: SETUP, None)] + [(trivial, "2")] * args.cells + [
        (tessera_closures, CLOSURES_RESULT)] * args.cells
    evcxr_cells = [(lambda: SETUP, None)] + [(trivial, "2")] * args.cells + [
        (evcxr_closures, CLOSURES_RESULT)] * args.cells

    runs = {
        "repl": {
            "tessera": lambda: repl_ready([tessera, "--master", args.master], scratch),
            "evcxr": lambda: repl_ready([str(evcxr["evcxr"])], scratch, prompt=">> "),
        },
        "script": {
            "tessera": lambda: script_ready(
                [tessera, "--master", args.master, "run", str(scratch.fresh_script())], None, scratch),
            "evcxr": lambda: script_ready([str(evcxr["evcxr"])], scratch.fresh_script(), scratch),
        },
        "kernel": {
            "tessera": lambda: kernel_session("tessera", scratch, tessera_cells),
            "evcxr": lambda: kernel_session("evcxr", scratch, evcxr_cells),
        },
    }
    samples = {(kind, side): [] for kind in runs for side in ("tessera", "evcxr")}
    cells = {(kind, side): [] for kind in ("trivial", "closures") for side in ("tessera", "evcxr")}
    try:
        print("warming up (one untimed start of each)", file=sys.stderr)
        for kind in runs:
            for side in ("tessera", "evcxr"):
                runs[kind][side]()
        for trial in range(args.trials):
            # Alternate which side goes first, so that neither always runs on a warmer machine.
            order = ("tessera", "evcxr") if trial % 2 == 0 else ("evcxr", "tessera")
            for kind in runs:
                for side in order:
                    result = runs[kind][side]()
                    if kind == "kernel":
                        ready, times = result
                        samples[(kind, side)].append(ready)
                        cells[("trivial", side)] += times[1:1 + args.cells]
                        cells[("closures", side)] += times[1 + args.cells:]
                    else:
                        samples[(kind, side)].append(result)
            print(f"trial {trial + 1} of {args.trials} done", file=sys.stderr)
    finally:
        scratch.close()

    rows = [
        ("session ready, REPL (`tessera` / `evcxr`), a first cell typed at once",
         samples[("repl", "tessera")], samples[("repl", "evcxr")], READY_GOAL),
        ("session ready, one-cell script (`tessera run` / `evcxr` reading a pipe)",
         samples[("script", "tessera")], samples[("script", "evcxr")], READY_GOAL),
        ("session ready, kernel (start, a trivial cell, result)",
         samples[("kernel", "tessera")], samples[("kernel", "evcxr")], READY_GOAL),
        ("trivial cell, kernel round trip",
         cells[("trivial", "tessera")], cells[("trivial", "evcxr")], TRIVIAL_GOAL),
        ("cell with three closures (Tessera: on an RDD; evcxr: on an iterator)",
         cells[("closures", "tessera")], cells[("closures", "evcxr")], CLOSURES_GOAL),
    ]
    print(f"\nInteractive path under {args.master}: medians of {args.trials} trials "
          f"(cells: {args.cells} per kernel session)\n")
    print("| measure | Tessera | evcxr 0.22 | Tessera / evcxr | goal | met |")
    print("|---|---|---|---|---|---|")
    for name, ours, theirs, goal in rows:
        ours, theirs = median(ours), median(theirs)
        print(f"| {name} | {ours * 1e3:.0f} ms | {theirs * 1e3:.0f} ms | {ours / theirs:.2f} "
              f"| ≤ {goal * 1e3:.0f} ms | {'yes' if ours <= goal else 'no'} |")


if __name__ == "__main__":
    main()
