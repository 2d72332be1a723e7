"""Hostile specs for `rulelens run`: sweep values that try to leave the run folder, variants that would share a
folder, special files where a spec or an input is expected, expressions nested or long enough to overflow a
recursive parser, YAML alias bombs, sweeps of 100^5 variants, malformed YAML, a wrong type in every field, unknown
keys and huge numbers — several hundred cases, generated here. Every case must end as a clear error (exit 1, an
`error:` paragraph with its `fix:`) or as a correct run whose folders the case checks; never a signal, a hang, a
silent success or an unclear exit. Limits are named in their errors with how to raise them (`--limit NAME=N`).
"""
import os
import random
import shutil
from pathlib import Path

from fuzzlib import Tally, run

HEAD = "name: t\nclaim: c\n"
STEP = "steps:\n  - data: {task: syllogism, count: 4}\n"  # the cheapest real step (a fraction of a second)
VALID = HEAD + STEP


def spec_file(root: Path, text, name="spec.yaml") -> Path:
    path = root / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def tree(root: Path):
    """Every path under `root`, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def names_limit(err, name):
    """The error names the limit and the option that raises it."""
    return f"({name})" in err and f"--limit {name}=" in err


def expect_limit(tally, command, case, result, name):
    """A clear error that names the limit `name` (or one of several) and how to raise it."""
    code, out, err = result
    names = [name] if isinstance(name, str) else name
    if isinstance(code, int) and code == 1 and "error: " in err and not any(names_limit(err, n) for n in names):
        tally.record(command, case, "unclear", f"does not name --limit {name}: {err[-300:]}")
    else:
        tally.expect_error(command, case, result)


def sweep_escapes(tally, root: Path):
    """Sweep values become folder names by rule: each run stays inside --out, one folder per variant."""
    values = ["/../../escaped", "../up", "..", ".", ".hidden", "a/b", "a\\nb", "\\x01ctl", "x" * 300, "é/ü", "",
              "~", "$HOME", "*", " lead", "tab\\tx", "a\\\\b", "..\\\\..\\\\w", "/etc/passwd", "-rf"]
    for i, value in enumerate(values):
        work = root / f"esc{i}"
        (work / "cwd").mkdir(parents=True)
        out = work / "cwd" / "a" / "b" / "out"
        spec = spec_file(work / "cwd", HEAD + f'sweep:\n  s: ["{value}", plain]\n' + STEP)
        result = run(["run", spec, "--out", out, "--quiet"], cwd=work / "cwd")

        def check(_out, out=out, work=work):
            outside = {p for p in tree(work) if not (p.startswith("cwd/a/b/out") or p == "cwd/spec.yaml")} - {"cwd", "cwd/a", "cwd/a/b"}
            if outside:
                return f"wrote outside --out: {sorted(outside)[:3]}"
            folders = [p for p in out.iterdir() if p.is_dir() and p.name != "report"]
            if len(folders) != 2:
                return f"{len(folders)} variant folders for 2 variants: {[p.name for p in folders]}"
            if any(p.name.startswith(".") or len(p.name.encode()) > 200 or any(ord(c) < 32 for c in p.name) for p in folders):
                return f"unsafe folder name: {[p.name for p in folders]}"
            return None
        tally.expect_success("sweep-escape", repr(value), result, check)
    # A folder name the plan prints (--dry-run writes nothing).
    for i, value in enumerate(["../../" * 50 + "deep", "a" * 5000, "/", "\\u202eevil", "con", "x" * 41]):
        spec = spec_file(root, HEAD + f'sweep:\n  s: ["{value}"]\n' + STEP, f"dry{i}.yaml")
        out = root / f"dry{i}"
        result = run(["run", spec, "--out", out, "--dry-run"])

        def check_dry(stdout, out=out):
            if out.exists():
                return "--dry-run wrote the run folder"
            lines = [l for l in stdout.splitlines() if l.startswith("variant ")]
            folder = lines[0].rsplit(": ", 1)[1] if lines else ""
            name = Path(folder).name
            if Path(folder).parent != out or ".." in name or "/" in name or len(name.encode()) > 200 or name.startswith("."):
                return f"unsafe folder {folder!r}"
            return None
        tally.expect_success("sweep-escape", f"dry-run {value[:20]!r}", result, check_dry)


def collisions(tally, root: Path):
    """Two variants that would write into one folder are refused before anything runs."""
    cases = {
        "repeated value": "sweep:\n  s: [a, a]\n",
        "repeated value, two variables": "sweep:\n  s: [a, b, a]\n  t: [1]\n",
        "repeated case": "sweep:\n  - {s: a, t: 1}\n  - {s: a, t: 1}\n",
        "case with keys reordered": "sweep:\n  - {s: a, t: 1}\n  - {t: 1, s: a}\n",
        "repeated number spelled alike": "sweep:\n  s: [0.5, 0.5, 1]\n",
    }
    for name, sweep in cases.items():
        out = root / ("col-" + name.replace(" ", "-").replace(",", ""))
        spec = spec_file(root, HEAD + sweep + STEP, "col.yaml")
        result = run(["run", spec, "--out", out, "--quiet"])
        code, _, err = result
        if code == 1 and "would both write into the folder" not in err:
            tally.record("sweep-collision", name, "unclear", err[-300:])
            continue
        tally.expect_error("sweep-collision", name, result, leftovers=[out])
    # Values that differ only in characters a folder name cannot hold still get a folder each.
    for values in (["x", "x/"], ["a/b", "a_b"], ["a b", "a_b"], ["..", "_."], ["é", "e"]):
        out = root / f"distinct{abs(hash(tuple(values)))}"
        spec = spec_file(root, HEAD + "sweep:\n  s: [" + ", ".join(f'"{v}"' for v in values) + "]\n" + STEP, "distinct.yaml")
        result = run(["run", spec, "--out", out, "--quiet"])

        def check(_out, out=out, n=len(values)):
            folders = [p for p in out.iterdir() if p.is_dir() and p.name != "report"]
            stamps = list(out.rglob(".rulelens-step.json"))
            return None if len(folders) == n and len(stamps) == n else f"{len(folders)} folders, {len(stamps)} steps for {n} variants"
        tally.expect_success("sweep-collision", f"distinct {values}", result, check)


def confinement(tally, root: Path):
    """Every path a step writes resolves inside --out: a variant folder linked elsewhere, an export path outside."""
    outside = root / "elsewhere"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "precious").write_text("keep me")
    out = root / "linked"
    out.mkdir()
    (out / "s-a").symlink_to(outside)
    spec = spec_file(root, HEAD + "sweep:\n  s: [a]\n" + STEP, "linked.yaml")
    result = run(["run", spec, "--out", out, "--quiet"])
    if not (outside / "data" / "precious").exists():
        tally.record("write-confinement", "variant folder linked outside", "silent", "the step cleared a folder outside --out")
    else:
        tally.expect_error("write-confinement", "variant folder linked outside", result)
    for target in ["/tmp/rulelens-npy-escape", "../npy", "${out}/../../npy", "${run}/../npy"]:
        spec = spec_file(root, HEAD + "steps:\n  - dump: {checkpoint: nowhere, task: syllogism, count: 4, hooks: blocks.0.hook_resid_post, "
                         f"export-npy: \"{target}\"}}\n", "npy.yaml")
        tally.expect_error("write-confinement", f"export-npy {target}", run(["run", spec, "--out", root / "npy-out" / "o", "--dry-run"]))


def special_inputs(tally, root: Path):
    """Devices, FIFOs, /, /proc and folders where a step reads a file: refused or read within bounds, never forever."""
    fifo = root / "fifo"
    os.mkfifo(fifo)
    folder = root / "a-folder"
    folder.mkdir()
    (folder / "x.jsonl").write_text("{}\n")
    paths = ["/dev/zero", "/dev/urandom", "/dev/null", str(fifo), "/", "/proc", "/proc/self", "/proc/self/status",
             "/proc/self/mem", str(folder), "/dev", "/sys/kernel"]
    steps = {
        "train": "train: {{data: {p}, steps: 1}}",
        "eval": "eval: {{checkpoint: {p}, task: syllogism, count: 4}}",
        "probe": "probe: {{method: pca, file: {p}, site: x}}",
        "logits": "logits: {{checkpoint: {p}, data: {p}}}",
        "relabel": "relabel: {{file: {p}, data: {p}}}",
    }
    for p in paths:
        for kind, step in steps.items():
            if p in ("/", "/proc", "/dev", "/sys/kernel") and kind not in ("train", "probe"):
                continue  # the walks that are bounded by the file count take a second: two steps each suffice
            spec = spec_file(root, HEAD + "steps:\n  - " + step.format(p=p) + "\n", "special.yaml")
            result = run(["run", spec, "--out", root / "special-out", "--quiet"], timeout=30)
            tally.expect_error("special-input", f"{kind} {p}", result)


def special_specs(tally, root: Path):
    """A folder, a device, a FIFO or a /proc file where the spec file is expected; a spec past the size limit."""
    fifo = root / "spec-fifo"
    os.mkfifo(fifo)
    (root / "empty.yaml").write_text("")
    big = spec_file(root, VALID + "description: " + "x" * (1 << 20) + "\n", "big.yaml")
    for p in [root, "/dev/zero", "/dev/null", fifo, "/proc/self/status", "/proc/self/mem", "/proc/self", "/",
              root / "empty.yaml", root / "missing.yaml", "/dev/stdin"]:
        tally.expect_error("special-spec", str(p), run(["run", p, "--out", root / "sp-out"], timeout=30, stdin=""))
    expect_limit(tally, "special-spec", "spec over 1 MiB", run(["run", big, "--out", root / "sp-out"]), "spec-bytes")
    tally.expect_success("special-spec", "spec over 1 MiB, limit raised",
                         run(["run", big, "--out", root / "sp-out", "--dry-run", "--limit", "spec-bytes=4000000"]))


def expressions(tally, root: Path):
    """Expressions deeper or longer than the limits: refused by name, never a stack overflow."""
    def spec(expression):
        return spec_file(root, VALID + "expect:\n  - '" + expression.replace("'", "''") + "'\n", "expr.yaml")
    deep = {
        "parentheses": lambda n: "(" * n + "1" + ")" * n + " > 0",
        "unary minus": lambda n: "-" * n + "1 < 0",
        "not": lambda n: "not " * n + "true",
        "calls": lambda n: "abs(" * n + "1" + ")" * n + " > 0",
        "mixed": lambda n: "(-abs(" * n + "1" + "))" * n + " < 0",
        "unclosed": lambda n: "(" * n + "1",
    }
    for name, make in deep.items():
        for n in (33, 200, 1000, 100000):
            text = make(n)
            limit = "expression-depth" if len(text) <= 1000 else "expression-length"
            if name == "unclosed" and len(text) <= 1000:
                limit = "expression-depth"
            expect_limit(tally, "expression", f"{name} x{n}", run(["run", spec(text), "--out", root / "ex"]), limit)
    long = {
        "sum": lambda n: "+".join(["1"] * n) + " > 0",
        "and": lambda n: " and ".join(["true"] * n),
        "path": lambda n: "data." + ".".join(["k"] * n) + " > 0",
        "string": lambda n: "'" + "s" * n + "' == 'x'",
        "chain": lambda n: " < ".join(["1"] * n),
        "max args": lambda n: "max(" + ",".join(["1"] * n) + ") > 0",
    }
    for name, make in long.items():
        for n in (600, 5000, 50000):
            text = make(n)
            if len(text) <= 1000:
                continue
            expect_limit(tally, "expression", f"{name} x{n}", run(["run", spec(text), "--out", root / "ex"]), "expression-length")
    # At the limits, an expression is evaluated (and --limit raises them).
    ok = spec("(" * 32 + "1" + ")" * 32 + " > 0")
    tally.expect_success("expression", "depth 32", run(["run", ok, "--out", root / "ex-ok", "--quiet"]),
                         lambda out: None if "PASS" in out else "the expectation did not pass")
    raised = spec("(" * 40 + "1" + ")" * 40 + " > 0")
    tally.expect_success("expression", "depth 40, limit raised",
                         run(["run", raised, "--out", root / "ex-ok", "--quiet", "--limit", "expression-depth=40"]),
                         lambda out: None if "PASS" in out else "the expectation did not pass")
    for bad in ["1 >", "> 1", "(1", "1)", "1 = 1", "!x", "data.", "data[", "data[s=]", "foo(1)", "max()", "'unterminated",
                "1 @ 2", "data.x[nope=1] > 0", "other.x > 0", "1 < 2 <", "not", "and", ",", "", "   "]:
        tally.expect_error("expression", f"malformed {bad!r}", run(["run", spec(bad), "--out", root / "ex"]))


def alias_bombs(tally, root: Path):
    """YAML aliases that expand exponentially, anywhere in a spec: refused before anything is built from them."""
    def bomb(width, levels, indent="  "):
        lines = [f"{indent}a0: &a0 [" + ", ".join(["x"] * width) + "]"]
        lines += [f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
        return "\n".join(lines) + "\n"
    places = {
        "vars": lambda b, last: HEAD + "vars:\n" + b + STEP,
        "step option": lambda b, last: HEAD + "vars:\n" + b + f"steps:\n  - data: {{task: syllogism, count: 4, seed: *{last}}}\n",
        "expect": lambda b, last: HEAD + "vars:\n" + b + STEP + f"expect:\n  - *{last}\n",
        "mapping key": lambda b, last: HEAD + "vars:\n" + b + STEP + f"? *{last}\n: 1\n",
        "sweep": lambda b, last: HEAD + "vars:\n" + b + f"sweep:\n  s: *{last}\n" + STEP,
        "description": lambda b, last: HEAD + "vars:\n" + b + f"description: *{last}\n" + STEP,
    }
    for place, make in places.items():
        for width, levels in ((9, 9), (2, 40), (50, 4), (1000, 3)):
            text = make(bomb(width, levels), f"a{levels - 1}")
            expect_limit(tally, "alias-bomb", f"{place} {width}^{levels}", run(["run", spec_file(root, text, "bomb.yaml"), "--out", root / "bomb"]),
                         "spec-values")
    many = HEAD + "vars:\n  a: &a x\n  l: [" + ", ".join(["*a"] * 1001) + "]\n" + STEP
    expect_limit(tally, "alias-bomb", "1001 aliases", run(["run", spec_file(root, many, "many.yaml"), "--out", root / "bomb"]), "spec-aliases")
    merge = HEAD + "vars:\n  b0: &b0 {k: [x, x, x, x, x, x, x, x, x, x]}\n" + "".join(
        f"  b{i}: &b{i} {{<<: *b{i - 1}, " + ", ".join(f"k{j}: *b{i - 1}" for j in range(9)) + "}\n" for i in range(1, 9)) + STEP
    expect_limit(tally, "alias-bomb", "merge keys", run(["run", spec_file(root, merge, "merge.yaml"), "--out", root / "bomb"]), "spec-values")
    for name, text in {
        "undefined alias": HEAD + "vars:\n  a: *nowhere\n" + STEP,
        "alias before its anchor": HEAD + "vars:\n  a: *b\n  b: &b x\n" + STEP,
        "recursive anchor": HEAD + "vars:\n  a: &a [*a]\n" + STEP,
    }.items():
        tally.expect_error("alias-bomb", name, run(["run", spec_file(root, text, "alias.yaml"), "--out", root / "bomb"]))
    # ${…} substitution that doubles a value per variable.
    doubling = HEAD + "vars:\n  v0: xxxxxxxxxxxxxxxx\n" + "".join(f"  v{i}: ${{v{i - 1}}}${{v{i - 1}}}\n" for i in range(1, 40)) + STEP
    expect_limit(tally, "alias-bomb", "${} text doubling", run(["run", spec_file(root, doubling, "dbl.yaml"), "--out", root / "bomb"]), "spec-bytes")
    lists = HEAD + "vars:\n  v0: [x, x]\n" + "".join(f'  v{i}: ["${{v{i - 1}}}", "${{v{i - 1}}}"]\n' for i in range(1, 60)) + STEP
    expect_limit(tally, "alias-bomb", "${} list doubling", run(["run", spec_file(root, lists, "dbl.yaml"), "--out", root / "bomb"]), "spec-values")
    wide = HEAD + "vars:\n  v0: " + "y" * 600000 + "\n  v1: ${v0}${v0}\n" + STEP
    expect_limit(tally, "alias-bomb", "${} one big doubling", run(["run", spec_file(root, wide, "dbl.yaml"), "--out", root / "bomb"]), "spec-bytes")


def huge_sweeps(tally, root: Path):
    """Sweeps with too many variants are refused by multiplying the axis sizes, before a variant is made."""
    def axes(sizes):
        return "sweep:\n" + "".join(f"  s{i}: [" + ", ".join(str(j) for j in range(n)) + "]\n" for i, n in enumerate(sizes))
    for sizes in ([100] * 5, [1001], [32, 32], [10, 10, 11], [2] * 64, [2] * 200, [1000, 1000, 1000], [7] * 30):
        text = HEAD + axes(sizes) + STEP
        expect_limit(tally, "huge-sweep", "×".join(map(str, sizes[:6])) + ("…" if len(sizes) > 6 else ""),
                     run(["run", spec_file(root, text, "sweep.yaml"), "--out", root / "sw"], timeout=30), "variants")
    cases = HEAD + "sweep:\n" + "".join(f"  - {{s: {i}}}\n" for i in range(1001)) + STEP
    expect_limit(tally, "huge-sweep", "1001 cases", run(["run", spec_file(root, cases, "sweep.yaml"), "--out", root / "sw"]), "variants")
    two = HEAD + axes([2]) + STEP
    expect_limit(tally, "huge-sweep", "limit lowered to 1", run(["run", spec_file(root, two, "sweep.yaml"), "--out", root / "sw", "--limit", "variants=1"]), "variants")
    tally.expect_success("huge-sweep", "1024 variants, limit raised (planned only)",
                         run(["run", spec_file(root, HEAD + axes([32, 32]) + STEP, "sweep.yaml"), "--out", root / "sw", "--dry-run",
                              "--limit", "variants=1024"]),
                         lambda out: None if out.count("\nvariant ") == 1024 else "not 1024 variants planned")
    for bad in ["variants=0", "variants=-1", "variants=abc", "variants", "nope=3", "=3", "variants=99999999999999999999999"]:
        tally.expect_error("huge-sweep", f"--limit {bad}", run(["run", spec_file(root, two, "sweep.yaml"), "--out", root / "sw", "--limit", bad]))


def malformed_yaml(tally, root: Path, rng: random.Random):
    """YAML that does not parse, or parses into something that is not a spec."""
    texts = {
        "tab indentation": HEAD + "steps:\n\t- data: {task: syllogism}\n",
        "unclosed bracket": HEAD + "steps: [\n",
        "unclosed brace": HEAD + "steps:\n  - data: {task: syllogism\n",
        "unclosed quote": "name: 't\nclaim: c\n" + STEP,
        "duplicate key": HEAD + "name: u\n" + STEP,
        "duplicate step option": HEAD + "steps:\n  - data: {task: syllogism, task: addition}\n",
        "two documents": VALID + "---\n" + VALID,
        "document end then junk": VALID + "...\n%%%\n",
        "only comments": "# nothing\n",
        "empty": "",
        "a scalar": "just text\n",
        "a list": "- name: t\n",
        "a number": "42\n",
        "null": "~\n",
        "deep flow nesting": HEAD + "vars: {x: " + "[" * 5000 + "]" * 5000 + "}\n" + STEP,
        "deep block nesting": HEAD + "vars:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(1100)) + STEP,
        "NUL byte": HEAD.replace("t\n", "t\0\n") + STEP,
        "invalid UTF-8": (HEAD + STEP).encode() + b"description: \xff\xfe\n",
        "UTF-16": (HEAD + STEP).encode("utf-16"),
        "binary junk": bytes(rng.randrange(256) for _ in range(400)),
        "directive only": "%YAML 1.2\n",
        "bad directive": "%YAML 9.9\n---\n" + VALID,
        "undefined tag handle": HEAD + "vars: {x: !e!tag 1}\n" + STEP,
        "python tag": HEAD + "vars: {x: !!python/object:os.system echo}\n" + STEP,
        "colon in plain key": HEAD + "steps:\n  - data: {task: a: b}\n",
        "mixed block and flow": HEAD + "steps:\n  - data: {task: syllogism}\n   - x\n",
        "very long line": HEAD + "description: " + "z" * 200000 + "\n" + STEP,
        "lone key": "name\n",
        "CR line ends only": VALID.replace("\n", "\r"),
    }
    for name, text in texts.items():
        result = run(["run", spec_file(root, text, "bad.yaml"), "--out", root / "bad"])
        if name in ("very long line", "document end then junk", "undefined tag handle", "python tag", "CR line ends only"):
            # These may parse; then they are valid specs, and must plan cleanly or be refused clearly.
            code = result[0]
            if code == 0:
                tally.expect_success("malformed-yaml", name, result)
                continue
        tally.expect_error("malformed-yaml", name, result)
    # Byte mutations of a valid spec: each must plan (and run) or be refused clearly.
    base = (HEAD + "vars:\n  n: 4\nsweep:\n  s: [a, b]\n" + "steps:\n  - data: {task: syllogism, count: ${n}}\n"
            + "expect:\n  - data.count > 0\n").encode()
    for i in range(40):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            at = rng.randrange(len(data))
            if op == 0:
                data[at] = rng.choice(b"{}[]:,-&*!|>'\"#%@`\t\n ?x0")
            elif op == 1:
                del data[at]
            else:
                data = data[:at]
        result = run(["run", spec_file(root, bytes(data), "mut.yaml"), "--out", root / "mut", "--dry-run"])
        if result[0] == 0:
            tally.expect_success("mutated-spec", f"mutation {i}", result)
        else:
            tally.expect_error("mutated-spec", f"mutation {i}", result)


def wrong_types(tally, root: Path):
    """A wrong type in every field of a spec, and in steps and their options."""
    wrong = {"list": "[a, b]", "map": "{a: 1}", "nested list": "[[a]]", "empty list": "[]", "empty map": "{}"}
    fields = {
        "name": lambda v: f"name: {v}\nclaim: c\n" + STEP,
        "claim": lambda v: f"name: t\nclaim: {v}\n" + STEP,
        "study": lambda v: HEAD + f"study: {v}\n" + STEP,
        "description": lambda v: HEAD + f"description: {v}\n" + STEP,
        "steps": lambda v: HEAD + f"steps: {v}\n",
        "step body": lambda v: HEAD + f"steps:\n  - data: {v}\n",
        "step": lambda v: HEAD + f"steps:\n  - {v}\n",
        "expect": lambda v: VALID + f"expect: {v}\n",
        "expect entry": lambda v: VALID + f"expect:\n  - {v}\n",
        "expect that": lambda v: VALID + f"expect:\n  - {{that: {v}}}\n",
        "step id": lambda v: HEAD + f"steps:\n  - data: {{task: syllogism, id: {v}}}\n",
        "step quick": lambda v: HEAD + f"steps:\n  - data: {{task: syllogism, quick: {v}}}\n",
        "sweep values": lambda v: HEAD + f"sweep:\n  s: {v}\n" + STEP,
        "sweep case": lambda v: HEAD + f"sweep:\n  - {v}\n" + STEP,
        "choice option": lambda v: HEAD + f"steps:\n  - data: {{task: {v}}}\n",
        "integer option": lambda v: HEAD + f"steps:\n  - data: {{task: syllogism, count: {v}}}\n",
    }
    # Legal spellings: an empty mapping of options, an empty list of expectations, a list of sweep values, a case
    # of the case form, and an empty value for an option (which leaves it out, so a sweep can switch it off).
    legal = {("step body", "empty map"), ("step quick", "empty map"), ("expect", "empty list"), ("sweep values", "list"),
             ("sweep case", "map"), ("choice option", "empty list"), ("choice option", "empty map"),
             ("integer option", "empty list"), ("integer option", "empty map")}
    for field, make in fields.items():
        for kind, v in wrong.items():
            text = make(v)
            result = run(["run", spec_file(root, text, "types.yaml"), "--out", root / "types", "--dry-run"])
            if (field, kind) in legal and result[0] == 0:
                tally.expect_success("wrong-type", f"{field}: {kind}", result)
            else:
                tally.expect_error("wrong-type", f"{field}: {kind}", result)
    for field, make in {"vars": lambda v: HEAD + f"vars: {v}\n" + STEP, "quick": lambda v: HEAD + f"quick: {v}\n" + STEP,
                        "sweep": lambda v: HEAD + f"sweep: {v}\n" + STEP}.items():
        for kind, v in {"number": "5", "text": "abc", "list of numbers": "[1, 2]", "nested": "[[1]]"}.items():
            tally.expect_error("wrong-type", f"{field}: {kind}", run(["run", spec_file(root, make(v), "types.yaml"), "--out", root / "types", "--dry-run"]))
    # Numbers that are no numbers, or no number the option can hold.
    for v in ["1e400", "-1e400", ".nan", ".inf", "99999999999999999999999", "-99999999999999999999999", "0x", "1_000",
              "one", "'4'x", "4.5", "true"]:
        for option in ["count", "seed"]:
            text = HEAD + f"steps:\n  - data: {{task: syllogism, {option}: {v}}}\n"
            tally.expect_error("huge-number", f"{option}: {v}", run(["run", spec_file(root, text, "num.yaml"), "--out", root / "num", "--dry-run"]))
    for v in ["abc", "1e", "--3", "0x1p"]:
        text = HEAD + f"steps:\n  - data: {{task: syllogism, train-fraction: '{v}'}}\n"
        tally.expect_error("huge-number", f"train-fraction: {v}", run(["run", spec_file(root, text, "num.yaml"), "--out", root / "num", "--dry-run"]))


def unknown_keys(tally, root: Path):
    """Unknown or misspelt keys, step kinds, variables and ids."""
    texts = {
        "top-level typo": HEAD + "stpes:\n  - data: {task: syllogism}\n",
        "capitalised key": "Name: t\nclaim: c\n" + STEP,
        "extra top-level key": VALID + "expects: []\n",
        "unknown step": HEAD + "steps:\n  - trian: {data: x}\n",
        "unknown option": HEAD + "steps:\n  - data: {task: syllogism, cuont: 4}\n",
        "option with dashes wrong": HEAD + "steps:\n  - data: {task: syllogism, train_fraction: 0.5}\n",
        "output option": HEAD + "steps:\n  - data: {task: syllogism, out: /tmp/x}\n",
        "two kinds in a step": HEAD + "steps:\n  - {data: {task: syllogism}, train: {}}\n",
        "unknown variable": HEAD + "steps:\n  - data: {task: syllogism, seed: ${sede}}\n",
        "unterminated variable": HEAD + "steps:\n  - data: {task: syllogism, seed: 'x${seed'}\n",
        "quick of an unknown var": HEAD + "quick:\n  n: 1\n" + STEP,
        "quick unknown option": HEAD + "steps:\n  - data: {task: syllogism, quick: {cuont: 1}}\n",
        "expect unknown key": VALID + "expect:\n  - {that: 1 > 0, because: x}\n",
        "expect unknown step": VALID + "expect:\n  - train.loss < 1\n",
        "expect unknown sweep var": VALID + "expect:\n  - data.count[s=1] > 0\n",
        "expect unknown value": HEAD + "sweep:\n  s: [a]\n" + STEP + "expect:\n  - data.count[s=b] > 0\n",
        "expect unknown function": VALID + "expect:\n  - median(data.count) > 0\n",
        "step id twice": HEAD + "steps:\n  - data: {task: syllogism}\n  - data: {task: syllogism}\n",
        "step id is a var": HEAD + "vars:\n  data: 1\n" + STEP,
        "step id out": HEAD + "steps:\n  - data: {task: syllogism, id: out}\n",
        "step id report (the report's folder)": HEAD + "steps:\n  - data: {task: syllogism, count: 4, id: report}\n",
        "var not an identifier": HEAD + "vars:\n  a-b: 1\n" + STEP,
        "step id of 300 characters": HEAD + "steps:\n  - data: {task: syllogism, id: " + "x" * 300 + "}\n",
        "sweep variable of 300 characters": HEAD + "sweep:\n  " + "x" * 300 + ": [a]\n" + STEP,
        "sweep var also a var": HEAD + "vars:\n  s: 1\nsweep:\n  s: [a]\n" + STEP,
        "sweep cases differ": HEAD + "sweep:\n  - {s: a}\n  - {t: b}\n" + STEP,
        "missing name": "claim: c\n" + STEP,
        "missing claim": "name: t\n" + STEP,
        "missing steps": HEAD,
        "missing required option": HEAD + "steps:\n  - eval: {task: syllogism}\n",
        "--only unknown": None,
    }
    for name, text in texts.items():
        if text is None:
            result = run(["run", spec_file(root, VALID, "unk.yaml"), "--out", root / "unk", "--only", "nothing"])
        else:
            result = run(["run", spec_file(root, text, "unk.yaml"), "--out", root / "unk", "--dry-run"])
        tally.expect_error("unknown-key", name, result)


def test_fuzz_specs(tmp_path):
    rng = random.Random(21)
    tally = Tally()
    sweep_escapes(tally, tmp_path / "escape")
    collisions(tally, mkdir(tmp_path / "collide"))
    confinement(tally, mkdir(tmp_path / "confine"))
    special_inputs(tally, mkdir(tmp_path / "inputs"))
    special_specs(tally, mkdir(tmp_path / "specs"))
    expressions(tally, mkdir(tmp_path / "expr"))
    alias_bombs(tally, mkdir(tmp_path / "bombs"))
    huge_sweeps(tally, mkdir(tmp_path / "sweeps"))
    malformed_yaml(tally, mkdir(tmp_path / "yaml"), rng)
    wrong_types(tally, mkdir(tmp_path / "types"))
    unknown_keys(tally, mkdir(tmp_path / "keys"))
    summary = tally.report("specs")
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert summary["total"]["tried"] >= 250, summary["total"]
    assert not tally.failures, "\n".join(tally.failures[:40])


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
