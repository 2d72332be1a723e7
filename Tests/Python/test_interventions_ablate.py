"""`rulelens ablate` on a syllogism model trained here: the FFN-versus-attention summary with its intervals, the
per-rule breakdown recounted with pandas from the per-example HDF5 output, and the bad inputs of interventions.
"""
import json
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import run_rulelens


@pytest.fixture(scope="module")
def syllogism(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("syl")
    data = tmp / "data"
    run_rulelens("data", "generate", "--task", "syllogism", "--count", 480, "--seed", 2, "--out", data)
    ckpt = tmp / "run"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 32, "--ctx", 96,
                 "--steps", 150, "--batch", 32, "--lr", 3e-3, "--warmup", 10, "--threads", 1, "--quiet")
    out, plot = tmp / "ablate" / "ablate.h5", tmp / "ablate" / "ablate.svg"
    proc = run_rulelens("ablate", "--checkpoint", ckpt, "--data", data / "test.jsonl", "--label", "rule", "--bootstrap", 300,
                        "--seed", 5, "--separability-at", "blocks.1.hook_resid_post", "--json", "--out", tmp / "ablate", "--quiet")
    return tmp, ckpt, data, json.loads(proc.stdout), out, plot


def test_ffn_versus_attention_summary_with_intervals(syllogism):
    _, _, _, result, out, plot = syllogism
    summary = result["overall"]["ffn_vs_attention"]
    assert [row["layer"] for row in summary] == [0, 1]
    cells = {c["name"]: c for c in result["overall"]["cells"]}
    with h5py.File(out) as f:
        runs = [s.decode() for s in f["runs"][:]]
        per = {m: f[f"per_example/{m}"][:] for m in ["correct", "loss", "logit_diff"]}
    for row in summary:
        l = row["layer"]
        for metric in ["accuracy", "loss", "logit_diff"]:
            a, m, d = row[metric]["attention"], row[metric]["mlp"], row[metric]["difference"]
            assert a["value"] == pytest.approx(cells[f"L{l} attn"]["effects"][metric]["change"]["value"], abs=1e-12)
            assert m["value"] == pytest.approx(cells[f"L{l} mlp"]["effects"][metric]["change"]["value"], abs=1e-12)
            assert d["value"] == pytest.approx(a["value"] - m["value"], abs=1e-9)
            for e in (a, m, d):
                lo, hi = e["ci"]
                assert lo <= e["value"] + 1e-12 and e["value"] <= hi + 1e-12
            # The paired interval's width is that of a mean of per-example differences: close to ±1.96 standard errors.
            key = "correct" if metric == "accuracy" else metric
            diff = per[key][runs.index(f"L{l} attn")] - per[key][runs.index(f"L{l} mlp")]
            se = diff.std(ddof=1) / np.sqrt(len(diff))
            if se > 0:
                assert 0.6 < (d["ci"][1] - d["ci"][0]) / (2 * 1.96 * se) < 1.5
    # Loss rises when a component is zeroed in a trained model.
    assert all(cells[f"L{l} mlp"]["effects"]["loss"]["change"]["value"] > 0 for l in (0, 1))
    # Separability under ablation sits beside its clean value.
    sep = result["separability"]
    assert sep["site"] == "blocks.1.hook_resid_post" and len(sep["cells"]) == 4
    assert 0 <= sep["clean"]["knn_accuracy"] <= 1 and -1 <= sep["clean"]["silhouette"] <= 1
    # The heatmap is an SVG with one annotated cell per layer × component.
    root = ET.parse(plot).getroot()
    assert root.tag.endswith("svg")


