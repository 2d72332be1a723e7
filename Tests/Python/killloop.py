"""The kill-and-resume loop the training tests share: SIGKILL a run at random instants, resume it with nothing but
`--out --resume`, and compare every run that reaches its end with the uninterrupted one."""
import random
import signal
import subprocess
import time

from conftest import rulelens_bin, run_rulelens


def newest_save(run):
    units = sorted(p.name for p in (run / "checkpoints").glob("step-*")) if (run / "checkpoints").exists() else []
    return int(units[-1][5:]) if units else 0


def kill_and_resume(tmp_path, fresh, command, outcome, steps, kills, seed, longest_delay, check_finished=None):
    """`fresh` starts a run (without --out), `command` is its verb (["train"] or ["vae", "train"]). Kills `kills` times
    at delays drawn uniformly below `longest_delay`; every finished run must equal `outcome(tmp_path / "whole")`
    (the caller ran it) and leave no hidden temporaries; `check_finished(run)` adds checks. Returns the counts."""
    reference = outcome(tmp_path / "whole")
    rng = random.Random(seed)
    killed, resumed_ok, failures, bitwise = 0, 0, [], 0
    run = tmp_path / "run0"
    started = time.time()

    def finished(run):
        assert outcome(run) == reference, \
            f"run {bitwise}: differs from the uninterrupted run in {[k for k in reference if outcome(run)[k] != reference[k]]}"
        leftovers = [p.name for p in list(run.iterdir()) + list((run / "checkpoints").iterdir()) if p.name.startswith(".")]
        assert leftovers == [], leftovers
        if check_finished:
            check_finished(run)

    while killed < kills:
        resuming = (run / "train_config.json").exists()
        args = [*command, "--out", run, "--resume", "--quiet"] if resuming else [*fresh, "--out", run]
        proc = subprocess.Popen([rulelens_bin(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.0, longest_delay))   # start-up, steps, saves, publication, clean-up
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        if proc.returncode == -signal.SIGKILL:
            killed += 1
        elif proc.returncode != 0:
            failures.append((killed, "resume" if resuming else "fresh", err))
            break
        if killed > 0 and resuming:
            resumed_ok += 1
        if newest_save(run) == steps and proc.returncode == 0:
            finished(run)
            bitwise += 1
            run = tmp_path / f"run{bitwise}"
    if (run / "train_config.json").exists():   # finish the last one
        run_rulelens(*command, "--out", run, "--resume", "--quiet")
        finished(run)
        bitwise += 1
    assert not failures, failures
    return {"kills": killed, "resumes": resumed_ok, "bitwise": bitwise, "seconds": time.time() - started}
