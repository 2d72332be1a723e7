"""The language VAE against its PyTorch reference (Tests/Python/rulelens_vae.py), and its CLI round trips."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import rulelens_bin, run_rulelens  # noqa: E402
from rulelens_vae import RuleLensVAE, beta_schedule, mutual_information  # noqa: E402

TINY = ["--layers", "2", "--enc-layers", "2", "--d-model", "32", "--heads", "4", "--latent", "8", "--ctx", "96",
        "--batch", "8", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def syl(tmp_path_factory):
    d = tmp_path_factory.mktemp("vae_data")
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "240", "--seed", "3", "--out", d / "syl")
    small = d / "small.jsonl"
    small.write_text("".join((d / "syl" / "test.jsonl").read_text().splitlines(keepends=True)[:12]))
    return d, small


def train(tmp, name, *extra, steps=12):
    out = tmp / name
    run_rulelens("vae", "train", "--data", tmp / "syl" / "train.jsonl", "--out", out, "--steps", steps, *TINY, *extra)
    return out


@pytest.mark.parametrize("options", [
    ["--inject", "memory", "--inject", "query", "--inject", "embedding", "--supervise", "rule", "--free-bits", "0.05"],
    ["--inject", "memory", "--pool", "cls", "--decode", "target"],
    ["--inject", "query"],
    ["--inject", "embedding", "--supervise", "rule_id", "--pool", "cls"],
])
def test_pytorch_parity(syl, tmp_path, options):
    """mu, logvar, z, logits and every ELBO term agree with the PyTorch module within 1e-4 for the same epsilon."""
    d, small = syl
    run = train(d, "parity_" + "_".join(o.strip("-").replace(",", "+") for o in options), *options)
    run_rulelens("vae", "logits", "--checkpoint", run, "--data", small, "--eps-seed", "11", "--beta", "0.7", "--out", tmp_path / "lg")
    out = tmp_path / "lg" / "logits.safetensors"
    ref = load_file(str(out))
    vae = RuleLensVAE.from_pretrained(run).eval()
    enc = torch.from_numpy(ref["enc_tokens"].astype(np.int64))
    lengths = torch.from_numpy(ref["enc_lengths"].astype(np.int64))
    dec_in, dec_tg, mask = enc[:, :-1].clone(), enc[:, 1:].clone(), torch.zeros(enc.shape[0], enc.shape[1] - 1)
    for i, n in enumerate(lengths.tolist()):
        dec_in[i, n - 1:] = 0
        dec_tg[i, n - 1:] = 0
        first = 0 if vae.config.decode == "all" else int(ref["prompt_lengths"][i]) - 1
        mask[i, first:n - 1] = 1
    labels = torch.from_numpy(ref["labels"].astype(np.int64)) if "labels" in ref else None
    with torch.no_grad():
        got = vae(enc, lengths, dec_in, dec_tg, mask, eps=torch.from_numpy(ref["eps"]), labels=labels, beta=0.7)
    for name in ["mu", "logvar", "z", "rec", "kl", "kl_fb", "elbo"]:
        np.testing.assert_allclose(ref[name], got[name].numpy(), atol=1e-4, rtol=1e-5, err_msg=name)
    real = mask.numpy() > 0
    np.testing.assert_allclose(ref["logits"][real], got["logits"].numpy()[real], atol=1e-4, rtol=1e-5, err_msg="logits")
    if labels is not None:
        np.testing.assert_allclose(ref["cls_loss"], got["cls_loss"].numpy(), atol=1e-4, rtol=1e-5, err_msg="cls_loss")
    assert abs(float(load_file_meta(out)["loss"]) - float(got["loss"])) < 1e-4 * max(1.0, abs(float(got["loss"])))
    assert not torch.allclose(got["z"], got["mu"])          # epsilon was really applied


def load_file_meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))["__metadata__"]


def test_beta_schedule_matches_reference(syl):
    """The logged beta column is Optimus's cyclical schedule."""
    d, _ = syl
    run = train(d, "beta", "--beta", "2", "--beta-cycles", "2", "--ratio-zero", "0.25", "--ratio-increase", "0.5", steps=10)
    logged = [float(line.split(",")[5]) for line in (run / "train_log.csv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(logged, beta_schedule(10, 2.0, 2, 0.25, 0.5), atol=1e-4)


def test_encode_probe_round_trip_and_mi(syl, tmp_path):
    """vae encode → h5py reads μ/logvar/z and /meta; probe separability runs on latent.hook_mu; eval's MI equals the
    reference estimate on the same samples; active units recounted from μ."""
    d, _ = syl
    run = train(d, "encode", "--supervise", "rule", steps=20)
    data = d / "syl" / "test.jsonl"
    h5 = tmp_path / "enc" / "latents.h5"
    run_rulelens("vae", "encode", "--checkpoint", run, "--data", data, "--out", tmp_path / "enc", "--sample", "--seed", "4", "--batch", "16",
                 "--hooks", "encoder.blocks.*.hook_mlp_out", "--quiet")
    with h5py.File(h5, "r") as f:
        assert f.attrs["complete"] == 1
        mu, logvar, z = (f[f"acts/latent.hook_{n}"][:] for n in ("mu", "logvar", "z"))
        assert mu.shape == (72, 8) and f["acts/encoder.blocks.1.hook_mlp_out"].shape == (72, 32)
        rules = [r.decode() if isinstance(r, bytes) else r for r in f["meta/rule"][:]]
    assert len(set(rules)) > 5
    np.testing.assert_allclose(z, mu + np.exp(0.5 * logvar) * (z - mu) / np.exp(0.5 * logvar), atol=1e-5)
    report = json.loads(run_rulelens("vae", "eval", "--checkpoint", run, "--data", data, "--seed", "4", "--batch", "16",
                                     "--json", "--quiet").stdout)
    mi = mutual_information(torch.from_numpy(mu).double(), torch.from_numpy(logvar).double(), torch.from_numpy(z).double())
    assert abs(report["mutual_information"] - mi) < 1e-4
    au = int((np.var(mu.astype(np.float64), axis=0, ddof=1) > 0.01).sum())
    assert report["active_units"] == au
    assert report["n"] == 72 and 0 <= report["exact_match"] <= 1 and report["classifier_accuracy"] is not None
    sep = run_rulelens("probe", "separability", "--file", h5, "--site", "latent.hook_mu", "--label", "rule", "--json")
    assert "silhouette" in sep.stdout


def test_training_raises_the_elbo_and_same_seed_same_weights(syl):
    d, _ = syl
    fast = ["--seed", "5", "--warmup", "5", "--lr", "3e-3"]
    a = train(d, "seed_a", *fast, steps=40)
    b = train(d, "seed_b", *fast, steps=40)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    rows = [line.split(",") for line in (a / "train_log.csv").read_text().splitlines()[1:]]
    rec = [float(r[2]) for r in rows]
    assert np.mean(rec[-5:]) < 0.8 * np.mean(rec[:5])
    start = train(d, "seed_start", *fast, steps=1)
    elbo = [json.loads(run_rulelens("vae", "eval", "--checkpoint", run, "--data", d / "syl" / "test.jsonl", "--json", "--quiet").stdout)["elbo"]
            for run in (start, a)]
    assert elbo[1] > elbo[0] + 20          # nats per example on held-out data
    c = train(d, "seed_c", "--seed", "6", steps=2)
    assert not np.array_equal(load_file(str(c / "model.safetensors"))["encoder.wte.weight"], wa["encoder.wte.weight"])


def test_resume_after_sigkill_is_bitwise(syl, tmp_path):
    d, _ = syl
    steps = 400
    args = ["vae", "train", "--data", d / "syl" / "train.jsonl", "--steps", steps, "--seed", 9, "--save-every", 20,
            "--supervise", "rule", *TINY]
    run_rulelens(*args, "--out", tmp_path / "whole")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([rulelens_bin(), *map(str, args), "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = killed / "train_log.csv"
    deadline = time.time() + 300
    while time.time() < deadline:
        if log.exists() and log.read_text().count("\n") > 50 and (killed / "model.safetensors").exists():
            break
        time.sleep(0.002)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running, "training finished before it could be killed; raise `steps`"
    saved = int(json.loads((killed / "rulelens.json").read_text())["step"])
    assert 0 < saved < steps
    run_rulelens("vae", "train", "--out", killed, "--resume", "--threads", 1, "--quiet")
    assert (killed / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert log.read_text() .count("\n") == (tmp_path / "whole" / "train_log.csv").read_text().count("\n")
    assert (killed / "kl_dims.csv").read_text() == (tmp_path / "whole" / "kl_dims.csv").read_text()


@pytest.mark.parametrize("args,needle", [
    (["--inject", "keys"], "Please provide one of 'memory', 'query' or 'embedding'"),
    (["--latent", "0"], "--latent is 0"),
    (["--latent", "1000000000"], "--latent is 1000000000, more than this VAE supports"),
    (["--free-bits=-1"], "--free-bits"),
    (["--supervise", "no_such_column"], "no column"),
])
def test_bad_training_options(syl, tmp_path, args, needle):
    """Sizes and numbers are refused by the declaration (exit 64, before anything is allocated); data problems by the
    run (exit 1, with a fix); nothing is written either way."""
    d, _ = syl
    out = tmp_path / "bad"
    p = run_rulelens("vae", "train", "--data", d / "syl" / "train.jsonl", "--out", out, "--steps", 2, *TINY, *args, check=False)
    assert p.returncode in (1, 64) and "error:" in p.stderr.lower() and needle in p.stderr, p.stderr
    assert p.returncode == 64 or "fix:" in p.stderr
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize("args,needle", [
    (["decode", "--prior", "1000000000"], "--prior is 1000000000"),
    (["decode", "--z", "nan,0,0,0,0,0,0,0"], "is not a finite number"),
    (["decode", "--prior", "2", "--z", "0"], "exactly one source"),
    (["logits", "--data", "x.jsonl", "--beta", "nan", "--out", "o"], "--beta is nan"),
    (["interpolate", "--data", "x.jsonl", "--from", "0", "--to", "1", "--steps", "1000000000"], "--steps is 1000000000"),
])
def test_bad_generation_options(syl, tmp_path, args, needle):
    p = run_rulelens("vae", args[0], "--checkpoint", tmp_path / "none", *args[1:], check=False)
    assert p.returncode == 64 and needle in p.stderr, p.stderr


def test_one_class_column_and_wrong_checkpoint_kinds(syl, tmp_path):
    d, _ = syl
    one = tmp_path / "one.jsonl"
    one.write_text("".join(json.dumps({"prompt": "All a are b.", "target": "x", "kind": "same"}) + "\n" for _ in range(4)))
    p = run_rulelens("vae", "train", "--data", one, "--out", tmp_path / "o", "--steps", 2, *TINY, "--supervise", "kind", check=False)
    assert p.returncode == 1 and "only one value" in p.stderr
    # A GPT checkpoint where a VAE is needed, and the reverse.
    gpt = tmp_path / "gpt"
    run_rulelens("train", "--data", d / "syl" / "train.jsonl", "--out", gpt, "--steps", 2, "--ctx", 96, "--d-model", 32,
                 "--layers", 1, "--quiet")
    p = run_rulelens("vae", "eval", "--checkpoint", gpt, "--data", d / "syl" / "test.jsonl", check=False)
    assert p.returncode == 1 and "not a RuleLens VAE" in p.stderr
    vae = train(d, "kind", steps=2)
    p = run_rulelens("eval", "--checkpoint", vae, "--data", d / "syl" / "test.jsonl", check=False)
    assert p.returncode == 1 and "rulelens-vae" in p.stderr and "rulelens vae" in p.stderr


def test_probe_ntk_on_a_vae_matches_pytorch_gradients(syl, tmp_path):
    """probe ntk on a VAE checkpoint: encoder, latent-head and decoder blocks; within/between-rule cosines recomputed
    from per-example PyTorch gradients of the same objective (z = mu, the checkpoint's beta, free bits, classifier)."""
    d, _ = syl
    run = train(d, "ntk", "--supervise", "rule", "--free-bits", "0.05", steps=6)
    data = tmp_path / "ntk.jsonl"
    rows = [json.loads(line) for line in (d / "syl" / "test.jsonl").read_text().splitlines()]
    keep = [r for r in rows if r["rule"] in sorted({r["rule"] for r in rows})[:3]][:12]
    data.write_text("".join(json.dumps(r) + "\n" for r in keep))
    out = json.loads(run_rulelens("probe", "ntk", "--checkpoint", run, "--data", data, "--max-per-rule", 4, "--json").stdout)
    blocks = {b["block"]: b for b in out["blocks"]}
    assert {"encoder.blocks.0.attn_qkv", "encoder.blocks.1.ffn_out", "latent.heads", "blocks.0.ffn_in"} <= set(blocks)
    vae = RuleLensVAE.from_pretrained(run)
    names = vae.name_map()
    c = vae.config
    picked = [keep[i] for i in out["example_indices"]]
    tensors = {"encoder.blocks.0.attn_qkv": ["encoder.h.0.attn.c_attn.weight", "encoder.h.0.attn.c_attn.bias"],
               "encoder.blocks.1.ffn_out": ["encoder.h.1.mlp.c_proj.weight", "encoder.h.1.mlp.c_proj.bias"],
               "latent.heads": ["latent.mu.weight", "latent.mu.bias", "latent.logvar.weight", "latent.logvar.bias"]}
    grads = {b: [] for b in tensors}
    for r in picked:
        row = [1] + [4 + ord(ch) - 32 for ch in r["prompt"] + r["target"]] + [2]
        enc = torch.tensor([row])
        vae.zero_grad()
        label = torch.tensor([c.class_names.index(r["rule"])])
        outp = vae(enc, torch.tensor([len(row)]), enc[:, :-1], enc[:, 1:], torch.ones(1, len(row) - 1), labels=label)
        outp["loss"].backward()
        for b, ts in tensors.items():
            g = torch.cat([names[t].grad.flatten() for t in ts]).double()
            grads[b].append(g / g.norm())
    rules = np.array([r["rule"] for r in picked])
    same = rules[:, None] == rules[None, :]
    off = ~np.eye(len(rules), dtype=bool)
    for b in tensors:
        u = torch.stack(grads[b]).numpy()
        cos = u @ u.T
        assert abs(blocks[b]["within"] - cos[same & off].mean()) < 2e-3, b
        assert abs(blocks[b]["between"] - cos[~same].mean()) < 2e-3, b


def test_info_and_hooks_accept_a_vae(syl):
    d, _ = syl
    run = train(d, "info", "--inject", "memory", "--inject", "query", "--supervise", "rule", steps=2)
    info = run_rulelens("info", run).stdout
    assert "RuleLens language VAE" in info and "inject memory,query" in info and "classifier on z → rule" in info
    hooks = run_rulelens("hooks", run, "encoder.blocks.1.*,latent.*,blocks.0.attn.hook_q_inject").stdout.splitlines()
    names = [h.split()[0] for h in hooks]
    assert "encoder.blocks.1.hook_mlp_out" in names and "latent.hook_z" in names and "blocks.0.attn.hook_q_inject" in names
    assert any(h.split()[0] == "latent.hook_mu" and "[8]" in h for h in hooks)
    bad = run_rulelens("hooks", run, "latent.hook_sigma", check=False)
    assert bad.returncode == 1 and "latent.hook_logvar" in bad.stderr or "latent.hook_mu" in bad.stderr
