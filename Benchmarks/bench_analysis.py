"""PCA (20,000 x 512), silhouette (10,000 x 128) and the linear probe (2,400 x 256, 24 classes, 5 folds): RuleLens
against scikit-learn on the same data, in one run.

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
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import KFold

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

        # Linear probe: 24 classes in 256 dimensions, correlated (anisotropic) features like a residual stream's,
        # classes overlapping (accuracy well below 1). Same folds (KFold, contiguous) and objective on both sides;
        # scikit-learn's lbfgs at the tolerance RuleLens uses (gtol 1e-6, enough iterations to reach it).
        n, d, k, folds, C = 2400, 256, 24, 5, 1.0
        labels = rng.integers(0, k, size=n).astype(np.int32)
        mixing = rng.normal(size=(d, d)) * np.geomspace(1, 0.02, d)[:, None]
        x = ((rng.normal(size=(k, d)) * 0.35)[labels] + rng.normal(size=(n, d))) @ mixing + 0.5
        x = x.astype(np.float32)
        path, lpath = os.path.join(tmp, "probe.f32"), os.path.join(tmp, "probe.i32")
        x.tofile(path)
        labels.tofile(lpath)
        xd = x.astype(np.float64)

        def sklearn_probe(tol, max_iter):
            correct, iters = [], []
            for train, test in KFold(n_splits=folds).split(xd):
                clf = LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=max_iter).fit(xd[train], labels[train])
                correct.append(int((clf.predict(xd[test]) == labels[test]).sum()))
                iters.append(int(clf.n_iter_[0]))
            return correct, iters

        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning at its defaults is reported below
            swift = run_swift(rulelens_bench, "probe", path, n, d, lpath, folds, C)
            ref = {}
            t_ref = best_of(lambda: ref.__setitem__("same", sklearn_probe(1e-6, 10000)), repeats=1)
            swift["seconds"] = min(swift["seconds"], run_swift(rulelens_bench, "probe", path, n, d, lpath, folds, C)["seconds"])
            t_ref = min(t_ref, best_of(lambda: ref.__setitem__("same", sklearn_probe(1e-6, 10000)), repeats=1))
            t_default = best_of(lambda: ref.__setitem__("default", sklearn_probe(1e-4, 100)), repeats=1)
        diff = max(abs(a - b) for a, b in zip(swift["fold_correct"], ref["same"][0]))
        rows.append((f"linear probe {n}x{d}, {k} classes, {folds} folds, C={C:g} (lbfgs, gtol 1e-6)", swift["seconds"], t_ref,
                     f"fold correct {swift['fold_correct']} vs {ref['same'][0]} (max diff {diff}); iterations "
                     f"{swift['fold_iterations']} vs {ref['same'][1]}; RuleLens max grad {swift['gradient_norm']:.1e}, "
                     f"converged {swift['converged']}"))
        default_converged = all(i < 100 for i in ref["default"][1])
        rows.append((f"same, scikit-learn at its defaults (tol 1e-4, max_iter 100)", swift["seconds"], t_default,
                     f"scikit-learn iterations {ref['default'][1]}, converged {default_converged}; fold correct {ref['default'][0]}"))

    lines = ["## Analysis: RuleLens vs scikit-learn", "",
             "| task | RuleLens (s) | scikit-learn (s) | speed-up (sklearn / RuleLens) | check |",
             "|---|---|---|---|---|"]
    for name, ours, theirs, check in rows:
        lines.append(f"| {name} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.2f}x | {check} |")
    return "\n".join(lines)
