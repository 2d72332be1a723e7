"""Shared fixtures for the Python interop tests: where the rulelens binary is and how to run it."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def rulelens_bin() -> str:
    path = os.environ.get("RULELENS_BIN", str(ROOT / ".build" / "release" / "rulelens"))
    if not os.path.isabs(path):
        path = str(ROOT / path)
    if not os.path.exists(path):
        raise RuntimeError(f"rulelens binary not found at {path}; run `make build` first")
    return path


def run_rulelens(*args, check=True, cwd=None, timeout=600):
    """Runs the rulelens CLI; returns the CompletedProcess (stdout/stderr as text)."""
    proc = subprocess.run([rulelens_bin(), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rulelens {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def rulelens():
    return run_rulelens
