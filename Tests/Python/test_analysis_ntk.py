"""rulelens probe ntk against PyTorch: per-example loss gradients of the same checkpoint, loaded with
transformers.GPT2LMHeadModel, give the same within/between-rule cosine similarity and centred kernel–label alignment per parameter block."""
import json

import numpy as np
import torch
from transformers import GPT2LMHeadModel

from conftest import run_rulelens

RULES = {"add": lambda a, b: (f"{a}+{b}=", str(a + b)), "sub": lambda a, b: (f"{a}-{b}=", str(a - b)),
         "mul": lambda a, b: (f"{a}*{b}=", str(a * b))}


def test_ntk_blocks_match_pytorch(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(15):
        rule = list(RULES)[i % 3]
        a, b = (int(v) for v in rng.integers(0, 30, size=2))
        prompt, target = RULES[rule](a, b)
        rows.append({"prompt": prompt, "target": target, "rule": rule})
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ckpt = tmp_path / "run"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 16, "--steps", 4, "--batch", 4, "--lr", 1e-2, "--warmup", 1, "--quiet")
    out = json.loads(run_rulelens("probe", "ntk", "--checkpoint", ckpt, "--data", data, "--max-per-rule", 3,
                                  "--json", "--out", tmp_path / "ntk").stdout)
    chosen = out["example_indices"]
    assert sorted(out["examples_per_rule"]) == [3, 3, 3] and len(chosen) == 9

    model = GPT2LMHeadModel.from_pretrained(str(ckpt)).eval()
    vocab = json.loads((ckpt / "vocab.json").read_text())
    kinds = {"attn_qkv": "attn.c_attn", "attn_out": "attn.c_proj", "ffn_in": "mlp.c_fc", "ffn_out": "mlp.c_proj"}
    grads, rules = {}, []
    for idx in chosen:
        row = rows[idx]
        tokens = [1] + [vocab[c] for c in row["prompt"] + row["target"]] + [2]
        inputs, targets = torch.tensor([tokens[:-1]]), torch.tensor(tokens[1:])
        counted = torch.arange(len(targets)) >= len(row["prompt"])  # positions predicting target chars and eos
        model.zero_grad()
        logits = model(inputs).logits[0]
        torch.nn.functional.cross_entropy(logits[counted], targets[counted]).backward()
        for layer in range(2):
            for kind, module in kinds.items():
                mod = model.transformer.h[layer].get_submodule(module)
                g = torch.cat([mod.weight.grad.flatten(), mod.bias.grad.flatten()]).double()
                grads.setdefault(f"blocks.{layer}.{kind}", []).append((g / g.norm()).numpy())
        rules.append(row["rule"])
    rules = np.array(rules)
    assert len(out["blocks"]) == 8
    for block in out["blocks"]:
        u = np.stack(grads[block["block"]])
        cos = u @ u.T
        same = rules[:, None] == rules[None, :]
        off = ~np.eye(len(rules), dtype=bool)
        assert abs(block["within"] - cos[same & off].mean()) < 2e-4, block
        assert abs(block["between"] - cos[~same].mean()) < 2e-4, block
        # Centred kernel–label alignment: ⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖), K the cosine kernel, L the same-rule kernel.
        n = len(rules)
        h = np.eye(n) - np.ones((n, n)) / n
        kc, lc = h @ cos @ h, h @ same.astype(float) @ h
        alignment = (kc * lc).sum() / (np.linalg.norm(kc) * np.linalg.norm(lc))
        assert abs(block["alignment"] - alignment) < 2e-4, (block, alignment)
    assert (tmp_path / "ntk" / "ntk.svg").read_text().startswith("<svg")


def test_ntk_bad_input(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "target": "2"}) + "\n")
    proc = run_rulelens("probe", "ntk", "--checkpoint", tmp_path / "missing", "--data", data, check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr and "fix:" in proc.stderr


def test_probe_sweep_on_a_real_dump(tmp_path):
    """train → dump (all positions) → probe: the sweep reads the dump through the store's reader, takes each
    example's last position, and its numbers equal scikit-learn's on the same rows read with h5py."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        rule = list(RULES)[i % 3]
        a, b = (int(v) for v in rng.integers(0, 30, size=2))
        prompt, target = RULES[rule](a, b)
        rows.append({"prompt": prompt, "target": target, "rule": rule})
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ckpt, dump = tmp_path / "run", tmp_path / "acts.h5"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 16, "--steps", 20, "--batch", 8, "--lr", 1e-2, "--warmup", 1, "--quiet")
    run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "blocks.*.hook_attn_out,blocks.*.hook_mlp_out",
                 "--positions", "all", "--out", dump, "--quiet")
    svg = tmp_path / "sep" / "plot.svg"
    out = json.loads(run_rulelens("probe", "separability", "--file", dump, "--site", "blocks.*", "--label", "rule",
                                  "--json", "--out", tmp_path / "sep").stdout)
    assert [s["site"] for s in out["sites"]] == ["blocks.0.hook_attn_out", "blocks.0.hook_mlp_out",
                                                 "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out"]
    import h5py
    with h5py.File(dump) as f:
        lengths = f["meta/length"][()]
        rules = np.array([r.decode() if isinstance(r, bytes) else r for r in f["meta/rule"][()]])
        for s in out["sites"]:
            acts = f["acts/" + s["site"]][()]
            x = acts[np.arange(len(lengths)), lengths - 1].astype(np.float64)
            assert abs(s["silhouette"] - silhouette_score(x, rules)) < 1e-4 * max(1, abs(silhouette_score(x, rules)))
            assert abs(s["davies_bouldin"] / davies_bouldin_score(x, rules) - 1) < 1e-4
            assert abs(s["calinski_harabasz"] / calinski_harabasz_score(x, rules) - 1) < 1e-4
    assert "ffn" in svg.read_text()
