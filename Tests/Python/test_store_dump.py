"""`rulelens dump` against independent readers and references: h5py, h5dump, transformers + PyTorch.

The checkpoint is made here by `transformers` (random weights, scaled up so attention is far from uniform) and
saved with `save_pretrained`, so the model RuleLens runs is defined independently of RuleLens's own code.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import rulelens_bin, run_rulelens

VOCAB = ["<pad>", "<bos>", "<eos>", "\n"] + [chr(c) for c in range(32, 127)]
TOKEN = {t: i for i, t in enumerate(VOCAB)}
N_LAYER = 2
N_MANY = 800  # examples in the kill/resume test: enough that a dump of every site at gzip 6 lasts a few seconds


def encode(example):
    return [1] + [TOKEN[c] for c in example["prompt"] + example["target"]] + [2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    torch.manual_seed(0)
    config = GPT2Config(n_layer=N_LAYER, n_head=2, n_embd=16, n_inner=48, n_positions=32, vocab_size=len(VOCAB),
                        activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    ckpt = root / "ckpt"
    model.save_pretrained(ckpt, safe_serialization=True)
    (ckpt / "vocab.json").write_text(json.dumps(TOKEN))
    rng = np.random.default_rng(1)
    examples = []
    for i in range(37):
        a, b = int(rng.integers(0, 1000)), int(rng.integers(0, 100))
        examples.append({"id": 500 + i, "prompt": f"{a}+{b}=", "target": str(a + b), "rule": "add" if i % 3 else "carry",
                         "rule_id": int(i % 3 == 0), "a": a, "b": b})
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in examples))
    out = root / "all.h5"
    npy = root / "npy"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "*", "--batch", 8, "--out", out,
                 "--export-npy", npy, "--quiet")
    return {"root": root, "ckpt": ckpt, "data": data, "examples": examples, "out": out, "npy": npy}


def reference_model(workdir):
    model = GPT2LMHeadModel.from_pretrained(workdir["ckpt"], attn_implementation="eager")
    model.eval()
    return model


def test_every_dataset_opens_in_h5py_and_equals_the_in_process_values(workdir):
    with h5py.File(workdir["out"], "r") as f:
        assert f.attrs["format"] == "rulelens-activations"
        assert f.attrs["format_version"] == 1 and f.attrs["complete"] == 1
        n = len(workdir["examples"])
        assert f.attrs["examples_written"] == n and f.attrs["n_examples"] == n
        config = json.loads(f.attrs["model_config"])
        assert config["n_layer"] == N_LAYER and config["n_embd"] == 16 and config["n_inner"] == 48
        hooks = json.loads(f.attrs["hooks"])
        assert sorted(hooks) == sorted(f["acts"].keys()) and len(hooks) == 2 + 15 * N_LAYER + 2
        T = int(f.attrs["max_length"])
        for name in hooks:
            ds = f["acts"][name]
            assert ds.dtype == np.float32 and ds.shape[0] == n
            assert ds.maxshape[0] is None and ds.chunks[0] <= 8 and ds.compression == "gzip" and ds.shuffle
            dims = ds.attrs["dims"].split(",")
            assert dims[0] == "example" and len(dims) == ds.ndim
            for axis, dim in enumerate(dims):
                if dim in ("pos", "q_pos", "k_pos"):
                    assert ds.shape[axis] == T
            exported = np.load(workdir["npy"] / f"{name}.npy")
            values = ds[...]
            assert exported.shape == values.shape
            assert np.array_equal(exported.view(np.uint32), values.view(np.uint32)), name
        meta = f["meta"]
        assert list(meta["id"][...]) == [e["id"] for e in workdir["examples"]]
        assert [s.decode() for s in meta["prompt"][...]] == [e["prompt"] for e in workdir["examples"]]
        assert [s.decode() for s in meta["rule"][...]] == [e["rule"] for e in workdir["examples"]]
        assert list(meta["a"][...]) == [e["a"] for e in workdir["examples"]]
        for i, e in enumerate(workdir["examples"]):
            seq = encode(e)
            assert meta["length"][i] == len(seq) and meta["answer_pos"][i] == len(e["prompt"])
            assert list(meta["tokens"][i]) == seq + [0] * (T - len(seq))


def test_logits_and_attention_patterns_match_transformers(workdir):
    model = reference_model(workdir)
    with h5py.File(workdir["out"], "r") as f:
        logits = f["acts/unembed.hook_out"][...]
        patterns = [f[f"acts/blocks.{l}.attn.hook_pattern"][...] for l in range(N_LAYER)]
        tokens, lengths = f["meta/tokens"][...], f["meta/length"][...]
    worst_logit, worst_pattern = 0.0, 0.0
    for i, L in enumerate(lengths):
        ids = torch.tensor(tokens[i:i + 1, :L], dtype=torch.long)
        with torch.no_grad():
            out = model(ids, output_attentions=True)
        worst_logit = max(worst_logit, float(np.abs(out.logits[0].numpy() - logits[i, :L]).max()))
        for l in range(N_LAYER):
            worst_pattern = max(worst_pattern, float(np.abs(out.attentions[l][0].numpy() - patterns[l][i, :, :L, :L]).max()))
        assert not logits[i, L:].any() and not patterns[0][i, :, L:, :].any()  # padding is stored as zeros
    assert worst_logit < 1e-4, worst_logit
    assert worst_pattern < 1e-5, worst_pattern
    # The weights are large enough that attention is far from uniform (the comparison is not vacuous).
    assert patterns[1].max() > 0.9


def test_residual_identities_hold_exactly(workdir):
    with h5py.File(workdir["out"], "r") as f:
        for l in range(N_LAYER):
            pre, attn = f[f"acts/blocks.{l}.hook_resid_pre"][...], f[f"acts/blocks.{l}.hook_attn_out"][...]
            mid, mlp = f[f"acts/blocks.{l}.hook_resid_mid"][...], f[f"acts/blocks.{l}.hook_mlp_out"][...]
            post = f[f"acts/blocks.{l}.hook_resid_post"][...]
            assert np.array_equal(pre + attn, mid)
            assert np.array_equal(mid + mlp, post)
            if l + 1 < N_LAYER:
                assert np.array_equal(post, f[f"acts/blocks.{l + 1}.hook_resid_pre"][...])
        assert np.array_equal(f["acts/hook_embed"][...] + f["acts/hook_pos_embed"][...], f["acts/blocks.0.hook_resid_pre"][...])


def test_h5dump_reads_the_header(workdir):
    proc = subprocess.run(["h5dump", "-H", str(workdir["out"])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'DATASET "blocks.1.attn.hook_pattern"' in proc.stdout and 'ATTRIBUTE "complete"' in proc.stdout


def test_one_position_files_match_the_full_file(workdir):
    root = workdir["root"]
    with h5py.File(workdir["out"], "r") as full:
        resid = full["acts/blocks.1.hook_resid_post"][...]
        lengths, answers = full["meta/length"][...], full["meta/answer_pos"][...]
    rows = np.arange(len(lengths))
    for mode, pick in [("answer", answers), ("last", lengths - 1), ("3", np.full_like(lengths, 3))]:
        out = root / f"pos_{mode}.h5"
        run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "blocks.1.hook_resid_post",
                     "--positions", mode, "--batch", 8, "--out", out, "--quiet")
        with h5py.File(out, "r") as f:
            ds = f["acts/blocks.1.hook_resid_post"]
            assert ds.attrs["dims"] == "example,d_model" and f.attrs["positions"] == mode
            assert np.array_equal(ds[...], resid[rows, pick])


def test_unknown_hook_and_existing_output_are_refused(workdir):
    root = workdir["root"]
    proc = run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "blocks.0.hook_resid_prex",
                        "--out", root / "typo.h5", check=False)
    assert proc.returncode == 1
    assert "closest match: 'blocks.0.hook_resid_pre'" in proc.stderr and "blocks.1.mlp.hook_post" in proc.stderr
    assert not (root / "typo.h5").exists()
    before = workdir["out"].stat().st_mtime_ns
    proc = run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "hook_embed",
                        "--out", workdir["out"], check=False)
    assert proc.returncode == 1 and "--force" in proc.stderr
    assert workdir["out"].stat().st_mtime_ns == before


def test_killed_dump_is_incomplete_and_resume_finishes_it(workdir):
    root = workdir["root"]
    rng = np.random.default_rng(2)
    many = root / "many.jsonl"
    lines = []
    for i in range(N_MANY):
        a, b = int(rng.integers(0, 10**6)), int(rng.integers(0, 10**6))
        lines.append(json.dumps({"prompt": f"{a}+{b}=", "target": str(a + b)}))
    many.write_text("\n".join(lines) + "\n")
    out = root / "killed.h5"
    args = ["dump", "--checkpoint", workdir["ckpt"], "--data", many, "--hooks", "*", "--batch", 8, "--gzip", 6]
    proc = subprocess.Popen([rulelens_bin(), *map(str, args), "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # Wait for the first progress line (at least one batch flushed), then kill without warning.
    seen = b""
    while b"examples" not in seen and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 256)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the dump finished before it could be killed; make the data larger"
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"] == 0
        written = int(f.attrs["examples_written"])
        assert 0 < written < N_MANY
    info = run_rulelens("dump-info", out, check=False)
    assert info.returncode == 1 and "incomplete" in info.stderr and "--resume" in info.stderr
    assert run_rulelens("dump-info", out, "--allow-incomplete").returncode == 0
    # Resuming with different hooks is refused with the reason; with the same ones it completes, and equals a
    # clean dump (written uncompressed to keep the test fast: compression is not part of a file's identity).
    other = run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", many, "--hooks", "hook_embed", "--batch", 8,
                         "--out", out, "--resume", check=False)
    assert other.returncode == 1 and "hooks differs" in other.stderr
    run_rulelens(*args, "--out", out, "--resume", "--quiet")
    clean = root / "clean.h5"
    run_rulelens(*args[:-2], "--gzip", 0, "--out", clean, "--quiet")
    with h5py.File(out, "r") as resumed, h5py.File(clean, "r") as reference:
        assert resumed.attrs["complete"] == 1 and resumed.attrs["examples_written"] == N_MANY
        for name in ["meta/tokens", "meta/correct", "acts/blocks.1.attn.hook_pattern", "acts/unembed.hook_out"]:
            assert np.array_equal(resumed[name][...], reference[name][...]), name
        assert [s for s in resumed["meta/prediction"][...]] == [s for s in reference["meta/prediction"][...]]


def test_truncated_and_corrupt_files_give_the_documented_error(workdir):
    root = workdir["root"]
    data = workdir["out"].read_bytes()
    for fraction in (0.05, 0.5, 0.95):
        cut = root / f"cut{fraction}.h5"
        cut.write_bytes(data[: int(len(data) * fraction)])
        proc = run_rulelens("dump-info", cut, check=False)
        assert proc.returncode == 1, proc.stdout
        assert "is not a readable HDF5 file: it is truncated, corrupt or not HDF5" in proc.stderr
    garbage = root / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    proc = run_rulelens("dump-info", garbage, check=False)
    assert proc.returncode == 1 and "truncated, corrupt or not HDF5" in proc.stderr
    plain = root / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros((3, 2), np.float32)
    proc = run_rulelens("dump-info", plain, check=False)
    assert proc.returncode == 1 and "not a RuleLens activation file" in proc.stderr
    # Resuming onto a damaged file refuses rather than crashing.
    proc = run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "*",
                        "--out", root / "cut0.5.h5", "--resume", check=False)
    assert proc.returncode == 1 and "cannot resume" in proc.stderr


def test_readme_h5py_pandas_and_xarray_recipes_run(workdir):
    """The two Python snippets of docs/hooks-and-store.md, run as written against this test's dump."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "hooks-and-store.md").read_text()
    section = readme.split("## Dumping activations to HDF5", 1)[1]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:3]]
    assert len(blocks) == 2
    scope = {}
    for block in blocks:
        exec(block.replace("runs/add/resid.h5", str(workdir["out"])), scope)
    n = len(workdir["examples"])
    assert scope["at_answer"].shape == (n, 16) and list(scope["prompts"][:2]) == [e["prompt"] for e in workdir["examples"][:2]]
    assert len(scope["meta"]) == n and scope["last"].dims == ("example", "d_model")
    assert set(scope["by_rule"]["rule"].values) == {"add", "carry"}
    with h5py.File(workdir["out"], "r") as f:
        resid, lengths = f["acts/blocks.1.hook_resid_post"][...], f["meta/length"][...]
    assert np.array_equal(scope["last"].values, resid[np.arange(n), lengths - 1])


