"""One declaration per verb: a spec step accepts exactly the options of its command, and every verb run as a spec
step gives, from the command line the report records, the same results bit for bit (same kernel and threads)."""
import json
import re
import shlex

from conftest import ROOT, run_rulelens

# Wall-clock measurements: the one part of a result that differs between two runs of the same command.
TIMINGS = {"seconds", "tokens_per_s", "allreduce_ms_per_step"}


def without_timings(result):
    if isinstance(result, dict):
        return {k: without_timings(v) for k, v in result.items() if k not in TIMINGS}
    if isinstance(result, list):
        return [without_timings(v) for v in result]
    return result


# A tiny spec that runs every verb once. A new verb must be added here (the last test checks that).
SPEC = """
name: every verb
claim: each step's recorded command reproduces its results
steps:
  - data: {task: addition, split: leave-square-out, center: "50,50", half: 5, seed: 1}
  - train: {data: "${data}", layers: 1, heads: 2, d-model: 16, ctx: 16, steps: 6, batch: 8, warmup: 2, seed: 0}
  - eval: {checkpoint: "${train}", data: "${data}", part: [test, train], limit: 30, mode: teacher-forced}
  - eval: {id: eval_greedy, checkpoint: "${train}", data: "${data}", limit: 12, batch: 5}
  - eval: {id: eval_digits, checkpoint: "${train}", task: multi-digit-addition, split: length, train-digits: "1", test-digits: "2-3",
           count: 20, test-per-digit: 3, mode: teacher-forced}
  - ablate: {checkpoint: "${train}", data: "${data}", components: [attn, mlp], method: mean, positions: answer, bootstrap: 10}
  - pairs: {data: "${data}", one-length: true, limit: 8}
  - patch: {checkpoint: "${train}", data: "${data}", limit: 8, sites: [resid_pre, mlp_out, z], batch: 4}
  - patch: {id: patch_given, checkpoint: "${train}", clean: "${pairs}/clean.jsonl", corrupt: "${pairs}/corrupt.jsonl", sites: [attn_out]}
  - lens: {checkpoint: "${train}", data: "${data}", limit: 10}
  - logits: {checkpoint: "${train}", data: "${data}/test.jsonl"}
  - random-init: {like: "${train}", seed: 1}
  - dump: {checkpoint: "${train}", data: "${data}", hooks: ["blocks.0.hook_resid_post", "blocks.0.hook_mlp_out"], positions: answer, limit: 40}
  - relabel: {file: "${dump}", data: "${data}", columns: [carry, digits], limit: 40}
  - probe: {method: separability, file: "${relabel}", site: ["blocks.0.*"], label: carry, k: 3}
  - probe: {id: probe_pca, method: pca, file: "${dump}", site: [blocks.0.hook_resid_post], components: 3}
  - ntk: {checkpoint: "${train}", data: "${data}", label: a, max-per-rule: 2}
  - grad: {checkpoint: "${train}", data: "${data}/test.jsonl"}
  - data: {id: syl, task: syllogism, count: 96, seed: 2}
  - subset: {data: "${syl}", train: 20, validation: 5, seed: 1}
  - vae-train: {data: "${syl}", layers: 1, enc-layers: 1, heads: 2, d-model: 16, latent: 4, ctx: 96, steps: 4, batch: 4,
                warmup: 1, inject: [memory, query], supervise: rule}
  - vae-eval: {checkpoint: "${vae_train}", data: "${syl}", batch: 5}
  - vae-encode: {checkpoint: "${vae_train}", data: "${syl}", hooks: ["encoder.blocks.*.hook_mlp_out"], sample: true, seed: 3}
  - vae-decode: {checkpoint: "${vae_train}", latents: "${vae_encode}", rows: [0, 2]}
  - vae-interpolate: {checkpoint: "${vae_train}", data: "${syl}", from: 0, to: 1, steps: 3}
  - vae-traverse: {checkpoint: "${vae_train}", data: "${syl}", dim: 1, steps: 3}
  - vae-logits: {checkpoint: "${vae_train}", data: "${syl}", eps-seed: 4, beta: 0.5}
  - train: {id: syllogism_model, data: "${syl}", layers: 1, heads: 2, d-model: 16, ctx: 96, steps: 2, batch: 4, warmup: 1, seed: 0}
  - retrieve: {checkpoint: "${syllogism_model}", data: "${syl}", limit: 12, bootstrap: 10, sites: [q, k], alpha: [1]}
  - retrieve: {id: retrieve_vae, checkpoint: "${vae_train}", data: "${syl}", limit: 12, bootstrap: 10}
expect:
  - eval.test.n == 30
"""


def steps():
    return json.loads(run_rulelens("run", "--list-steps", "--json").stdout)


def declared_options(command):
    """The long names (positionals: value names) the command itself accepts, from swift-argument-parser's dump."""
    dump = json.loads(run_rulelens(*command, "--experimental-dump-help").stdout)
    names = set()
    for a in dump["command"].get("arguments", []):
        if a["kind"] == "positional":
            names.add(a["valueName"])
            continue
        longs = [n["name"] for n in a.get("names", []) if n["kind"] == "long"]
        if {"help", "version", "experimental-dump-help"} & set(longs):
            continue
        names.add(a.get("preferredName", {}).get("name") or longs[0])
    return names


