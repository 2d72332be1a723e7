"""`rulelens data generate` / `data show` from the outside: counts, reproducibility, refusals, clear errors."""
import json
from pathlib import Path

import pytest

from conftest import run_rulelens


def generate(tmp_path, name, *args):
    out = tmp_path / name
    run_rulelens("data", "generate", *args, "--out", out)
    return out


def lines(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("task,split,extra,train,test", [
    ("addition", "leave-square-out", [], 9559, 441),
    ("modular-addition", "leave-square-out", [], 12328, 441),
    ("chickens-rabbits", "leave-square-out", [], 4609, 441),
    ("chickens-rabbits", "leave-square-out", ["--format", "compact"], 4609, 441),
    ("addition", "random", ["--train-fraction", "0.7"], 7000, 3000),
    ("addition", "leave-square-out", ["--center", "50,50", "--half", "20"], 10000 - 41 * 41, 41 * 41),
])
def test_published_counts(tmp_path, task, split, extra, train, test):
    out = generate(tmp_path, "d", "--task", task, "--split", split, *extra)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"] == {"train": train, "test": test}
    assert len(lines(out / "train.jsonl")) == train and len(lines(out / "test.jsonl")) == test
    assert meta["task"] == task and meta["split"] == split and meta["generator_version"]
    # train and test never share an operand pair
    tr = {(e["a"], e["b"]) for e in lines(out / "train.jsonl")}
    te = {(e["a"], e["b"]) for e in lines(out / "test.jsonl")}
    assert not tr & te


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    args = ["--task", "addition", "--format", "scratchpad", "--split", "holes", "--holes", "2"]
    a = generate(tmp_path, "a", *args, "--seed", "3")
    b = generate(tmp_path, "b", *args, "--seed", "3")
    c = generate(tmp_path, "c", *args, "--seed", "4")
    for f in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
    assert (a / "test.jsonl").read_bytes() != (c / "test.jsonl").read_bytes()


def test_every_task_is_reproducible_across_processes(tmp_path):
    # Separate processes have different hash seeds: nothing may depend on Set/Dictionary order.
    for task in ("syllogism", "math-derivation", "explanatory", "multi-digit-addition", "chickens-rabbits"):
        args = ["--task", task, "--count", "300"] if task != "chickens-rabbits" else ["--task", task, "--split", "holes"]
        a = generate(tmp_path, task + "-a", *args, "--seed", "9")
        b = generate(tmp_path, task + "-b", *args, "--seed", "9")
        for f in ("train.jsonl", "test.jsonl", "meta.json"):
            assert (a / f).read_bytes() == (b / f).read_bytes(), (task, f)


def test_jsonl_schema(tmp_path):
    out = generate(tmp_path, "s", "--task", "syllogism", "--count", "48")
    for e in lines(out / "train.jsonl") + lines(out / "test.jsonl"):
        assert set(e) == {"id", "prompt", "target", "answer", "rule", "rule_id", "sources"}
    out = generate(tmp_path, "c", "--task", "chickens-rabbits", "--split", "leave-square-out")
    e = lines(out / "test.jsonl")[0]
    assert set(e) == {"id", "prompt", "target", "answer", "rule", "a", "b", "sources"}
    assert f"There are {2 * e['a']} legs and {e['b']} heads" in e["prompt"]


def test_compact_chickens_rabbits_is_the_same_problem(tmp_path):
    # The compact form carries the same (a, b), split and arithmetic as the published sentence, in ~12 characters.
    direct = lines(generate(tmp_path, "s", "--task", "chickens-rabbits", "--split", "leave-square-out") / "train.jsonl")
    compact = lines(generate(tmp_path, "c", "--task", "chickens-rabbits", "--split", "leave-square-out",
                             "--format", "compact") / "train.jsonl")
    assert [(e["a"], e["b"]) for e in direct] == [(e["a"], e["b"]) for e in compact]
    for d, c in zip(direct, compact):
        legs, heads = map(int, c["prompt"].rstrip("=").split(","))
        rabbits, chickens = map(int, c["answer"].split(","))
        assert f"There are {legs} legs and {heads} heads" in d["prompt"]
        assert d["answer"] == f"There are {rabbits} rabbits and {chickens} chickens."
        assert 4 * rabbits + 2 * chickens == legs and rabbits + chickens == heads
    assert max(len(e["prompt"]) + len(e["target"]) for e in compact) <= 14
    bad = run_rulelens("data", "generate", "--task", "addition", "--format", "compact", "--out", tmp_path / "x", check=False)
    assert bad.returncode != 0 and "format compact is not defined for task addition" in bad.stderr
    assert "use --format direct or scratchpad or rule" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_without_force(tmp_path):
    out = generate(tmp_path, "d", "--task", "addition")
    before = (out / "train.jsonl").read_bytes()
    r = run_rulelens("data", "generate", "--task", "addition", "--seed", "1", "--out", out, check=False)
    assert r.returncode != 0 and "--force" in r.stderr
    assert (out / "train.jsonl").read_bytes() == before
    run_rulelens("data", "generate", "--task", "addition", "--seed", "1", "--out", out, "--force")
    assert (out / "train.jsonl").read_bytes() != before
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.jsonl", "train.jsonl"]


@pytest.mark.parametrize("args,needle", [
    (["--task", "addition", "--split", "leave-square-out", "--half", "60"], "outside the addition plane"),
    (["--task", "addition", "--split", "leave-square-out", "--center", "95,50"], "outside the addition plane"),
    (["--task", "addition", "--split", "holes", "--holes", "40"], "cannot place 40"),
    (["--task", "syllogism", "--format", "scratchpad"], "not defined for task syllogism"),
    (["--task", "syllogism", "--split", "leave-square-out"], "needs an operand-plane task"),
    (["--task", "multi-digit-addition", "--split", "length", "--train-digits", "1-6", "--test-digits", "5-9"], "overlap"),
    (["--task", "addition", "--train-fraction", "1.5"], "between 0 and 1"),
    (["--task", "addition", "--split", "leave-square-out", "--center", "50"], "not a point"),
])
def test_bad_options_are_clear_errors(tmp_path, args, needle):
    out = tmp_path / "bad"
    r = run_rulelens("data", "generate", *args, "--out", out, check=False)
    assert r.returncode != 0
    assert needle in r.stderr and "fix:" in r.stderr, r.stderr
    assert not (out / "meta.json").exists()


@pytest.mark.parametrize("args,needle", [
    (["--task", "additon"], "- addition"),
    (["--task", "addition", "--format", "cot"], "'direct', 'scratchpad', 'rule' or 'compact'"),
    (["--task", "addition", "--split", "squares"], "'random', 'leave-square-out', 'holes' or 'length'"),
])
def test_unknown_names_list_the_known_ones(tmp_path, args, needle):
    """Task, format and split are typed: an unknown value is a usage error (exit 64) that lists the values."""
    out = tmp_path / "bad"
    r = run_rulelens("data", "generate", *args, "--out", out, check=False)
    assert r.returncode == 64 and "is invalid" in r.stderr and needle in r.stderr, r.stderr
    assert not out.exists()


def test_show_prints_counts_examples_and_map(tmp_path):
    out = generate(tmp_path, "d", "--task", "addition", "--split", "leave-square-out")
    text = run_rulelens("data", "show", out).stdout
    assert "train: 9559 examples" in text and "test: 441 examples" in text
    assert "prompt:" in text and "map of the split" in text
    grid = [l.split("|", 1)[1] for l in text.split("map of the split", 1)[1].splitlines() if "|" in l]
    assert any("#" in row for row in grid) and all(set(row) <= set(".#+ ") for row in grid)
    r = run_rulelens("data", "show", tmp_path / "nothing", check=False)
    assert r.returncode != 0 and "meta.json" in r.stderr