def test_compression_choices_store_the_same_values(workdir):
    """--compression none | gzip | gzip:LEVEL: the same values (h5py decodes libdeflate's chunks with its own zlib),
    the documented filters on every /acts dataset, and a bad choice refused before anything is written."""
    root = workdir["root"]
    with h5py.File(workdir["out"], "r") as default:
        reference = {name: default[f"acts/{name}"][...] for name in default["acts"]}
        assert all(default[f"acts/{name}"].compression == "gzip" and default[f"acts/{name}"].compression_opts == 1
                   and default[f"acts/{name}"].shuffle for name in reference), "default: gzip level 1 with shuffle"
    for choice, filters in [("none", (None, None, False)), ("gzip", ("gzip", 1, True)), ("gzip:9", ("gzip", 9, True))]:
        out = root / f"compression-{choice.replace(':', '')}.h5"
        run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "*", "--batch", 8,
                     "--compression", choice, "--out", out, "--quiet")
        with h5py.File(out, "r") as f:
            assert f.attrs["complete"] == 1
            for name, values in reference.items():
                ds = f[f"acts/{name}"]
                assert (ds.compression, ds.compression_opts, ds.shuffle) == filters, (choice, name)
                assert np.array_equal(ds[...], values), (choice, name)
    for bad in ["zip", "gzip:0", "gzip:10", "gzip:x"]:
        out = root / "bad.h5"
        proc = run_rulelens("dump", "--checkpoint", workdir["ckpt"], "--data", workdir["data"], "--hooks", "*",
                            "--compression", bad, "--out", out, check=False)
        assert proc.returncode == 1 and "error:" in proc.stderr and "fix:" in proc.stderr, bad
        assert not out.exists()
