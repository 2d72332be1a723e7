"""`rulelens run --jobs N`: a sweep's variants in child processes. The results equal a sequential run's at the same
thread count (bitwise: both run each model on one thread); a second run does nothing; a failing variant stops the run
with its name and keeps what the others finished; killing the parent kills its children."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import rulelens_bin, run_rulelens

SWEEP = """
name: sweep
claim: three seeds of a tiny model, for the --jobs tests
sweep:
  seed: [0, 1, 2]
steps:
  - data: {task: addition, split: random, train-fraction: 0.7, seed: "${seed}"}
  - train: {data: "${data}", layers: 1, heads: 2, d-model: 16, ctx: 16, steps: STEPS, batch: 8, seed: "${seed}"}
  - eval: {checkpoint: "${train}", data: "${data}", part: test, limit: 40}
expect:
  - that: eval.test.accuracy >= 0
"""


def spec(tmp_path, steps=30):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.replace("STEPS", str(steps)))
    return path


def results(out):
    data = json.loads((out / "results.json").read_text())
    return {v["id"]: {k: s["results"] for k, s in v["steps"].items()} for v in data["variants"]}


def test_jobs_equal_a_sequential_run_and_rerun_does_nothing(tmp_path):
    sweep = spec(tmp_path)
    seq = run_rulelens("run", sweep, "--out", tmp_path / "seq", "--threads", "1", cwd=tmp_path)
    par = run_rulelens("run", sweep, "--out", tmp_path / "par", "--jobs", "2", "--threads", "2", cwd=tmp_path)
    assert "--jobs 2: 3 variants to run, 2 at a time, 1 thread each" in par.stderr
    assert "variants done: 3/3" in par.stderr
    # Each child's lines carry its variant's name; no step ran twice (the parent only read the stamps back).
    for k, seed in enumerate((0, 1, 2)):
        assert f"[v{k + 1}/3] = seed={seed}: started" in par.stderr, par.stderr
        assert f"[v{k + 1}/3] [2/3] train (train): running" in par.stderr, par.stderr
    assert par.stderr.count(": running") == 9 and "up to date, skipped" not in par.stderr
    a, b = results(tmp_path / "seq"), results(tmp_path / "par")
    assert a.keys() == b.keys() == {"seed=0", "seed=1", "seed=2"}
    for variant in a:
        assert a[variant]["train"]["final_loss"] == b[variant]["train"]["final_loss"]
        assert a[variant]["eval"] == b[variant]["eval"]
    assert a["seed=0"]["train"]["final_loss"] != a["seed=1"]["train"]["final_loss"]
    report = json.loads((tmp_path / "par" / "results.json").read_text())
    assert all(not s["cached"] for v in report["variants"] for s in v["steps"].values())
    again = run_rulelens("run", sweep, "--out", tmp_path / "par", "--jobs", "2", cwd=tmp_path)
    assert ": running" not in again.stderr and again.stderr.count("up to date, skipped") == 9
    assert results(tmp_path / "par") == b
    # --force with --jobs redoes every step once (in the children), not a second time in the parent.
    forced = run_rulelens("run", sweep, "--out", tmp_path / "par", "--jobs", "3", "--force", cwd=tmp_path)
    assert forced.stderr.count(": running") == 9 and "up to date" not in forced.stderr


def test_a_failing_variant_names_itself_and_keeps_the_others(tmp_path):
    # Seed 1's data step fails: a train fraction out of range, in that variant only.
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.replace("STEPS", "20")
                    .replace("train-fraction: 0.7", 'train-fraction: "${fraction}"')
                    .replace("  seed: [0, 1, 2]\n", "  - {seed: 0, fraction: 0.7}\n  - {seed: 1, fraction: 1.5}\n"
                                                     "  - {seed: 2, fraction: 0.7}\n"))
    proc = run_rulelens("run", path, "--out", tmp_path / "run", "--jobs", "2", check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert "variant v2/3 (seed=1,fraction=1.5) failed" in proc.stderr, proc.stderr
    assert "--train-fraction 1.5 is not strictly between 0 and 1" in proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    stamps = sorted(p.parent.parent.name for p in (tmp_path / "run").glob("*/eval/.rulelens-step.json"))
    assert len(stamps) >= 1 and all("1.5" not in s for s in stamps), stamps


def child_pids(out):
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--variant" in cmd and str(out).encode() in cmd:
                pids.append(int(proc.name))
    return pids


def test_killing_the_run_kills_its_children_and_a_rerun_continues(tmp_path):
    sweep = spec(tmp_path, steps=4000)
    out = tmp_path / "run"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    parent = subprocess.Popen([rulelens_bin(), "run", str(sweep), "--out", str(out), "--jobs", "2", "--threads", "2"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while len(child_pids(out)) < 2 and time.time() < deadline and parent.poll() is None:
        time.sleep(0.05)
    assert len(child_pids(out)) == 2, "the two variant processes did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while child_pids(out) and time.time() < deadline:
        time.sleep(0.1)
    assert child_pids(out) == [], "a variant process outlived the run that started it"
    again = run_rulelens("run", sweep, "--out", out, "--jobs", "2", cwd=tmp_path, timeout=600)
    assert "variants done: 3/3" in again.stderr
    assert all(r["train"]["steps"] == 4000 for r in results(out).values())
