"""Tiny tokenizers and models built locally with Hugging Face `tokenizers`/`transformers` (nothing is downloaded).

Used by the BPE tokenizer and Llama/Qwen2-family interop tests.
"""
import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

QWEN2_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

TRAIN_CORPUS = [
    "Hello world! It's 2024; we're testing 12345 numbers, aren't we? I'll see. They'd go.",
    "Ünïcödé café naïve 日本語のテキスト 中文 Ελληνικά русский emoji 🎉🎉 👩‍👩‍👧 tabs\tand  spaces   \n\nnew lines\r\n",
    "40+47=87 112+112=111 (0,5)=13 98+7,,C:0 9+,5,C:1 +,105,C:0",
    "All A are B. All B are C. Therefore all A are C. Rabbits have 4 legs and 1 head.",
    "def add(a, b):\n    total = digit1 + digit2 + carry\n    return total % 10\n",
]

# Encode/decode test corpus: ASCII, Unicode, whitespace runs, digits, emoji, special tokens, contractions.
TEST_CORPUS = [
    "",
    " ",
    "Hello world!",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs \t mixed",
    "\n\nnewlines\n \n  \r\n\r\nCRLF too\n",
    "It's we're they've I'm you'll he'd IT'S WE'RE I'M 'S 'x ''s x'ſx x'Sx x'sx x'LLx x'reX x'KELVIN",
    "1234567890 12 345 6789 0.5 3,14 ١٢٣ ½ Ⅻ",
    "40+47= 87 112+112=111 (0,5)=13",
    "Ünïcödé café naïve ﬁ ß Straße",
    "e\u0301 combining accents a\u030a",
    "日本語のテキスト、中文，한국어 text",
    "emoji 🎉 👩‍👩‍👧 🇩🇪 ❤️ 👍🏽!!",
    "<|endoftext|>",
    "prompt<|endoftext|>target",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "a<|endoftext|><|endoftext|>b <|endoftext|> c",
    "symbols: @#$%^&*()_+-=[]{}|;:'\",.<>/?`~ \\",
    "ſ 'ſ \u00a0nbsp\u2003em\u3000ideographic \u0085nel",
    "x" * 300,
    "9" * 40 + " " + "ab" * 50,
    "def add(a, b):\n    total = digit1 + digit2 + carry\n    return total % 10\n",
]


def train(kind: str, vocab_size: int = 600, corpus=None) -> Tokenizer:
    """A byte-level BPE trained on `corpus` (TRAIN_CORPUS) with the pre-tokenizer of `kind` (gpt2, qwen2, llama3)."""
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        specials = ["<|endoftext|>"]
    else:
        tok.normalizer = normalizers.NFC()
        regex = QWEN2_REGEX if kind == "qwen2" else LLAMA3_REGEX
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials if kind == "gpt2" else [],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((corpus or TRAIN_CORPUS) * 20, trainer)
    if kind != "gpt2":
        # Qwen2 keeps its special tokens after the BPE vocabulary, as added tokens.
        tok.add_special_tokens(specials)
    return tok


def save_tokenizer(tok: Tokenizer, folder: Path, eos="<|endoftext|>", bos=None, pad=None, model_max_length=1024):
    """tokenizer.json + tokenizer_config.json, as save_pretrained writes them for a fast tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos, "bos_token": bos,
              "pad_token": pad if pad is not None else eos, "model_max_length": model_max_length}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def save_vocab_merges(tok: Tokenizer, folder: Path):
    """GPT-2's original files: vocab.json + merges.txt (no tokenizer.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.model.save(str(folder))
    return folder
