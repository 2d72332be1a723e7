"""Study 1's readings in `rulelens eval`, checked against independent computations from the files it writes:
Spearman's ρ of cell accuracy against the distance from the held-out square's centre equals scipy's `spearmanr`
(and its bootstrap interval brackets it); the step coverage (accuracy on test cases whose every digit step —
position, digit of a, digit of b, carry in — occurs in the training part, against the others) equals a count made
here from train.jsonl and the per-example verdicts."""
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import run_rulelens


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("mechanisms")
    # Centre (45, 45), L = 10: the square cuts the tens-digit blocks, so some held-out cases have every step in training.
    run_rulelens("data", "generate", "--task", "addition", "--split", "leave-square-out", "--center", "45,45", "--half", 10,
                 "--out", root / "d")
    run_rulelens("train", "--data", root / "d" / "train.jsonl", "--out", root / "m", "--layers", 1, "--heads", 2, "--d-model", 32,
                 "--ctx", 16, "--steps", 500, "--batch", 32, "--lr", 3e-3, "--warmup", 10, "--threads", 1, "--quiet")
    result = json.loads(run_rulelens("eval", "--checkpoint", root / "m", "--data", root / "d", "--part", "test", "--out", root / "e",
                                     "--json").stdout)["test"]
    test = [json.loads(l) for l in (root / "d" / "test.jsonl").read_text().splitlines() if l.strip()]
    verdicts = [json.loads(l)["correct"] for l in (root / "e" / "predictions_test.jsonl").read_text().splitlines() if l.strip()]
    train = [json.loads(l) for l in (root / "d" / "train.jsonl").read_text().splitlines() if l.strip()]
    return result, test, verdicts, train


def test_distance_trend_is_scipys_spearman(evaluated):
    result, test, verdicts, _ = evaluated
    cells = {}
    for e, ok in zip(test, verdicts):
        cells.setdefault((e["a"], e["b"]), []).append(ok)
    distance = [max(abs(a - 45), abs(b - 45)) for (a, b) in cells]
    accuracy = [np.mean(v) for v in cells.values()]
    rho = spearmanr(distance, accuracy).statistic
    d = result["distance"]
    assert d["cells"] == len(cells) == 441
    assert d["spearman"] == pytest.approx(rho, abs=1e-12)
    assert d["lo"] <= d["spearman"] <= d["hi"] and d["hi"] - d["lo"] < 0.5


def steps(a, b, base=10):
    out, carry, position = [], 0, 0
    while True:
        da, db = a % base, b % base
        out.append((position, da, db, carry))
        carry = (da + db + carry) // base
        a, b, position = a // base, b // base, position + 1
        if a == 0 and b == 0:
            return out


def test_step_coverage_matches_an_independent_count(evaluated):
    result, test, verdicts, train = evaluated
    seen = {s for e in train for s in steps(e["a"], e["b"])}
    groups = {True: [], False: []}
    for e, ok in zip(test, verdicts):
        groups[all(s in seen for s in steps(e["a"], e["b"]))].append(ok)
    s = result["steps"]
    assert (s["n_all_seen"], s["n_some_unseen"]) == (len(groups[True]), len(groups[False]))
    assert 0 < s["n_all_seen"] and 0 < s["n_some_unseen"]
    assert s["all_seen"] == pytest.approx(np.mean(groups[True]), abs=1e-12)
    assert s["some_unseen"] == pytest.approx(np.mean(groups[False]), abs=1e-12)
    assert s["training_steps"] == len(seen)
