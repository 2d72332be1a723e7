"""`rulelens train` / `rulelens eval` end to end: learning, determinism, resume after SIGKILL."""
import json
import signal
import subprocess
import time

import numpy as np
from conftest import rulelens_bin, run_rulelens

MEMORISE = [{"prompt": f"{a}*{b}=", "target": str((a * b) % 17)} for a in range(4) for b in range(4)]
TINY = ["--layers", 2, "--heads", 2, "--d-model", 32, "--ctx", 16, "--batch", 8]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_log(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "step,loss,lr,tokens_per_s"
    return [tuple(line.split(",")) for line in lines[1:]]


def test_training_memorises_and_eval_reports_it(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    run_rulelens("train", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", 300, "--lr", 3e-3,
                 "--warmup", 10, "--seed", 3, "--save-every", 1000)
    rows = read_log(tmp_path / "run" / "train_log.csv")
    assert [int(r[0]) for r in rows] == list(range(1, 301))
    first, last = float(rows[0][1]), np.mean([float(r[1]) for r in rows[-10:]])
    assert first > 2.0 and last < 0.1 * first, (first, last)
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", data, "--json", "--out", tmp_path / "ev")
    result = json.loads(proc.stdout)["test"]
    assert result["n"] == len(MEMORISE) and result["accuracy"] >= 0.9, result
    predictions = [json.loads(l) for l in (tmp_path / "ev" / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == len(MEMORISE)
    assert sum(p["correct"] for p in predictions) == round(result["accuracy"] * len(MEMORISE))
    assert all(p["correct"] == (p["prediction"] == p["target"]) for p in predictions)
    # The reported loss is the token-weighted mean of per-example losses.
    lengths = np.array([len(p["target"]) + 1 for p in predictions])
    assert abs(np.sum([p["loss"] for p in predictions] * lengths) / lengths.sum() - result["loss"]) < 1e-6


def test_same_seed_one_thread_is_bitwise_reproducible(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    for name in ("a", "b"):
        run_rulelens("train", "--data", data, "--out", tmp_path / name, *TINY, "--steps", 40, "--seed", 7,
                     "--threads", 1, "--quiet")
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "model.safetensors").read_bytes()
    run_rulelens("train", "--data", data, "--out", tmp_path / "c", *TINY, "--steps", 40, "--seed", 8,
                 "--threads", 1, "--quiet")
    assert a != (tmp_path / "c" / "model.safetensors").read_bytes()


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    steps = 1500
    args = ["train", "--data", data, *TINY, "--steps", steps, "--seed", 5, "--threads", 1, "--save-every", 50,
            "--eval-every", 500, "--quiet"]
    run_rulelens(*args, "--out", tmp_path / "whole")

    killed = tmp_path / "killed"
    proc = subprocess.Popen([rulelens_bin(), *map(str, args), "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "train_log.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and log.read_text().count("\n") > 130 and (killed / "model.safetensors").exists():
            break
        time.sleep(0.002)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running, "training finished before it could be killed; raise `steps`"
    saved_step = int(json.loads((killed / "rulelens.json").read_text())["step"])
    assert 0 < saved_step < steps

    # Resuming needs only the folder: the options come from its train_config.json.
    run_rulelens("train", "--out", killed, "--resume", "--threads", 1, "--eval-every", 500, "--quiet")
    assert (killed / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    # The log is rewound to the checkpoint and continued: the same steps with the same losses.
    whole, resumed = read_log(tmp_path / "whole" / "train_log.csv"), read_log(log)
    assert [r[:2] for r in resumed] == [r[:2] for r in whole]
    assert (killed / "eval_log.csv").read_text() == (tmp_path / "whole" / "eval_log.csv").read_text()


def test_resume_refuses_changed_options(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    run_rulelens("train", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", 4, "--quiet")
    proc = run_rulelens("train", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", 4, "--lr", 0.5,
                        "--resume", check=False)
    assert proc.returncode == 1 and "lr: saved 0.001, now 0.5" in proc.stderr and "--resume" in proc.stderr
    write_jsonl(data, MEMORISE[:-1])
    proc = run_rulelens("train", "--out", tmp_path / "run", "--resume", check=False)
    assert proc.returncode == 1 and "is not the data the run" in proc.stderr
