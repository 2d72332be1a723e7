"""VAE training throughput: RuleLens (release) against the PyTorch module Tests/Python/rulelens_vae.py, same model,
batch, context and threads. Random full-length rows (the encoder reads ctx + 1 tokens, the decoder ctx), memory
injection, loss = rec + beta * KL with free bits 0.5 and beta 1, AdamW (decay on 2-D weights) + global-norm clipping.
Tokens = decoder positions. Reports tokens/s of each and the ratio (best of ROUNDS alternating runs).

    python bench_vae.py [path/to/rulelens-bench]          # or: python bench_vae.py --reference --layers 2 ...
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = [
    # decoder layers, encoder layers, d_model, heads, ctx, batch, latent, timed steps
    (2, 2, 128, 4, 32, 32, 32, 20),
    (4, 4, 256, 8, 64, 16, 32, 10),
]
THREADS = 2
ROUNDS = 2


def reference(args):
    import torch
    sys.path.insert(0, str(HERE.parent / "Tests" / "Python"))
    from rulelens_vae import RuleLensVAE, VAEConfig
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = VAEConfig(vocab_size=99, n_positions=args.ctx + 1, n_embd=args.d_model, n_head=args.heads, n_layer=args.layers,
                  n_inner=4 * args.d_model, n_enc_layer=args.enc_layers, latent_size=args.latent, inject=["memory"])
    model = RuleLensVAE(c)
    decay, rest = [], []
    for name, p in model.named_parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, 0.0, 0.02)
            decay.append(p)
        else:
            rest.append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    B, T, k = args.batch, args.ctx, args.latent
    total = args.steps + 3
    rows = torch.randint(3, 99, (total, B, T + 1))
    lengths = torch.full((B,), T + 1)
    mask = torch.ones(B, T)

    def step(s):
        opt.zero_grad(set_to_none=True)
        out = model(rows[s], lengths, rows[s][:, :-1], rows[s][:, 1:], mask, eps=torch.randn(B, k), beta=1.0)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(out["loss"])

    for s in range(3):
        step(s)
    t0 = time.perf_counter()
    for s in range(3, total):
        loss = step(s)
    seconds = time.perf_counter() - t0
    print(json.dumps({"bench": "vae-pytorch", "tokens_per_s": args.steps * B * T / seconds, "seconds": seconds, "loss": loss,
                      "torch": torch.__version__}))


def _json_line(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main(rulelens_bench: str) -> str:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(THREADS))
    rows = []
    for layers, enc, d, heads, ctx, batch, latent, steps in CONFIGS:
        args = list(map(str, ["--layers", layers, "--enc-layers", enc, "--d-model", d, "--heads", heads, "--ctx", ctx,
                              "--batch", batch, "--latent", latent, "--steps", steps, "--threads", THREADS]))
        ours = ref = None
        for _ in range(ROUNDS):
            o = _json_line([rulelens_bench, "vae", *args], env)
            r = _json_line([sys.executable, str(HERE / "bench_vae.py"), "--reference", *args], env)
            ours = o if ours is None or o["tokens_per_s"] > ours["tokens_per_s"] else ours
            ref = r if ref is None or r["tokens_per_s"] > ref["tokens_per_s"] else ref
        rows.append(f"| dec {layers} + enc {enc} layers, d{d}, {heads} heads, ctx {ctx}, batch {batch}, k {latent} | "
                    f"{ours['tokens_per_s']:,.0f} | {ref['tokens_per_s']:,.0f} | {ours['tokens_per_s'] / ref['tokens_per_s']:.2f}x |")
    header = (f"## VAE training throughput (decoder tokens/s, {THREADS} threads, best of {ROUNDS} alternating runs)\n\n"
              "| config | RuleLens | PyTorch (rulelens_vae.py) | RuleLens / PyTorch |\n|---|---:|---:|---:|")
    return "\n".join([header, *rows])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reference":
        p = argparse.ArgumentParser()
        for name in ["layers", "enc-layers", "d-model", "heads", "ctx", "batch", "latent", "steps", "threads"]:
            p.add_argument("--" + name, type=int, required=True)
        reference(p.parse_args(sys.argv[2:]))
    else:
        print(main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parent / ".build" / "release" / "rulelens-bench")))
