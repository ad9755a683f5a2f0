"""End-to-end test of the real tessera-kernel binary through jupyter_client.

The binary named by TESSERA_KERNEL_BIN installs its kernelspec into a temporary
prefix, which is put on JUPYTER_PATH; jupyter_client's KernelManager then starts the
kernel exactly as JupyterLab or nbclient would, and the tests talk to it over the
real ZeroMQ sockets.

    TESSERA_KERNEL_BIN=target/debug/tessera-kernel pytest tests/jupyter

Without TESSERA_KERNEL_BIN every test is skipped. TESSERA_KERNEL_TIMEOUT (seconds,
default 600) bounds kernel start-up and each cell: the first cell of a fresh session
may compile dependencies. The kernel runs on TESSERA_MASTER, local[2] unless set.
Every kernel started here keeps its history in a scratch file (TESSERA_HISTORY_FILE),
never in the user's own.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.manager import KernelManager  # noqa: E402

KERNEL_BIN = os.environ.get("TESSERA_KERNEL_BIN")
TIMEOUT = float(os.environ.get("TESSERA_KERNEL_TIMEOUT", "600"))

pytestmark = pytest.mark.skipif(
    not KERNEL_BIN, reason="set TESSERA_KERNEL_BIN to the tessera-kernel binary"
)


@pytest.fixture(scope="module")
def kernel_prefix(tmp_path_factory):
    """Installs the kernelspec with the binary's own `install --prefix`."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    result = subprocess.run(
        [KERNEL_BIN, "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "tessera" in result.stdout
    return prefix


@contextlib.contextmanager
def started_kernel(kernel_prefix, history_file):
    """Starts a kernel keeping its history in `history_file`; gives (manager, ready
    client) and shuts the kernel down afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(kernel_prefix / "share" / "jupyter"))
        mp.setenv("TESSERA_MASTER", os.environ.get("TESSERA_MASTER", "local[2]"))
        mp.setenv("TESSERA_HISTORY_FILE", str(history_file))
        km = KernelManager(kernel_name="tessera")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=TIMEOUT)
            yield km, kc
        finally:
            kc.stop_channels()
            if km.is_alive():
                km.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def kernel(kernel_prefix, tmp_path_factory):
    """A running kernel and a connected, ready client."""
    history_file = tmp_path_factory.mktemp("history") / "kernel-history.jsonl"
    with started_kernel(kernel_prefix, history_file) as (km, kc):
        yield km, kc


def run_cell(kc, code, **options):
    """Executes `code`; returns (execute_reply content, iopub messages for it)."""
    outputs = []
    reply = kc.execute_interactive(
        code, output_hook=outputs.append, timeout=TIMEOUT, allow_stdin=False, **options
    )
    return reply["content"], outputs


PROGRESS_PREFIX = "tessera-progress-"
# The promise is that an interrupt stops a cell within a second; the reply also waits
# for the session to bind `sc` again (one small cell compiled), so it gets a bound a few
# times that, still far below what a cell left running would take.
INTERRUPT_REPLY_SECONDS = 5


def progress_displays(outputs):
    """The cell's progress display messages, in order: (display_id, msg_type, data)."""
    found = []
    for m in outputs:
        if m["msg_type"] in ("display_data", "update_display_data"):
            display_id = m["content"].get("transient", {}).get("display_id", "")
            if display_id.startswith(PROGRESS_PREFIX):
                found.append((display_id, m["msg_type"], m["content"]["data"]))
    return found


def assert_one_progress_display(outputs):
    """Asserts the cell showed exactly one progress display, published once and then
    updated in place; returns the text of its last state."""
    displays = progress_displays(outputs)
    assert displays, outputs
    assert len({display_id for display_id, _, _ in displays}) == 1, displays
    kinds = [kind for _, kind, _ in displays]
    assert kinds[0] == "display_data", kinds
    assert len(kinds) >= 2 and set(kinds[1:]) == {"update_display_data"}, kinds
    last = displays[-1][2]
    assert "<progress" in last["text/html"], last
    return last["text/plain"]


def interrupt_cell(km, kc, code, ready, how):
    """Executes `code`, waits until one of its iopub messages satisfies `ready`, then
    interrupts the kernel `how` ("message": an interrupt_request on the control channel;
    "signal": SIGINT, as Jupyter sends for interrupt_mode "signal"). Returns (execute_reply
    content, the cell's iopub messages, seconds from the interrupt to the reply)."""
    msg_id = kc.execute(code)
    outputs = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the cell never got going: {outputs}"
        msg = kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if ready(msg):
            break
    interrupted = time.monotonic()
    if how == "signal":
        km.signal_kernel(signal.SIGINT)
    else:
        km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    elapsed = time.monotonic() - interrupted
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], outputs, elapsed


