"""Interop with Hugging Face transformers, both ways, on the real files (safetensors + config.json).

RuleLens → transformers: a checkpoint written by `rulelens train` loads with GPT2LMHeadModel.from_pretrained
with no missing or unexpected keys, and its logits equal RuleLens's (`rulelens logits`) within 1e-4.
transformers → RuleLens: a random GPT2LMHeadModel saved by Python loads into RuleLens with the same logits,
with and without the `transformer.` name prefix.
"""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import run_rulelens

EXAMPLES = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in [(3, 4), (12, 30), (99, 1), (7, 70), (0, 0), (45, 45)]]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rulelens_logits(checkpoint, data, out):
    run_rulelens("logits", "--checkpoint", checkpoint, "--data", data, "--out", out)
    return load_file(str(out / "logits.safetensors"))


def torch_logits(model, tokens):
    with torch.no_grad():
        return model(torch.from_numpy(tokens.astype(np.int64))).logits.numpy()


def test_rulelens_checkpoint_loads_in_transformers(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", EXAMPLES)
    ckpt = tmp_path / "run"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 16, "--steps", 5, "--batch", 4, "--lr", 1e-2, "--warmup", 1, "--quiet")
    model, info = GPT2LMHeadModel.from_pretrained(str(ckpt), output_loading_info=True)
    model.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert model.config.n_layer == 2 and model.config.n_embd == 32 and model.config.vocab_size == 99
    ours = rulelens_logits(ckpt, data, tmp_path / "logits.safetensors")
    theirs = torch_logits(model, ours["tokens"])
    assert ours["logits"].shape == theirs.shape == (len(EXAMPLES), ours["tokens"].shape[1], 99)
    assert np.abs(ours["logits"] - theirs).max() < 1e-4
    # The vocabulary travels with the checkpoint.
    vocab = json.loads((ckpt / "vocab.json").read_text())
    assert vocab["<pad>"] == 0 and vocab["<bos>"] == 1 and vocab["<eos>"] == 2 and vocab["7"] == 4 + ord("7") - 32


def random_hf_model(seed=0, n_inner=None):
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=99, n_positions=24, n_embd=48, n_layer=2, n_head=3, n_inner=n_inner,
                        activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=1, eos_token_id=2)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        # Larger-than-init random values everywhere (LayerNorm gains and biases included), so every
        # parameter visibly shapes the logits.
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


@pytest.mark.parametrize("strip_prefix", [False, True])
def test_transformers_checkpoint_loads_in_rulelens(tmp_path, strip_prefix):
    model = random_hf_model(seed=1, n_inner=80)
    ckpt = tmp_path / "hf"
    model.save_pretrained(str(ckpt))
    if strip_prefix:
        # GPT2Model-style names (no `transformer.` prefix), plus the tied head and mask buffers HF may store.
        tensors = load_file(str(ckpt / "model.safetensors"))
        renamed = {k.removeprefix("transformer."): v for k, v in tensors.items()}
        renamed["lm_head.weight"] = renamed["wte.weight"].copy()
        renamed["h.0.attn.bias"] = np.tril(np.ones((24, 24), dtype=np.float32))[None, None]
        save_file(renamed, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    ours = rulelens_logits(ckpt, data, tmp_path / "logits.safetensors")
    theirs = torch_logits(model, ours["tokens"])
    assert np.abs(theirs).max() > 1.0  # the comparison is not between two near-zero arrays
    assert np.abs(ours["logits"] - theirs).max() < 1e-4


def test_mismatched_checkpoint_is_named(tmp_path):
    model = random_hf_model(seed=2)
    ckpt = tmp_path / "hf"
    model.save_pretrained(str(ckpt))
    config = json.loads((ckpt / "config.json").read_text())
    config["n_layer"] = 3
    (ckpt / "config.json").write_text(json.dumps(config))
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    proc = run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "l.safetensors", check=False)
    assert proc.returncode == 1
    assert "n_layer is 3 but the weights hold 2 blocks" in proc.stderr    # the field named, before any allocation
    assert not (tmp_path / "l.safetensors").exists()
