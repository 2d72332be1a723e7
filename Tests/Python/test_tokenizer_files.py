"""Checkpoints open in the Python tools as they are: `tokenizer.json` + `tokenizer_config.json` beside `vocab.json`.

AutoTokenizer encodes prompts to exactly RuleLens's ids, `<bos>` first (compared with the tokens `rulelens logits` ran), decodes them
back, and TransformerLens 4.x boots the folder with no tokenizer argument and reproduces RuleLens's logits.
"""
import json

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoTokenizer

from conftest import run_rulelens

EXAMPLES = [{"prompt": p, "target": t} for p, t in [
    ("40+47=", "87"), ("All cats are mammals. Some pets are cats.", "Some pets are mammals."),
    ("a\nb ~{}|\"\\'", "x y"), ("0+0=", "0")]]


def train_tiny(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in EXAMPLES))
    ckpt = tmp_path / "run"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 80, "--steps", 5, "--batch", 4, "--lr", 1e-2, "--warmup", 1, "--quiet")
    return data, ckpt


def test_autotokenizer_and_transformerlens_open_a_checkpoint(tmp_path):
    data, ckpt = train_tiny(tmp_path)
    assert (ckpt / "tokenizer.json").exists() and (ckpt / "tokenizer_config.json").exists()
    out = load_file(str(run_logits(ckpt, data, tmp_path / "logits.safetensors")))
    tokens, lengths, logits = out["tokens"], out["lengths"], out["logits"]

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 0)
    for i, e in enumerate(EXAMPLES):
        ids = tok(e["prompt"] + e["target"])["input_ids"]
        # RuleLens's model input is [bos] + prompt + target (the eos is only a label); the tokenizer adds the bos.
        assert ids == tokens[i, :lengths[i]].tolist(), e
        assert tok.decode(ids, skip_special_tokens=True) == e["prompt"] + e["target"]
    # The same ids as vocab.json, each character spelled in GPT-2's byte table (" " is "Ġ").
    vocab = json.loads((ckpt / "vocab.json").read_text())
    assert {tok.convert_tokens_to_string([t]) if t not in ("<pad>", "<bos>", "<eos>") else t: i
            for t, i in tok.get_vocab().items()} == vocab

    from transformer_lens.model_bridge import TransformerBridge
    bridge = TransformerBridge.boot_transformers(str(ckpt), device="cpu")   # no tokenizer argument
    bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    for i, e in enumerate(EXAMPLES):
        t = bridge.to_tokens(e["prompt"] + e["target"])                       # prepends <bos>
        assert t[0].tolist() == tokens[i, :lengths[i]].tolist()
        with torch.no_grad():
            tl_logits, cache = bridge.run_with_cache(t)
        assert "blocks.1.hook_resid_post" in cache
        np.testing.assert_allclose(tl_logits[0].numpy(), logits[i, :lengths[i]], atol=1e-4)


def run_logits(ckpt, data, out):
    run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", out)
    return out / "logits.safetensors"