def history(kc, access, **request):
    """The `history` list of the reply to a history_request."""
    reply = kc.history(hist_access_type=access, reply=True, timeout=60, **request)
    assert reply["msg_type"] == "history_reply"
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["content"]["history"]


def test_kernelspec_points_at_the_binary(kernel_prefix):
    spec_file = kernel_prefix / "share" / "jupyter" / "kernels" / "tessera" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    assert Path(spec["argv"][0]).is_absolute()
    assert Path(spec["argv"][0]).resolve() == Path(KERNEL_BIN).resolve()
    assert spec["argv"][1:] == ["--connection-file", "{connection_file}"]
    assert spec["display_name"] == "Tessera (Rust)"
    assert spec["language"] == "rust"
    assert spec["interrupt_mode"] == "message"


def test_kernel_info(kernel):
    _, kc = kernel
    reply = kc.kernel_info(reply=True, timeout=TIMEOUT)
    content = reply["content"]
    assert content["status"] == "ok"
    assert content["protocol_version"] == "5.3"
    assert content["implementation"] == "tessera"
    language = content["language_info"]
    assert language["name"] == "rust"
    assert language["file_extension"] == ".rs"
    assert language["mimetype"] == "text/rust"
    deadline = time.monotonic() + 10
    while not kc.hb_channel.is_beating():
        assert time.monotonic() < deadline, "heartbeat never answered"
        time.sleep(0.1)


