"""Inference (activation dump) on a random model of Qwen2.5-0.5B's shape: RuleLens against PyTorch CPU, same weights.

Model: `Qwen2ForCausalLM` with Qwen2.5-0.5B's config (24 layers, d_model 896, 14 query / 2 key-value heads, d_mlp 4864,
vocab 151,936, tied head, q/k/v biases, rope_theta 1e6), random weights saved by `transformers` in bf16 (as the real
checkpoint is), read into float32 by both sides. Tokenizer: a byte-level BPE of Qwen2's kind trained here on a small
corpus (the real vocabulary is not needed for speed). Data: 128 `a+b=` examples, 11-17 tokens each.
- RuleLens: `rulelens-bench dump` — a plain forward pass over the data (batch 8) and `Jobs.dump` of
  `blocks.*.hook_resid_post` at every position (gzip 1), timed after the model is loaded.
- PyTorch: the same batches through `model(ids)` (float32, torch threads = cores), each decoder layer's output
  (= resid_post) taken by a forward hook and written with h5py (gzip 1 + shuffle), timed after the model is loaded.
- Resident memory: peak RSS of each whole process (load + run), by /usr/bin/time (or /proc VmHWM).
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
sys.path.insert(0, str(ROOT / "Tests" / "Python"))
N_EXAMPLES, BATCH = 128, 8
SITES = "blocks.*.hook_resid_post"

QWEN25_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                  tie_word_embeddings=True, use_sliding_window=False)


def make_checkpoint(root: Path) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from hf_fixtures import save_tokenizer, train
    torch.manual_seed(0)
    ckpt = root / "qwen2.5-0.5b-shape"
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B)).to(torch.bfloat16)
    model.save_pretrained(str(ckpt))
    save_tokenizer(train("qwen2"), ckpt)
    return ckpt


def make_data(path: Path) -> Path:
    import numpy as np
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for _ in range(N_EXAMPLES):
            a, b = int(rng.integers(0, 10**6)), int(rng.integers(0, 10**6))
            f.write(json.dumps({"prompt": f"{a}+{b}=", "target": str(a + b)}) + "\n")
    return path


REFERENCE = r'''
import json, sys, time
import h5py, numpy as np, torch
from tokenizers import Tokenizer
from transformers import Qwen2ForCausalLM
ckpt, data, out, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(int(sys.argv[5]))
model = Qwen2ForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
tok = Tokenizer.from_file(ckpt + "/tokenizer.json")
eos = tok.token_to_id("<|endoftext|>")
rows = [json.loads(l) for l in open(data)]
seqs = [[eos] + tok.encode(r["prompt"], add_special_tokens=False).ids + tok.encode(r["target"], add_special_tokens=False).ids + [eos] for r in rows]
T, L, D = max(map(len, seqs)), model.config.num_hidden_layers, model.config.hidden_size
start = time.perf_counter()
with h5py.File(out, "w") as f, torch.no_grad():
    sets = [f.create_dataset(f"blocks.{l}.hook_resid_post", shape=(0, T, D), maxshape=(None, T, D), chunks=(batch, T, D),
                             dtype="f4", compression="gzip", compression_opts=1, shuffle=True) for l in range(L)]
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        S = max(map(len, chunk))
        ids = torch.tensor([s + [eos] * (S - len(s)) for s in chunk])
        captured = []
        handles = [layer.register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
                   for layer in model.model.layers]
        model(ids)
        for h in handles:
            h.remove()
        for l in range(L):   # each decoder layer's output is blocks.{l}.hook_resid_post
            h = captured[l].numpy()
            r = np.zeros((len(chunk), T, D), np.float32)
            for j, s in enumerate(chunk):
                r[j, :len(s)] = h[j, :len(s)]
            sets[l].resize(sets[l].shape[0] + len(chunk), axis=0)
            sets[l][-len(chunk):] = r
print(json.dumps({"seconds": time.perf_counter() - start, "tokens": sum(map(len, seqs))}))
'''


def peak_rss_run(cmd):
    """(stdout, peak RSS MB) of `cmd` alone."""
    if os.path.exists("/usr/bin/time"):
        proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *map(str, cmd)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
        return proc.stdout, int(proc.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024
    proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_kb = 0
    while proc.poll() is None:
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.05)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed")
    return out, peak_kb / 1024


def main(rulelens_bench: str) -> str:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpt = make_checkpoint(root)
        data = make_data(root / "data.jsonl")
        out, ours_mb = peak_rss_run([rulelens_bench, "dump", ckpt, data, SITES, root / "ours.h5", BATCH, 1])
        ours = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        script = root / "reference.py"
        script.write_text(REFERENCE)
        out, ref_mb = peak_rss_run([sys.executable, script, ckpt, data, root / "ref.h5", BATCH, cores])
        ref = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    tokens = ours["tokens"]
    assert tokens == ref["tokens"], (tokens, ref["tokens"])
    ours_tps, fwd_tps, ref_tps = tokens / ours["dump_s"], tokens / ours["forward_s"], tokens / ref["seconds"]
    return "\n".join([
        f"## Qwen2.5-0.5B-shaped model: activation dump against PyTorch CPU ({N_EXAMPLES} examples, {tokens} tokens, batch {BATCH}, "
        f"{cores} cores, bf16 weights read as float32)", "",
        "| | tokens/s | peak RSS |", "|---|---:|---:|",
        f"| RuleLens plain forward | {fwd_tps:,.0f} | |",
        f"| RuleLens dump (`{SITES}`, gzip 1) | {ours_tps:,.0f} | {ours_mb:,.0f} MB |",
        f"| PyTorch forward + h5py (same sites) | {ref_tps:,.0f} | {ref_mb:,.0f} MB |", "",
        f"RuleLens / PyTorch: {ours_tps / ref_tps:.2f}x the tokens/s (target > 1), {ours_mb / ref_mb:.2f}x the resident memory."])


if __name__ == "__main__":
    print(main(os.environ.get("RULELENS_BENCH_BIN", str(ROOT / ".build" / "release" / "rulelens-bench"))))
