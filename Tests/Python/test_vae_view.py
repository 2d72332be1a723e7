"""The language VAE through the plain-model commands (its `VAELanguageModel` view): `rulelens dump` at encoder, latent and
decoder sites against the PyTorch module (Tests/Python/rulelens_vae.py), and `hooks` showing the memory slot."""
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_rulelens  # noqa: E402
from rulelens_vae import RuleLensVAE  # noqa: E402

TINY = ["--layers", "2", "--enc-layers", "2", "--d-model", "32", "--heads", "4", "--latent", "8", "--ctx", "96",
        "--batch", "8", "--threads", "1", "--quiet"]

SITES = ["encoder.blocks.0.hook_mlp_out", "encoder.blocks.1.hook_attn_out", "encoder.blocks.1.hook_resid_post",
         "encoder.blocks.0.attn.hook_pattern", "encoder.hook_pooled", "latent.hook_mu", "latent.hook_logvar", "latent.hook_z",
         "blocks.0.attn.hook_pattern", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post", "unembed.hook_out"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("vae_view")
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "120", "--seed", "5", "--out", d / "syl")
    out = d / "vae"
    run_rulelens("vae", "train", "--data", d / "syl" / "train.jsonl", "--out", out, "--steps", "12", "--inject", "memory", "--inject", "query",
                 "--supervise", "rule", "--supervise-weight", "1", *TINY)
    return d, out


def reference(run_dir, tokens, lengths):
    """The PyTorch module's activations for the dumped rows: the encoder reads each whole row, the decoder the same rows
    teacher-forced with z = mu."""
    vae = RuleLensVAE.from_pretrained(run_dir).eval()
    enc, n = torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(lengths.astype(np.int64))
    cache = {}
    with torch.no_grad():
        pooled, mu, logvar = vae.encode(enc, n, cache=cache)
        logits = vae.decode_logits(enc, mu, cache=cache)
    cache.update({"encoder.hook_pooled": pooled, "latent.hook_mu": mu, "latent.hook_logvar": logvar, "latent.hook_z": mu,
                  "unembed.hook_out": logits})
    return {k: v.numpy() for k, v in cache.items()}


def test_dump_of_a_vae_equals_the_pytorch_module(run, tmp_path):
    d, vae = run
    h5 = tmp_path / "vae_acts.h5"
    run_rulelens("dump", "--checkpoint", vae, "--data", d / "syl" / "test.jsonl", "--hooks", ",".join(SITES), "--batch", "7",
                 "--out", h5, "--quiet")
    with h5py.File(h5, "r") as f:
        assert f.attrs["complete"] == 1
        tokens, lengths = f["meta/tokens"][:], f["meta/length"][:]
        acts = {s: f["acts/" + s][:] for s in SITES}
        assert '"rulelens-vae"' in str(f.attrs["model_config"])
    ref = reference(vae, tokens, lengths)
    N, T = tokens.shape
    assert acts["latent.hook_mu"].shape == (N, 8) and acts["encoder.hook_pooled"].shape == (N, 32)
    # Memory injection: decoder attention rows have one key more (the memory slot, first); the encoder's do not.
    assert acts["blocks.0.attn.hook_pattern"].shape == (N, 4, T, T + 1)
    assert acts["encoder.blocks.0.attn.hook_pattern"].shape == (N, 4, T, T)
    for site in SITES:
        got, want = acts[site], ref[site]
        for i, n in enumerate(lengths):
            if site.startswith("latent.") or site == "encoder.hook_pooled":
                g, w = got[i], want[i]
            elif site.endswith("hook_pattern"):
                P = got.shape[-1] - T                     # keys: memory slot(s), then positions
                g, w = got[i, :, :n, :P + n], want[i, :, :n, :P + n]
            else:
                g, w = got[i, :n], want[i, :n]
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4, err_msg=f"{site}, example {i}")
    # The latent really depends on the example, and positions past each length are stored as zeros.
    assert np.abs(acts["latent.hook_mu"][0] - acts["latent.hook_mu"][1]).max() > 1e-3
    short = int(np.argmin(lengths))
    assert np.all(acts["encoder.blocks.0.hook_mlp_out"][short, lengths[short]:] == 0)


def test_dump_of_a_vae_matches_vae_encode(run, tmp_path):
    """`dump` at latent.hook_mu equals `vae encode`'s mu: the view encodes exactly as the VAE commands do."""
    d, vae = run
    data = d / "syl" / "test.jsonl"
    run_rulelens("dump", "--checkpoint", vae, "--data", data, "--hooks", "latent.hook_mu", "--out", tmp_path / "d.h5", "--quiet")
    run_rulelens("vae", "encode", "--checkpoint", vae, "--data", data, "--out", tmp_path / "e", "--quiet")
    with h5py.File(tmp_path / "d.h5") as a, h5py.File(tmp_path / "e" / "latents.h5") as b:
        np.testing.assert_allclose(a["acts/latent.hook_mu"][:], b["acts/latent.hook_mu"][:], atol=1e-5)


