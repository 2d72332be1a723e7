"""Kill-proof saves, resume that keeps every option, extend, integrity manifests, provenance (issue 8, items 2–4, 8)."""
import hashlib
import json
import os
import signal
import subprocess
import time

from conftest import rulelens_bin, run_rulelens
from killloop import kill_and_resume, newest_save

MEMORISE = [{"prompt": f"{a}*{b}=", "target": str((a * b) % 17)} for a in range(4) for b in range(4)]
TINY = ["--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 16, "--batch", 4]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def log_rows(path, columns=2):
    """step and loss (tokens/s differs between runs)."""
    lines = path.read_text().splitlines()
    return [tuple(line.split(",")[:columns]) for line in lines]


def outcome(run):
    """What a finished run leaves that must be bitwise reproducible."""
    unit = run / "checkpoints" / f"step-{newest_save(run):08d}"
    return {
        "model": (run / "model.safetensors").read_bytes(),
        "unit_model": (unit / "model.safetensors").read_bytes(),
        "state": (unit / "train_state.safetensors").read_bytes(),
        "train_log": log_rows(run / "train_log.csv"),
        "eval_log": (run / "eval_log.csv").read_text(),
        "best": (run / "best" / "model.safetensors").read_bytes(),   # --keep-best
    }


def test_kill_at_random_instants_and_resume_is_bitwise_equal(tmp_path):
    """SIGKILL a `--save-every 1` run at random instants 100 times, resuming (with nothing but --out --resume)
    each time; every run that reaches its end equals the uninterrupted one bit for bit, its best checkpoint
    (--keep-best) included."""
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    held_out = write_jsonl(tmp_path / "held_out.jsonl", MEMORISE[::3])
    steps = 12
    fresh = ["train", "--data", data, *TINY, "--steps", steps, "--seed", 3, "--threads", 1, "--save-every", 1,
             "--eval-every", 3, "--eval-data", held_out, "--keep-best", "--quiet"]
    began = time.time()
    run_rulelens(*fresh, "--out", tmp_path / "whole")
    # Kill delays scale with how long a whole run takes on this machine now (start-up and saves grow under load).
    longest_delay = max(0.2, 0.35 * (time.time() - began))
    counts = kill_and_resume(tmp_path, fresh, ["train"], outcome, steps, kills=100, seed=2024, longest_delay=longest_delay)
    print(f"\nkill loop: {counts['kills']} kills (delays up to {longest_delay:.2f} s), {counts['resumes']} resumes, "
          f"{counts['bitwise']} runs completed bitwise equal, {counts['seconds']:.1f} s")
    assert counts["bitwise"] >= 3, "too few runs reached their end; lower `steps`"


def test_resume_keeps_every_option_and_works_from_anywhere(tmp_path):
    """--threads, --eval-every and --save-every are saved; paths resolve from another working folder; a moved data
    file is named with the option that re-points it."""
    work = tmp_path / "work"
    work.mkdir()
    write_jsonl(work / "train.jsonl", MEMORISE)
    write_jsonl(work / "heldout.jsonl", MEMORISE[:5])
    args = ["train", "--data", "train.jsonl", "--eval-data", "heldout.jsonl", *TINY, "--seed", 1, "--threads", 1,
            "--eval-every", 3, "--save-every", 4]
    run_rulelens(*args, "--steps", 12, "--out", "whole", cwd=work)
    # Stop a run at step 8 by training 8 steps with the schedule of 12, then resume it from elsewhere.
    run_rulelens(*args, "--steps", 8, "--cosine-steps", 12, "--out", "part", cwd=work)
    config = json.loads((work / "part" / "train_config.json").read_text())
    assert config["threads"] == 1 and config["evalEvery"] == 3 and config["saveEvery"] == 4
    assert os.path.isabs(config["data"]) and os.path.isabs(config["evalData"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_rulelens("train", "--out", work / "part", "--resume", "--steps", 12, "--quiet", cwd=elsewhere)
    whole, part = work / "whole", work / "part"
    assert (part / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert (part / "eval_log.csv").read_text() == (whole / "eval_log.csv").read_text()
    assert log_rows(part / "train_log.csv") == log_rows(whole / "train_log.csv")

    # Changing what shapes the result is refused, naming it.
    for option, value, name in [("--threads", 2, "threads"), ("--eval-every", 2, "evalEvery"), ("--lr", 0.5, "lr")]:
        proc = run_rulelens("train", "--out", part, "--resume", "--steps", 16, option, value, check=False)
        assert proc.returncode == 1 and f"{name}: saved" in proc.stderr, proc.stderr
    # A moved data file: the error names the option that re-points it; re-pointing checks the contents.
    moved = tmp_path / "moved.jsonl"
    (work / "train.jsonl").rename(moved)
    proc = run_rulelens("train", "--out", part, "--resume", "--steps", 16, check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr and "--data PATH" in proc.stderr, proc.stderr
    write_jsonl(tmp_path / "other.jsonl", MEMORISE[:-1])
    proc = run_rulelens("train", "--out", part, "--resume", "--steps", 16, "--data", tmp_path / "other.jsonl", check=False)
    assert proc.returncode == 1 and "is not the data the run" in proc.stderr, proc.stderr
    run_rulelens("train", "--out", part, "--resume", "--steps", 16, "--data", moved, "--quiet")
    assert json.loads((part / "train_config.json").read_text())["data"] == str(moved)


def test_resume_steps_beyond_the_original_extends_at_the_final_learning_rate(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    args = ["train", "--data", data, *TINY, "--seed", 2, "--threads", 1, "--lr", 2e-3, "--warmup", 2, "--quiet"]
    run_rulelens(*args, "--steps", 10, "--out", tmp_path / "run")
    first = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    run_rulelens("train", "--out", tmp_path / "run", "--resume", "--steps", 15, "--quiet")
    rows = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in rows[:11]] == [r.split(",")[:3] for r in first]
    assert [float(r.split(",")[2]) for r in rows[11:]] == [2e-4] * 5      # lr × 0.1 after the original 10 steps
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["steps"] == 15 and config["cosineSteps"] == 10
    # The same as a fresh run whose cosine spans the original 10 steps.
    run_rulelens(*args, "--steps", 15, "--cosine-steps", 10, "--out", tmp_path / "fresh")
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == (tmp_path / "fresh" / "model.safetensors").read_bytes()
    # Going back, or changing the schedule's length, is refused with the reason.
    proc = run_rulelens("train", "--out", tmp_path / "run", "--resume", "--steps", 12, check=False)
    assert proc.returncode == 1 and "already at step 15" in proc.stderr
    proc = run_rulelens("train", "--out", tmp_path / "run", "--resume", "--steps", 20, "--cosine-steps", 20, check=False)
    assert proc.returncode == 1 and "would change the learning rate of steps already taken" in proc.stderr


def test_sha256_manifests_are_verified_and_name_the_file(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    run = tmp_path / "run"
    run_rulelens("train", "--data", data, "--out", run, *TINY, "--steps", 4, "--threads", 1, "--quiet")
    info = json.loads((run / "rulelens.json").read_text())
    assert set(info["files"]) == {"config.json", "vocab.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}
    for name, entry in info["files"].items():
        assert entry["sha256"] == hashlib.sha256((run / name).read_bytes()).hexdigest(), name
        assert entry["bytes"] == (run / name).stat().st_size
    unit = run / "checkpoints" / "step-00000004"
    manifest = json.loads((unit / "manifest.json").read_text())
    assert set(manifest["files"]) == set(info["files"]) | {"rulelens.json", "train_state.safetensors"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((unit / name).read_bytes()).hexdigest(), name
    assert manifest["step"] == 4 and manifest["data_position"] == 4
    assert manifest["logs"]["train_log.csv"] == (run / "train_log.csv").stat().st_size

    # A flipped byte inside a tensor: eval names the file; --no-verify loads it anyway.
    weights = run / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-7] ^= 0x40
    weights.write_bytes(bytes(blob))
    proc = run_rulelens("eval", "--checkpoint", run, "--data", data, check=False)
    assert proc.returncode == 1 and "model.safetensors does not match the SHA-256" in proc.stderr and "--no-verify" in proc.stderr
    run_rulelens("eval", "--checkpoint", run, "--data", data, "--no-verify")
    # The resume source is the save, not the top level: resume republishes the intact checkpoint.
    run_rulelens("train", "--out", run, "--resume", "--quiet")
    run_rulelens("eval", "--checkpoint", run, "--data", data)
    # A damaged save: resume names the file; --no-verify resumes anyway.
    state = unit / "train_state.safetensors"
    blob = bytearray(state.read_bytes())
    blob[-3] ^= 0x01
    state.write_bytes(bytes(blob))
    proc = run_rulelens("train", "--out", run, "--resume", "--steps", 6, check=False)
    assert proc.returncode == 1 and "train_state.safetensors does not match the SHA-256" in proc.stderr
    run_rulelens("train", "--out", run, "--resume", "--steps", 6, "--no-verify", "--quiet")
    assert newest_save(run) == 6


def test_stale_temporaries_are_cleaned_and_a_second_writer_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    run = tmp_path / "run"
    run_rulelens("train", "--data", data, "--out", run, *TINY, "--steps", 3, "--threads", 1, "--quiet")
    (run / ".model.safetensors.tmp-1-2").write_bytes(b"half")
    (run / "checkpoints" / ".step-00000004.tmp-1-2").mkdir()
    (run / "checkpoints" / ".step-00000004.tmp-1-2" / "model.safetensors").write_bytes(b"half")
    run_rulelens("train", "--out", run, "--resume", "--steps", 5, "--quiet")
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000005"]
    # While one train writes into a folder, another is refused (and changes nothing).
    proc = subprocess.Popen([rulelens_bin(), "train", "--out", str(run), "--resume", "--steps", "100000", "--save-every", "100000", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (run / "train_log.csv").read_text().count("\n") < 10:
            time.sleep(0.01)
        second = run_rulelens("train", "--out", run, "--resume", "--steps", 100000, "--save-every", 100000, check=False)
        assert second.returncode == 1 and f"another `rulelens train` (process {proc.pid}) is writing" in second.stderr, second.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kernel_and_threads_are_recorded_everywhere(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    run = tmp_path / "run"
    proc = run_rulelens("train", "--data", data, "--out", run, *TINY, "--steps", 2, "--threads", 1, "--quiet")
    info = json.loads((run / "rulelens.json").read_text())
    config = json.loads((run / "train_config.json").read_text())
    core = info["blas_core"]
    assert core and info["threads"] == "1" and config["blas"]["blas_core"] == core and config["blas"]["threads"] == 1
    assert config["blas"]["blas_config"].startswith("OpenBLAS")
    env = os.environ.get("OPENBLAS_CORETYPE")
    if env:
        assert core.lower() == env.lower() and config["blas"]["openblas_coretype"] == env
    assert f"OpenBLAS {core} kernels, 1 thread" in proc.stdout
    result = json.loads(run_rulelens("eval", "--checkpoint", run, "--data", data, "--json", "--threads", 1).stdout)
    assert result["provenance"]["blas_core"] == core and result["provenance"]["threads"] == 1
    trained = json.loads(run_rulelens("train", "--data", data, "--out", tmp_path / "again", "--steps", 1, "--layers", 1, "--heads", 2,
                                      "--d-model", 16, "--threads", 1, "--quiet", "--json").stdout)
    assert trained["provenance"]["blas_core"] == core and trained["provenance"]["threads"] == 1
    text = run_rulelens("eval", "--checkpoint", run, "--data", data, "--threads", 1, "--quiet").stdout
    assert f"(OpenBLAS {core} kernels, 1 thread;" in text, text
    import h5py
    run_rulelens("dump", "--checkpoint", run, "--data", data, "--hooks", "blocks.0.hook_resid_post", "--out", tmp_path / "d.h5", "--quiet")
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f.attrs["blas_core"] == core and int(f.attrs["threads"]) >= 1
        assert str(f.attrs["blas_config"]).startswith("OpenBLAS")


def test_keep_best_holds_the_weights_of_the_lowest_held_out_loss(tmp_path):
    """--keep-best: OUT/best is the checkpoint of the step with the lowest held-out loss in eval_log.csv (its loss,
    measured again by `rulelens eval`, is that row's), and the train result names that step; without held-out data
    the flag is refused."""
    data = write_jsonl(tmp_path / "train.jsonl", MEMORISE)
    held_out = write_jsonl(tmp_path / "held_out.jsonl", MEMORISE[::2])
    out = json.loads(run_rulelens("train", "--data", data, *TINY, "--steps", 40, "--lr", 3e-2, "--threads", 1, "--eval-every", 4,
                                  "--eval-data", held_out, "--keep-best", "--quiet", "--json", "--out", tmp_path / "run").stdout)
    rows = [line.split(",") for line in (tmp_path / "run" / "eval_log.csv").read_text().splitlines()[1:]]
    step, loss = min(((int(r[0]), float(r[2])) for r in rows), key=lambda r: r[1])
    assert (out["best_step"], out["best_eval_loss"]) == (step, loss)
    evaluated = json.loads(run_rulelens("eval", "--checkpoint", tmp_path / "run" / "best", "--data", held_out, "--json").stdout)
    assert abs(evaluated["test"]["loss"] - loss) < 1e-6
    proc = run_rulelens("train", "--data", data, *TINY, "--steps", 4, "--keep-best", "--out", tmp_path / "no", check=False)
    assert proc.returncode != 0 and "--keep-best" in proc.stderr and "--eval-every" in proc.stderr
    assert not (tmp_path / "no").exists()
