"""Numeric edge values for every numeric option of every verb, generated from what each command declares.

The verbs come from `rulelens run --list-steps --json`, their options from each command's `--experimental-dump-help`.
An option is numeric when its default is a number, when it parses negative values (`parsing: .unconditional`), or when
swift-argument-parser refuses a non-numeric value for it. Each numeric option is tried with 0, -1, 10^12, Int.max,
nan, inf, -inf, 1e39, an empty value and a word, on top of a small valid invocation of its command (tiny checkpoints,
a VAE and a dump made once for the module). Non-numbers and non-finite values must be refused clearly (an
`error:`/`fix:` paragraph with exit 1, or swift-argument-parser's usage error) and leave no output behind; the other
values may also run, and then the result must be valid JSON with finite numbers only. A run that outlasts its short
timeout passes only when it has said what it is doing (a progress line with an ETA) — never silently. Options of the
shared option groups (the generated-data group, the runtime group but --threads) are tried once, in `data generate`.

Besides the generated cases: vectors added by `logits --add` and latents of `vae decode --z` (wrong width,
non-finite, overflowing), legal negative values (`retrieve --alpha -1`), and the inspection commands (info, hooks).
Counts per command are printed and written to $RULELENS_FUZZ_REPORT_DIR/verbs.json.
"""
import concurrent.futures
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import fuzzlib
from conftest import rulelens_bin

EDGE_REFUSED = ["nan", "inf", "-inf", "1e39", "", "abc"]
EDGE_EITHER = ["0", "-1", "1000000000000", "9223372036854775807"]
# Options of the shared groups: the generated-data group is tried once, in `data generate`; paths and flags not at all.
RUNTIME = {"quiet", "json", "force", "no-verify"}
PATHS = {"out", "checkpoint", "data", "file", "like", "latents", "mean-from", "eval-data", "init-from", "clean", "corrupt"}
TIMEOUT = 15
PROGRESS_TIMEOUT = 6    # a valid but enormous request must say what it does within this long


def tiny_shape(ctx):
    return ["--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", str(ctx)]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Data (syllogisms: several rules), a GPT-2 checkpoint, a language VAE and a dump, each made once."""
    root = tmp_path_factory.mktemp("fuzz_verbs")
    def ok(*args):
        code, out, err = fuzzlib.run(args, timeout=120)
        assert code == 0, f"fixture {args}: {code} {err[-800:]}"
    ok("data", "generate", "--task", "syllogism", "--count", "120", "--out", root / "syl", "--quiet")
    ok("train", "--data", root / "syl", "--out", root / "ck", *tiny_shape(96), "--batch", "4", "--steps", "2", "--warmup", "1",
       "--threads", "1", "--quiet")
    ok("vae", "train", "--data", root / "syl", "--out", root / "vae", "--layers", "1", "--enc-layers", "1", "--heads", "2",
       "--d-model", "16", "--ctx", "96", "--latent", "4", "--batch", "4", "--steps", "2", "--warmup", "1", "--threads", "1", "--quiet")
    ok("dump", "--checkpoint", root / "ck", "--data", root / "syl", "--out", root / "acts.h5", "--hooks", "blocks.0.hook_resid_post",
       "--positions", "last", "--quiet")
    return root


def bases(fx):
    """A small valid invocation of each verb (option → value; OUT is a fresh output path per case)."""
    ck, vae, syl, acts = str(fx / "ck"), str(fx / "vae"), str(fx / "syl"), str(fx / "acts.h5")
    test = str(fx / "syl" / "test.jsonl")
    vae_in = {"checkpoint": vae, "data": syl}
    return {
        "data": {"task": "syllogism", "count": "20", "out": "OUT"},
        "train": {"data": syl, "out": "OUT", "layers": "1", "heads": "2", "d-model": "16", "ctx": "96", "batch": "4",
                  "steps": "2", "warmup": "1"},
        "random-init": {"layers": "1", "heads": "2", "d-model": "16", "ctx": "16", "out": "OUT"},
        "eval": {"checkpoint": ck, "data": syl, "limit": "8"},
        "ablate": {"checkpoint": ck, "data": syl, "bootstrap": "10"},
        "pairs": {"data": syl, "out": "OUT"},
        "subset": {"data": syl, "train": "20", "validation": "5", "out": "OUT"},
        "patch": {"checkpoint": ck, "data": syl, "limit": "4"},
        "lens": {"checkpoint": ck, "data": syl},
        "retrieve": {"checkpoint": ck, "data": syl, "bootstrap": "10", "limit": "8"},
        "logits": {"checkpoint": ck, "data": test, "out": "OUT"},
        "dump": {"checkpoint": ck, "data": syl, "hooks": "blocks.0.hook_resid_post", "limit": "8", "out": "OUT"},
        "relabel": {"file": acts, "data": syl, "columns": "figure", "out": "OUT"},
        "probe": {"_method": "separability", "file": acts, "site": "blocks.0.hook_resid_post", "label": "rule_id"},
        "ntk": {"checkpoint": ck, "data": syl, "max-per-rule": "2"},
        "grad": {"checkpoint": ck, "data": test, "out": "OUT"},
        "vae-train": {"data": syl, "out": "OUT", "layers": "1", "enc-layers": "1", "heads": "2", "d-model": "16", "ctx": "96",
                      "latent": "4", "batch": "4", "steps": "2", "warmup": "1"},
        "vae-eval": dict(vae_in),
        "vae-encode": {**vae_in, "out": "OUT"},
        "vae-decode": {"checkpoint": vae, "prior": "2"},
        "vae-interpolate": {**vae_in, "from": "0", "to": "1"},
        "vae-traverse": {**vae_in, "dim": "0"},
        "vae-logits": {**vae_in, "out": "OUT"},
    }


def declared(command):
    """The options `rulelens COMMAND --experimental-dump-help` declares."""
    p = subprocess.run([rulelens_bin(), *command, "--experimental-dump-help"], capture_output=True, text=True, timeout=30)
    return json.loads(p.stdout)["command"].get("arguments", [])


def is_number(text):
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def argv(command, base, option=None, value=None, out=None):
    values = dict(base)
    if option is not None:
        values[option] = value
    method = values.pop("_method", None)
    args = list(command) + ([method] if method else [])
    for key, v in values.items():
        args += [f"--{key}", out if v == "OUT" else v]
    return args + ["--json"]


def strict_json(text):
    """None when `text` ends with one JSON object whose numbers are all finite, else why not."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"non-finite {c}")))
    except ValueError as e:
        return f"not finite JSON ({e}): {line[:200]}"
    return None


