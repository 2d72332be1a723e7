"""`vae train` runs the same training driver as `train` (TrainLoop): kill-proof saves, resume with nothing but --out
(every option kept, threads and save interval included), one writer at a time."""
import json
import signal
import subprocess
import time

import pytest

from conftest import rulelens_bin, run_rulelens
from killloop import kill_and_resume, newest_save

TINY = ["--layers", 1, "--enc-layers", 1, "--heads", 2, "--d-model", 16, "--latent", 4, "--ctx", 96, "--batch", 4]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("vae_saves")
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "24", "--seed", "5", "--out", d / "syl")
    return d / "syl" / "train.jsonl"


def outcome(run):
    """What a finished run leaves that must be bitwise reproducible (the log without its tokens/s column)."""
    unit = run / "checkpoints" / f"step-{newest_save(run):08d}"
    return {
        "model": (run / "model.safetensors").read_bytes(),
        "unit_model": (unit / "model.safetensors").read_bytes(),
        "state": (unit / "train_state.safetensors").read_bytes(),
        "train_log": [line.rsplit(",", 1)[0] for line in (run / "train_log.csv").read_text().splitlines()],
        "kl_dims": (run / "kl_dims.csv").read_text(),
    }


def test_kill_at_random_instants_and_resume_is_bitwise_equal(data, tmp_path):
    """SIGKILL a `--save-every 1` VAE run at random instants 50 times, resuming with nothing but --out --resume each
    time; every run that reaches its end equals the uninterrupted one bit for bit."""
    steps = 24
    fresh = ["vae", "train", "--data", data, *TINY, "--steps", steps, "--seed", 3, "--threads", 1, "--save-every", 1,
             "--supervise", "rule", "--quiet"]
    began = time.time()
    run_rulelens(*fresh, "--out", tmp_path / "whole")
    longest_delay = max(0.2, 0.6 * (time.time() - began))   # kills land in start-up, steps and saves
    def saved_options(run):
        config = json.loads((run / "train_config.json").read_text())
        assert config["threads"] == 1 and config["saveEvery"] == 1, config

    counts = kill_and_resume(tmp_path, fresh, ["vae", "train"], outcome, steps, kills=50, seed=2025,
                             longest_delay=longest_delay, check_finished=saved_options)
    print(f"\nvae kill loop: {counts['kills']} kills (delays up to {longest_delay:.2f} s), {counts['bitwise']} runs completed "
          f"bitwise equal, {counts['seconds']:.1f} s")
    assert counts["bitwise"] >= 2, "too few runs reached their end; lower `steps`"


def test_a_second_writer_is_refused_and_resume_extends(data, tmp_path):
    run = tmp_path / "run"
    run_rulelens("vae", "train", "--data", data, "--out", run, *TINY, "--steps", 3, "--threads", 1, "--quiet")
    # --steps N extends a finished run; the save interval may change, everything else is kept.
    run_rulelens("vae", "train", "--out", run, "--resume", "--steps", 5, "--save-every", 2, "--quiet")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000005"]
    assert (run / "train_log.csv").read_text().count("\n") == 6
    changed = run_rulelens("vae", "train", "--out", run, "--resume", "--steps", 6, "--latent", 8, check=False)
    assert changed.returncode == 1 and "latent: saved 4, now 8" in changed.stderr, changed.stderr
    gpt_resume = run_rulelens("train", "--out", run, "--resume", check=False)
    assert gpt_resume.returncode == 1 and "rulelens train" in gpt_resume.stderr, gpt_resume.stderr
    # While one vae train writes into a folder, another is refused (and changes nothing).
    proc = subprocess.Popen([rulelens_bin(), "vae", "train", "--out", str(run), "--resume", "--steps", "100000",
                             "--save-every", "100000", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (run / "train_log.csv").read_text().count("\n") < 10:
            time.sleep(0.01)
        second = run_rulelens("vae", "train", "--out", run, "--resume", "--steps", 100000, "--save-every", 100000, check=False)
        assert second.returncode == 1 and f"another `rulelens vae train` (process {proc.pid}) is writing" in second.stderr, second.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
