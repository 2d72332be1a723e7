"""Activation patching: `rulelens patch --sites resid_pre` against TransformerLens 4.x's `get_act_patch_resid_pre`.

The same random 4-layer d128 GPT-2 checkpoint (written by `rulelens train --steps 1`) and the same 256 clean/corrupted
addition pairs (`rulelens data pairs --one-length`, 7 positions), so both sides run 4 × 7 = 28 patched forwards of
256 prompts plus the clean pass. RuleLens's time is the sweep as it reports it (`seconds`: clean pass + every cell,
checkpoint loading excluded); TransformerLens's is `run_with_cache` on the clean tokens + `get_act_patch_resid_pre`
(booting excluded), with `torch.set_num_threads(2)`. The two sides alternate twice (RuleLens warmed up first); each reports its best
wall time and its best CPU time (on a shared machine the CPU time is the steadier number). Ratio = TransformerLens time / RuleLens time (> 1: RuleLens is faster). The matrices are compared too.
"""
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def rulelens_bin(bench_bin):
    return os.environ.get("RULELENS_BIN", str(Path(bench_bin).parent / "rulelens"))


def main(rulelens_bench: str) -> str:
    import torch
    from transformer_lens import patching
    from transformer_lens.model_bridge import TransformerBridge

    torch.set_num_threads(2)
    bin_ = rulelens_bin(rulelens_bench)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt, pairs = tmp / "model", tmp / "pairs"
        subprocess.run([bin_, "train", "--task", "addition", "--split", "random", "--out", ckpt, "--layers", "4", "--heads", "4",
                        "--d-model", "128", "--ctx", "16", "--steps", "1", "--quiet"], check=True, capture_output=True)
        subprocess.run([bin_, "data", "pairs", "--task", "addition", "--split", "random", "--out", pairs, "--one-length",
                        "--limit", "256"], check=True, capture_output=True)

        def swift_once():
            out = subprocess.run([bin_, "patch", "--checkpoint", ckpt, "--clean", pairs / "clean.jsonl", "--corrupt",
                                  pairs / "corrupt.jsonl", "--sites", "resid_pre", "--json", "--quiet"],
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out)

        bridge = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
        bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
        rows = lambda f: [json.loads(l) for l in (pairs / f).read_text().splitlines()]
        clean_rows, corrupt_rows = rows("clean.jsonl"), rows("corrupt.jsonl")
        clean_tokens = bridge.to_tokens([r["prompt"] for r in clean_rows])
        corrupt_tokens = bridge.to_tokens([r["prompt"] for r in corrupt_rows])
        first = lambda r: bridge.to_tokens(r["target"], prepend_bos=False)[0, 0].item()
        clean_answer = torch.tensor([first(r) for r in clean_rows])
        corrupt_answer = torch.tensor([first(r) for r in corrupt_rows])
        idx = torch.arange(len(clean_rows))

        def metric(logits):
            last = logits[:, -1, :]
            return (last[idx, clean_answer] - last[idx, corrupt_answer]).mean()

        def tl_once():
            with torch.no_grad():
                _, cache = bridge.run_with_cache(clean_tokens)
                return patching.get_act_patch_resid_pre(bridge, corrupt_tokens, cache, metric).numpy()

        import contextlib, io, resource

        def swift_timed():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = swift_once()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r, r["seconds"], (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

        def tl_timed():
            t0, c0 = time.perf_counter(), time.process_time()
            with contextlib.redirect_stderr(io.StringIO()):   # TransformerLens draws a tqdm bar per call
                r = tl_once()
            return r, time.perf_counter() - t0, time.process_time() - c0

        swift_once()                                          # warm-up (page cache, OpenBLAS start)
        swift_runs, tl_runs = [], []
        for _ in range(2):                                    # alternate, against drift on a shared machine
            swift_runs.append(swift_timed())
            tl_runs.append(tl_timed())
        swift_result, tl_matrix = swift_runs[-1][0], tl_runs[-1][0]
        swift_time, tl_time = min(r[1] for r in swift_runs), min(r[1] for r in tl_runs)
        swift_cpu, tl_cpu = min(r[2] for r in swift_runs), min(r[2] for r in tl_runs)
        diff = float(np.abs(np.array(swift_result["sites"]["resid_pre"]["logit_diff"]) - tl_matrix).max())
        cells = tl_matrix.size
        load = os.getloadavg()[0]
    return "\n".join([
        "## Activation patching (resid_pre × every layer × every position)",
        "",
        f"random 4-layer d128 GPT-2, {len(clean_rows)} pairs × {clean_tokens.shape[1]} positions = {cells} cells, "
        f"each one batched forward; matrices agree within {diff:.1e}",
        "",
        f"(load average {load:.1f} on {os.cpu_count()} cores while measuring; CPU seconds are the process's own, so they matter more than wall time on a shared machine)",
        "",
        "| | RuleLens `patch` | TransformerLens 4.x `get_act_patch_resid_pre` | TransformerLens / RuleLens |",
        "|---|---:|---:|---:|",
        f"| wall seconds (best of 2, alternating) | {swift_time:.3f} | {tl_time:.3f} | {tl_time / swift_time:.1f}x |",
        f"| CPU seconds (best of 2) | {swift_cpu:.3f} | {tl_cpu:.3f} | {tl_cpu / swift_cpu:.1f}x |",
    ])
