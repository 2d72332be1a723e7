"""Explanatory conclusions follow from their premises: an independent forward-chaining checker parses the
premises into facts, closes them under the inference rules, and finds the conclusion; every premise is
itself true under Data/explanatory_kb.txt."""
import json
import re
from pathlib import Path

import pytest

from conftest import ROOT, run_rulelens


def load_kb():
    isa, has, rules = set(), set(), set()
    for line in (ROOT / "Data" / "explanatory_kb.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, body = line.split(":", 1)
        if kind == "rule":
            c, q = (x.strip() for x in body.split("=>"))
            rules.add((c, q))
        else:
            x, y = (t.strip() for t in body.split("|"))
            if kind == "kind":
                isa.add((article(x), article(y)))
            elif kind == "prop":
                has.add((article(x), y))
            else:
                has.add((x, y))
    return isa, has, rules


def article(noun):
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def closure(isa, has, rules):
    """Forward chaining to a fixed point: is-a transitivity, property inheritance, modus ponens, rule chaining."""
    isa, has, rules = set(isa), set(has), set(rules)
    while True:
        new_isa = {(x, z) for x, y in isa for y2, z in isa if y == y2} - isa
        new_has = ({(x, p) for x, y in isa for y2, p in has if y == y2}
                   | {(x, q) for x, c in has for c2, q in rules if c == c2}) - has
        new_rules = {(a, c) for a, b in rules for b2, c in rules if b == b2} - rules
        if not (new_isa or new_has or new_rules):
            return isa, has, rules
        isa |= new_isa
        has |= new_has
        rules |= new_rules


KIND = re.compile(r"^(an? .+) is a kind of (.+)$")
RULE = re.compile(r"^if something (.+) then it (.+)$")


def parse(sentence, subjects):
    """One sentence → ("isa", x, y) | ("rule", c, q) | ("has", x, [vp, ...])."""
    m = KIND.match(sentence)
    if m:
        return ("isa", m.group(1), article(m.group(2)))
    m = RULE.match(sentence)
    if m:
        return ("rule", m.group(1), m.group(2))
    subject = max((s for s in subjects if sentence.startswith(s + " ")), key=len, default=None)
    assert subject, f"no known subject in {sentence!r}"
    return ("has", subject, sentence[len(subject) + 1:].split(" and "))


def facts_of(parsed):
    isa, has, rules = set(), set(), set()
    for kind, x, y in parsed:
        if kind == "isa":
            isa.add((x, y))
        elif kind == "rule":
            rules.add((x, y))
        else:
            has.update((x, vp) for vp in y)
    return isa, has, rules


def entails(facts, sentence):
    isa, has, rules = facts
    kind, x, y = sentence
    if kind == "isa":
        return (x, y) in isa
    if kind == "rule":
        return (x, y) in rules
    return all((x, vp) in has for vp in y)


def test_checker_can_reject():
    kb = closure(*load_kb())
    subjects = {s for s, _ in kb[1]} | {s for s, _ in kb[0]}
    premises = [parse("a hare is a kind of mammal", subjects), parse("a mammal has fur", subjects)]
    facts = closure(*facts_of(premises))
    assert entails(facts, parse("a hare has fur", subjects))
    assert not entails(facts, parse("a hare has feathers", subjects))
    assert not entails(closure(*facts_of(premises[:1])), parse("a hare has fur", subjects))
    assert not entails(kb, parse("a penguin is a kind of mammal", subjects))


def test_every_conclusion_follows_from_its_premises(tmp_path):
    out = tmp_path / "exp"
    run_rulelens("data", "generate", "--task", "explanatory", "--count", "600", "--seed", "4", "--out", out)
    examples = [json.loads(l) for f in ("train.jsonl", "test.jsonl") for l in (out / f).read_text().splitlines()]
    assert len(examples) >= 500
    kb = closure(*load_kb())
    subjects = {s for s, _ in kb[1]} | {s for s, _ in kb[0]} | {s for _, s in kb[0]}
    seen_rules = set()
    for e in examples:
        premises = [parse(p, subjects) for p in e["prompt"].split("; ")]
        conclusion = parse(e["target"], subjects)
        assert entails(closure(*facts_of(premises)), conclusion), e
        for p in premises:
            assert entails(kb, p), (p, e)
        # a single premise never suffices: every step combines its premises
        assert not any(entails(closure(*facts_of([p])), conclusion) for p in premises), e
        seen_rules.add((e["rule"], e["rule_id"]))
    assert {r for r, _ in seen_rules} == {"substitution", "property-inheritance", "if-then", "conjunction", "if-then-chain",
                                           "inheritance-if-then"}