def test_a_spec_step_accepts_exactly_the_options_of_its_command():
    verbs = [s for s in steps() if s["command"] is not None]
    assert verbs, "no step is generated from a verb"
    for s in verbs:
        accepted = declared_options(s["command"])
        assert set(s["options"]) == accepted - {s["output_option"]}, s["kind"]
        # The step's folder is the command's output option, so a spec cannot set it.
        assert s["output_option"] is None or s["output_option"] in accepted, s["kind"]


def test_every_verb_step_reproduces_from_its_recorded_command_line(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    run_rulelens("run", tmp_path / "spec.yaml", "--out", tmp_path / "run", "--threads", "1", "--quiet")
    verb_kinds = {s["kind"]: s for s in steps() if s["command"] is not None}
    seen = set()
    results = {}
    for stamp_file in sorted((tmp_path / "run").glob("*/.rulelens-step.json")):
        stamp = json.loads(stamp_file.read_text())
        if stamp["kind"] not in verb_kinds:
            continue
        seen.add(stamp["kind"])
        results.setdefault(stamp["kind"], []).append(json.loads(stamp["results"]))
        argv = shlex.split(stamp["command"])
        assert argv[0] == "rulelens" and argv[1:1 + len(verb_kinds[stamp["kind"]]["command"])] == verb_kinds[stamp["kind"]]["command"]
        assert "--threads" in argv, "the recorded command names its thread count"
        out = verb_kinds[stamp["kind"]]["output_option"]
        if out:   # the same command into a fresh folder
            i = argv.index("--" + out)
            argv[i + 1] = str(tmp_path / "again" / stamp["id"])
        proc = run_rulelens(*argv[1:], "--json", "--quiet")
        assert without_timings(json.loads(proc.stdout)) == without_timings(json.loads(stamp["results"])), stamp["id"]
    assert seen == set(verb_kinds), f"verbs missing from SPEC: {set(verb_kinds) - seen}"
    readme_result_keys_exist(results)


def key_paths(tree, prefix=()):
    """Every path of keys (list indices as strings) in a results tree."""
    yield prefix
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield from key_paths(v, prefix + (str(k),))


def readme_result_keys_exist(results):
    """Probes/README.md's table of steps names the keys a spec reads; each named key must be a path (a suffix of one)
    in that kind's results. Upper-case parts (PART, K, SITE, …) stand for any key; names cut with … are skipped."""
    rows = [l for l in (ROOT / "Probes" / "README.md").read_text().splitlines() if re.match(r"\| `[a-z-]+`", l)]
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        kinds = re.findall(r"`([a-z-]+)`", cells[0])
        if not set(kinds) & set(results) or len(cells) < 3:
            continue
        paths = [p for k in kinds for r in results.get(k, []) for p in key_paths(r)]
        for key in re.findall(r"`([^`]+)`", cells[-1]):
            parts = key.split(".")
            if "…" in key or not all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts):
                continue
            def matches(path):
                return len(path) >= len(parts) and all(q.isupper() or q == p for q, p in zip(parts, path[len(path) - len(parts):]))
            assert any(matches(p) for p in paths), f"Probes/README.md names `{key}` for {kinds}, which no such step's results have"
            checked += 1
    assert checked > 50, checked


def test_spec_errors_name_the_line_and_option(tmp_path):
    bad = SPEC.replace("batch: 5}", "batch: -5}").replace("limit: 30,", "limt: 30,")
    (tmp_path / "bad.yaml").write_text(bad)
    proc = run_rulelens("run", tmp_path / "bad.yaml", "--out", tmp_path / "run", check=False)
    assert proc.returncode != 0 and "line" in proc.stderr and "did you mean limit" in proc.stderr, proc.stderr
    (tmp_path / "bad2.yaml").write_text(SPEC.replace("batch: 5}", "batch: -5}"))
    proc = run_rulelens("run", tmp_path / "bad2.yaml", "--out", tmp_path / "run", check=False)
    assert proc.returncode != 0 and "line 8" in proc.stderr and "--batch" in proc.stderr, proc.stderr
    (tmp_path / "bad3.yaml").write_text(SPEC.replace("mode: teacher-forced", "mode: teacher"))
    proc = run_rulelens("run", tmp_path / "bad3.yaml", "--out", tmp_path / "run", check=False)
    assert proc.returncode != 0 and "teacher-forced" in proc.stderr, proc.stderr
    (tmp_path / "bad4.yaml").write_text(SPEC.replace("batch: 5}", "batch: 5, out: /tmp/x}"))
    proc = run_rulelens("run", tmp_path / "bad4.yaml", "--out", tmp_path / "run", check=False)
    assert proc.returncode != 0 and "step's folder" in proc.stderr, proc.stderr
