"""PyTorch reference of the RuleLens language VAE (study 2): load a `rulelens vae train` checkpoint and run it.

This module is the independent reference the Swift implementation is tested against (parity of mu, log sigma^2,
logits and every ELBO term within 1e-4 for a given epsilon), the PyTorch side of the VAE speed benchmark, and a
module users can import to work with a RuleLens VAE in Python:

    import sys; sys.path.insert(0, "Tests/Python")        # or PYTHONPATH=Tests/Python
    from rulelens_vae import RuleLensVAE, make_batch
    vae = RuleLensVAE.from_pretrained("runs/vae")           # config.json + model.safetensors
    out = vae(**make_batch(vae.config, token_rows, prompt_lengths), eps=eps)   # dict: mu, logvar, z, logits, rec, kl, ...

It depends on torch, safetensors and numpy only (no transformers).

The model (every choice documented in docs/vae.md):
- encoder: its own token + learned position embedding (`encoder.wte`, `encoder.wpe`), `n_enc_layer` pre-LN GPT-2
  blocks with *bidirectional* attention (key positions >= the example's length masked), a final LayerNorm
  (`encoder.ln_f`); pooled = mean over the real positions ("mean") or the output at position 0, the leading <bos>
  that serves as [cls] ("cls");
- latent heads: mu = W_mu pooled + b_mu, logvar = W_lv pooled + b_lv (nn.Linear layout [k, d]); z = mu + exp(logvar/2) * eps;
- decoder: GPT-2 (HF names `transformer.…`, Conv1D weights [in, out], LM head tied to wte) with z injected:
  memory    m = W_mem z [n_layer*d] split into one d-vector per layer, used as both the key and the value of one
            extra slot (before the tokens) that every position attends to; not passed through c_attn; heads split
            as usual; token positions still start at 0;
  query     q_inj = W_q z [n_layer*d] split per layer, added to Q of every position after c_attn, before the heads split;
  embedding e = W_e z [d] added to every token + position embedding;
- loss per example: rec = sum over counted positions of cross-entropy; kl_j = 0.5 (mu_j^2 + exp(lv_j) - lv_j - 1);
  free bits (Optimus fb_mode 1): kl_fb = sum_j [kl_j > lambda] kl_j; classifier (supervision) ce = CE(W_c z + b_c, y);
  loss = mean over the batch of rec + beta * kl_fb + gamma * ce; ELBO = -(rec + kl).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

INJECT_MODES = ("memory", "query", "embedding")


@dataclass
class VAEConfig:
    vocab_size: int = 99
    n_positions: int = 64
    n_embd: int = 64
    n_head: int = 4
    n_layer: int = 2
    n_inner: int = 256
    n_enc_layer: int = 2
    latent_size: int = 16
    layer_norm_epsilon: float = 1e-5
    pooling: str = "mean"
    inject: list = field(default_factory=lambda: ["memory"])
    decode: str = "all"
    free_bits: float = 0.5
    beta: float = 1.0
    beta_cycles: int = 1
    ratio_zero: float = 0.5
    ratio_increase: float = 0.25
    supervise: str | None = None
    supervise_weight: float = 1.0
    n_classes: int = 0
    class_names: list = field(default_factory=list)
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path) -> "VAEConfig":
        raw = json.loads(Path(path).read_text())
        if raw.get("model_type") != "rulelens-vae":
            raise ValueError(f"{path}: model_type is {raw.get('model_type')!r}, not 'rulelens-vae'")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class Block(nn.Module):
    """One pre-LN GPT-2 block; Conv1D-style weights [in, out] as Hugging Face stores them."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        d = c.n_embd
        self.c = c
        self.ln_1 = nn.LayerNorm(d, eps=c.layer_norm_epsilon)
        self.ln_2 = nn.LayerNorm(d, eps=c.layer_norm_epsilon)
        self.c_attn_w = nn.Parameter(torch.zeros(d, 3 * d)); self.c_attn_b = nn.Parameter(torch.zeros(3 * d))
        self.attn_proj_w = nn.Parameter(torch.zeros(d, d)); self.attn_proj_b = nn.Parameter(torch.zeros(d))
        self.c_fc_w = nn.Parameter(torch.zeros(d, c.n_inner)); self.c_fc_b = nn.Parameter(torch.zeros(c.n_inner))
        self.mlp_proj_w = nn.Parameter(torch.zeros(c.n_inner, d)); self.mlp_proj_b = nn.Parameter(torch.zeros(d))

    def forward(self, x, causal: bool, lengths=None, mem=None, q_inject=None, cache=None, prefix="", edits=None):
        """x [B, T, d]; lengths [B] (bidirectional key mask); mem [B, d] (extra K=V slot); q_inject [B, d].
        cache: a dict that receives this block's activations under TransformerLens names with `prefix`
        (e.g. "encoder.blocks.0."): hook_resid_pre, attn.hook_pattern [B, H, T, P+T], hook_attn_out, hook_resid_mid,
        mlp.hook_post, hook_mlp_out, hook_resid_post.
        edits: {site name: function(tensor) -> tensor} replacing hook_attn_out / hook_mlp_out (e.g. a zero-ablation)."""
        edits = edits or {}
        if cache is not None:
            cache[prefix + "hook_resid_pre"] = x
        B, T, d = x.shape
        H = self.c.n_head
        dh = d // H
        qkv = self.ln_1(x) @ self.c_attn_w + self.c_attn_b
        q, k, v = qkv.split(d, dim=2)
        if q_inject is not None:
            q = q + q_inject[:, None, :]
        if mem is not None:
            k = torch.cat([mem[:, None, :], k], dim=1)
            v = torch.cat([mem[:, None, :], v], dim=1)
        P = k.shape[1] - T
        q = q.view(B, T, H, dh).transpose(1, 2)
        k = k.view(B, P + T, H, dh).transpose(1, 2)
        v = v.view(B, P + T, H, dh).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)           # [B, H, T, P+T]
        allowed = torch.ones(B, T, P + T, dtype=torch.bool)
        if causal:
            allowed[:, :, P:] = torch.tril(torch.ones(T, T, dtype=torch.bool))
        if lengths is not None:
            key_pos = torch.arange(T)[None, :]
            allowed[:, :, P:] &= (key_pos < lengths[:, None])[:, None, :]
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
        pattern = torch.softmax(scores, dim=-1)
        z = pattern @ v                                              # [B, H, T, dh]
        attn_out = z.transpose(1, 2).reshape(B, T, d) @ self.attn_proj_w + self.attn_proj_b
        if prefix + "hook_attn_out" in edits:
            attn_out = edits[prefix + "hook_attn_out"](attn_out)
        x = x + attn_out
        h = gelu_tanh(self.ln_2(x) @ self.c_fc_w + self.c_fc_b)
        mlp_out = h @ self.mlp_proj_w + self.mlp_proj_b
        if prefix + "hook_mlp_out" in edits:
            mlp_out = edits[prefix + "hook_mlp_out"](mlp_out)
        if cache is not None:
            cache.update({prefix + "attn.hook_pattern": pattern, prefix + "hook_attn_out": attn_out, prefix + "hook_resid_mid": x,
                          prefix + "mlp.hook_post": h, prefix + "hook_mlp_out": mlp_out, prefix + "hook_resid_post": x + mlp_out})
        return x + mlp_out


