"""Any local GPT-2 folder: other sizes, byte-level BPE tokenizers, bf16/fp16/sharded safetensors, fine-tuning.

Models are random `GPT2LMHeadModel`s built here by transformers (nothing is downloaded), each saved with a BPE
tokenizer trained by HF `tokenizers`. RuleLens must tokenize examples as `[bos] + prompt + target + [eos]` with the
tokenizer's own ids and give transformers' logits within 1e-4.
"""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel

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
    return save_tokenizer(train("gpt2"), tmp_path_factory.mktemp("tok") / "tok")


def gpt2_folder(path, tokenizer_dir, seed=0, dtype=None, tied=True, **config):
    """A random GPT-2 of the given shape saved (safetensors) with the BPE tokenizer beside it."""
    hf_tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = hf_tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=hf_tok.get_vocab_size() + config.pop("extra_vocab", 0), bos_token_id=eos, eos_token_id=eos,
                     activation_function="gelu_new", tie_word_embeddings=tied, **config)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(str(path), **({} if dtype is None else {}))
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        (path / name).write_bytes((tokenizer_dir / name).read_bytes())
    return model.float()


def rulelens_logits(ckpt, data, out):
    run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", out)
    return load_file(str(out / "logits.safetensors"))


def expected_tokens(tokenizer_dir):
    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    eos = hf.token_to_id("<|endoftext|>")
    return [[eos] + hf.encode(e["prompt"], add_special_tokens=False).ids + hf.encode(e["target"], add_special_tokens=False).ids + [eos]
            for e in EXAMPLES]


def check_logits(ours, model, tokenizer_dir, atol=1e-4):
    sequences = expected_tokens(tokenizer_dir)
    lengths = ours["lengths"]
    assert list(lengths) == [len(s) - 1 for s in sequences]
    for i, seq in enumerate(sequences):
        assert list(ours["tokens"][i, :lengths[i]]) == seq[:-1]
        with torch.no_grad():
            theirs = model(torch.tensor([seq[:-1]])).logits[0].numpy()
        assert np.abs(theirs).max() > 1.0
        np.testing.assert_allclose(ours["logits"][i, :lengths[i]], theirs, atol=atol, rtol=0)


@pytest.mark.parametrize("shape", [dict(n_layer=3, n_head=5, n_embd=40, n_positions=48),
                                   dict(n_layer=1, n_head=2, n_embd=64, n_positions=64, n_inner=96, extra_vocab=7)])
