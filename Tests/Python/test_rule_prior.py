"""Trained rule priors (`rulelens train --rule-prior COLUMN --inject SITE`): the checkpoint loads in transformers as a
plain GPT2LMHeadModel (the table is an unused tensor), and RuleLens's logits with each example's prior equal
transformers' GPT-2 with a forward hook adding that example's trained row to Q (per layer) or to the embeddings,
within 1e-4; training lowers the loss; a resumed run is bitwise the uninterrupted one; bad input is refused."""
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import GPT2LMHeadModel

from conftest import ROOT, run_rulelens

D, LAYERS = 32, 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rule-prior-data")
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "240", "--out", root / "d")
    # Test examples of forms the training part has (a prior exists only for rules seen in training), the first 40.
    d = root / "d"
    seen = {json.loads(line)["rule"] for line in (d / "train.jsonl").read_text().splitlines() if line.strip()}
    lines = [line for line in (d / "test.jsonl").read_text().splitlines() if line.strip() and json.loads(line)["rule"] in seen]
    (d / "test.jsonl").write_text("\n".join(lines[:40]) + "\n")
    return d


def train(data, out, site, steps=30, extra=()):
    return run_rulelens("train", "--data", data / "train.jsonl", "--out", out, "--layers", LAYERS, "--heads", 2, "--d-model", D,
                        "--ctx", 96, "--steps", steps, "--batch", 8, "--lr", 3e-3, "--warmup", 2, "--threads", 1, "--quiet",
                        "--rule-prior", "rule", "--inject", site, *extra)


@pytest.mark.parametrize("site,part", [("query", 0), ("key", 1), ("value", 2), ("embedding", None)])
def test_prior_forward_matches_transformers_with_a_hook(tmp_path, data, site, part, caplog):
    train(data, tmp_path / "m", site)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    spec = config["rulelens_rule_prior"]
    assert spec["column"] == "rule" and spec["inject"] == site
    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    table = weights[f"rule_prior.{site}.weight"]
    width = D if site == "embedding" else LAYERS * D
    assert table.shape == (len(spec["rules"]), width)

    run_rulelens("logits", "--checkpoint", tmp_path / "m", "--data", data / "test.jsonl", "--out", tmp_path / "l.safetensors")
    ours = load_file(str(tmp_path / "l.safetensors" / "logits.safetensors"))
    rules = [json.loads(line)["rule"] for line in (data / "test.jsonl").read_text().splitlines() if line.strip()]

    with caplog.at_level(logging.WARNING):
        model = GPT2LMHeadModel.from_pretrained(tmp_path / "m", attn_implementation="eager").eval()
    row = {}
    hooks = []
    if site == "embedding":   # after wte + wpe, before block 0: a pre-hook on block 0's input
        hooks.append(model.transformer.h[0].register_forward_pre_hook(lambda m, args: (args[0] + row["v"][:D],) + args[1:]))
    else:
        for layer in range(LAYERS):
            def add(module, args, out, layer=layer):
                shift = torch.zeros(3 * D)
                shift[part * D:(part + 1) * D] = row["v"][layer * D:(layer + 1) * D]
                return out + shift
            hooks.append(model.transformer.h[layer].attn.c_attn.register_forward_hook(add))
    tokens = torch.from_numpy(ours["tokens"].astype(np.int64))
    for i, n in enumerate(ours["lengths"]):
        row["v"] = torch.from_numpy(table[spec["rules"].index(rules[i])])
        with torch.no_grad():
            theirs = model(tokens[i:i + 1, :n]).logits.numpy()[0]
        np.testing.assert_allclose(ours["logits"][i, :n], theirs, atol=1e-4, rtol=0)
    for h in hooks:
        h.remove()
    # Without the hook transformers' model is the plain GPT-2 part: different logits (the prior does something).
    with torch.no_grad():
        plain = model(tokens[:1, :ours["lengths"][0]]).logits.numpy()[0]
    if site != "key":   # a key shift shared by every position cancels in the softmax
        assert np.abs(plain - ours["logits"][0, :ours["lengths"][0]]).max() > 1e-3


def test_training_lowers_loss_and_resume_is_bitwise(tmp_path, data):
    train(data, tmp_path / "full", "query", steps=40)
    # Stopped at step 20 of the same 40-step schedule, then resumed: the same steps, the same table rows per batch.
    train(data, tmp_path / "half", "query", steps=20, extra=("--save-every", 20, "--cosine-steps", 40))
    run_rulelens("train", "--out", tmp_path / "half", "--resume", "--steps", 40, "--quiet")
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "half" / "model.safetensors"))
    assert a.keys() == b.keys() and "rule_prior.query.weight" in a
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name}: a resumed rule-prior run equals the uninterrupted one bit for bit"
    log = [line.split(",") for line in (tmp_path / "full" / "train_log.csv").read_text().splitlines()[1:]]
    losses = [float(r[1]) for r in log]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    r = run_rulelens("eval", "--checkpoint", tmp_path / "full", "--data", data / "test.jsonl", "--json")
    result = json.loads(r.stdout)["test"]
    assert result["n"] > 0 and np.isfinite(result["loss"])