class RuleLensVAE(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        for m in c.inject:
            if m not in INJECT_MODES:
                raise ValueError(f"unknown injection mode {m!r}")
        self.config = c
        d, k, L = c.n_embd, c.latent_size, c.n_layer
        self.enc_wte = nn.Embedding(c.vocab_size, d)
        self.enc_wpe = nn.Embedding(c.n_positions, d)
        self.enc_blocks = nn.ModuleList(Block(c) for _ in range(c.n_enc_layer))
        self.enc_ln_f = nn.LayerNorm(d, eps=c.layer_norm_epsilon)
        self.mu = nn.Linear(d, k)
        self.logvar = nn.Linear(d, k)
        self.mem = nn.Linear(k, L * d, bias=False) if "memory" in c.inject else None
        self.qinj = nn.Linear(k, L * d, bias=False) if "query" in c.inject else None
        self.emb = nn.Linear(k, d, bias=False) if "embedding" in c.inject else None
        self.classifier = nn.Linear(k, c.n_classes) if c.supervise else None
        self.wte = nn.Embedding(c.vocab_size, d)
        self.wpe = nn.Embedding(c.n_positions, d)
        self.blocks = nn.ModuleList(Block(c) for _ in range(L))
        self.ln_f = nn.LayerNorm(d, eps=c.layer_norm_epsilon)

    # ---- checkpoint names (the same as RuleLens's safetensors) ----
    def name_map(self):
        """RuleLens tensor name → (parameter, transpose?)."""
        out = {}

        def blocks(prefix, mods):
            for l, b in enumerate(mods):
                p = f"{prefix}.h.{l}."
                out[p + "ln_1.weight"] = b.ln_1.weight; out[p + "ln_1.bias"] = b.ln_1.bias
                out[p + "attn.c_attn.weight"] = b.c_attn_w; out[p + "attn.c_attn.bias"] = b.c_attn_b
                out[p + "attn.c_proj.weight"] = b.attn_proj_w; out[p + "attn.c_proj.bias"] = b.attn_proj_b
                out[p + "ln_2.weight"] = b.ln_2.weight; out[p + "ln_2.bias"] = b.ln_2.bias
                out[p + "mlp.c_fc.weight"] = b.c_fc_w; out[p + "mlp.c_fc.bias"] = b.c_fc_b
                out[p + "mlp.c_proj.weight"] = b.mlp_proj_w; out[p + "mlp.c_proj.bias"] = b.mlp_proj_b

        out["transformer.wte.weight"] = self.wte.weight
        out["transformer.wpe.weight"] = self.wpe.weight
        blocks("transformer", self.blocks)
        out["transformer.ln_f.weight"] = self.ln_f.weight; out["transformer.ln_f.bias"] = self.ln_f.bias
        out["encoder.wte.weight"] = self.enc_wte.weight
        out["encoder.wpe.weight"] = self.enc_wpe.weight
        blocks("encoder", self.enc_blocks)
        out["encoder.ln_f.weight"] = self.enc_ln_f.weight; out["encoder.ln_f.bias"] = self.enc_ln_f.bias
        out["latent.mu.weight"] = self.mu.weight; out["latent.mu.bias"] = self.mu.bias
        out["latent.logvar.weight"] = self.logvar.weight; out["latent.logvar.bias"] = self.logvar.bias
        if self.mem is not None: out["latent.memory.weight"] = self.mem.weight
        if self.qinj is not None: out["latent.query.weight"] = self.qinj.weight
        if self.emb is not None: out["latent.embed.weight"] = self.emb.weight
        if self.classifier is not None:
            out["latent.classifier.weight"] = self.classifier.weight; out["latent.classifier.bias"] = self.classifier.bias
        return out

    @classmethod
    def from_pretrained(cls, run_dir) -> "RuleLensVAE":
        from safetensors.numpy import load_file
        run_dir = Path(run_dir)
        model = cls(VAEConfig.from_json(run_dir / "config.json"))
        tensors = load_file(str(run_dir / "model.safetensors"))
        names = model.name_map()
        missing = set(names) - set(tensors)
        extra = set(tensors) - set(names)
        if missing or extra:
            raise ValueError(f"checkpoint tensors differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        with torch.no_grad():
            for name, p in names.items():
                t = torch.from_numpy(np.ascontiguousarray(tensors[name]))
                if tuple(t.shape) != tuple(p.shape):
                    raise ValueError(f"{name}: shape {tuple(t.shape)} in the file, {tuple(p.shape)} expected")
                p.copy_(t)
        return model

    def save_pretrained(self, run_dir):
        from safetensors.numpy import save_file
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_file({n: p.detach().contiguous().numpy() for n, p in self.name_map().items()}, str(run_dir / "model.safetensors"))
        cfg = dict(self.config.__dict__)
        cfg["model_type"] = "rulelens-vae"
        (run_dir / "config.json").write_text(json.dumps(cfg, indent=2))

    # ---- forward pieces ----
    def encode(self, enc_tokens, enc_lengths, cache=None, edits=None):
        """enc_tokens [B, Te] long, enc_lengths [B] long → pooled [B, d], mu [B, k], logvar [B, k].
        cache: a dict that receives the encoder's block activations (`encoder.blocks.{l}.…`, see `Block.forward`);
        edits: replacements of `encoder.blocks.{l}.hook_attn_out` / `hook_mlp_out` (see `Block.forward`)."""
        B, T = enc_tokens.shape
        x = self.enc_wte(enc_tokens) + self.enc_wpe(torch.arange(T))[None]
        for l, blk in enumerate(self.enc_blocks):
            x = blk(x, causal=False, lengths=enc_lengths, cache=cache, prefix=f"encoder.blocks.{l}.", edits=edits)
        h = self.enc_ln_f(x)
        if self.config.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = (torch.arange(T)[None, :] < enc_lengths[:, None]).to(h.dtype)
            pooled = (h * m[:, :, None]).sum(1) / enc_lengths[:, None].to(h.dtype)
        return pooled, self.mu(pooled), self.logvar(pooled)

    def decode_logits(self, dec_inputs, z, cache=None, edits=None):
        """dec_inputs [B, T] long, z [B, k] → logits [B, T, V]. cache: receives `blocks.{l}.…` (see `Block.forward`)."""
        c = self.config
        B, T = dec_inputs.shape
        d, L = c.n_embd, c.n_layer
        x = self.wte(dec_inputs) + self.wpe(torch.arange(T))[None]
        if self.emb is not None:
            x = x + self.emb(z)[:, None, :]
        mem = self.mem(z).view(B, L, d) if self.mem is not None else None
        qi = self.qinj(z).view(B, L, d) if self.qinj is not None else None
        for l, blk in enumerate(self.blocks):
            x = blk(x, causal=True, mem=None if mem is None else mem[:, l], q_inject=None if qi is None else qi[:, l],
                    cache=cache, prefix=f"blocks.{l}.", edits=edits)
        return self.ln_f(x) @ self.wte.weight.T

    def forward(self, enc_tokens, enc_lengths, dec_inputs, dec_targets, loss_mask, eps=None, labels=None, beta=None):
        c = self.config
        pooled, mu, logvar = self.encode(enc_tokens, enc_lengths)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        logits = self.decode_logits(dec_inputs, z)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), dec_targets.reshape(-1), reduction="none")
        rec = (ce.view(dec_targets.shape) * loss_mask).sum(1)                    # [B]
        kl_dims = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)                  # [B, k]
        kl = kl_dims.sum(1)
        kl_fb = (kl_dims * (kl_dims > c.free_bits).to(kl_dims.dtype)).sum(1)
        beta = c.beta if beta is None else beta
        loss_b = rec + beta * kl_fb
        out = dict(pooled=pooled, mu=mu, logvar=logvar, z=z, logits=logits, rec=rec, kl=kl, kl_dims=kl_dims, kl_fb=kl_fb)
        if self.classifier is not None:
            class_logits = self.classifier(z)
            out["class_logits"] = class_logits
            if labels is not None:
                cls_ce = F.cross_entropy(class_logits, labels, reduction="none")
                out["cls_loss"] = cls_ce
                loss_b = loss_b + c.supervise_weight * cls_ce
        out["elbo"] = -(rec + kl)
        out["loss"] = loss_b.mean()
        return out