def run_case(args, timeout, cwd):
    """(code, stdout, stderr) run in `cwd` (a relative output a case names lands there, never in the checkout); a
    timeout gives ("hang", partial stdout, partial stderr)."""
    try:
        p = subprocess.run([rulelens_bin(), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return "hang", text(e.stdout), text(e.stderr)


def classify(tally, name, case, args, result, refuse, out):
    """Records one case: `refuse` values must be refused; the others may run (finite JSON) or be refused."""
    code, stdout, stderr = result
    if code == "hang" and not refuse and "ETA" in stderr:
        tally.record(name, case, "correct")      # a long job that says what it does and how long it will take
        return
    if code == "hang":
        tally.record(name, case, "hang", stderr[-300:])
        return
    if refuse or code != 0:
        tally.expect_error(name, case, result, leftovers=[out] if left_behind(out) else [])
        return
    tally.expect_success(name, case, result, check=strict_json if "--json" in args else nonempty)


def left_behind(out):
    """Whether a refused case left output at `out`: a file, or a folder with something in it. (An empty folder is
    counted apart, in `empty_folders`: removing what a failed verb created is the output writers' concern.)"""
    if not out or not os.path.exists(out):
        return False
    if os.path.isdir(out) and not os.listdir(out):
        EMPTY_FOLDERS.append(out)
        return False
    return True


EMPTY_FOLDERS = []


def nonempty(text):
    return None if text.strip() else "printed nothing"


def generated_cases(fx, work):
    """(command name, case label, argv, refuse?, output path) for every numeric option of every verb."""
    listing = json.loads(subprocess.run([rulelens_bin(), "run", "--list-steps", "--json"], capture_output=True, text=True,
                                        timeout=30).stdout)
    base_of = bases(fx)
    cases = []
    n = 0
    for step in listing:
        kind, command = step["kind"], step["command"]
        assert kind in base_of, f"no base invocation for the verb {kind}: add one to bases()"
        base = base_of[kind]
        name = " ".join(command)
        for a in declared(command):
            opt = (a.get("preferredName") or {}).get("name")
            if a["kind"] != "option" or not opt or opt in PATHS or opt in RUNTIME or a.get("allValues"):
                continue
            if (a.get("sectionTitle") or "").startswith("Generated data"):
                continue   # the shared generated-data group: tried once, where it stands alone (data generate)
            numeric = is_number((a.get("defaultValue") or "").split(",")[0]) or a.get("parsingStrategy", "").startswith("unconditional")
            if not numeric:
                # A declared type that refuses a word at parse time is numeric too (e.g. an Int without .unconditional).
                probe = run_case(argv(command, base, opt, "abc", str(work / "probe")), TIMEOUT, work)
                numeric = probe[0] == 64 and "invalid for" in probe[2]
            if not numeric:
                continue
            for value in EDGE_REFUSED + EDGE_EITHER:
                n += 1
                out = str(work / f"case{n}")
                huge = value in ("1000000000000", "9223372036854775807")
                cases.append((name, f"--{opt} {value!r}", argv(command, base, opt, value, out), value in EDGE_REFUSED, out,
                              PROGRESS_TIMEOUT if huge else TIMEOUT))
    return cases


def vector_cases(fx, work):
    """Added vectors and given latents: wrong width, non-finite, overflowing in Float, empty."""
    ck, vae = str(fx / "ck"), str(fx / "vae")
    test = str(fx / "syl" / "test.jsonl")
    cases = []
    vectors = {"wrong width": "[1, 2, 3]", "1e39": json.dumps([1e39] * 16), "NaN literal": "[NaN" + ", 0" * 15 + "]",
               "empty": "[]", "strings": json.dumps(["a"] * 16), "nested": json.dumps([[0.0] * 16]), "object": "{}",
               "Infinity literal": "[Infinity" + ", 0" * 15 + "]", "-1e39": json.dumps([-1e39] * 16)}
    for i, (label, text) in enumerate(vectors.items()):
        path = work / f"vector{i}.json"
        path.write_text(text)
        for site in ["blocks.0.hook_resid_pre", "blocks.0.attn.hook_q"]:
            out = str(work / f"logits{i}{site}")
            cases.append(("logits", f"--add {site}={label}", ["logits", "--checkpoint", ck, "--data", test, "--out", out,
                                                               "--add", f"{site}={path}", "--json"], True, out, TIMEOUT))
    for label, z in {"nan": "nan,0,0,0", "inf": "0,inf,0,0", "1e39": "1e39,0,0,0", "-1e39": "0,0,0,-1e39", "short": "0,0,0",
                     "long": "0,0,0,0,0", "empty": "", "word": "a,b,c,d", "empty item": "0,,0,0"}.items():
        cases.append(("vae decode", f"--z {label}", ["vae", "decode", "--checkpoint", vae, "--z", z, "--json"], True, None, TIMEOUT))
    # Legal negative values parse and run.
    for alpha in ["-1", "-0.5"]:
        cases.append(("retrieve", f"--alpha {alpha}", ["retrieve", "--checkpoint", ck, "--data", str(fx / "syl"), "--bootstrap", "10",
                                                       "--limit", "8", "--alpha", alpha, "--json"], False, None, TIMEOUT))
    # info and hooks: positional paths and patterns.
    empty = work / "empty-dir"
    empty.mkdir()
    for label, path in {"missing": str(work / "nope"), "empty folder": str(empty), "a file": test, "/dev/null": "/dev/null"}.items():
        cases.append(("info", label, ["info", path], True, None, TIMEOUT))
        cases.append(("hooks", label, ["hooks", path], True, None, TIMEOUT))
    for pattern in ["[", "nomatch*", ""]:
        cases.append(("hooks", f"pattern {pattern!r}", ["hooks", ck, pattern], False, None, TIMEOUT))
    return cases


def test_numeric_edges_of_every_verb(fx, tmp_path):
    cases = generated_cases(fx, tmp_path) + vector_cases(fx, tmp_path)
    assert len(cases) >= 400, len(cases)
    tally = fuzzlib.Tally()

    def one(case):
        name, label, args, refuse, out, timeout = case
        return case, run_case(args, timeout, tmp_path)

    workers = int(os.environ.get("RULELENS_FUZZ_WORKERS", "3"))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for (name, label, args, refuse, out, timeout), result in pool.map(one, cases):
            classify(tally, name, label, args, result, refuse, out)
    summary = tally.report("verbs")
    print(f"{len(EMPTY_FOLDERS)} refused cases left an empty output folder")
    assert summary["total"]["tried"] == len(cases)
    assert not tally.failures, f"{len(tally.failures)} of {len(cases)} cases failed:\n" + "\n".join(tally.failures[:80])