def test_memory_prior_trains_and_retrieves(tmp_path, data):
    train(data, tmp_path / "m", "memory", steps=20)
    r = run_rulelens("retrieve", "--checkpoint", tmp_path / "m", "--data", data, "--bootstrap", 20, "--json")
    report = json.loads(r.stdout)
    labels = [c["label"] for c in report["conditions"]]
    assert labels == ["none", "prior (memory)", "wrong-prior (memory)", "random (memory)",
                      "prior moved to query", "prior moved to key", "prior moved to value"]
    assert all(np.isfinite(c["overall"]["exact"]["mean"]) for c in report["conditions"])


def test_bad_rule_prior_input_is_refused(tmp_path, data):
    def refused(*args, says):
        r = run_rulelens(*args, check=False)
        assert r.returncode == 1 and "error:" in r.stderr and "fix:" in r.stderr, r.stderr
        assert says in r.stderr, r.stderr

    def rejected(*args, says):   # an option combination the declaration rejects (usage error, exit 64)
        r = run_rulelens(*args, check=False)
        assert r.returncode == 64 and "Error:" in r.stderr and says in r.stderr, r.stderr
    base = ("train", "--data", data / "train.jsonl", "--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 96, "--steps", 2,
            "--batch", 4, "--threads", 1, "--quiet")
    rejected(*base, "--out", tmp_path / "a", "--inject", "query", says="--rule-prior")
    rejected(*base, "--out", tmp_path / "b", "--rule-prior", "rule", says="--inject")
    rejected(*base, "--out", tmp_path / "c", "--rule-prior", "rule", "--inject", "attention", says="'query', 'key', 'value'")
    refused(*base, "--out", tmp_path / "d", "--rule-prior", "colour", "--inject", "query", says="colour")
    assert not (tmp_path / "a").exists() and not (tmp_path / "d" / "model.safetensors").exists()
    # An unseen rule value at inference, and a prior checkpoint given to a command that cannot select priors.
    train(data, tmp_path / "m", "query", steps=2)
    lines = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines() if line.strip()]
    lines[0]["rule"] = "Nonsense XYZ-9"
    (tmp_path / "unseen.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    refused("eval", "--checkpoint", tmp_path / "m", "--data", tmp_path / "unseen.jsonl", says="never saw in training")
    refused("retrieve", "--checkpoint", tmp_path / "m", "--data", tmp_path / "unseen.jsonl", says="never saw in training")
    refused("lens", "--checkpoint", tmp_path / "m", "--data", data / "test.jsonl", "--out", tmp_path / "lens.h5", says="rule prior")


def test_rule_prior_sites_spec_compares_sites(tmp_path):
    """Probes/rule-prior-sites.yaml (what `prior-experiment` did): one GPT per site on the same data, seed and shape,
    each measured by retrieve; a trained prior moved to another site is its own condition."""
    run_rulelens("run", ROOT / "Probes" / "rule-prior-sites.yaml", "--quick", "--out", tmp_path / "x", "--threads", 1, "--quiet")
    results = json.loads((tmp_path / "x" / "results.json").read_text())
    variants = {v["vars"]["site"]: v["steps"] for v in results["variants"]}
    assert set(variants) == {"none", "query", "key", "value", "embedding", "memory"}
    query = variants["query"]["retrieve"]["results"]["by_condition"]
    assert {"none", "prior_q_0_a1", "wrong_prior_q_0_a1", "random_q_0_a1", "moved_to_key", "moved_to_value",
            "moved_to_memory"} <= set(query)
    assert "moved_to_key" not in variants["embedding"]["retrieve"]["results"]["by_condition"]   # an embedding row has no per-layer twin
    # Every model shares the plain GPT's data, seed and shape: the same train_config.json but for the prior.
    def config(site):
        folder = next(v["folder"] for v in results["variants"] if v["vars"]["site"] == site)
        run = tmp_path / "x" / folder / "train" / "train_config.json"
        c = json.loads(run.read_text())
        return {k: v for k, v in c.items() if k not in ("rulePrior", "inject", "data", "evalData")}
    assert config("none") == config("query") == config("memory")
