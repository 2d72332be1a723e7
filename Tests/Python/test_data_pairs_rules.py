"""`rulelens data pairs` for the rule tasks math-derivation and explanatory: the same premises under another rule.

Each corrupted line has a prompt of the clean line's length in characters (patching aligns positions), another rule,
and a first answer character of its own; the pairing is recorded in pairs.json. Math: the same expression under
another operator, its conclusion checked with SymPy. Explanatory: the same subject under another inference type,
an instance the generator itself can produce. Examples without a counterpart are counted.
"""
import json

import sympy  # pinned in requirements.txt

from conftest import run_rulelens
from test_tasks_sympy import PATTERNS, P, expected


def expression(rule, prompt):
    """The expression an operator is applied to (the premise both prompts share)."""
    a, b = PATTERNS[rule].match(prompt).groups()
    return P(b) if rule in ("add", "subtract") else P(a)


def make_pairs(tmp_path, task, count, *extra):
    data = tmp_path / task
    run_rulelens("data", "generate", "--task", task, "--count", count, "--seed", 7, "--out", data)
    out = tmp_path / f"{task}-pairs"
    proc = run_rulelens("data", "pairs", "--data", data, "--part", "all", "--out", out, *extra)
    clean = [json.loads(l) for l in (out / "clean.jsonl").read_text().splitlines()]
    corrupt = [json.loads(l) for l in (out / "corrupt.jsonl").read_text().splitlines()]
    meta = json.loads((out / "pairs.json").read_text())
    originals = [json.loads(l) for f in ("train.jsonl", "test.jsonl") for l in (data / f).read_text().splitlines()]
    return proc.stdout, clean, corrupt, meta, originals


def check_pairs(stdout, clean, corrupt, meta, originals):
    assert len(clean) == len(corrupt) == len(meta["pairs"]) > 0
    assert meta["skipped"] + len(clean) == len(originals)
    assert f"{len(clean)} pairs" in stdout and f"{meta['skipped']} examples without a counterpart" in stdout
    by_line = {i + 1: e for i, e in enumerate(originals)}
    for c, x, r in zip(clean, corrupt, meta["pairs"]):
        original = by_line[r["line"]]
        prefix = r["answer_prefix"]
        # The clean example is the original with the shared start of both conclusions moved into the prompt.
        assert c["prompt"] == original["prompt"] + prefix and prefix + c["target"] == original["target"]
        assert len(c["prompt"]) == len(x["prompt"]) and x["prompt"].endswith(prefix)
        assert c["target"][0] != x["target"][0]
        if prefix:     # the source maps indexed the whole conclusion: dropped where it moved
            assert c.get("sources") is None and x.get("sources") is None
        assert r["changed"] == "rule" and r["from"] == original["rule"] == c["rule"] and r["to"] == x["rule"] != c["rule"]
    return by_line


def test_math_derivation_pairs(tmp_path):
    stdout, clean, corrupt, meta, originals = make_pairs(tmp_path, "math-derivation", 240)
    by_line = check_pairs(stdout, clean, corrupt, meta, originals)
    rules = set()
    for x, r in zip(corrupt, meta["pairs"]):
        prefix = r["answer_prefix"]
        prompt = x["prompt"][: len(x["prompt"]) - len(prefix)]
        conclusion = prefix + x["target"]
        # The same expression (the clean prompt's) under another operator, and the conclusion SymPy derives.
        original = by_line[r["line"]]["prompt"]
        assert sympy.simplify(expression(x["rule"], prompt) - expression(r["from"], original)) == 0, (original, prompt)
        mine = expected(x["rule"], prompt)
        if isinstance(mine, tuple):
            _, integrand, var = mine
            assert sympy.simplify(sympy.diff(P(conclusion), var) - integrand) == 0, x
        else:
            assert sympy.simplify(P(conclusion) - mine) == 0, x
        rules.add((r["from"], r["to"]))
    # Pairs between several operator combinations, and a fair share of the data paired.
    assert len(rules) >= 4 and len(clean) >= len(originals) // 5, (len(clean), len(originals), rules)


def test_explanatory_pairs(tmp_path):
    stdout, clean, corrupt, meta, originals = make_pairs(tmp_path, "explanatory", 240)
    by_line = check_pairs(stdout, clean, corrupt, meta, originals)
    # Every corrupted example is built from the knowledge base as the generator builds it: each premise sentence is
    # one the generator states somewhere in a large generated set, and where the whole instance was generated there
    # too, the conclusion and rule are the same. The subject is the clean conclusion's.
    big = tmp_path / "big"
    run_rulelens("data", "generate", "--task", "explanatory", "--count", 6000, "--seed", 1, "--out", big)
    rows = [json.loads(l) for f in ("train.jsonl", "test.jsonl") for l in (big / f).read_text().splitlines()]
    known = {r["prompt"]: r for r in rows}
    sentences = {s for r in rows for s in r["prompt"].split("; ")} | {r["target"] for r in rows}
    found, stated = 0, 0
    for x, r in zip(corrupt, meta["pairs"]):
        prefix = r["answer_prefix"]
        prompt = x["prompt"][: len(x["prompt"]) - len(prefix)]
        original = by_line[r["line"]]
        if prompt in known:
            found += 1
            assert known[prompt]["target"] == prefix + x["target"] and known[prompt]["rule"] == x["rule"]
        stated += all(s in sentences for s in prompt.split("; "))
        subject = next(w for w in [original["target"].split(" is ")[0], " ".join(original["target"].split()[:2])] if w)
        assert (prefix + x["target"]).startswith(subject.split()[0])
    assert found > 0 and stated >= 0.9 * len(corrupt), (found, stated, len(corrupt))


def test_one_length_and_bad_input(tmp_path):
    stdout, clean, corrupt, meta, originals = make_pairs(tmp_path, "math-derivation", 120, "--one-length")
    assert len({len(c["prompt"]) for c in clean}) == 1 and len({len(x["prompt"]) for x in corrupt}) == 1
    # A line that is not a math-derivation step, in a math-derivation data directory: an error naming it, nothing written.
    bad = tmp_path / "math-derivation"
    lines = (bad / "test.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"prompt": "fold x^2 twice", "target": "x", "rule": "fold"})
    (bad / "test.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_rulelens("data", "pairs", "--data", bad, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 1 and "error: line 2 is not a math-derivation example" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "o").exists()
