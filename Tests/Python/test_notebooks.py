"""Executes every notebook in Notebooks/ with nbclient in this venv's Python kernel; any cell error fails the test.

The notebooks drive the rulelens binary (RULELENS_BIN, as the other interop tests) and check their own numbers
against independent references (numpy, pandas, scikit-learn), so running them is a test of both.
"""
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from jupyter_client.manager import KernelManager

from conftest import ROOT, rulelens_bin



class VenvKernelManager(KernelManager):
    """Starts the kernel with this interpreter (the venv's), whatever python3 kernelspec Jupyter would find."""

    def format_kernel_cmd(self, extra_arguments=None):
        return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]


NOTEBOOKS = sorted((ROOT / "Notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:3] == ["01_rule_or_cases.ipynb", "02_open_a_dump.ipynb", "03_open_a_run.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    # Committed without outputs: outputs in git would go stale and bloat diffs.
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} is committed with outputs; clear them (Jupyter: Edit → Clear All Outputs)"
    # The kernel inherits this environment: the binary under test and a throwaway work folder.
    # (Figures use ipykernel's inline backend, as in Jupyter: they come back as image/png outputs.)
    monkeypatch.setenv("RULELENS_BIN", rulelens_bin())
    monkeypatch.setenv("RULELENS_NOTEBOOK_DIR", str(tmp_path))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            kernel_manager_class=VenvKernelManager)
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs), "no figure was drawn"
