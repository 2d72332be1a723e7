"""`saturation(x, y)` in a spec: per seed, the least-squares curve y = a·x/(x + k) over the swept sizes, read as the
share of the asymptote reached at the largest size — equal to scipy's `curve_fit` on the same points."""
import json

import numpy as np
from scipy.optimize import curve_fit

from conftest import run_rulelens

SPEC = """
name: saturation against scipy
claim: the curve flattens
seeds: 3
sweep:
  n: [10, 20, 40, 80, 160, 320]
steps:
  - data: {task: syllogism, count: 600, seed: 0}
  - subset: {data: "${data}", train: "${n}", seed: "${seed}"}
expect:
  - that: ci_low(saturation(subset.train, Y)) > 0.5
"""
# A saturating y that differs per seed, with a bend that no curve of the family fits exactly.
Y = "subset.train / (subset.train + 40) + 0.0004 * subset.seed * subset.train - 0.02 * (subset.train == 40)"


def y_of(n, seed):
    return n / (n + 40) + 0.0004 * seed * n - 0.02 * (n == 40)


def test_saturation_is_scipys_curve_fit(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("Y", Y))
    run_rulelens("run", tmp_path / "spec.yaml", "--out", tmp_path / "run", "--quiet")
    stats = json.loads((tmp_path / "run" / "results.json").read_text())["expectations"][0]["statistics"][0]
    sizes = np.array([10, 20, 40, 80, 160, 320], dtype=float)
    for row in stats["values"]:
        seed = int(row["label"].split("=")[1])
        (a, k), _ = curve_fit(lambda x, a, k: a * x / (x + k), sizes, [y_of(n, seed) for n in sizes], p0=(1, 50), maxfev=20000)
        assert abs(row["value"] - sizes.max() / (sizes.max() + k)) < 1e-6, (seed, row["value"], k)


def test_saturation_over_one_variant_is_refused(tmp_path):
    spec = SPEC.replace("Y", Y).replace("saturation(subset.train, ", "saturation(subset.train[n=10], ").replace(
        ", " + Y + ")", ", subset.train[n=10])")
    (tmp_path / "spec.yaml").write_text(spec)
    proc = run_rulelens("run", tmp_path / "spec.yaml", "--out", tmp_path / "run", "--quiet", check=False)
    assert proc.returncode == 2 and "a curve needs the variants of a sweep" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
