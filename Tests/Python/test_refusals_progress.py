"""Refusals change nothing (issue 8, item 9) and long work shows throttled progress (item 11)."""
import json
import re
import time

from conftest import run_rulelens

RULES = {"add": lambda a, b: (f"{a}+{b}=", str(a + b)), "sub": lambda a, b: (f"{a}-{b}=", str(a - b))}
TINY = ["--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 16, "--batch", 4]


def labelled(n):
    rows = []
    for i in range(n):
        rule = list(RULES)[i % 2]
        prompt, target = RULES[rule](i % 10, (3 * i) % 10)
        rows.append({"prompt": prompt, "target": target, "rule": rule})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_refused_train_writes_no_data(tmp_path):
    out = tmp_path / "runs" / "add"
    # Refused by an option check (before generating anything) and by an example check (after): nothing stays.
    for bad in (["--d-model", 30, "--heads", 4], ["--ctx", 4]):
        proc = run_rulelens("train", "--task", "addition", "--out", out, *bad, "--steps", 1, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    # A folder that already holds a run: the refusal leaves it as it was (no data/ appears in it).
    data = write_jsonl(tmp_path / "t.jsonl", labelled(8))
    run_rulelens("train", "--data", data, "--out", out, *TINY, "--steps", 1, "--quiet")
    before = sorted(p.name for p in out.iterdir())
    proc = run_rulelens("train", "--task", "addition", "--out", out, *TINY, "--steps", 1, check=False)
    assert proc.returncode == 1 and "--resume" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == before


def test_data_plane_wants_force(tmp_path):
    data = tmp_path / "a"
    run_rulelens("data", "generate", "--task", "addition", "--out", data)
    test = [json.loads(l) for l in (data / "test.jsonl").read_text().splitlines()]
    pfile = tmp_path / "p.jsonl"
    pfile.write_text("".join(json.dumps({"a": e["a"], "b": e["b"], "correct": True}) + "\n" for e in test))
    (tmp_path / "plane.svg").write_text("mine")
    proc = run_rulelens("data", "plane", data, "--predictions", pfile, "--out", tmp_path / "plane", check=False)
    assert proc.returncode == 1 and "plane.svg already exists" in proc.stderr and "--force" in proc.stderr
    assert (tmp_path / "plane.svg").read_text() == "mine" and not (tmp_path / "plane.npy").exists()
    run_rulelens("data", "plane", data, "--predictions", pfile, "--out", tmp_path / "plane", "--force")
    assert (tmp_path / "plane.svg").read_text().startswith("<svg")


def test_probes_check_out_before_computing(tmp_path):
    taken = tmp_path / "taken.h5"
    taken.write_bytes(b"mine")
    folder = tmp_path / "taken"   # --out DIR: an existing picture in it is refused as well
    folder.mkdir()
    (folder / "plot.svg").write_bytes(b"mine")
    (folder / "ntk.svg").write_bytes(b"mine")
    # The input does not even exist: the existing --out is what is reported, so it was checked first.
    for args in (["pca", "--file", tmp_path / "missing.h5", "--site", "x"],
                 ["separability", "--file", tmp_path / "missing.h5", "--site", "x", "--label", "rule"],
                 ["linear", "--file", tmp_path / "missing.h5", "--site", "x", "--label", "rule"],
                 ["cka", "--file", tmp_path / "missing.h5", "--site", "x"],
                 ["ntk", "--checkpoint", tmp_path / "missing", "--data", tmp_path / "missing.jsonl"]):
        proc = run_rulelens("probe", *args, "--out", taken, check=False)
        assert proc.returncode == 1 and "taken.h5 already exists" in proc.stderr and "--force" in proc.stderr, (args, proc.stderr)
        proc = run_rulelens("probe", *args, "--out", folder, check=False)
        assert proc.returncode == 1 and ".svg already exists" in proc.stderr and "--force" in proc.stderr, (args, proc.stderr)
    assert taken.read_bytes() == b"mine" and (folder / "plot.svg").read_bytes() == b"mine"


def progress_lines(stderr, prefix):
    return [l for l in stderr.replace("\r", "\n").splitlines() if l.startswith(prefix)]


def test_eval_and_logits_show_progress_and_quiet_silences_it(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", labelled(300))
    run_rulelens("train", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", 2, "--quiet")
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", data)
    loss, decode = progress_lines(proc.stderr, "eval: loss"), progress_lines(proc.stderr, "eval: decoding")
    assert loss and decode, proc.stderr
    assert re.match(r"eval: decoding 300/300 examples \| [0-9.]+k? ex/s \| \d+s$", decode[-1]), decode
    assert all(re.search(r"\| (ETA \S+|\d+s)$", l) for l in loss + decode), proc.stderr
    assert progress_lines(run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", data, "--quiet").stderr, "eval") == []
    proc = run_rulelens("logits", "--checkpoint", tmp_path / "run", "--data", data, "--out", tmp_path / "l.safetensors")
    assert re.match(r"logits 300/300 examples \| ", progress_lines(proc.stderr, "logits")[-1]), proc.stderr


def test_progress_off_a_terminal_is_throttled(tmp_path):
    """Off a terminal a progress line is printed at most every 2 s, plus the last: probe ntk printed one line per
    8 examples (88 lines in 0.7 s) before."""
    data = write_jsonl(tmp_path / "d.jsonl", labelled(400))
    run_rulelens("train", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", 2, "--quiet")
    started = time.time()
    proc = run_rulelens("probe", "ntk", "--checkpoint", tmp_path / "run", "--data", data, "--max-per-rule", 200)
    elapsed = time.time() - started
    lines = progress_lines(proc.stderr, "ntk:")
    assert lines and lines[-1].startswith("ntk: 400/400 examples"), proc.stderr
    assert len(lines) <= 2 + int(elapsed / 2), (len(lines), elapsed, lines)
    quiet = run_rulelens("probe", "ntk", "--checkpoint", tmp_path / "run", "--data", data, "--max-per-rule", 20, "--quiet")
    assert progress_lines(quiet.stderr, "ntk:") == [], quiet.stderr
    started = time.time()
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", data)
    elapsed = time.time() - started
    assert len(progress_lines(proc.stderr, "eval:")) <= 4 + 2 * int(elapsed / 2), proc.stderr