def test_other_sizes_with_bpe_match_transformers(tmp_path, tokenizer_dir, shape):
    ckpt = tmp_path / "gpt2"
    model = gpt2_folder(ckpt, tokenizer_dir, **dict(shape))
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    check_logits(rulelens_logits(ckpt, data, tmp_path / "l.safetensors"), model, tokenizer_dir)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_read_into_float32(tmp_path, tokenizer_dir, dtype):
    ckpt = tmp_path / "half"
    model = gpt2_folder(ckpt, tokenizer_dir, dtype=dtype, n_layer=2, n_head=2, n_embd=32, n_positions=48)
    header = json.loads((ckpt / "model.safetensors").read_bytes()[8:8 + int.from_bytes((ckpt / "model.safetensors").read_bytes()[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16" if dtype == torch.bfloat16 else "F16"}
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    # `model` holds the same half-precision values widened to float32, as RuleLens reads them.
    check_logits(rulelens_logits(ckpt, data, tmp_path / "l.safetensors"), model, tokenizer_dir)


def test_sharded_checkpoint_and_missing_shard(tmp_path, tokenizer_dir):
    ckpt = tmp_path / "sharded"
    hf_tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    model = gpt2_folder(ckpt, tokenizer_dir, n_layer=2, n_head=2, n_embd=32, n_positions=48)
    (ckpt / "model.safetensors").unlink()
    model.save_pretrained(str(ckpt), max_shard_size="40KB")
    shards = sorted(ckpt.glob("model-*.safetensors"))
    assert len(shards) >= 3 and (ckpt / "model.safetensors.index.json").exists() and not (ckpt / "model.safetensors").exists()
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    check_logits(rulelens_logits(ckpt, data, tmp_path / "l.safetensors"), model, tokenizer_dir)
    shards[1].unlink()
    proc = run_rulelens("logits", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "m.safetensors", check=False)
    assert proc.returncode == 1
    assert shards[1].name in proc.stderr and "missing" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "m.safetensors").exists()
    assert hf_tok.get_vocab_size() > 0


def test_pytorch_pickle_is_refused(tmp_path, tokenizer_dir):
    ckpt = tmp_path / "bin"
    model = gpt2_folder(ckpt, tokenizer_dir, n_layer=1, n_head=2, n_embd=16, n_positions=32)
    (ckpt / "model.safetensors").unlink()
    torch.save(model.state_dict(), ckpt / "pytorch_model.bin")
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    proc = run_rulelens("eval", "--checkpoint", ckpt, "--data", data, check=False)
    assert proc.returncode == 1
    assert "pytorch_model.bin" in proc.stderr and "arbitrary code" in proc.stderr
    assert "safe_serialization=True" in proc.stderr


def test_tokenizer_larger_than_model_vocabulary_is_refused(tmp_path, tokenizer_dir):
    ckpt = tmp_path / "small-vocab"
    gpt2_folder(ckpt, tokenizer_dir, n_layer=1, n_head=2, n_embd=16, n_positions=32)
    config = json.loads((ckpt / "config.json").read_text())
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    # Shrink the model's vocabulary below the tokenizer's: the embedding no longer matches either, but the
    # tokenizer check comes first and names both sizes.
    from safetensors.torch import load_file as load_pt, save_file as save_pt
    tensors = load_pt(str(ckpt / "model.safetensors"))
    tensors["transformer.wte.weight"] = tensors["transformer.wte.weight"][:100].clone()
    save_pt(tensors, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    config["vocab_size"] = 100
    (ckpt / "config.json").write_text(json.dumps(config))
    proc = run_rulelens("eval", "--checkpoint", ckpt, "--data", data, check=False)
    assert proc.returncode == 1
    assert "tokenizer" in proc.stderr and "100" in proc.stderr and "fix:" in proc.stderr


def test_init_from_fine_tunes_and_saves_a_transformers_checkpoint(tmp_path, tokenizer_dir):
    base = tmp_path / "base"
    gpt2_folder(base, tokenizer_dir, n_layer=2, n_head=2, n_embd=32, n_positions=48)
    data = write_jsonl(tmp_path / "train.jsonl", EXAMPLES * 4)
    out = tmp_path / "tuned"
    proc = run_rulelens("train", "--data", data, "--init-from", base, "--out", out, "--steps", 30, "--batch", 5,
                        "--lr", 3e-3, "--warmup", 2, "--quiet")
    assert "trained 30 steps" in proc.stdout
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["initFrom"] == str(base) and saved["ctx"] == 48 and saved["dModel"] == 32
    # The tokenizer travels with the run, and the run loads in transformers with equal logits.
    # (with a post-processor that puts its bos, <|endoftext|>, first: RuleLens's model input).
    saved, original = (json.loads((d / "tokenizer.json").read_text()) for d in (out, tokenizer_dir))
    assert saved.pop("post_processor")["special_tokens"] == {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}
    assert original.pop("post_processor") is None and saved == original
    model = GPT2LMHeadModel.from_pretrained(str(out)).eval()
    small = write_jsonl(tmp_path / "small.jsonl", EXAMPLES)
    check_logits(rulelens_logits(out, small, tmp_path / "l.safetensors"), model, tokenizer_dir)
    # Training learned something: the target loss dropped well below the base model's.
    before = json.loads(run_rulelens("eval", "--checkpoint", base, "--data", data, "--json").stdout)["test"]
    after = json.loads(run_rulelens("eval", "--checkpoint", out, "--data", data, "--json").stdout)["test"]
    assert after["loss"] < 0.5 * before["loss"]
    # Shape options contradict --init-from.
    proc = run_rulelens("train", "--data", data, "--init-from", base, "--out", tmp_path / "x", "--layers", 4, check=False)
    assert proc.returncode == 64 and "--layers cannot be combined with --init-from" in proc.stderr


def test_dump_with_bpe_answer_positions(tmp_path, tokenizer_dir):
    import h5py
    ckpt = tmp_path / "gpt2"
    gpt2_folder(ckpt, tokenizer_dir, n_layer=2, n_head=2, n_embd=32, n_positions=48)
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    out = tmp_path / "acts.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", "blocks.1.hook_resid_post", "--positions", "answer",
                 "--out", out, "--quiet")
    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"] == 1
        answer = f["meta/answer_pos"][:]
        tokens = f["meta/tokens"][:]
        prompts = f["meta/prompt"].asstr()[:]
        assert f["acts/blocks.1.hook_resid_post"].shape == (len(EXAMPLES), 32)
        preds = f["meta/prediction"].asstr()[:]
    for i, e in enumerate(EXAMPLES):
        prompt_ids = hf.encode(e["prompt"], add_special_tokens=False).ids
        assert answer[i] == len(prompt_ids)                 # the last prompt token, after [bos]
        assert list(tokens[i, 1:1 + len(prompt_ids)]) == prompt_ids
        assert prompts[i] == e["prompt"]
    assert all(isinstance(p, str) for p in preds)


def test_untied_head_loads_fine_tunes_and_saves(tmp_path, tokenizer_dir):
    """A GPT-2 whose lm_head.weight is its own matrix (tie_word_embeddings false) gives transformers' logits, and what
    RuleLens fine-tunes from it is saved untied and loads in transformers with equal logits."""
    base = tmp_path / "untied"
    model = gpt2_folder(base, tokenizer_dir, tied=False, n_layer=2, n_head=2, n_embd=32, n_positions=48)
    assert "lm_head.weight" in load_file(str(base / "model.safetensors"))
    assert not torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    data = write_jsonl(tmp_path / "data.jsonl", EXAMPLES)
    check_logits(rulelens_logits(base, data, tmp_path / "l.safetensors"), model, tokenizer_dir)
    out = tmp_path / "tuned"
    run_rulelens("train", "--data", data, "--init-from", base, "--out", out, "--steps", 5, "--batch", 5, "--lr", 1e-3, "--quiet")
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    tuned = GPT2LMHeadModel.from_pretrained(str(out)).eval()
    assert not torch.equal(tuned.lm_head.weight, tuned.transformer.wte.weight)
    check_logits(rulelens_logits(out, data, tmp_path / "m.safetensors"), tuned, tokenizer_dir)
    # A tied config over weights with a different head names the fix.
    config = json.loads((base / "config.json").read_text())
    config["tie_word_embeddings"] = True
    (base / "config.json").write_text(json.dumps(config))
    proc = run_rulelens("logits", "--checkpoint", base, "--data", data, "--out", tmp_path / "n.safetensors", check=False)
    assert proc.returncode == 1 and "tie_word_embeddings" in proc.stderr
