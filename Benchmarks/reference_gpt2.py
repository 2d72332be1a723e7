"""PyTorch reference for the training benchmark: the same GPT-2 as RuleLens, trained the same way.

Pre-LayerNorm blocks (eps 1e-5), fused QKV, causal attention (scaled_dot_product_attention), GELU (tanh),
4x MLP, final LayerNorm, LM head tied to the token embedding. Init as GPT-2 / RuleLens: N(0, 0.02), residual
projections N(0, 0.02/sqrt(2*n_layer)), LayerNorm 1/0, biases 0. AdamW with decay on 2-D weights only,
global-norm clipping at 1.0, cross-entropy on every position. Random tokens from a 99-token vocabulary.

    python reference_gpt2.py --layers 4 --d-model 128 --heads 4 --ctx 32 --batch 64 --steps 20 --threads 2

prints one JSON line: tokens/s over the timed steps (after warm-up steps) and the final loss.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, d_mlp):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, d_mlp)
        self.mlp_proj = nn.Linear(d_mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(z.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, d, heads, d_mlp, ctx, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads, d_mlp) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("layers", 4), ("d-model", 128), ("heads", 4), ("ctx", 32), ("batch", 64),
                          ("steps", 20), ("warmup-steps", 3), ("threads", 2), ("vocab", 99), ("seed", 0)]:
        ap.add_argument("--" + name, type=int, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = GPT(a.layers, a.d_model, a.heads, 4 * a.d_model, a.ctx, a.vocab)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    data = torch.randint(0, a.vocab, (a.steps + a.warmup_steps, a.batch, a.ctx + 1), generator=gen)

    def step(i):
        opt.zero_grad(set_to_none=True)
        logits = model(data[i, :, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), data[i, :, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for i in range(a.warmup_steps):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.warmup_steps, a.warmup_steps + a.steps):
        loss = step(i)
    seconds = time.perf_counter() - t0
    print(json.dumps({"bench": "torch-train", "tokens_per_s": a.steps * a.batch * a.ctx / seconds,
                      "seconds": seconds, "steps": a.steps, "loss": loss, "threads": torch.get_num_threads(),
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
