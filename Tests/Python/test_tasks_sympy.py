"""The math-derivation task's symbolic engine agrees with SymPy: generate steps with the CLI, parse premise and
conclusion with sympy, redo the operation in sympy and check simplify(ours - sympy's) == 0."""
import json
import re

import sympy  # pinned in requirements.txt: a missing sympy fails the suite instead of skipping it
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from conftest import run_rulelens

T = standard_transformations + (convert_xor,)
x, y = sympy.symbols("x y")
NS = {"x": x, "y": y, "sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "log": sympy.log}

PATTERNS = {
    "differentiate": re.compile(r"^differentiate (.+) with respect to ([xy])$"),
    "integrate": re.compile(r"^integrate (.+) with respect to ([xy])$"),
    "add": re.compile(r"^add (.+) to (.+)$"),
    "subtract": re.compile(r"^subtract (.+) from (.+)$"),
    "multiply": re.compile(r"^multiply (.+) by (.+)$"),
    "divide": re.compile(r"^divide (.+) by (.+)$"),
}


def P(text):
    return parse_expr(text, local_dict=NS, transformations=T)


def expected(rule, prompt):
    m = PATTERNS[rule].match(prompt)
    assert m, prompt
    a, b = m.groups()
    if rule == "differentiate":
        return sympy.diff(P(a), NS[b])
    if rule == "integrate":
        return None, P(a), NS[b]            # checked by differentiating back (constants may differ)
    if rule == "add":
        return P(b) + P(a)
    if rule == "subtract":
        return P(b) - P(a)
    if rule == "multiply":
        return P(a) * P(b)
    return P(a) / P(b)


def test_engine_agrees_with_sympy(tmp_path):
    out = tmp_path / "math"
    run_rulelens("data", "generate", "--task", "math-derivation", "--count", "360", "--seed", "11", "--out", out)
    examples = [json.loads(l) for f in ("train.jsonl", "test.jsonl") for l in (out / f).read_text().splitlines()]
    assert len(examples) == 360
    counts = {}
    for e in examples:
        ours = P(e["target"])
        want = expected(e["rule"], e["prompt"])
        if isinstance(want, tuple):
            _, integrand, var = want
            assert sympy.simplify(sympy.diff(ours, var) - integrand) == 0, e
        else:
            assert sympy.simplify(ours - want) == 0, e
        counts[e["rule"]] = counts.get(e["rule"], 0) + 1
    assert set(counts) == set(PATTERNS) and min(counts.values()) == 60


def test_sympy_check_can_fail():
    assert sympy.simplify(P("3*x^2 + 2*cos(x)") - sympy.diff(P("x^3 + 2*sin(x)"), x)) == 0
    assert sympy.simplify(P("3*x^2 - 2*cos(x)") - sympy.diff(P("x^3 + 2*sin(x)"), x)) != 0
