"""Executes every notebook in notebooks/ on the real tessera-kernel with nbclient, under
`local[2]` and under `local-cluster[2,1,512]` (a real master and two agents), and checks that
every example notebook is paired with its `// %%` script (the same code cells, jupytext's
percent format) and kept without outputs.

The kernelspec is installed with the binary's own `install --prefix` into a temporary
prefix put on JUPYTER_PATH, so nbclient starts the kernel exactly as Jupyter would.
Every code cell must run without error; a code cell whose metadata holds
`{"tessera": {"expect_text_plain": TEXT}}` must have an execute_result whose
text/plain is TEXT.

    TESSERA_KERNEL_BIN=target/debug/tessera-kernel pytest tests/jupyter/test_notebooks.py

Without TESSERA_KERNEL_BIN every test is skipped. TESSERA_KERNEL_TIMEOUT (seconds,
default 600) bounds kernel start-up and each cell.
"""

import os
import subprocess
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

KERNEL_BIN = os.environ.get("TESSERA_KERNEL_BIN")
TIMEOUT = int(float(os.environ.get("TESSERA_KERNEL_TIMEOUT", "600")))
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
MASTERS = ["local[2]", "local-cluster[2,1,512]"]

pytestmark = pytest.mark.skipif(
    not KERNEL_BIN, reason="set TESSERA_KERNEL_BIN to the tessera-kernel binary"
)


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    subprocess.run(
        [KERNEL_BIN, "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return prefix / "share" / "jupyter"


def cell_text(outputs, output_type):
    return [o for o in outputs if o.get("output_type") == output_type]


def script_cells(script):
    """The code cells of a `// %%` script, as jupytext pairs them with a notebook's."""
    cells, current, markdown = [], [], False
    for line in script.splitlines():
        if line.strip().startswith("// %%"):
            if current and not markdown:
                cells.append("\n".join(current).strip())
            current = []
            markdown = "[markdown]" in line or "[md]" in line
        else:
            current.append(line)
    if current and not markdown:
        cells.append("\n".join(current).strip())
    return [c for c in cells if c]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_paired_with_its_script_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "tessera", "kernelspec not set"
    code = [c.source.strip() for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} is kept with outputs: clear them before committing"
            )
    script = path.with_suffix(".rs")
    if script.exists():
        assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,rs:percent"
        assert code == script_cells(script.read_text()), (
            f"{path.name} and {script.name} differ: run `jupytext --sync {script.name}`"
        )


@pytest.mark.parametrize("master", MASTERS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, master, jupyter_path, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("TESSERA_MASTER", master)
    monkeypatch.setenv("TESSERA_HISTORY_FILE", str(tmp_path / "kernel-history.jsonl"))
    # The examples read their sample data at notebooks/data/..., relative to the repository.
    (tmp_path / "notebooks").symlink_to(NOTEBOOKS_DIR)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "tessera"
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT,
        startup_timeout=TIMEOUT,
        kernel_name="tessera",
        allow_errors=True,  # checked below, cell by cell, with a clearer message
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    checked = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name} cell {index}:\n{cell.source}"
        errors = cell_text(cell.outputs, "error")
        assert not errors, (
            f"{where}\nfailed: {errors[0]['ename']}: {errors[0]['evalue']}\n"
            + "\n".join(errors[0].get("traceback", []))
        )
        assert cell.execution_count is not None, f"{where}\nwas not run"
        expected = cell.metadata.get("tessera", {}).get("expect_text_plain")
        if expected is not None:
            results = cell_text(cell.outputs, "execute_result")
            assert len(results) == 1, f"{where}\noutputs: {cell.outputs}"
            assert results[0]["data"]["text/plain"].strip() == expected, where
            checked += 1
    # A cell's job progress reached the notebook as one display, updated in place (nbclient
    # applies the updates) to its final state: every cell succeeded, so every one says done.
    progress = [
        o["data"].get("text/plain", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.get("output_type") == "display_data" and "<progress" in o["data"].get("text/html", "")
    ]
    if checked:
        assert progress, "no job progress was displayed"
        assert all(text.startswith("done: ") for text in progress), progress
