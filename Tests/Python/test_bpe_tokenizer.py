"""Byte-level BPE: RuleLens encodes and decodes exactly as Hugging Face `tokenizers` does.

Tokenizers of GPT-2's, Qwen2's and Llama 3's kind are trained here on a small corpus, saved as tokenizer.json
(and as GPT-2's vocab.json + merges.txt), and `rulelens tokenize --json` must give the same ids as
`Tokenizer.encode(text, add_special_tokens=False)` and the same text as `decode(ids, skip_special_tokens=True)`
on a corpus of ASCII, Unicode, whitespace runs, digits, emoji, contractions and special tokens.
"""
import json

import pytest
from tokenizers import Tokenizer

from conftest import run_rulelens
from hf_fixtures import TEST_CORPUS, TRAIN_CORPUS, save_tokenizer, save_vocab_merges, train


def rulelens_tokenize(folder, texts, tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in texts))
    out = run_rulelens("tokenize", "--tokenizer", folder, "--jsonl", path, "--json").stdout
    return [json.loads(line) for line in out.split("\n") if line]


@pytest.mark.parametrize("kind", ["gpt2", "qwen2", "llama3"])
@pytest.mark.parametrize("vocab_size", [600, 4000])
def test_encode_decode_equal_hf(tmp_path, kind, vocab_size):
    # 4000, trained on the test corpus too: most pre-tokenizer pieces become whole tokens, so a piece boundary
    # that differs from the regex's shows as a different token.
    tok = train(kind, vocab_size, corpus=None if vocab_size == 600 else TRAIN_CORPUS + TEST_CORPUS)
    folder = save_tokenizer(tok, tmp_path / kind)
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ours = rulelens_tokenize(folder, TEST_CORPUS, tmp_path)
    assert len(ours) == len(TEST_CORPUS)
    multi_char = 0
    for text, line in zip(TEST_CORPUS, ours):
        enc = hf.encode(text, add_special_tokens=False)
        assert line["ids"] == enc.ids, f"{kind}: {text!r}\nours   {line['tokens']}\ntheirs {enc.tokens}"
        assert line["tokens"] == enc.tokens
        assert line["decoded"] == hf.decode(enc.ids, skip_special_tokens=True), text
        multi_char += sum(len(t) > 1 for t in enc.tokens)
    assert multi_char > 50   # the tokenizer really merges


def test_decode_partial_utf8_like_hf(tmp_path):
    """Ids that cut multi-byte characters, special tokens and out-of-order ids decode exactly as HF's decode."""
    tok = train("qwen2")
    folder = save_tokenizer(tok, tmp_path / "t")
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = hf.encode("🎉 ü 日本<|im_end|>x", add_special_tokens=False).ids
    byte_ids = [hf.token_to_id(t) for t in ["ð", "Ł", "A", "Ã", "Ġ", "ð"]]
    cases = [ids[:1], ids[1:], byte_ids, ids[::-1], [hf.token_to_id("<|endoftext|>")] + ids]
    args = [a for c in cases for a in ("--decode", ",".join(map(str, c)))]
    out = run_rulelens("tokenize", "--tokenizer", folder, *args, "--json").stdout
    lines = [json.loads(line) for line in out.split("\n") if line]
    assert [line["decoded"] for line in lines] == [hf.decode(c, skip_special_tokens=True) for c in cases]
    assert any("\ufffd" in line["decoded"] for line in lines)


def test_gpt2_vocab_merges_files(tmp_path):
    tok = train("gpt2")
    folder = save_vocab_merges(tok, tmp_path / "gpt2-files")
    assert not (folder / "tokenizer.json").exists() and (folder / "merges.txt").exists()
    hf = Tokenizer.from_file(str(save_tokenizer(tok, tmp_path / "ref") / "tokenizer.json"))
    ours = rulelens_tokenize(folder, TEST_CORPUS, tmp_path)
    for text, line in zip(TEST_CORPUS, ours):
        assert line["ids"] == hf.encode(text, add_special_tokens=False).ids, text


def test_unsupported_tokenizer_is_refused(tmp_path):
    from tokenizers import models, pre_tokenizers
    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "wp"
    folder.mkdir()
    wp.save(str(folder / "tokenizer.json"))
    proc = run_rulelens("tokenize", "--tokenizer", folder, "--text", "a", check=False)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "WordPiece" in proc.stderr and "fix:" in proc.stderr
