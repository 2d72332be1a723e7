"""`rulelens run`: every spec in Probes/ runs with --quick; the report renders in a real browser (headless Chromium:
title, every figure, the PASS/FAIL rows, a screenshot that is not blank); a failing expectation exits 1, a broken
spec 2; a killed run continues where it stopped; `--list` lists every spec."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, rulelens_bin, run_rulelens

SPECS = sorted((ROOT / "Probes").glob("*.yaml"))


def test_list_names_every_spec():
    out = run_rulelens("run", "--list", cwd=ROOT).stdout
    for spec in SPECS:
        assert f"Probes/{spec.name}" in out
    assert len(SPECS) >= 9


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_every_spec_runs_quick(spec, tmp_path):
    out = tmp_path / spec.stem
    proc = run_rulelens("run", spec, "--quick", "--out", out, "--quiet", "--threads", "1", cwd=ROOT, timeout=300)
    assert f"report: {out}/report/index.html" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["format"] == "rulelens-run"
    # Every expectation and precondition was evaluated (never ERROR: every path it reads exists).
    assert results["expectations"], spec.name
    checks = results["expectations"] + results["preconditions"]
    assert all(e["status"] in ("PASS", "FAIL", "INCONCLUSIVE") for e in checks), checks
    assert results["verdict"] != "ERROR" and proc.returncode == 0
    for v in results["variants"]:
        for step in v["steps"].values():
            for f in step["figures"] + step["files"]:
                assert (Path(step["dir"]) / f).exists(), f


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is not installed (the Makefile's apt step installs Debian's `chromium`)")


def browser(*args, timeout=120):
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--disable-background-networking", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    run_rulelens("run", ROOT / "Probes" / "demo.yaml", "--quick", "--out", out, "--quiet", "--threads", "1", cwd=ROOT, timeout=300)
    return out


def test_report_renders_in_chromium(demo_run, tmp_path):
    report = demo_run / "report" / "index.html"
    results = json.loads((demo_run / "results.json").read_text())
    dom = browser("--dump-dom", report.as_uri()).stdout
    assert "<title>RuleLens · demo — the leave-square-out hole on addition</title>" in dom
    assert results["spec"]["claim"][:60] in dom
    figures = sum(len(s["figures"]) for v in results["variants"] for s in v["steps"].values())
    assert figures >= 3
    assert dom.count('<figure class="figure"') == figures
    assert dom.count("<svg") >= figures
    rows = [e["status"] for e in results["expectations"]]
    assert dom.count('class="expect ') == len(rows)
    for status in set(rows):
        assert dom.count(f'data-status="{status}"') == rows.count(status)
    # Self-contained: no external URL to fetch.
    assert "src=\"http" not in dom and "href=\"http" not in dom
    shot = tmp_path / "shot.png"
    proc = browser(f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    # Not blank: many distinct colours (text, heatmap cells) and real contrast.
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 200


TINY = """
name: tiny
claim: a tiny spec for the command-line tests
steps:
  - data: {task: addition, split: random, train-fraction: 0.7, seed: 0}
  - train: {data: "${data}", layers: 1, heads: 2, d-model: 16, ctx: 16, steps: STEPS, batch: 8, seed: 0, save-every: 40}
  - eval: {checkpoint: "${train}", data: "${data}", part: test, limit: 20}
expect:
  - that: data.train == 7000
  - that: eval.test.accuracy > 1.5
    why: cannot hold
"""


def test_failing_expectation_exits_1(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("STEPS", "5"))
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", "--quiet", check=False, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "PASS  data.train == 7000" in proc.stdout
    assert "FAIL  eval.test.accuracy > 1.5" in proc.stdout
    assert "1/2 expectations passed" in proc.stdout
    html = (tmp_path / "run" / "report" / "index.html").read_text()
    assert 'data-status="FAIL"' in html and 'data-status="PASS"' in html
    # The same spec with --quick reports the failure but exits 0 (a smoke run).
    proc = run_rulelens("run", spec, "--out", tmp_path / "quick", "--quick", "--quiet", check=False, cwd=tmp_path)
    assert proc.returncode == 0 and "FAIL  eval.test.accuracy" in proc.stdout


def test_parse_error_names_line_and_key(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\nclaim: c\nsteps:\n  - data: {task: addition}\n  - train: {data: x, stepz: 3}\n")
    proc = run_rulelens("run", spec, check=False, cwd=tmp_path)
    assert proc.returncode == 2  # a broken spec, apart from a failed expectation (1)
    assert "line 5: unknown option stepz for step train (did you mean steps?)" in proc.stderr
    assert "fix:" in proc.stderr


def test_killed_run_continues(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("STEPS", "3000"))
    out = tmp_path / "run"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([rulelens_bin(), "run", str(spec), "--out", str(out), "--threads", "1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # A checkpoint is complete once its weights are in place (they are written last).
    saves, weights = out / "train" / "checkpoints", out / "train" / "model.safetensors"
    deadline = time.time() + 240
    while not (saves.is_dir() and any(saves.iterdir()) and weights.exists()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before its first checkpoint; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "train" / ".rulelens-step.json").exists()
    again = run_rulelens("run", spec, "--out", out, "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    assert again.returncode == 1  # the failing expectation, not an error
    assert "data (data) · " in again.stderr and "up to date, skipped" in again.stderr
    assert "continuing the interrupted run" in again.stderr
    results = json.loads((out / "results.json").read_text())
    train = results["variants"][0]["steps"]["train"]["results"]
    assert train["resumed"] is True and train["steps"] == 3000
    log = (out / "train" / "train_log.csv").read_text().strip().splitlines()
    assert len(log) == 3001 and log[-1].startswith("3000,")


def test_every_spec_validates_against_the_schema():
    import jsonschema
    import yaml
    schema = json.loads((ROOT / "Probes" / "rulelens-spec.schema.json").read_text())
    for spec in SPECS:
        jsonschema.validate(yaml.safe_load(spec.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "claim": "y", "steps": [{"trian": {"data": "d"}}]}, schema)