def test_per_rule_breakdown_equals_a_pandas_recount(syllogism):
    _, _, data, result, out, _ = syllogism
    with h5py.File(out) as f:
        runs = [s.decode() for s in f["runs"][:]]
        labels = f["meta/label"].asstr()[:]
        assert f["per_example/loss"].attrs["dims"] == "run,example"
        frames = []
        for k, name in enumerate(runs):
            frames.append(pd.DataFrame({"run": name, "rule": labels, "accuracy": f["per_example/correct"][k],
                                        "loss": f["per_example/loss"][k], "logit_diff": f["per_example/logit_diff"][k]}))
    df = pd.concat(frames)
    # The labels are the data's rule column, in order.
    rules = [json.loads(l)["rule"] for l in (data / "test.jsonl").read_text().splitlines()]
    assert list(labels) == rules
    means = df.groupby(["rule", "run"])[["accuracy", "loss", "logit_diff"]].mean()
    counts = df[df.run == "clean"].groupby("rule").size()
    by_label = result["by_label"]
    assert set(by_label) == set(rules)
    for rule, group in by_label.items():
        assert group["n"] == counts[rule]
        for metric in ["accuracy", "loss", "logit_diff"]:
            clean = means.loc[(rule, "clean"), metric]
            assert group["clean"][metric]["value"] == pytest.approx(clean, abs=1e-9)
            for cell in group["cells"]:
                ablated = means.loc[(rule, cell["name"]), metric]
                assert cell["effects"][metric]["ablated"]["value"] == pytest.approx(ablated, abs=1e-9)
                assert cell["effects"][metric]["change"]["value"] == pytest.approx(ablated - clean, abs=1e-9)
    overall = df.groupby("run")[["accuracy", "loss"]].mean()
    assert result["overall"]["clean"]["loss"]["value"] == pytest.approx(overall.loc["clean", "loss"], abs=1e-9)


def bad(tmp, *args):
    proc = run_rulelens(*args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "error:" in proc.stderr and "fix:" in proc.stderr, proc.stderr
    assert not (tmp / "bad.h5").exists() and not list(tmp.glob(".bad.h5*"))
    return proc.stderr


def rejected(tmp, *args):
    """An option value the declaration refuses (typed enum): a usage error naming the allowed values."""
    proc = run_rulelens(*args, check=False)
    assert proc.returncode != 0 and not (tmp / "bad.h5").exists(), proc.stderr
    return proc.stderr


def test_bad_inputs_are_clear_errors_and_write_nothing(syllogism, tmp_path):
    _, ckpt, data, _, _, _ = syllogism
    test = data / "test.jsonl"
    out = tmp_path / "bad.h5"
    ablate = ["ablate", "--checkpoint", ckpt, "--data", test, "--out", out, "--quiet", "--bootstrap", 0]
    assert "layer 5 is out of range" in bad(tmp_path, *ablate, "--layers", "5")
    assert "'ffn'" in (msg := rejected(tmp_path, *ablate, "--components", "ffn")) and "'attn'" in msg
    assert "has no 'a' field" in bad(tmp_path, *ablate, "--label", "a")
    rows = [json.loads(l) for l in test.read_text().splitlines()]
    one = tmp_path / "one_rule.jsonl"
    one.write_text("".join(json.dumps(r) + "\n" for r in rows if r["rule"] == rows[0]["rule"]))
    assert "only one value" in bad(tmp_path, "ablate", "--checkpoint", ckpt, "--data", one, "--label", "rule", "--out", out, "--quiet")
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"prompt": "All a are b.", "target": "x"}) + "\n")
    assert "--mean-from" in bad(tmp_path, *ablate, "--method", "mean", "--mean-from", short)
    assert "unknown hook site" in bad(tmp_path, *ablate, "--label", "rule", "--separability-at", "blocks.9.hook_resid_post")
    # Patching: unknown site, unpaired files, unequal lengths within a pair and across pairs.
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in [("12+34=", "46"), ("11+11=", "22")]))
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in [("12+84=", "96"), ("11+1=", "12")]))
    patch = ["patch", "--checkpoint", ckpt, "--clean", clean, "--out", out, "--quiet"]
    assert "'resid'" in (msg := rejected(tmp_path, *patch, "--corrupt", corrupt, "--sites", "resid")) and "'resid_pre'" in msg
    assert "line 2" in bad(tmp_path, *patch, "--corrupt", corrupt)
    unpaired = tmp_path / "unpaired.jsonl"
    unpaired.write_text(json.dumps({"prompt": "12+84=", "target": "96"}) + "\n")
    assert "pairs are line by line" in bad(tmp_path, *patch, "--corrupt", unpaired)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in [("12+34=", "46"), ("1+1=", "2")]))
    mixed_corrupt = tmp_path / "mixed_corrupt.jsonl"
    mixed_corrupt.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in [("12+84=", "96"), ("1+5=", "6")]))
    assert "line 2" in bad(tmp_path, "patch", "--checkpoint", ckpt, "--clean", mixed, "--corrupt", mixed_corrupt, "--out", out, "--quiet")
    # Lens: missing label column.
    assert "has no 'b' field" in bad(tmp_path, "lens", "--checkpoint", ckpt, "--data", test, "--label", "b", "--out", out, "--quiet")
