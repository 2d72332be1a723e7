"""Greedy decoding of 1,000-token rule-format targets: RuleLens (cached and uncached) against transformers' `generate`
with its key/value cache, on the same checkpoint and prompts, in one run.

Checkpoint: a random GPT-2 (4 layers, d_model 256, 8 heads, context 1,536, the 99-token character vocabulary) made
and saved by `transformers`. Prompts: the 6-digit test prompts of `rulelens data generate --task multi-digit-addition
--format rule --split length` (334 characters; their targets are ~1,030 characters). Each side greedily generates
exactly NEW tokens per prompt (no end token: a random model would stop anywhere), BATCH prompts at a time, 2 threads.
The uncached path (every token re-runs the whole sequence) is timed on fewer tokens, for scale. The first prompt's
generated tokens are compared between RuleLens and transformers (greedy on the same weights: they should agree).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOCAB = ["<pad>", "<bos>", "<eos>", "\n"] + [chr(c) for c in range(32, 127)]
LAYERS, D, HEADS, CTX = 4, 256, 8, 1536
PROMPTS, BATCH, NEW, NEW_UNCACHED, THREADS = 16, 16, 1000, 100, 2


def json_line(cmd):
    out = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main(rulelens_bench: str) -> str:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    rulelens = os.environ.get("RULELENS_BIN", str(ROOT / ".build" / "release" / "rulelens"))
    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        config = GPT2Config(n_layer=LAYERS, n_head=HEADS, n_embd=D, n_positions=CTX, vocab_size=len(VOCAB),
                            activation_function="gelu_new", bos_token_id=1, eos_token_id=2, pad_token_id=0)
        model = GPT2LMHeadModel(config).eval()
        ckpt = root / "ckpt"
        model.save_pretrained(ckpt, safe_serialization=True)
        (ckpt / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
        subprocess.run([rulelens, "data", "generate", "--task", "multi-digit-addition", "--format", "rule", "--split", "length",
                        "--train-digits", "1-5", "--test-digits", "6-15", "--out", str(root / "rfft")], check=True,
                       capture_output=True)
        rows = [json.loads(line) for line in open(root / "rfft" / "test.jsonl")]
        shortest = min(len(r["prompt"]) for r in rows)
        chosen = [r for r in rows if len(r["prompt"]) == shortest][:PROMPTS]
        target_chars = sum(len(r["target"]) for r in chosen) / len(chosen)
        prompts = root / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": r["prompt"], "target": r["target"]}) + "\n" for r in chosen))

        cached = json_line([rulelens_bench, "generate", ckpt, prompts, NEW, BATCH, "cached", THREADS])
        uncached = json_line([rulelens_bench, "generate", ckpt, prompts, NEW_UNCACHED, BATCH, "uncached", THREADS])

        token = {t: i for i, t in enumerate(VOCAB)}
        ids = torch.tensor([[1] + [token[c] for c in r["prompt"]] for r in chosen])
        with torch.no_grad():
            def hf_generate():
                outs = []
                for i in range(0, len(ids), BATCH):
                    outs.append(model.generate(ids[i:i + BATCH], attention_mask=torch.ones_like(ids[i:i + BATCH]),
                                               max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, use_cache=True,
                                               pad_token_id=0, eos_token_id=None))
                return outs
            t0 = time.perf_counter()
            outs = hf_generate()
            hf_seconds = time.perf_counter() - t0
        hf_tokens = sum(o.shape[0] * (o.shape[1] - ids.shape[1]) for o in outs)
        hf_first = outs[0][0, ids.shape[1]:].tolist()
        # the reference run again, against drift on a shared machine; RuleLens cached again too
        cached2 = json_line([rulelens_bench, "generate", ckpt, prompts, NEW, BATCH, "cached", THREADS])
        with torch.no_grad():
            t0 = time.perf_counter()
            hf_generate()
            hf_seconds = min(hf_seconds, time.perf_counter() - t0)
    ours = max(cached["tokens_per_s"], cached2["tokens_per_s"])
    theirs = hf_tokens / hf_seconds
    agree = sum(a == b for a, b in zip(cached["first"], hf_first))
    return "\n".join([
        f"## Greedy decoding: {PROMPTS} rule-format prompts ({shortest} characters; targets ~{target_chars:,.0f}), "
        f"{NEW} new tokens each, batch {BATCH}, {THREADS} threads (random GPT-2 {LAYERS} layers, d{D}, {HEADS} heads, ctx {CTX})",
        "",
        "| decoder | tokens/s | RuleLens cached / this |",
        "|---|---:|---:|",
        f"| RuleLens, key/value cache (best of 2) | {ours:,.0f} | 1.00x |",
        f"| transformers `generate`, use_cache=True (best of 2) | {theirs:,.0f} | {ours / theirs:.2f}x |",
        f"| RuleLens, no cache ({NEW_UNCACHED} new tokens: every token re-runs the sequence) | {uncached['tokens_per_s']:,.0f} | "
        f"{ours / uncached['tokens_per_s']:.1f}x |",
        "",
        f"First prompt: RuleLens and transformers generated the same token at {agree} of {NEW} positions.",
    ])


if __name__ == "__main__":
    print(main(os.environ.get("RULELENS_BENCH_BIN", str(ROOT / ".build" / "release" / "rulelens-bench"))))
