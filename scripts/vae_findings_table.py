"""Markdown tables of scripts/vae_findings.sh's results: python scripts/vae_findings_table.py runs/vae-findings"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/vae-findings")
TASKS = ["syllogism", "math-derivation", "explanatory"]


def load(run, name):
    p = out / run / name
    return json.loads(p.read_text()) if p.exists() else None


print("### Rule separability of μ (test split), without vs with supervision\n")
print("| task | supervision | silhouette | k-NN acc | k-means NMI | linear probe acc (control) | classifier acc | exact match | ELBO | KL | AU |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for task in TASKS:
    for mode in ["unsup", "sup"]:
        run = f"{task}-{mode}"
        sep, lin, ev = load(run, "separability.json"), load(run, "linear.json"), load(run, "eval.json")
        if not sep:
            continue
        mu = next(s for s in sep["sites"] if s["site"] == "latent.hook_mu")
        li = lin["sites"][0]
        ca = ev.get("classifier_accuracy")
        print(f"| {task} | {'rule' if mode == 'sup' else 'none'} | {mu['silhouette']:.3f} | {mu['knn_accuracy']:.3f} | "
              f"{mu['kmeans_nmi']:.3f} | {li['accuracy']:.3f} ({li['control_accuracy']:.3f}) | "
              f"{'—' if ca is None else f'{ca:.3f}'} | {ev['exact_match']:.3f} | {ev['elbo']:.1f} | {ev['kl']:.2f} | "
              f"{ev['active_units']}/{ev['latent_size']} |")

print("\n### Per encoder layer: attention output vs FFN output (mean over tokens), k-NN accuracy / silhouette of the rule\n")
print("| task | supervision | layer | attn k-NN | FFN k-NN | attn silhouette | FFN silhouette |")
print("|---|---|---:|---:|---:|---:|---:|")
for task in TASKS:
    for mode in ["unsup", "sup"]:
        sep = load(f"{task}-{mode}", "separability.json")
        if not sep:
            continue
        by = {s["site"]: s for s in sep["sites"]}
        layer = 0
        while f"encoder.blocks.{layer}.hook_attn_out" in by:
            a, f = by[f"encoder.blocks.{layer}.hook_attn_out"], by[f"encoder.blocks.{layer}.hook_mlp_out"]
            print(f"| {task} | {'rule' if mode == 'sup' else 'none'} | {layer} | {a['knn_accuracy']:.3f} | {f['knn_accuracy']:.3f} | "
                  f"{a['silhouette']:.3f} | {f['silhouette']:.3f} |")
            layer += 1

print("\n### Encoder gradient-kernel blocks: mean cosine of per-example gradients within − between rules\n")
print("| task | supervision | " + " | ".join(f"enc {l} {k}" for l in (0, 1) for k in ("attn_qkv", "attn_out", "ffn_in", "ffn_out"))
      + " | latent heads |")
print("|---|---|" + "---:|" * 9)
for task in TASKS:
    for mode in ["unsup", "sup"]:
        ntk = load(f"{task}-{mode}", "ntk.json")
        if not ntk:
            continue
        by = {b["block"]: b for b in ntk["blocks"]}
        cells = [by.get(f"encoder.blocks.{l}.{k}") for l in (0, 1) for k in ("attn_qkv", "attn_out", "ffn_in", "ffn_out")]
        cells.append(by.get("latent.heads"))
        print(f"| {task} | {'rule' if mode == 'sup' else 'none'} | "
              + " | ".join("—" if c is None else f"{c['difference']:.3f}" for c in cells) + " |")
