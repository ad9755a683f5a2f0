"""The kernel against jupyter_kernel_test, the Jupyter project's conformance suite: one sample
for each test it offers that Tessera supports.

    TESSERA_KERNEL_BIN=target/debug/tessera-kernel pytest tests/jupyter/test_conformance.py

Without TESSERA_KERNEL_BIN every test is skipped. The kernelspec is installed with the
binary's own `install --prefix` into a temporary prefix put on JUPYTER_PATH; the kernel runs
on local[2] with a history file of its own.
"""

import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import pytest

jupyter_kernel_test = pytest.importorskip("jupyter_kernel_test")
from jupyter_client.manager import start_new_kernel  # noqa: E402

KERNEL_BIN = os.environ.get("TESSERA_KERNEL_BIN")
TIMEOUT = int(float(os.environ.get("TESSERA_KERNEL_TIMEOUT", "600")))


@unittest.skipUnless(KERNEL_BIN, "set TESSERA_KERNEL_BIN to the tessera-kernel binary")
class TesseraKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "tessera"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("an error line");'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"ab".repeat(2)', "result": '"abab"'},
        {"code": "sc.parallelize((1..=10u64).collect::<Vec<_>>(), 2).count()", "result": "10"},
    ]
    code_generate_error = 'panic!("boom")'
    completion_samples = [{"text": "sc.parallel", "matches": {"parallelize"}}]
    complete_code_samples = ["1 + 1", "let c = '{';", 'let s = r#"a " b"#;', "/* done */ 2"]
    incomplete_code_samples = ["let f = |x| {", "/* still open", 'let s = r#"raw']
    invalid_code_samples = ["let = 7q);", "foo(]"]
    code_display_data = [
        {"code": 'display_html("<b>bold</b>")', "mime": "text/html"},
        {"code": "display(&vec![1, 2, 3])", "mime": "text/plain"},
        {"code": 'sc.display_data(&[("image/svg+xml", "<svg/>")])', "mime": "image/svg+xml"},
    ]
    code_clear_output = "clear_output()"
    code_inspect_sample = "sc.parallelize"
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6*"

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.TemporaryDirectory()
        prefix = Path(cls.scratch.name) / "prefix"
        subprocess.run(
            [KERNEL_BIN, "install", "--prefix", str(prefix)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cls.saved_env = dict(os.environ)
        os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
        os.environ["TESSERA_MASTER"] = "local[2]"
        os.environ["TESSERA_HISTORY_FILE"] = str(Path(cls.scratch.name) / "history.jsonl")
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, startup_timeout=TIMEOUT)
        # The suite gives each request 15 s: let the session start and compile a first cell.
        cls.kc.execute_interactive("0", timeout=TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.environ.clear()
        os.environ.update(cls.saved_env)
        cls.scratch.cleanup()
