"""End-to-end test of the real tessera-kernel binary through jupyter_client.

The binary named by TESSERA_KERNEL_BIN installs its kernelspec into a temporary
prefix, which is put on JUPYTER_PATH; jupyter_client's KernelManager then starts the
kernel exactly as JupyterLab or nbclient would, and the tests talk to it over the
real ZeroMQ sockets.

    TESSERA_KERNEL_BIN=target/debug/tessera-kernel pytest tests/jupyter

Without TESSERA_KERNEL_BIN every test is skipped. TESSERA_KERNEL_TIMEOUT (seconds,
default 600) bounds kernel start-up and each cell: the first cell of a fresh session
may compile dependencies. The kernel runs on TESSERA_MASTER, local[2] unless set.
"""

import json
import os
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


@pytest.fixture(scope="module")
def kernel(kernel_prefix):
    """A running kernel and a connected, ready client."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(kernel_prefix / "share" / "jupyter"))
        mp.setenv("TESSERA_MASTER", os.environ.get("TESSERA_MASTER", "local[2]"))
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


def run_cell(kc, code):
    """Executes `code`; returns (execute_reply content, iopub messages for it)."""
    outputs = []
    reply = kc.execute_interactive(
        code, output_hook=outputs.append, timeout=TIMEOUT, allow_stdin=False
    )
    return reply["content"], outputs


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

    # Job progress: one display_data per job with a `tessera-job-N` display id, then
    # updates of that same display, the last one saying the job is done.
    shown = [m for m in outputs if m["msg_type"] == "display_data"]
    job_ids = [
        m["content"].get("transient", {}).get("display_id", "") for m in shown
    ]
    job_ids = [i for i in job_ids if i.startswith("tessera-job-")]
    assert len(job_ids) == 1, outputs
    assert job_ids[0].removeprefix("tessera-job-").isdigit(), job_ids
    updates = [
        m
        for m in outputs
        if m["msg_type"] == "update_display_data"
        and m["content"]["transient"]["display_id"] == job_ids[0]
    ]
    assert updates, outputs
    last = updates[-1]["content"]["data"]
    assert "4/4" in last["text/plain"] and "done" in last["text/plain"], last
    assert "<progress" in last["text/html"], last
    # Progress comes before the result.
    kinds = [m["msg_type"] for m in outputs]
    assert kinds.index("display_data") < kinds.index("execute_result"), kinds


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
    assert message in content["evalue"], content
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, outputs
    assert message in errors[0]["content"]["evalue"]
    assert not [m for m in outputs if m["msg_type"] == "execute_result"], outputs
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
    msg_id = kc.execute(long_job)
    # Wait until the job runs (its progress display appears), then interrupt.
    deadline = time.monotonic() + TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the job never started"
        msg = kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "display_data":
            break
    time.sleep(2)
    interrupted = time.monotonic()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    assert time.monotonic() - interrupted < 30
    content = reply["content"]
    assert content["status"] == "error", content
    assert "cancelled" in content["evalue"], content
    # The session keeps its variables.
    content, outputs = run_cell(kc, "kept * 6")
    assert content["status"] == "ok", content
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert [r["content"]["data"]["text/plain"].strip() for r in results] == ["42"]


def test_shutdown(kernel):
    km, _ = kernel
    process = getattr(km.provisioner, "process", None)
    km.shutdown_kernel(now=False)
    assert not km.is_alive()
    if process is not None:
        # Exited by itself after shutdown_reply, not killed after a timeout.
        assert process.wait(timeout=10) == 0
