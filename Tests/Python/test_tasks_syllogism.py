"""Every generated syllogism is valid for its form, checked by an independent model checker:
enumerate every assignment of S, M, P as subsets of a small universe and look for a counter-model."""
import itertools
import json
import re

import pytest

from conftest import run_rulelens

STATEMENT = re.compile(r"^(All|No|Some) (\w+) are (not )?(\w+)\.$")
# The 15 forms valid without existential import (the other 9 need one term non-empty).
UNCONDITIONAL = {"Barbara", "Celarent", "Darii", "Ferio", "Cesare", "Camestres", "Festino", "Baroco",
                 "Disamis", "Datisi", "Bocardo", "Ferison", "Camenes", "Dimaris", "Fresison"}
# The term each of the other nine needs to be non-empty (existential import).
NEEDS = {"Barbari": "S", "Celaront": "S", "Cesaro": "S", "Camestros": "S", "Camenos": "S",
         "Darapti": "M", "Felapton": "M", "Fesapo": "M", "Bramantip": "P"}


def parse(sentence):
    m = STATEMENT.match(sentence)
    assert m, sentence
    q, x, neg, y = m.groups()
    kind = {"All": "A", "No": "E"}.get(q) or ("O" if neg else "I")
    assert not (neg and q != "Some"), sentence
    return kind, x, y


def holds(kind, X, Y):
    if kind == "A":
        return X <= Y
    if kind == "E":
        return not (X & Y)
    if kind == "I":
        return bool(X & Y)
    return bool(X - Y)


def subsets(universe):
    return [frozenset(c) for r in range(len(universe) + 1) for c in itertools.combinations(universe, r)]


SETS = subsets(range(3))


def valid(premises, conclusion, terms, nonempty):
    """No assignment of the terms to subsets of a 3-element universe makes the premises true and the
    conclusion false (3 elements suffice: each premise and the negated conclusion need at most one witness)."""
    for values in itertools.product(SETS, repeat=len(terms)):
        env = dict(zip(terms, values))
        if any(not env[t] for t in nonempty):
            continue
        if all(holds(k, env[x], env[y]) for k, x, y in premises) and not holds(*[conclusion[0]], env[conclusion[1]], env[conclusion[2]]):
            return False
    return True


def split_premises(prompt):
    parts = re.findall(r"[^.]+\.", prompt)
    return [p.strip() for p in parts]


def test_checker_can_reject():
    # Undistributed middle (AAA-2) is invalid; Barbara is valid.
    assert not valid([("A", "s", "m"), ("A", "p", "m")], ("A", "s", "p"), ["s", "m", "p"], [])
    assert valid([("A", "s", "m"), ("A", "m", "p")], ("A", "s", "p"), ["s", "m", "p"], [])
    # Darapti needs its middle term non-empty.
    assert not valid([("A", "m", "p"), ("A", "m", "s")], ("I", "s", "p"), ["s", "m", "p"], [])


def test_every_instance_is_valid_for_its_form(tmp_path):
    out = tmp_path / "syl"
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "480", "--seed", "2", "--out", out)
    examples = [json.loads(l) for f in ("train.jsonl", "test.jsonl") for l in (out / f).read_text().splitlines()]
    assert len(examples) == 480
    forms = {}
    for e in examples:
        name, label = e["rule"].split()
        mood, figure = label.split("-")
        forms[name] = (mood, figure)
        premises = [parse(s) for s in split_premises(e["prompt"])]
        assert len(premises) == 2
        conclusion = parse(e["target"])
        s, p = conclusion[1], conclusion[2]
        terms = sorted({t for _, x, y in premises + [conclusion] for t in (x, y)})
        assert len(terms) == 3, e
        (m,) = set(terms) - {s, p}
        # Mood and figure read back from the text: major premise holds P, minor holds S.
        major = next(pr for pr in premises if p in pr[1:])
        minor = next(pr for pr in premises if s in pr[1:])
        assert mood == major[0] + minor[0] + conclusion[0], e
        fig = {((m, p), (s, m)): "1", ((p, m), (s, m)): "2", ((m, p), (m, s)): "3", ((p, m), (m, s)): "4"}[(major[1:], minor[1:])]
        assert fig == figure, e
        # Valid with existential import for every term (the traditional reading that makes all 24 valid) ...
        assert valid(premises, conclusion, terms, nonempty=terms), e
        # ... and the 15 unconditional forms are valid with no import at all; the 9 others are not.
        assert valid(premises, conclusion, terms, nonempty=[]) == (name in UNCONDITIONAL), e
        if name in NEEDS:
            needed = {"S": s, "M": m, "P": p}[NEEDS[name]]
            assert valid(premises, conclusion, terms, nonempty=[needed]), e
    assert len(forms) == 24
    assert len(set(forms.values())) == 24  # 24 distinct mood-figure pairs
