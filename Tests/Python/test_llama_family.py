"""The Llama/Qwen2 family against transformers and TransformerLens, on tiny random models built here.

- Qwen2 with grouped-query attention and q/k/v biases (tied head), Llama untied with a head width that is not
  d_model / heads, saved as fp32, bf16 and sharded safetensors, each with a byte-level BPE tokenizer trained by HF
  `tokenizers`: RuleLens logits equal transformers' within 1e-4.
- Every hook site RuleLens records equals TransformerLens's `run_with_cache` value of the same name within 1e-4.
- `rulelens grad` (the parameter gradients of the mean target loss) equals torch autograd on the same model.
- What `rulelens train --arch qwen2|llama` writes loads as Qwen2ForCausalLM / LlamaForCausalLM with equal logits.
- A rotary model evaluates beyond the lengths it was trained on.
"""
import json

import h5py
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from conftest import run_rulelens
from hf_fixtures import save_tokenizer, train

EXAMPLES = [
    {"prompt": "40+47=", "target": "87"},
    {"prompt": "Hello world! ", "target": "It's 2024."},
    {"prompt": "Ünïcödé café ", "target": "naïve 🎉"},
    {"prompt": "All A are B. All B are C. ", "target": "All A are C."},
    {"prompt": "tabs\tand  spaces ", "target": "done"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return save_tokenizer(train("qwen2"), tmp_path_factory.mktemp("tok") / "tok")


def perturb(model, seed):
    """Larger-than-init random values everywhere (norm weights and biases included), so each parameter shows."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def make_model(kind, tokenizer_dir, seed=0, **overrides):
    vocab = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).get_vocab_size() + 5   # padded, as Qwen2's
    torch.manual_seed(seed)
    if kind == "qwen2":
        cfg = Qwen2Config(vocab_size=vocab, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
                          num_key_value_heads=2, max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=True,
                          rms_norm_eps=1e-6, **overrides)
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=56, num_hidden_layers=3, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=12, max_position_embeddings=64, rope_theta=500000.0,
                          tie_word_embeddings=False, rms_norm_eps=1e-5, **overrides)
        model = LlamaForCausalLM(cfg)
    return perturb(model, seed)


def save(model, path, tokenizer_dir, dtype=None, shard=None):
    """Saves the model (optionally in `dtype`) with the tokenizer; returns the float32 model of the saved values.
    After a half-precision save the reference is reloaded in float32, since `.to(bfloat16)` also rounds the rotary
    `inv_freq` buffer, which transformers recomputes in float32 on load (as RuleLens does)."""
    saved = model if dtype is None else model.to(dtype)
    saved.save_pretrained(str(path), **({"max_shard_size": shard} if shard else {}))
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        (path / name).write_bytes((tokenizer_dir / name).read_bytes())
    if dtype is None:
        return model
    return type(model).from_pretrained(str(path), dtype=torch.float32).eval()


def sequences(tokenizer_dir, examples=EXAMPLES):
    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = hf.token_to_id("<|endoftext|>")
    return [[eos] + hf.encode(e["prompt"], add_special_tokens=False).ids + hf.encode(e["target"], add_special_tokens=False).ids + [eos]
            for e in examples]


def check_logits(ckpt, model, tokenizer_dir, tmp_path, atol=1e-4):
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    out = tmp_path / "logits.safetensors"
    run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", out)
    ours = load_file(str(out / "logits.safetensors"))
    for i, seq in enumerate(sequences(tokenizer_dir)):
        n = int(ours["lengths"][i])
        assert n == len(seq) - 1 and list(ours["tokens"][i, :n]) == seq[:-1]
        with torch.no_grad():
            theirs = model(torch.tensor([seq[:-1]])).logits[0].numpy()
        assert np.abs(theirs).max() > 1.0
        np.testing.assert_allclose(ours["logits"][i, :n], theirs, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("storage", ["fp32", "bf16", "sharded"])
def test_logits_equal_transformers(tmp_path, tokenizer_dir, kind, storage):
    model = make_model(kind, tokenizer_dir, seed=1)
    ckpt = tmp_path / f"{kind}-{storage}"
    if storage == "fp32":
        model = save(model, ckpt, tokenizer_dir)
    elif storage == "bf16":
        model = save(model, ckpt, tokenizer_dir, dtype=torch.bfloat16)   # the float32 view of the bf16 weights
    else:
        model = save(model, ckpt, tokenizer_dir, shard="30KB")
        assert (ckpt / "model.safetensors.index.json").exists() and len(list(ckpt.glob("model-*.safetensors"))) >= 3
    check_logits(ckpt, model, tokenizer_dir, tmp_path)


def test_hooks_equal_transformer_lens(tmp_path, tokenizer_dir):
    from transformer_lens.model_bridge import TransformerBridge
    model = make_model("qwen2", tokenizer_dir, seed=2)
    ckpt = tmp_path / "qwen2"
    save(model, ckpt, tokenizer_dir)
    example = [EXAMPLES[3]]
    data = write_jsonl(tmp_path / "one.jsonl", example)
    out = tmp_path / "acts.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "*", "--out", out, "--quiet")
    bridge = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
    # RuleLens records the model as it is: compare with TransformerLens on unprocessed weights (no LN folding,
    # weight centering or value-bias folding, which change hook_v, the residual stream and logits by design).
    bridge.enable_compatibility_mode(no_processing=True)
    tokens = torch.tensor([sequences(tokenizer_dir, example)[0]])
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    compared = 0
    with h5py.File(out, "r") as f:
        names = list(f["acts"].keys())
        assert "blocks.0.attn.hook_rot_q" in names and "blocks.1.ln1.hook_scale" in names and "blocks.0.mlp.hook_pre_linear" in names
        for name in names:
            ours = f["acts"][name][0]
            theirs = cache[name][0].float().numpy()
            assert ours.shape == theirs.shape, name
            if name.endswith("hook_attn_scores"):
                finite = np.isfinite(theirs)
                assert (np.isfinite(ours) == finite).all(), name
                ours, theirs = ours[finite], theirs[finite]
            scale = max(1.0, float(np.abs(theirs).max()))
            assert np.abs(ours - theirs).max() <= 1e-4 * scale, (name, np.abs(ours - theirs).max())
            compared += 1
    assert compared == len(names) == 2 * 20 + 4   # every site of the 2-layer model: 20 per block, embed, 3 final


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_gradients_equal_torch_autograd(tmp_path, tokenizer_dir, kind):
    model = make_model(kind, tokenizer_dir, seed=3)
    ckpt = tmp_path / kind
    model = save(model, ckpt, tokenizer_dir)
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    out = tmp_path / "grads.safetensors"
    run_rulelens("grad", "--checkpoint", ckpt, "--data", data, "--out", out)
    ours = load_file(str(out))
    # The mean cross-entropy over every target token and eos of every example (one token-weighted mean).
    model.zero_grad()
    total, count = 0.0, 0
    for ex, seq in zip(EXAMPLES, sequences(tokenizer_dir)):
        n_prompt = len(Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).encode(ex["prompt"], add_special_tokens=False).ids)
        logits = model(torch.tensor([seq[:-1]])).logits[0]
        targets = torch.tensor(seq[1:])
        counted = torch.arange(len(targets)) >= n_prompt
        total = total + torch.nn.functional.cross_entropy(logits[counted], targets[counted], reduction="sum")
        count += int(counted.sum())
    (total / count).backward()
    named = dict(model.named_parameters())
    assert set(ours) == set(named), set(ours) ^ set(named)
    for name, p in named.items():
        theirs = p.grad.numpy()
        assert np.abs(theirs).max() > 0, name
        np.testing.assert_allclose(ours[name], theirs, atol=2e-5 + 2e-3 * np.abs(theirs).max(), rtol=0, err_msg=name)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_probe_ntk_blocks_equal_torch_autograd(tmp_path, tokenizer_dir, kind):
    """probe ntk on the family: per-example gradients of each block (q/k/v with Qwen2's biases, o_proj, gate+up,
    down), unit-normalised, give the within/between-rule cosines torch autograd gives on the same model."""
    model = make_model(kind, tokenizer_dir, seed=4)
    ckpt = tmp_path / kind
    model = save(model, ckpt, tokenizer_dir)
    rows = [{**e, "rule": rule} for rule in ["p", "q"] for e in EXAMPLES[:4]]
    rows[1], rows[6] = {**rows[1], "rule": "q"}, {**rows[6], "rule": "p"}   # rules that do not follow the text
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    out = json.loads(run_rulelens("probe", "ntk", "--checkpoint", ckpt, "--data", data, "--max-per-rule", 4, "--json").stdout)
    assert out["model"] == kind and len(out["blocks"]) == 4 * model.config.num_hidden_layers
    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    kinds = {"attn_qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], "attn_out": ["self_attn.o_proj"],
             "ffn_in": ["mlp.gate_proj", "mlp.up_proj"], "ffn_out": ["mlp.down_proj"]}
    grads, rules = {}, []
    for idx in out["example_indices"]:
        row = rows[idx]
        seq = sequences(tokenizer_dir, [row])[0]
        n_prompt = len(hf.encode(row["prompt"], add_special_tokens=False).ids)
        targets = torch.tensor(seq[1:])
        counted = torch.arange(len(targets)) >= n_prompt
        model.zero_grad()
        logits = model(torch.tensor([seq[:-1]])).logits[0]
        torch.nn.functional.cross_entropy(logits[counted], targets[counted]).backward()
        for layer, block in enumerate(model.model.layers):
            for kind_name, modules in kinds.items():
                parts = [t.grad.flatten() for m in modules for t in (block.get_submodule(m).weight, block.get_submodule(m).bias) if t is not None]
                g = torch.cat(parts).double()
                grads.setdefault(f"blocks.{layer}.{kind_name}", []).append((g / g.norm()).numpy())
        rules.append(row["rule"])
    rules = np.array(rules)
    same, off = rules[:, None] == rules[None, :], ~np.eye(len(rules), dtype=bool)
    for block in out["blocks"]:
        u = np.stack(grads[block["block"]])
        cos = u @ u.T
        assert abs(block["within"] - cos[same & off].mean()) < 2e-4, block
        assert abs(block["between"] - cos[~same].mean()) < 2e-4, block
    if kind == "qwen2":
        assert model.model.layers[0].self_attn.q_proj.bias is not None   # the biases were part of the block


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_trained_checkpoint_loads_in_transformers(tmp_path, tokenizer_dir, arch):
    data = write_jsonl(tmp_path / "train.jsonl", [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a in range(6) for b in range(6)])
    ckpt = tmp_path / "run"
    run_rulelens("train", "--arch", arch, "--data", data, "--out", ckpt, "--layers", 2, "--heads", 4, "--kv-heads", 2,
                 "--d-model", 32, "--ctx", 24, "--steps", 8, "--batch", 8, "--lr", 1e-2, "--warmup", 1, "--quiet")
    cls = Qwen2ForCausalLM if arch == "qwen2" else LlamaForCausalLM
    model, info = cls.from_pretrained(str(ckpt), output_loading_info=True)
    model.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert model.config.num_key_value_heads == 2 and model.config.num_attention_heads == 4
    out = tmp_path / "logits.safetensors"
    run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", out)
    ours = load_file(str(out / "logits.safetensors"))
    with torch.no_grad():
        theirs = model(torch.from_numpy(ours["tokens"].astype(np.int64))).logits.numpy()
    for i, n in enumerate(ours["lengths"]):
        np.testing.assert_allclose(ours["logits"][i, :n], theirs[i, :n], atol=1e-4, rtol=0)


def test_rotary_model_evaluates_beyond_its_training_length(tmp_path):
    """Trained on 1-2 digit additions (sequences of at most 8 tokens), evaluated on 3-4 digit ones (up to 12)."""
    short = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a in range(0, 100, 3) for b in range(0, 100, 7)]
    long = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in [(123, 456), (999, 1), (1234, 4321), (5000, 2500)]]
    train_data, test_data = write_jsonl(tmp_path / "short.jsonl", short), write_jsonl(tmp_path / "long.jsonl", long)
    ckpt = tmp_path / "rope"
    run_rulelens("train", "--arch", "llama", "--positions", "rope", "--data", train_data, "--out", ckpt, "--layers", 2,
                 "--heads", 4, "--d-model", 32, "--ctx", 24, "--steps", 30, "--batch", 16, "--lr", 1e-2, "--warmup", 2, "--quiet")
    longest_train = max(len(e["prompt"]) + len(e["target"]) + 1 for e in short)
    longest_test = max(len(e["prompt"]) + len(e["target"]) + 1 for e in long)
    assert longest_test > longest_train
    result = json.loads(run_rulelens("eval", "--checkpoint", ckpt, "--data", test_data, "--json").stdout)["test"]
    assert result["n"] == len(long) and np.isfinite(result["loss"]) and 0 <= result["accuracy"] <= 1
    # A model without positions (NoPE) also runs any length up to its context.
    nope = tmp_path / "nope"
    run_rulelens("train", "--arch", "llama", "--positions", "none", "--data", train_data, "--out", nope, "--layers", 1,
                 "--heads", 2, "--d-model", 16, "--ctx", 24, "--steps", 3, "--batch", 8, "--quiet")
    assert json.loads((nope / "config.json").read_text())["rulelens_positions"] == "none"
    result = json.loads(run_rulelens("eval", "--checkpoint", nope, "--data", test_data, "--json").stdout)["test"]
    assert np.isfinite(result["loss"])


def test_bad_configs_name_the_problem(tmp_path, tokenizer_dir):
    model = make_model("qwen2", tokenizer_dir, seed=4)
    ckpt = tmp_path / "bad"
    save(model, ckpt, tokenizer_dir)
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    config = json.loads((ckpt / "config.json").read_text())

    def run_with(change):
        cfg = dict(config)
        change(cfg)
        (ckpt / "config.json").write_text(json.dumps(cfg))
        proc = run_rulelens("eval", "--checkpoint", ckpt, "--data", data, check=False)
        assert proc.returncode == 1 and "error:" in proc.stderr and "fix:" in proc.stderr, proc.stderr
        return proc.stderr

    assert "mistral" in run_with(lambda c: c.update(model_type="mistral", architectures=["MistralForCausalLM"]))
    assert "RoPE scaling" in run_with(lambda c: c.update(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}))
    assert "sliding-window" in run_with(lambda c: c.update(use_sliding_window=True))
    assert "key/value heads" in run_with(lambda c: c.update(num_key_value_heads=4))
    stderr = run_with(lambda c: c.update(tie_word_embeddings=False))
    assert "lm_head.weight" in stderr
    assert "model.embed_tokens.weight" in run_with(lambda c: c.update(vocab_size=50))


def test_info_hooks_dump_and_probe_work_on_the_family(tmp_path, tokenizer_dir):
    model = make_model("qwen2", tokenizer_dir, seed=6)
    ckpt = tmp_path / "qwen2"
    save(model, ckpt, tokenizer_dir, shard="30KB")
    info = json.loads(run_rulelens("info", ckpt, "--json").stdout)
    assert info["architecture"] == "qwen2" and info["num_key_value_heads"] == 2 and info["tie_word_embeddings"] is True
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert "byte-level BPE" in info["tokenizer"]
    hooks = run_rulelens("hooks", ckpt, "blocks.1.attn.*").stdout.splitlines()
    assert [h.split()[0] for h in hooks] == [f"blocks.1.attn.hook_{n}" for n in ["q", "k", "v", "rot_q", "rot_k", "attn_scores", "pattern", "z"]]
    assert "kv_head" in hooks[1]
    rows = [dict(e, rule=r) for e, r in zip(EXAMPLES * 4, ["a", "b"] * 10)]
    data = write_jsonl(tmp_path / "rules.jsonl", rows)
    out = tmp_path / "acts.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "blocks.*.hook_resid_post,blocks.*.ln2.hook_scale",
                 "--positions", "last", "--out", out, "--quiet")
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["model_config"])["model_type"] == "qwen2"
        assert f["acts/blocks.1.hook_resid_post"].shape == (20, 48) and f["acts/blocks.0.ln2.hook_scale"].shape == (20, 1)
        assert f["acts/blocks.0.ln2.hook_scale"].attrs["dims"] == "example,one"
    pca = json.loads(run_rulelens("probe", "pca", "--file", out, "--site", "blocks.1.hook_resid_post", "--label", "rule", "--json").stdout)
    assert pca
    bad = run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "blocks.0.hook_pos_embed", "--out", tmp_path / "x.h5", check=False)
    assert bad.returncode == 1 and "hook_pos_embed" in bad.stderr and "fix:" in bad.stderr
