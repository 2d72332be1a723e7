"""Every run RuleLens writes opens in transformers with RuleLens's own ids and answers, with no arguments.

For each family (gpt2, llama, qwen2) with the character vocabulary, and for BPE runs fine-tuned from a Hugging Face
folder (GPT-2, Llama 3 and Qwen2 tokenizers trained here): `AutoTokenizer.from_pretrained(run)(text)` gives
`[bos] + rulelens tokenize` (the tokenizer's own post-processor adds the bos, as RuleLens's model input has it), the
text decodes back, `pipeline("text-generation")` / `model.generate` answer what `rulelens eval` answers, and
TransformerLens's `to_tokens` gives the same ids. Without
the fix a Qwen2 character run loads as `Qwen2Tokenizer`, which drops every space, and no tokenizer adds `<bos>`.
"""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from conftest import run_rulelens
from hf_fixtures import save_tokenizer, train

SYLLOGISM = "All tools are rabbits. No tools are boats.\nSome rabbits are not boats."
TEXTS = [SYLLOGISM, "23+45=", "  two  spaces and  ~{}|\\ symbols ", "0+0="]
ARCH = {"gpt2": ["--arch", "gpt2"], "llama": ["--arch", "llama", "--positions", "rope"],
        "qwen2": ["--arch", "qwen2", "--positions", "rope"]}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def addition(n, seed):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, 50, (n, 2), generator=g).tolist()
    return [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in pairs]


def rulelens_ids(run, texts):
    out = run_rulelens("tokenize", "--tokenizer", run, *sum((["--text", t] for t in texts), []), "--json").stdout
    return [json.loads(line)["ids"] for line in out.splitlines() if line.strip()]


def check_ids(run, bos_id):
    tok = AutoTokenizer.from_pretrained(str(run))
    assert tok.bos_token_id == bos_id
    for text, ids in zip(TEXTS, rulelens_ids(run, TEXTS)):
        assert tok(text)["input_ids"] == [bos_id] + ids, (type(tok).__name__, text)
        assert tok(text, add_special_tokens=False)["input_ids"] == ids
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    return tok


