"""End-to-end test of the interactive `tessera` REPL in a pseudo-terminal.

Drives `$TESSERA_BIN_DIR/tessera --master local[2]` with pexpect as a person would:
cells, a cached RDD, a long job cancelled with Ctrl-C, `:storage`, `:quit`, and a cell
typed over two lines.

    TESSERA_BIN_DIR=target/debug pytest tests/repl

Without TESSERA_BIN_DIR every test is skipped. TESSERA_REPL_TIMEOUT (seconds, default
600) bounds the start of a session, which compiles the cells' dependencies the first
time on a machine: the prompt comes at once and the first cell waits for the session, so
that cell gets this bound. Every other wait has a bound of its own.

HOME is left as it is: the session's build cache lives under ~/.cache/tessera. The
REPL's history goes to a file in the test's directory (TESSERA_HISTORY).
"""

import os
import re
import signal
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

BIN_DIR = os.environ.get("TESSERA_BIN_DIR")
START_TIMEOUT = float(os.environ.get("TESSERA_REPL_TIMEOUT", "600"))
CELL_TIMEOUT = 180
PROMPT = "tessera> "

pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="set TESSERA_BIN_DIR to the directory holding the tessera binaries"
)

# A job of 2 tasks x 200,000 records at 200 us each (~40 s per task): long enough to be
# cancelled mid-way, and with many 4096-record batches, at which cancellation is checked.
LONG_JOB = (
    "sc.parallelize((0..400_000u64).collect::<Vec<u64>>(), 2)"
    ".map(|x: u64| { std::thread::sleep(std::time::Duration::from_micros(200)); x })"
    ".count()"
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def plain(text):
    """Terminal output as a terminal shows it: without escape sequences, and with what a
    carriage return overwrote (the progress bar, rustyline's redraws) gone."""
    lines = ANSI.sub("", text).replace("\r\n", "\n").split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


class Repl:
    """A `tessera` process in a pty, with a transcript for failure messages."""

    def __init__(self, cwd, **extra_env):
        env = dict(os.environ, NO_COLOR="1", TERM="xterm", TESSERA_HISTORY=str(Path(cwd) / "history.txt"))
        env.update(extra_env)
        self.log = open(Path(cwd) / "transcript.log", "w", encoding="utf-8")
        self.child = pexpect.spawn(
            str(Path(BIN_DIR) / "tessera"),
            ["--master", "local[2]"],
            cwd=str(cwd),
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            # Wide enough that no cell wraps (rustyline redraws wrapped lines).
            dimensions=(50, 400),
            timeout=CELL_TIMEOUT,
        )
        self.child.logfile_read = self.log
        # The session starts behind the prompt; the first cell waits for it.
        self.started = False

    def transcript(self):
        self.log.flush()
        return plain(Path(self.log.name).read_text(encoding="utf-8"))[-4000:]

    def expect_exact(self, what, timeout=CELL_TIMEOUT):
        try:
            return self.child.expect_exact(what, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            pytest.fail(
                f"waiting for {what!r}: {type(e).__name__}\n--- transcript ---\n"
                + self.transcript()
            )

    def wait_prompt(self, timeout=CELL_TIMEOUT):
        """Waits for the next prompt; returns what was printed before it."""
        self.expect_exact(PROMPT, timeout)
        return plain(self.child.before)

    def cell(self, code, timeout=CELL_TIMEOUT):
        """Types a one-line cell and returns its output (echo and all)."""
        self.child.sendline(code)
        out = self.wait_prompt(timeout if self.started else max(timeout, START_TIMEOUT))
        self.started = True
        return out

    def close(self):
        if self.child.isalive():
            self.child.close(force=True)
        self.log.close()


def last_line(output):
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture
def repl(tmp_path):
    session = Repl(tmp_path)
    try:
        session.wait_prompt()
        yield session
    finally:
        session.close()


def test_prompt_comes_before_the_session_and_the_first_cell_waits_for_it(repl):
    # :help needs no session; it answers whether or not the session has started.
    out = repl.cell(":help")
    assert ":storage" in out, out
    out = repl.cell("40 + 2", timeout=START_TIMEOUT)
    assert last_line(out) == "42", out
    out = repl.cell(":executors")
    assert "local-0" in out, out


def test_cache_cancel_storage_and_quit(repl):
    repl.cell("let nums = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4);")
    repl.cell("let evens = nums.filter(|x: &u64| x % 2 == 0).cache();")
    out = repl.cell("evens.count()")
    assert last_line(out) == "500", out
    rdd_id = last_line(repl.cell("evens.id()"))
    assert rdd_id.isdigit(), rdd_id

    # A long job, cancelled with Ctrl-C while it runs.
    repl.child.sendline(LONG_JOB)
    time.sleep(3)
    started = time.monotonic()
    repl.child.sendintr()
    out = repl.wait_prompt(timeout=60)
    assert "cancelled" in out, out
    assert re.search(r"Job \d+ was cancelled", out), out
    # Cancelled well before the job could have finished (~40 s a task).
    assert time.monotonic() - started < 30
    # The cell's progress line stays on the screen with its final state: cancelled, not done.
    final = re.findall(r"^\[[= >]*\] (\w+): job 1 \(.*$", out, re.M)
    assert final == ["cancelled"], out

    # The session and its variables survived; the cached RDD still counts the same.
    out = repl.cell("evens.count()")
    assert last_line(out) == "500", out

    out = repl.cell(":storage")
    rows = [line for line in out.splitlines() if "MEMORY_ONLY" in line]
    assert len(rows) == 1, out
    cells = [c.strip() for c in re.split(r"[│┆]", rows[0]) if c.strip()]
    assert cells[0] == rdd_id, cells
    assert "filter" in cells, cells
    assert "4/4" in cells, cells

    repl.child.sendline(":quit")
    repl.expect_exact(pexpect.EOF, timeout=60)
    repl.child.close()
    assert repl.child.exitstatus == 0, (repl.child.exitstatus, repl.child.signalstatus)


# The promise is that an interrupt stops a cell within a second; the prompt also waits
# for the session to bind `sc` again (one small cell compiled).
INTERRUPT_SECONDS = 5


def test_input_reads_a_line_from_the_terminal_and_ctrl_c_stops_the_wait(repl):
    repl.child.sendline('let who = input("name? "); println!("hello {who}");')
    repl.expect_exact("name? ", timeout=START_TIMEOUT)
    repl.child.sendline("Ada")
    out = repl.wait_prompt()
    assert "hello Ada" in out, out
    repl.started = True

    # The prompt is built so that the echo of the typed cell does not contain it.
    repl.child.sendline('input(&format!("{}? ", "again"))')
    repl.expect_exact("again? ")
    interrupted = time.monotonic()
    repl.child.sendintr()
    out = repl.wait_prompt(timeout=60)
    assert time.monotonic() - interrupted < INTERRUPT_SECONDS, out
    assert "input() was interrupted" in out, out
    # The line typed next is a cell again, not an answer to the question.
    out = repl.cell("who.len() + 1")
    assert last_line(out) == "4", out


def test_ctrl_c_stops_a_cell_that_runs_no_job_and_the_cache_stays(repl):
    repl.cell(
        "let kept = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4).cache();",
        timeout=START_TIMEOUT,
    )
    out = repl.cell("kept.count()")
    assert last_line(out) == "1000", out
    repl.cell("let gone = 7u64;")

    repl.child.sendline('println!("looping"); loop { std::hint::spin_loop(); }')
    try:
        # The cell's own line, not the echo of what was typed.
        repl.child.expect(r"\r\nlooping\r\n", timeout=CELL_TIMEOUT)
    except (pexpect.TIMEOUT, pexpect.EOF) as e:
        pytest.fail(f"the loop never started: {type(e).__name__}\n{repl.transcript()}")
    interrupted = time.monotonic()
    repl.child.sendintr()
    out = repl.wait_prompt(timeout=60)
    assert time.monotonic() - interrupted < INTERRUPT_SECONDS, out
    assert "Interrupted" in out, out
    assert re.search(r"^Rebuilt: sc: Context, kept: Rdd<u64> ", out, re.M), out
    assert re.search(r"^Lost: gone: u64\.", out, re.M), out

    # The session carries on with the same driver: the rebuilt RDD counts from the cache.
    out = repl.cell("kept.count()")
    assert last_line(out) == "1000", out
    out = repl.cell(":jobs")
    tasks = re.findall(r"(\d+)/(\d+) \((\d+) from cache\)", out)
    assert tasks and tasks[-1] == ("4", "4", "4"), out
    # A job is listed by the action the user called (`sum` runs the statistics' job).
    repl.cell("kept.sum()")
    out = repl.cell(":jobs")
    assert re.search(r"\bsum on rdd \d+", out), out
    out = repl.cell("gone + 1")
    assert "error" in out.lower(), out


def test_multi_line_cell(repl):
    repl.cell("let nums = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4);")
    # An unfinished line does not run: the REPL waits for the rest of the cell.
    repl.child.sendline("let f = nums.map(|x: u64| {")
    repl.expect_exact("{")
    time.sleep(0.5)
    repl.child.sendline("x * 2 });")
    # rustyline redraws the first line (with the prompt) when it continues the cell;
    # the cell has run when the prompt follows the second line's echo.
    repl.expect_exact("x * 2 });")
    out = repl.wait_prompt()
    assert "error" not in out.lower(), out
    out = repl.cell("f.reduce(|a: u64, b: u64| a.max(b))")
    assert last_line(out) == "2000", out
    out = repl.cell("f.count()")
    assert last_line(out) == "1000", out
    repl.child.sendeof()
    repl.expect_exact(pexpect.EOF, timeout=60)
    repl.child.close()
    assert repl.child.exitstatus == 0


def test_tab_completes_commands_and_a_let_needs_no_semicolon(repl):
    # Tab completes a command's name, even before the session has started.
    repl.child.send(":exe\t")
    repl.expect_exact(":executors")
    repl.child.sendline("")
    out = repl.wait_prompt(START_TIMEOUT)
    assert "local-0" in out, out
    repl.started = True
    # `let` as the last statement of a cell, without `;`, as one types it.
    out = repl.cell("let x = 20")
    assert "error" not in out.lower(), out
    out = repl.cell("x + 1")
    assert last_line(out) == "21", out
    # Tab completes variables and methods (rust-analyzer, as evcxr does).
    repl.cell("let word_total = 7u64;")
    repl.child.send("word_to\t")
    repl.expect_exact("word_total")
    repl.child.send(" * 2\r")
    out = repl.wait_prompt()
    assert last_line(out) == "14", out
    repl.child.send("sc.paralleli\t")
    repl.expect_exact("sc.parallelize")
    # A `move` closure captures an earlier variable, without a macro.
    repl.child.send("(vec![3u64, 4, 6, 9], 2).filter(move |v| v % (x as u64) == 0 || v % word_total == 0).count()\r")
    out = repl.wait_prompt()
    assert last_line(out) == "0", out
    out = repl.cell("sc.parallelize(vec![3u64, 14, 20], 2).filter(move |v| v % (x as u64) == 0 || v % word_total == 0).count()")
    assert last_line(out) == "2", out


def test_history_outlives_the_session_even_a_killed_one(tmp_path):
    first = Repl(tmp_path)
    try:
        first.wait_prompt()
        first.cell(":help me remember")
        first.child.kill(signal.SIGKILL)
    finally:
        first.close()
    second = Repl(tmp_path)
    try:
        second.wait_prompt()
        # The up arrow brings back the line the first session was given before it was killed.
        second.child.send("\x1b[A")
        second.expect_exact(":help me remember")
    finally:
        second.close()


def test_results_print_as_tables_and_a_plot_prints_the_file_it_was_written_to(repl):
    out = repl.cell(
        'sc.parallelize(vec![("apple".to_string(), 3u64), ("cherry".to_string(), 12)], 2)'
        ".collect()",
        timeout=START_TIMEOUT,
    )
    grid = [line.strip() for line in out.splitlines() if line.strip().startswith(("│", "┌", "└"))]
    assert grid == [
        "┌────────┬────┐",
        "│ _1     ┆ _2 │",
        "│ apple  ┆  3 │",
        "│ cherry ┆ 12 │",
        "└────────┴────┘",
    ], out
    out = repl.cell("sc.parallelize((1..=50u32).collect::<Vec<_>>(), 2).take(25)")
    assert last_line(out) == "… 5 more rows", out

    out = repl.cell('tessera::plot::scatter(&[(1.0, 2.0), (3.0, 4.5)]).title("two points")')
    match = re.search(r"^plot written to (\S+\.svg)$", last_line(out))
    assert match, out
    svg = Path(match.group(1)).read_text()
    assert svg.startswith("<svg") and "two points" in svg, svg[:200]


def test_the_first_start_says_what_it_prepares_instead_of_printing_cargo(tmp_path):
    # A user cache of its own: this session compiles the cells' crates, as a first start does.
    session = Repl(tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    try:
        session.wait_prompt()
        session.child.sendline("1 + 1")
        # The notices come above the prompt, which is drawn again under them.
        session.expect_exact("Rust environment ready:", START_TIMEOUT)
        session.child.expect(r"\r?\n2\r?\n", timeout=CELL_TIMEOUT)
        session.wait_prompt()
        transcript = session.transcript()
        assert "preparing the Rust environment, once: compiling the crates cells use" in transcript, transcript
        assert "Rust environment ready:" in transcript, transcript
        assert "Compiling" not in transcript, transcript
    finally:
        session.close()
