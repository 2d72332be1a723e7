"""A vector added to Q (or K) at every position — the training-free rule prior of `rulelens retrieve`, and
`rulelens logits --add` — equals transformers' GPT-2 with a forward hook adding the same vector to the Q (or K) third
of `c_attn`'s output, within 1e-4."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import GPT2LMHeadModel

from conftest import run_rulelens


@pytest.mark.parametrize("part,site", [(0, "hook_q"), (1, "hook_k"), (2, "hook_v")])
def test_added_vector_matches_a_transformers_forward_hook(tmp_path, part, site):
    data = tmp_path / "d"
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "24", "--out", data)
    run_rulelens("train", "--data", data / "train.jsonl", "--out", tmp_path / "m", "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 96, "--steps", 30, "--batch", 8, "--lr", 3e-3, "--warmup", 2, "--threads", 1, "--quiet")
    d, layer = 32, 1
    vector = np.random.default_rng(part).normal(0, 2.0, d).astype(np.float32)
    (tmp_path / "v.json").write_text(json.dumps(vector.tolist()))
    run_rulelens("logits", "--checkpoint", tmp_path / "m", "--data", data / "test.jsonl", "--out", tmp_path / "plain.safetensors")
    run_rulelens("logits", "--checkpoint", tmp_path / "m", "--data", data / "test.jsonl", "--out", tmp_path / "added.safetensors",
                 "--add", f"blocks.{layer}.attn.{site}={tmp_path / 'v.json'}")
    ours, plain = load_file(str(tmp_path / "added.safetensors" / "logits.safetensors")), load_file(str(tmp_path / "plain.safetensors" / "logits.safetensors"))

    model = GPT2LMHeadModel.from_pretrained(tmp_path / "m", attn_implementation="eager").eval()
    shift = torch.zeros(3 * d)
    shift[part * d:(part + 1) * d] = torch.from_numpy(vector)
    handle = model.transformer.h[layer].attn.c_attn.register_forward_hook(lambda module, args, out: out + shift)
    with torch.no_grad():
        theirs = model(torch.from_numpy(ours["tokens"].astype(np.int64))).logits.numpy()
    handle.remove()
    for i, n in enumerate(ours["lengths"]):
        np.testing.assert_allclose(ours["logits"][i, :n], theirs[i, :n], atol=1e-4, rtol=0)
    if site != "hook_k":    # a key shift shared by every position cancels in the softmax: nothing changes
        assert np.abs(ours["logits"] - plain["logits"]).max() > 1e-2, "the vector changes the logits"


def test_bad_add_is_refused(tmp_path):
    (tmp_path / "v.json").write_text("[1, 2")
    r = run_rulelens("logits", "--checkpoint", tmp_path, "--data", tmp_path / "x.jsonl", "--out", tmp_path / "o.safetensors",
                     "--add", f"blocks.0.attn.hook_q={tmp_path / 'v.json'}", check=False)
    assert r.returncode == 1 and "error:" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "o.safetensors").exists()


def test_add_of_the_wrong_width_is_refused_before_running(tmp_path):
    """`--add SITE=FILE`: the vector's length is checked against one position of the site (d_model for hook_q)."""
    run_rulelens("init", "--out", tmp_path / "m", "--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "12")
    (tmp_path / "x.jsonl").write_text(json.dumps({"prompt": "1+2=", "target": "3"}) + "\n")
    (tmp_path / "v.json").write_text(json.dumps([0.5] * 3))
    r = run_rulelens("logits", "--checkpoint", tmp_path / "m", "--data", tmp_path / "x.jsonl", "--out", tmp_path / "o",
                     "--add", f"blocks.0.attn.hook_q={tmp_path / 'v.json'}", check=False)
    assert r.returncode == 1 and "3 values" in r.stderr and "has 16" in r.stderr and "fix:" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
    (tmp_path / "v.json").write_text(json.dumps([0.5] * 16))
    run_rulelens("logits", "--checkpoint", tmp_path / "m", "--data", tmp_path / "x.jsonl", "--out", tmp_path / "o",
                 "--add", f"blocks.0.attn.hook_q={tmp_path / 'v.json'}")
    assert (tmp_path / "o" / "logits.safetensors").exists()