def check_answers(run, data, tmp_path):
    """Greedy answers of transformers' default path equal `rulelens eval`'s predictions."""
    run_rulelens("eval", "--checkpoint", run, "--data", data, "--out", tmp_path / "eval")
    [file] = (tmp_path / "eval").glob("predictions_*.jsonl")
    predictions = [json.loads(line) for line in file.read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(str(run))
    # RuleLens decodes up to one token past the longest target + eos, stopping at eos; so does this.
    new_tokens = max(len(tok(p["target"], add_special_tokens=False)["input_ids"]) for p in predictions) + 2
    model = AutoModelForCausalLM.from_pretrained(str(run)).eval()
    generate = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    for p in predictions:
        out = generate(p["prompt"], max_new_tokens=new_tokens, do_sample=False, return_full_text=False)[0]["generated_text"]
        assert out == p["prediction"], (p["prompt"], out, p["prediction"])
        # model.generate on the tokenizer's default encoding: the same answer.
        ids = tok(p["prompt"], return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
        assert tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True) == p["prediction"]
    return predictions


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_character_runs_load_with_rulelens_ids_and_answers(tmp_path, family):
    train_data = write_jsonl(tmp_path / "train.jsonl", addition(400, 0))
    test_data = write_jsonl(tmp_path / "test.jsonl", addition(12, 1))
    run = tmp_path / "run"
    run_rulelens("train", "--data", train_data, "--out", run, *ARCH[family], "--layers", 2, "--heads", 2, "--d-model", 32,
                 "--ctx", 80, "--steps", 150, "--batch", 32, "--lr", 1e-2, "--warmup", 5, "--seed", 0, "--quiet")
    # config.json writes the norm epsilon as the decimal that was meant (not the widened Float 9.999999747e-06).
    config = json.loads((run / "config.json").read_text())
    assert config["layer_norm_epsilon" if family == "gpt2" else "rms_norm_eps"] == (1e-05 if family == "gpt2" else 1e-06)
    tok = check_ids(run, bos_id=1)
    assert type(tok).__name__ == ("Qwen2Tokenizer" if family == "qwen2" else "TokenizersBackend")
    assert len(tok) == 99                                    # no unk or other token added after the vocabulary
    predictions = check_answers(run, test_data, tmp_path)
    assert any(p["prediction"] for p in predictions)
    # TransformerLens boots the folder with its tokenizer: to_tokens gives RuleLens's ids, <bos> once. Its Qwen2
    # adapter fixes default_prepend_bos = False (real Qwen2 models have no bos) and strips the tokenizer's: a RuleLens
    # Qwen2 run, trained with <bos>, needs the one documented line.
    from transformer_lens.model_bridge import TransformerBridge
    bridge = TransformerBridge.boot_transformers(str(run), device="cpu")
    if family == "qwen2":
        assert bridge.to_tokens(TEXTS[1])[0].tolist() == rulelens_ids(run, TEXTS[1:2])[0]
        bridge.cfg.default_prepend_bos = True
    for text, ids in zip(TEXTS, rulelens_ids(run, TEXTS)):
        assert bridge.to_tokens(text)[0].tolist() == [1] + ids, text


def hf_base(kind, folder):
    """A tiny random Hugging Face model of `kind` with a byte-level BPE tokenizer trained here."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    tok_kind = {"gpt2": "gpt2", "llama": "llama3", "qwen2": "qwen2"}[kind]
    tok_dir = save_tokenizer(train(tok_kind), folder)
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    vocab, eos = hf.get_vocab_size(), hf.token_to_id("<|endoftext|>")
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=2, n_head=2, n_embd=32, n_positions=64,
                                           bos_token_id=eos, eos_token_id=eos, activation_function="gelu_new"))
    elif kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                             bos_token_id=eos, eos_token_id=eos))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                             tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos))
    model.save_pretrained(str(folder))
    return eos


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_bpe_runs_load_with_rulelens_ids_and_answers(tmp_path, family):
    base = tmp_path / "base"
    eos = hf_base(family, base)
    train_data = write_jsonl(tmp_path / "train.jsonl", addition(200, 0))
    test_data = write_jsonl(tmp_path / "test.jsonl", addition(8, 1))
    run = tmp_path / "run"
    run_rulelens("train", "--data", train_data, "--init-from", base, "--out", run, "--steps", 40, "--batch", 16,
                 "--lr", 3e-3, "--warmup", 2, "--quiet")
    # The file is the base tokenizer's, with a post-processor that puts RuleLens's bos (here <|endoftext|>) first.
    saved, original = (json.loads((d / "tokenizer.json").read_text()) for d in (run, base))
    assert saved["post_processor"]["type"] == "TemplateProcessing" and original["post_processor"] is None
    assert {k: v for k, v in saved.items() if k != "post_processor"} == {k: v for k, v in original.items() if k != "post_processor"}
    check_ids(run, bos_id=eos)
    check_answers(run, test_data, tmp_path)


@pytest.mark.parametrize("family", ["gpt2", "qwen2"])
def test_a_character_vocabulary_beyond_ascii_loads_with_rulelens_ids(tmp_path, family):
    """Characters of 2, 3 and 4 UTF-8 bytes: their bytes merge back into the character's own id (the bytes and partial
    characters take ids after the vocabulary, which a text RuleLens can encode never yields)."""
    base = tmp_path / "base"
    run_rulelens("train", "--data", write_jsonl(tmp_path / "a.jsonl", addition(20, 0)), "--out", base, *ARCH[family],
                 "--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 40, "--steps", 1, "--batch", 4, "--quiet")
    vocab = json.loads((base / "vocab.json").read_text())
    for old, new in [("~", "é"), ("|", "日"), ("}", "🎉"), ("{", "ß")]:
        vocab[new] = vocab.pop(old)
    (base / "vocab.json").write_text(json.dumps(vocab))
    data = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "日? é🎉ß", "target": "é"}])
    run = tmp_path / "run"
    run_rulelens("train", "--data", data, "--init-from", base, "--out", run, "--steps", 1, "--batch", 1, "--quiet", "--no-verify")
    tok = AutoTokenizer.from_pretrained(str(run))
    text = "é日🎉 ß a日é 🎉🎉"
    [ids] = rulelens_ids(run, [text])
    assert tok(text)["input_ids"] == [1] + ids
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert max(ids) < len(vocab) < len(tok)