def test_hooks_show_the_memory_slot(run):
    d, vae = run
    out = run_rulelens("hooks", vae, "blocks.0.attn.hook_pattern,encoder.blocks.0.attn.hook_pattern").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "pos+1" in lines["blocks.0.attn.hook_pattern"]
    assert "pos+1" not in lines["encoder.blocks.0.attn.hook_pattern"]


def test_eval_and_grad_still_refuse_a_vae(run):
    d, vae = run
    for args in (["eval", "--checkpoint", vae, "--data", d / "syl" / "test.jsonl"],
                 ["grad", "--checkpoint", vae, "--data", d / "syl" / "test.jsonl", "--out", d / "g.safetensors"]):
        p = run_rulelens(*args, check=False)
        assert p.returncode == 1 and "rulelens vae" in p.stderr, p.stderr


def reference_losses(run_dir, rows, prompt_lengths, edits=None):
    """Per-example teacher-forced loss as `ablate` defines it (mean cross-entropy of the target tokens and <eos>, from
    the last prompt position), from the PyTorch module: the encoder reads the whole example, the decoder row[:-1]."""
    vae = RuleLensVAE.from_pretrained(run_dir).eval()
    out = []
    with torch.no_grad():
        for r, p in zip(rows, prompt_lengths):
            enc = torch.tensor([r])
            _, mu, _ = vae.encode(enc, torch.tensor([len(r)]), edits=edits)
            logits = vae.decode_logits(enc[:, :-1], mu, edits=edits)[0]
            logp = torch.log_softmax(logits.double(), dim=-1)
            out.append(float(-torch.stack([logp[t, r[t + 1]] for t in range(p - 1, len(r) - 1)]).mean()))
    return np.array(out)


def test_ablate_encoder_components_of_a_vae_equals_the_pytorch_module(run, tmp_path):
    """`ablate --stack encoder` zero-ablates the VAE's encoder attention / MLP outputs: the clean and ablated losses equal
    the PyTorch module with the same edit; `--separability-at latent.hook_mu` measures μ's rule separability per run."""
    import json
    import shutil
    from safetensors.numpy import load_file, save_file
    d, trained = run
    # 12 training steps leave the injection maps at their N(0, 0.02) start, where z barely moves the decoder: scale them
    # (and μ's head) up in a copy, so an encoder edit visibly changes the loss and a wrong path could not pass.
    vae = tmp_path / "strong"
    shutil.copytree(trained, vae)
    w = load_file(str(vae / "model.safetensors"))
    for name in ["latent.memory.weight", "latent.query.weight", "latent.mu.weight"]:
        w[name] = w[name] * 30
    save_file(w, str(vae / "model.safetensors"), metadata={"format": "pt"})
    data = tmp_path / "few.jsonl"
    lines = (d / "syl" / "test.jsonl").read_text().splitlines()[:16]
    data.write_text("\n".join(lines) + "\n")
    report = json.loads(run_rulelens("ablate", "--checkpoint", vae, "--data", data, "--stack", "encoder", "--components", "attn", "--components", "mlp",
                                     "--method", "zero", "--label", "rule", "--separability-at", "latent.hook_mu", "--bootstrap", "0",
                                     "--json", "--quiet").stdout)
    assert report["stack"] == "encoder"
    cells = {c["name"]: c for c in report["overall"]["cells"]}
    assert set(cells) == {"enc L0 attn", "enc L0 mlp", "enc L1 attn", "enc L1 mlp"}
    vocab = json.loads((vae / "vocab.json").read_text())
    examples = [json.loads(line) for line in lines]
    rows = [[vocab["<bos>"]] + [vocab[ch] for ch in e["prompt"]] + [vocab[ch] for ch in e["target"]] + [vocab["<eos>"]] for e in examples]
    prompts = [1 + len(e["prompt"]) for e in examples]
    clean = reference_losses(vae, rows, prompts)
    assert report["overall"]["clean"]["loss"]["value"] == pytest.approx(clean.mean(), abs=1e-4)
    for name, site in [("enc L0 mlp", "encoder.blocks.0.hook_mlp_out"), ("enc L1 attn", "encoder.blocks.1.hook_attn_out")]:
        ablated = reference_losses(vae, rows, prompts, edits={site: torch.zeros_like})
        assert cells[name]["effects"]["loss"]["ablated"]["value"] == pytest.approx(ablated.mean(), abs=1e-4), name
        # The edit reaches the decoder through z, by more than the tolerance above (so a missed edit would fail).
        assert np.abs(ablated - clean).max() > 5e-3 and abs(ablated.mean() - clean.mean()) > 5e-4
    assert [k["layer"] for k in report["overall"]["ffn_vs_attention"]] == [0, 1]
    sep = report["separability"]
    assert sep["site"] == "latent.hook_mu" and len(sep["cells"]) == 4
    assert all(c["scores"]["knn_accuracy"] is not None for c in sep["cells"])