def make_batch(c: VAEConfig, rows, prompt_lengths):
    """rows: full token sequences [bos] + prompt + target + [eos] (lists of ints); prompt_lengths: len([bos] + prompt).

    The encoder reads the whole row (length n); the decoder reads row[:-1] and predicts row[1:]; the loss counts
    every real position (decode "all", autoencoding) or those predicting the target and eos (decode "target").
    """
    B = len(rows)
    Te = max(len(r) for r in rows)
    Td = Te - 1
    enc = torch.full((B, Te), c.pad_token_id, dtype=torch.long)
    dec_in = torch.full((B, Td), c.pad_token_id, dtype=torch.long)
    dec_tg = torch.full((B, Td), c.pad_token_id, dtype=torch.long)
    mask = torch.zeros(B, Td)
    for i, (r, p) in enumerate(zip(rows, prompt_lengths)):
        n = len(r)
        enc[i, :n] = torch.tensor(r)
        dec_in[i, :n - 1] = torch.tensor(r[:-1])
        dec_tg[i, :n - 1] = torch.tensor(r[1:])
        first = 0 if c.decode == "all" else p - 1
        mask[i, first:n - 1] = 1
    return dict(enc_tokens=enc, enc_lengths=torch.tensor([len(r) for r in rows]), dec_inputs=dec_in,
                dec_targets=dec_tg, loss_mask=mask)