def test_language_info_version_is_the_rustc_version(kernel):
    _, kc = kernel
    version = kc.kernel_info(reply=True, timeout=TIMEOUT)["content"]["language_info"][
        "version"
    ]
    assert version.startswith("1."), version
    assert re.fullmatch(r"1\.\d+(\.\d+)?", version), version
    rustc = os.environ.get("RUSTC") or shutil.which("rustc")
    if rustc:
        reported = subprocess.run(
            [rustc, "--version"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        assert reported.split()[1].startswith(version), (reported, version)


def test_stream_and_result(kernel):
    _, kc = kernel
    content, outputs = run_cell(kc, 'println!("hi"); 40 + 2')
    assert content["status"] == "ok", content
    assert isinstance(content["execution_count"], int)
    stdout = "".join(
        m["content"]["text"]
        for m in outputs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )
    assert stdout.strip() == "hi"
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert len(results) == 1, outputs
    assert results[0]["content"]["data"]["text/plain"].strip() == "42"
    assert results[0]["content"]["execution_count"] == content["execution_count"]


def test_undefined_variable_is_an_error(kernel):
    _, kc = kernel
    name = "tessera_surely_undefined_variable"
    content, outputs = run_cell(kc, f"{name} + 1")
    assert content["status"] == "error", content
    assert content["ename"]
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, outputs
    shown = errors[0]["content"]["evalue"] + "\n".join(errors[0]["content"]["traceback"])
    assert name in shown
    # The session survives the error.
    content, _ = run_cell(kc, "1 + 1")
    assert content["status"] == "ok", content


def test_error_names_say_the_kind(kernel):
    _, kc = kernel
    content, outputs = run_cell(kc, 'let tessera_typed: u32 = "not a number";')
    assert content["status"] == "error", content
    assert content["ename"] == "CompileError", content
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert [e["content"]["ename"] for e in errors] == ["CompileError"], outputs

    content, outputs = run_cell(kc, 'panic!("boom")')
    assert content["status"] == "error", content
    assert content["ename"] == "Panic", content
    assert "boom" in content["evalue"], content
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert [e["content"]["ename"] for e in errors] == ["Panic"], outputs


def test_move_closures_capture_earlier_cells_and_name_what_cannot_travel(kernel):
    _, kc = kernel
    content, _ = run_cell(kc, 'let capture_k = 4u64;\nlet capture_words = vec!["x".to_string()];')
    assert content["status"] == "ok", content
    content, outputs = run_cell(
        kc,
        "let capture_nums = sc.parallelize((1..=20u64).collect::<Vec<_>>(), 2);\n"
        'println!("{}", capture_nums.filter(move |x| x % capture_k == 0 && capture_words.len() == 1).count());',
    )
    assert content["status"] == "ok", content
    stdout = "".join(
        m["content"]["text"]
        for m in outputs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )
    assert stdout.strip() == "5", outputs

    content, _ = run_cell(
        kc,
        "let capture_rc = std::rc::Rc::new(1u64);\ncapture_nums.map(move |x| x + *capture_rc).count()",
    )
    assert content["status"] == "error", content
    assert content["ename"] == "CompileError", content
    assert "captures `capture_rc` (a `Rc<u64>`)" in content["evalue"], content
    assert "__tessera" not in content["evalue"], content


def test_input_asks_the_front_end_through_input_request(kernel):
    _, kc = kernel
    asked = []

    def answer(msg):
        asked.append(msg["content"])
        kc.input("Ada" if not msg["content"]["password"] else "secret")

    outputs = []
    reply = kc.execute_interactive(
        'let who = input("name? ");\nlet key = sc.password("key? ");\nprintln!("hello {who} {}", key.len());',
        output_hook=outputs.append,
        stdin_hook=answer,
        allow_stdin=True,
        timeout=TIMEOUT,
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    assert asked == [
        {"prompt": "name? ", "password": False},
        {"prompt": "key? ", "password": True},
    ], asked
    stdout = "".join(
        m["content"]["text"]
        for m in outputs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )
    assert stdout.strip() == "hello Ada 6", outputs

    # A front end that does not allow stdin (nbclient, for one): the cell is told so.
    content, _ = run_cell(kc, 'input("name? ")')
    assert content["status"] == "error", content
    assert "does not answer input requests" in content["evalue"], content


def test_history_tail_range_and_search(kernel):
    _, kc = kernel
    cells = [
        "let tessera_hist_a = 20u64;",
        "tessera_hist_a + 1",
        "tessera_hist_a * 2",
    ]
    counts = []
    for code in cells:
        content, _ = run_cell(kc, code)
        assert content["status"] == "ok", content
        counts.append(content["execution_count"])
    assert counts == list(range(counts[0], counts[0] + 3)), counts
    # Neither a silent cell nor one with store_history false is remembered.
    run_cell(kc, "tessera_hist_a + 100", store_history=False)
    kc.execute("tessera_hist_a + 200", silent=True)
    run_cell(kc, "tessera_hist_a")

    tail = history(kc, "tail", n=4, output=True)
    assert len(tail) == 4, tail
    sessions = {entry[0] for entry in tail}
    assert len(sessions) == 1 and sessions.pop() > 0, tail
    assert [entry[1:] for entry in tail] == [
        [counts[0], [cells[0], None]],
        [counts[1], [cells[1], "21"]],
        [counts[2], [cells[2], "40"]],
        [counts[2] + 1, ["tessera_hist_a", "20"]],
    ]
    session = tail[0][0]

    # The current session is 0 in a range, as IPython answers; stop is excluded.
    assert history(kc, "range", session=0, start=counts[0], stop=counts[2]) == [
        [0, counts[0], cells[0]],
        [0, counts[1], cells[1]],
    ]
    # The whole input must match the glob; `*` makes it match anywhere.
    assert history(kc, "search", pattern="tessera_hist_a") == [
        [session, counts[2] + 1, "tessera_hist_a"]
    ]
    assert history(kc, "search", pattern="*tessera_hist_a ? ?") == [
        [session, counts[1], cells[1]],
        [session, counts[2], cells[2]],
    ]
    assert history(kc, "search", pattern="*tessera_hist_a*", n=2) == [
        [session, counts[2], cells[2]],
        [session, counts[2] + 1, "tessera_hist_a"],
    ]
    assert history(kc, "search", pattern="*+ 100*") == []
    assert history(kc, "search", pattern="*+ 200*") == []

    # `unique` keeps the latest run of an input.
    content, _ = run_cell(kc, cells[1])
    assert content["status"] == "ok", content
    again = content["execution_count"]
    assert history(kc, "search", pattern="tessera_hist_a + 1", unique=True) == [
        [session, again, cells[1]]
    ]
    assert len(history(kc, "search", pattern="tessera_hist_a + 1")) == 2


def test_history_survives_a_restart(kernel_prefix, tmp_path):
    history_file = tmp_path / "kernel-history.jsonl"
    with started_kernel(kernel_prefix, history_file) as (km, kc):
        first = ["let tessera_kept = 6u64 * 7;", "tessera_kept"]
        for code in first:
            content, _ = run_cell(kc, code)
            assert content["status"] == "ok", content
        before = history(kc, "tail", n=10, output=True)
        assert [entry[1:] for entry in before] == [
            [1, [first[0], None]],
            [2, [first[1], "42"]],
        ]
        first_session = before[0][0]

        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=TIMEOUT)

        # The new kernel is a new session that sees the earlier one's cells.
        assert history(kc, "tail", n=10) == [
            [first_session, 1, first[0]],
            [first_session, 2, first[1]],
        ]
        assert history(kc, "range", session=-1, start=0, output=True) == [
            [first_session, 1, [first[0], None]],
            [first_session, 2, [first[1], "42"]],
        ]
        assert history(kc, "range", session=0, start=0) == []
        content, _ = run_cell(kc, "1 + 1")
        assert content["status"] == "ok", content
        assert content["execution_count"] == 1, content
        assert history(kc, "range", session=0, start=0) == [[0, 1, "1 + 1"]]
        assert history(kc, "tail", n=1) == [[first_session + 1, 1, "1 + 1"]]

    # One JSON object a line, in the file the kernel was given.
    records = [json.loads(line) for line in history_file.read_text().splitlines()]
    cells = [r for r in records if "line" in r]
    assert [(r["session"], r["line"], r["input"]) for r in cells] == [
        (first_session, 1, first[0]),
        (first_session, 2, first[1]),
        (first_session + 1, 1, "1 + 1"),
    ]
    assert cells[1]["output"] == "42"


def test_rdd_job_result_and_progress(kernel):
    _, kc = kernel
    content, _ = run_cell(
        kc, "let nums = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4);"
    )
    assert content["status"] == "ok", content
    content, outputs = run_cell(kc, "nums.filter(|x: &u64| x % 3 == 0).count()")
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert len(results) == 1, outputs
    assert results[0]["content"]["data"]["text/plain"].strip() == "333"

    # Job progress: one display for the cell, then updates of that same display, the last
    # one saying its one job is done.
    last = assert_one_progress_display(outputs)
    assert last.startswith("done: 1 job ("), last
    assert "4 tasks" in last, last
    # Progress comes before the result.
    kinds = [m["msg_type"] for m in outputs]
    assert kinds.index("display_data") < kinds.index("execute_result"), kinds


def test_completion_gives_names_their_range_and_kinds(kernel):
    _, kc = kernel
    code = "let total = 5; sc.parallel"
    reply = kc.complete(code, len(code), reply=True, timeout=TIMEOUT)["content"]
    assert reply["status"] == "ok", reply
    assert reply["matches"] == ["parallelize"], reply
    assert (reply["cursor_start"], reply["cursor_end"]) == (len(code) - len("parallel"), len(code))
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert types == [
        {"start": reply["cursor_start"], "end": len(code), "text": "parallelize", "type": "function"}
    ], types


def test_inspect_answers_text_and_html_apart_and_nothing_for_unknown_names(kernel):
    _, kc = kernel
    reply = kc.inspect("sc.parallelize", reply=True, timeout=TIMEOUT)["content"]
    assert reply["status"] == "ok" and reply["found"], reply
    text, html = reply["data"]["text/plain"], reply["data"]["text/html"]
    assert "pub fn parallelize" in text and "<" not in text.replace("<T>", ""), text
    assert "<pre>" in html, html
    reply = kc.inspect("zzz_not_a_name", reply=True, timeout=TIMEOUT)["content"]
    assert reply["status"] == "ok" and reply["found"] is False and reply["data"] == {}, reply


def test_repl_commands_as_cells_show_tables(kernel):
    _, kc = kernel
    content, _ = run_cell(
        kc,
        "let cached = sc.parallelize((1..=100).collect::<Vec<u64>>(), 4).cache();\n"
        "cached.count()",
    )
    assert content["status"] == "ok", content
    for command, expected in [(":storage", "4/4"), (":jobs", "succeeded"), (":executors", "local-0")]:
        content, outputs = run_cell(kc, command)
        assert content["status"] == "ok", (command, content)
        results = [m for m in outputs if m["msg_type"] == "execute_result"]
        assert len(results) == 1, (command, outputs)
        data = results[0]["content"]["data"]
        assert "<table>" in data["text/html"] and expected in data["text/html"], (command, data)
        assert expected in data["text/plain"], (command, data)
    content, outputs = run_cell(kc, ":cluster")
    assert content["status"] == "error" and content["ename"] == "CommandError", content
    assert "without a master" in content["evalue"], content


def test_failing_job_is_an_error_with_the_panic_message(kernel):
    _, kc = kernel
    message = "tessera-test-boom-at-777"
    content, _ = run_cell(
        kc, "let base = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4);"
    )
    assert content["status"] == "ok", content
    content, outputs = run_cell(
        kc,
        f'base.map(|x: u64| {{ if x == 777 {{ panic!("{message}") }} x }}).count()',
    )
    assert content["status"] == "error", content
    assert content["ename"] == "JobFailed", content
    assert message in content["evalue"], content
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, outputs
    assert message in errors[0]["content"]["evalue"]
    assert not [m for m in outputs if m["msg_type"] == "execute_result"], outputs
    # The cell's progress ends failed, with the reason in short.
    last = assert_one_progress_display(outputs)
    assert last.startswith("failed: job 1 ("), last
    assert message in last, last
    # The session and its variables survive a failed job.
    content, outputs = run_cell(kc, "base.count()")
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert [r["content"]["data"]["text/plain"].strip() for r in results] == ["1000"]


def test_interrupt_cancels_the_running_job(kernel):
    km, kc = kernel
    content, _ = run_cell(kc, "let kept = 7u64;")
    assert content["status"] == "ok", content
    # 2 tasks x 200,000 records at 200 us each: ~40 s a task unless cancelled.
    long_job = (
        "sc.parallelize((0..400_000u64).collect::<Vec<u64>>(), 2)"
        ".map(|x: u64| { std::thread::sleep(std::time::Duration::from_micros(200)); x })"
        ".count()"
    )
    # Wait until the job runs (its progress display appears), then interrupt.
    content, outputs, elapsed = interrupt_cell(
        km, kc, long_job, lambda m: m["msg_type"] == "display_data", "message"
    )
    assert elapsed < 30
    assert content["status"] == "error", content
    assert content["ename"] == "JobCancelled", content
    assert "cancelled" in content["evalue"], content
    # The cell's progress ends cancelled, not done.
    last = assert_one_progress_display(outputs)
    assert last.startswith("cancelled: job 1 ("), last
    # The session keeps its variables.
    content, outputs = run_cell(kc, "kept * 6")
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert [r["content"]["data"]["text/plain"].strip() for r in results] == ["42"]


def test_one_progress_display_covers_every_job_of_a_cell(kernel):
    _, kc = kernel
    content, outputs = run_cell(
        kc,
        "let several = sc.parallelize((1..=1000).collect::<Vec<u64>>(), 4);\n"
        "(several.count(), several.map(|x: u64| x * 2).reduce(|a: u64, b: u64| a + b), "
        "several.filter(|x: &u64| x % 2 == 0).count())",
    )
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert [r["content"]["data"]["text/plain"].strip() for r in results] == [
        "(1000, 1001000, 500)"
    ], results
    last = assert_one_progress_display(outputs)
    assert last.startswith("done: 3 jobs, 3 stages, 12 tasks"), last

    # A job with a shuffle runs two stages: the map stage, then the one reading its output.
    content, outputs = run_cell(
        kc,
        "several.map(|x: u64| (x % 3, x)).reduce_by_key(|a: u64, b: u64| a + b).count()",
    )
    assert content["status"] == "ok", content
    last = assert_one_progress_display(outputs)
    assert re.match(r"done: 1 job \(.*\), 2 stages, 8 tasks", last), last


@pytest.mark.parametrize(
    "how, code, ready",
    [
        (
            "message",
            'println!("looping"); loop { std::hint::spin_loop(); }',
            "looping",
        ),
        (
            "signal",
            'println!("sleeping"); std::thread::sleep(std::time::Duration::from_secs(600));',
            "sleeping",
        ),
    ],
)
def test_interrupt_stops_a_cell_that_runs_no_job(kernel, how, code, ready):
    km, kc = kernel
    survivor, lost, hits = f"survivor_{how}", f"lost_{how}", f"hits_{how}"
    content, _ = run_cell(
        kc,
        f"let {survivor} = sc.parallelize((1..=100).collect::<Vec<u64>>(), 4).cache();\n"
        f"let {lost} = 41u64;\n"
        f"let {hits} = sc.accumulator::<u64>();\n"
        f"{hits}.add(5);\n"
        f"{survivor}.count()",
    )
    assert content["status"] == "ok", content

    def started(msg):
        return msg["msg_type"] == "stream" and ready in msg["content"]["text"]

    content, outputs, elapsed = interrupt_cell(km, kc, code, started, how)
    assert elapsed < INTERRUPT_REPLY_SECONDS, elapsed
    assert content["status"] == "error", content
    assert content["ename"] == "Interrupted", content
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert [e["content"]["ename"] for e in errors] == ["Interrupted"], outputs
    # The reply says what was rebuilt and what was lost, by name and type.
    rebuilt = re.search(r"^Rebuilt: (.*)$", content["evalue"], re.M)
    lost_line = re.search(r"^Lost: (.*)$", content["evalue"], re.M)
    assert rebuilt and lost_line, content["evalue"]
    assert f"{survivor}: Rdd<u64>" in rebuilt.group(1), content["evalue"]
    assert "sc: Context" in rebuilt.group(1), content["evalue"]
    assert f"{hits}: Accumulator<u64>" in rebuilt.group(1), content["evalue"]
    assert f"{lost}: u64" in lost_line.group(1), content["evalue"]

    # The next cell works: `sc` is bound to the same driver, and the rebuilt RDD counts from
    # the executors' cache.
    content, outputs = run_cell(
        kc,
        f"({survivor}.count(), sc.parallelize(vec![1u64, 2, 3], 2).count(), {hits}.value())",
    )
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert [r["content"]["data"]["text/plain"].strip() for r in results] == ["(100, 3, 5)"]
    content, outputs = run_cell(kc, ":jobs")
    assert content["status"] == "ok", content
    jobs = [m for m in outputs if m["msg_type"] == "execute_result"][0]["content"]["data"]
    tasks = re.findall(r"(\d+)/(\d+) \((\d+) from cache\)", jobs["text/plain"])
    assert tasks[-2] == ("4", "4", "4"), jobs["text/plain"]
    # What was lost is gone.
    content, _ = run_cell(kc, f"{lost} + 1")
    assert content["status"] == "error", content


def test_shutdown(kernel):
    km, _ = kernel
    process = getattr(km.provisioner, "process", None)
    km.shutdown_kernel(now=False)
    assert not km.is_alive()
    if process is not None:
        # Exited by itself after shutdown_reply, not killed after a timeout.
        assert process.wait(timeout=10) == 0
