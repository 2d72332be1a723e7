"""Training throughput: RuleLens (release) against the PyTorch reference, same model, batch, context, threads.

For each configuration, runs `rulelens-bench train` and `reference_gpt2.py` (both 2 threads, random tokens,
cross-entropy on every position, AdamW + clipping), and reports tokens/s of each, the ratio, and RuleLens's
achieved GFLOP/s against the sgemm peak measured in this same run (`rulelens-bench sgemm`).

Model FLOPs per training token = 3 x forward, forward = 2 x (per layer: d*3d + d*d + 2*d*d_mlp, plus attention
2*ctx*d for QK^T and A.V over the full context) + 2*d*vocab for the tied LM head.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = [
    # layers, d_model, heads, ctx, batch, timed steps, warm-up steps
    (4, 128, 4, 32, 64, 30, 3),
    (6, 256, 8, 64, 32, 15, 3),
    (12, 768, 12, 128, 16, 3, 1),   # GPT-2 small's shape (vocabulary 99): ~1 TFLOP per step
]
# Threads under load: two busy loops beside the benchmark, 1 thread against 2 (config, rounds).
LOAD_CONFIG = (4, 128, 4, 32, 64, 10, 2)
LOAD_ROUNDS = 5
THREADS = 2
ROUNDS = 2
VOCAB = 99


def _json_line(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def model_flops_per_token(layers, d, ctx, vocab=VOCAB):
    d_mlp = 4 * d
    forward = layers * 2 * (d * 3 * d + d * d + 2 * d * d_mlp + 2 * ctx * d) + 2 * d * vocab
    return 3 * forward


def main(rulelens_bench: str) -> str:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(THREADS))
    peak = max((_json_line([rulelens_bench, "sgemm", "1024"], env) for _ in range(ROUNDS)), key=lambda p: p["gflops"])
    rows = []
    for layers, d, heads, ctx, batch, steps, warmup in CONFIGS:
        args = ["--layers", layers, "--d-model", d, "--heads", heads, "--ctx", ctx, "--batch", batch,
                "--steps", steps, "--warmup-steps", warmup, "--threads", THREADS]
        args = list(map(str, args))
        # Alternate the two ROUNDS times and keep each one's best run: the machine is shared, and
        # interleaving exposes both to the same background load.
        ours = ref = None
        for _ in range(ROUNDS):
            o = _json_line([rulelens_bench, "train", *args], env)
            r = _json_line([sys.executable, str(HERE / "reference_gpt2.py"), *args], env)
            ours = o if ours is None or o["tokens_per_s"] > ours["tokens_per_s"] else ours
            ref = r if ref is None or r["tokens_per_s"] > ref["tokens_per_s"] else ref
        gflops = ours["tokens_per_s"] * model_flops_per_token(layers, d, ctx) / 1e9
        rows.append(f"| {layers} layers, d{d}, {heads} heads, ctx {ctx}, batch {batch} | "
                    f"{ours['tokens_per_s']:,.0f} | {ref['tokens_per_s']:,.0f} | "
                    f"{ours['tokens_per_s'] / ref['tokens_per_s']:.2f}x | {gflops:.1f} | "
                    f"{100 * gflops / peak['gflops']:.0f}% |")
    rows.append("")
    rows.append(under_load(rulelens_bench, env))
    header = (f"## Training throughput (tokens/s, {THREADS} threads, best of {ROUNDS} alternating runs; sgemm peak {peak['gflops']:.0f} GFLOP/s "
              f"at 1024², {peak['core']} kernels)\n\n"
              "| config | RuleLens | PyTorch | RuleLens / PyTorch | RuleLens GFLOP/s | of sgemm peak |\n"
              "|---|---:|---:|---:|---:|---:|")
    return "\n".join([header, *rows])


def under_load(rulelens_bench, env):
    """Tokens/s with 1 and 2 threads while two busy loops (one per core of the build machine) compete for the CPU.
    The runs alternate (1, 2, 1, 2, ...) and each side's median is kept; PyTorch the same way, for reference."""
    import statistics
    layers, d, heads, ctx, batch, steps, warmup = LOAD_CONFIG
    base = list(map(str, ["--layers", layers, "--d-model", d, "--heads", heads, "--ctx", ctx, "--batch", batch,
                          "--steps", steps, "--warmup-steps", warmup]))
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    runs = {("RuleLens", 1): [], ("RuleLens", 2): [], ("PyTorch", 1): [], ("PyTorch", 2): []}
    try:
        for _ in range(LOAD_ROUNDS):
            for t in (1, 2):
                runs[("RuleLens", t)].append(_json_line([rulelens_bench, "train", *base, "--threads", str(t)], env)["tokens_per_s"])
                runs[("PyTorch", t)].append(_json_line([sys.executable, str(HERE / "reference_gpt2.py"), *base, "--threads", str(t)], env)["tokens_per_s"])
    finally:
        for p in busy:
            p.kill()
            p.wait()
    out = [f"### Under load: two busy loops running, {layers} layers d{d} ctx {ctx} batch {batch}, median of {LOAD_ROUNDS} alternating runs "
           "(min–max in brackets)", "",
           "| | 1 thread | 2 threads | 2 threads / 1 thread |", "|---|---:|---:|---:|"]
    for name in ("RuleLens", "PyTorch"):
        one, two = runs[(name, 1)], runs[(name, 2)]
        m1, m2 = statistics.median(one), statistics.median(two)
        out.append(f"| {name} | {m1:,.0f} ({min(one):,.0f}–{max(one):,.0f}) | {m2:,.0f} ({min(two):,.0f}–{max(two):,.0f}) | {m2 / m1:.2f}x |")
    return "\n".join(out)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parent / ".build" / "release" / "rulelens-bench")))