def beta_schedule(total_steps, beta, cycles, ratio_zero, ratio_increase):
    """Cyclical beta, Optimus's frange_cycle_zero_linear: per cycle of total/cycles steps, 0 for the first ratio_zero
    share, then a linear rise to beta over the ratio_increase share, then beta. Returns a list, one value per step."""
    values = [beta] * total_steps
    period = total_steps / cycles
    step = beta / (period * ratio_increase) if ratio_increase > 0 else float("inf")
    for c in range(cycles):
        v, i = 0.0, 0
        while v <= beta and int(i + c * period) < total_steps:
            if i < period * ratio_zero:
                values[int(i + c * period)] = 0.0
            elif ratio_increase > 0:
                values[int(i + c * period)] = v
                v += step
            else:
                break
            i += 1
    return values


def mutual_information(mu, logvar, z):
    """Optimus's I(x; z) estimate over a batch: E_x[E_q(z|x) log q(z|x)] - E_x E_q(z|x) log q(z), q(z) the
    aggregate posterior over the batch, one z sample per x. mu, logvar, z: [N, k] float64 tensors."""
    n, k = mu.shape
    neg_entropy = (-0.5 * k * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(-1)).mean()
    dev = z[:, None, :] - mu[None, :, :]
    log_density = -0.5 * (dev.pow(2) / logvar.exp()[None]).sum(-1) - 0.5 * (k * math.log(2 * math.pi) + logvar.sum(-1))[None]
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(n)
    return float(neg_entropy - log_qz.mean())
