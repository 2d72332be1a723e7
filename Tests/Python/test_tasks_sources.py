"""Source keys (`sources` in the JSONL, `/meta/sources` in dumps) against an independent recount for every task.

The recount works from the text alone (regular expressions over prompt and target), not from the generators'
structure, so a generator that records the wrong positions fails here.
"""
import json
import re
from pathlib import Path

import h5py
import pytest

from conftest import run_rulelens


def generate(tmp_path, *args):
    out = tmp_path / "d"
    run_rulelens("data", "generate", *args, "--split", "random", "--train-fraction", "0.5", "--out", out)
    return [json.loads(l) for l in (out / "train.jsonl").read_text().splitlines()][:300]


def columns(prompt_a_start, a, b_start, b, answer, answer_start, length):
    """Column-aligned sum: answer digit at place p ← the digits of a and b at place p; a carry-out ← both top digits."""
    out = [[] for _ in range(length)]
    for k in range(len(answer)):
        place = len(answer) - 1 - k
        keys = []
        if place < len(a):
            keys.append(prompt_a_start + len(a) - 1 - place)
        if place < len(b):
            keys.append(b_start + len(b) - 1 - place)
        out[answer_start + k] = keys or [prompt_a_start, b_start]
    return out


def operand_sum(prompt, pattern):
    m = re.search(pattern, prompt)
    return m.start(1), m.group(1), m.start(2), m.group(2)


@pytest.mark.parametrize("task", ["addition", "base9-addition"])
def test_direct_addition_columns(tmp_path, task):
    for e in generate(tmp_path, "--task", task):
        a0, a, b0, b = operand_sum(e["prompt"], r"^(\w+)\+(\w+)=$")
        assert e["sources"] == columns(a0, a, b0, b, e["target"], 0, len(e["target"])), e


def test_scratchpad_steps(tmp_path):
    for e in generate(tmp_path, "--task", "addition", "--format", "scratchpad"):
        a0, a, b0, b = operand_sum(e["prompt"], r"^(\d+)\+(\d+)=$")
        expected = [[] for _ in e["target"]]
        start = 0
        lines = e["target"].split("\n")
        for step, line in enumerate(lines):
            m = re.fullmatch(r"(\d*)\+(\d*),(\d*),C:(\d)", line)
            if m:
                for k in range(len(m.group(1))):
                    expected[start + k] = [a0 + k]
                for k in range(len(m.group(2))):
                    expected[start + m.start(2) + k] = [b0 + k]
                if step > 0:
                    place = step - 1
                    col = ([a0 + len(a) - 1 - place] if place < len(a) else []) + ([b0 + len(b) - 1 - place] if place < len(b) else [])
                    col = col or [a0, b0]
                    if m.group(3):
                        expected[start + m.start(3)] = col
                    expected[start + m.start(4)] = col
            start += len(line) + 1
        answer_start = len(e["target"]) - len(lines[-1])
        for i, keys in enumerate(columns(a0, a, b0, b, lines[-1], 0, len(lines[-1]))):
            expected[answer_start + i] = keys
        assert e["sources"] == expected, e


def test_rule_format_answer_line(tmp_path):
    for e in generate(tmp_path, "--task", "addition", "--format", "rule")[:100]:
        a0, a, b0, b = operand_sum(e["prompt"], r"add\((\d+),(\d+)\)=$")
        last = e["target"].split("\n")[-1]
        expected = [[] for _ in e["target"]]
        answer_start = len(e["target"]) - len(last)
        for i, keys in enumerate(columns(a0, a, b0, b, last, 0, len(last))):
            expected[answer_start + i] = keys
        assert e["sources"] == expected


@pytest.mark.parametrize("task,pattern,fmt", [
    ("modular-addition", r"^(\d+)\+(\d+)=$", "direct"),
    ("linear-regression", r"^\((\d+),(\d+)\)=$", "direct"),
    ("chickens-rabbits", r"There are (\d+) legs and (\d+) heads", "direct"),
    ("chickens-rabbits", r"^(\d+),(\d+)=$", "compact"),
])
def test_non_column_tasks_use_every_operand_digit(tmp_path, task, pattern, fmt):
    for e in generate(tmp_path, "--task", task, "--format", fmt):
        a0, a, b0, b = operand_sum(e["prompt"], pattern)
        operands = list(range(a0, a0 + len(a))) + list(range(b0, b0 + len(b)))
        assert e["sources"] == [operands if c.isdigit() else [] for c in e["target"]], e


def copied(prompt, target, keep):
    out = [[] for _ in target]
    for m in re.finditer(r"[A-Za-z0-9]+", target):
        if not keep(m.group()):
            continue
        starts = [p.start() for p in re.finditer(r"[A-Za-z0-9]+", prompt) if p.group() == m.group()]
        for k in range(len(m.group())):
            out[m.start() + k] = [s + k for s in starts]
    return out


@pytest.mark.parametrize("task,keep", [
    ("syllogism", lambda w: w not in {"All", "No", "Some", "are", "not"}),
    ("math-derivation", lambda w: w in {"x", "y"}),
    ("explanatory", lambda w: w not in {"a", "an", "is", "kind", "of", "if", "something", "then", "it", "and"}),
])
def test_study2_copied_words(tmp_path, task, keep):
    examples = generate(tmp_path, "--task", task, "--count", "240")
    with_source = 0
    for e in examples:
        assert e["sources"] == copied(e["prompt"], e["target"], keep), e
        with_source += any(e["sources"])
    assert with_source > 0.9 * len(examples), "most conclusions copy something from their premises"


def test_dump_meta_sources_match_the_jsonl(tmp_path):
    out = tmp_path / "d"
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "48", "--out", out)
    run_rulelens("train", "--data", out / "train.jsonl", "--out", tmp_path / "m", "--steps", "2", "--layers", "1",
                 "--d-model", "16", "--heads", "2", "--ctx", "128", "--threads", "1", "--quiet")
    run_rulelens("dump", "--checkpoint", tmp_path / "m", "--data", out / "test.jsonl", "--hooks", "blocks.0.hook_resid_post",
                 "--positions", "last", "--out", tmp_path / "a.h5")
    examples = [json.loads(l) for l in (out / "test.jsonl").read_text().splitlines()]
    with h5py.File(tmp_path / "a.h5") as f:
        stored = [json.loads(s.decode()) for s in f["meta/sources"][:]]
    assert stored == [e["sources"] for e in examples]
