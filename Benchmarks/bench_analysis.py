"""PCA (20,000 x 512) and silhouette (10,000 x 128): RuleLens against scikit-learn on the same data, in one run.

Both sides get the same float32 matrix; each side's time is the best of 3 runs after a warm-up, data loading
excluded, taken twice (before and after the other side, against drift on a shared machine). Ratio = scikit-learn time / RuleLens time (> 1: RuleLens is faster). The results are also compared,
so a fast wrong answer shows up here too.
"""
import json
import os
import subprocess
import tempfile
import time

import numpy as np


def best_of(fn, repeats=3):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_swift(bench_bin, *args):
    out = subprocess.run([bench_bin, *map(str, args)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(rulelens_bench: str) -> str:
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # PCA: anisotropic Gaussian data with a non-zero mean.
        x = (rng.normal(size=(20000, 512)) * np.linspace(3, 0.1, 512) + 1).astype(np.float32)
        path = os.path.join(tmp, "pca.f32")
        x.tofile(path)
        # The machine may be shared: each side is timed twice, before and after the other, and the best is kept.
        swift = run_swift(rulelens_bench, "pca", path, 20000, 512, 10)
        ref = PCA(n_components=10)
        t_ref = best_of(lambda: ref.fit(x))
        swift["seconds"] = min(swift["seconds"], run_swift(rulelens_bench, "pca", path, 20000, 512, 10)["seconds"])
        t_ref = min(t_ref, best_of(lambda: ref.fit(x)))
        agree = np.max(np.abs(np.array(swift["explained_variance_ratio"]) - ref.explained_variance_ratio_) /
                       ref.explained_variance_ratio_)
        rows.append(("PCA 20000x512, 10 components", swift["seconds"], t_ref, f"max rel. diff. of variance ratio {agree:.1e}"))

        # Silhouette: 8 Gaussian blobs.
        labels = rng.integers(0, 8, size=10000).astype(np.int32)
        centres = rng.normal(size=(8, 128)) * 0.6
        x = (centres[labels] + rng.normal(size=(10000, 128))).astype(np.float32)
        path, lpath = os.path.join(tmp, "sil.f32"), os.path.join(tmp, "sil.i32")
        x.tofile(path)
        labels.tofile(lpath)
        swift = run_swift(rulelens_bench, "silhouette", path, 10000, 128, lpath)
        score = {}
        t_ref = best_of(lambda: score.__setitem__("v", silhouette_score(x, labels)))
        swift["seconds"] = min(swift["seconds"], run_swift(rulelens_bench, "silhouette", path, 10000, 128, lpath)["seconds"])
        t_ref = min(t_ref, best_of(lambda: score.__setitem__("v", silhouette_score(x, labels))))
        rows.append(("silhouette 10000x128, 8 classes", swift["seconds"], t_ref,
                     f"scores {swift['score']:.6f} vs {score['v']:.6f}"))

    lines = ["## Analysis: RuleLens vs scikit-learn", "",
             "| task | RuleLens (s) | scikit-learn (s) | speed-up (sklearn / RuleLens) | check |",
             "|---|---|---|---|---|"]
    for name, ours, theirs, check in rows:
        lines.append(f"| {name} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.2f}x | {check} |")
    return "\n".join(lines)
