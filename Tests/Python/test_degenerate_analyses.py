"""Issue 8 item 10: degenerate analyses say so — as many classes as examples, k ≥ n, --position on single-position
data, an ill-conditioned S_w (Fisher ratio) — and --threads on probe gives the same numbers."""
import json

import h5py
import numpy as np

from conftest import run_rulelens


def probe(*args, check=True):
    return run_rulelens("probe", *args, check=check)


def make_file(tmp_path, n=40, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 0] += 2 * y
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["seq"] = rng.normal(size=(n, 5, d)).astype(np.float32)   # [N, pos, d]: has a position axis
        f["y"] = y
        f["unique"] = np.arange(n)                                   # as many classes as examples
    return path, X, y


def test_linear_probe_with_as_many_classes_as_examples_is_an_error(tmp_path):
    path, *_ = make_file(tmp_path)
    proc = probe("linear", "--file", path, "--site", "/X", "--label", "/unique", "--no-control", check=False)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith("error: ") and "\nfix: " in proc.stderr
    assert "40 examples but 40 classes" in proc.stderr and "label /unique" in proc.stderr
    assert "0.0000" not in proc.stdout


def test_k_at_least_n_is_an_error(tmp_path):
    path, *_ = make_file(tmp_path)
    for k in ["40", "41"]:
        proc = probe("separability", "--file", path, "--site", "/X", "--label", "/y", "--k", k, check=False)
        assert proc.returncode == 1 and f"--k {k}" in proc.stderr and "majority" in proc.stderr, proc.stderr
    out = json.loads(probe("separability", "--file", path, "--site", "/X", "--label", "/y", "--k", "39", "--json").stdout)
    assert out["sites"][0]["knn_k"] == 39


def test_position_on_single_position_data_is_an_error(tmp_path):
    path, *_ = make_file(tmp_path)
    for analysis, extra in [("separability", ["--label", "/y"]), ("linear", ["--label", "/y", "--no-control"]),
                            ("pca", []), ("cka", ["--site", "/seq"])]:
        proc = probe(analysis, "--file", path, "--site", "/X", *extra, "--position", "2", check=False)
        assert proc.returncode == 1, (analysis, proc.stdout)
        assert "--position 2 was given" in proc.stderr and "/X" in proc.stderr, proc.stderr
    # without --position, and on data with a position axis, it works
    probe("separability", "--file", path, "--site", "/X", "--label", "/y")
    probe("separability", "--file", path, "--site", "/seq", "--label", "/y", "--position", "2")


def test_fisher_reports_the_condition_number_and_flags_it(tmp_path):
    path, X, y = make_file(tmp_path)
    x = X.astype(np.float64)
    sw = sum((x[y == c] - x[y == c].mean(0)).T @ (x[y == c] - x[y == c].mean(0)) for c in range(4))
    s = json.loads(probe("separability", "--file", path, "--site", "/X", "--label", "/y", "--json").stdout)["sites"][0]
    assert abs(s["fisher_condition"] / np.linalg.cond(sw) - 1) < 1e-6
    assert s["fisher_ill_conditioned"] is False
    # d close to n: S_w nearly singular (condition > 1e6) — flagged in JSON and in the table
    rng = np.random.default_rng(1)
    n, d = 24, 19
    Z = rng.normal(size=(n, d)).astype(np.float32)
    Z[:, -1] = Z[:, 0] + 1e-4 * rng.normal(size=n).astype(np.float32)   # an almost duplicate column
    with h5py.File(path, "a") as f:
        f["Z"] = Z
        f["yz"] = np.arange(n) % 3
    s = json.loads(probe("separability", "--file", path, "--site", "/Z", "--label", "/yz", "--k", "3", "--json").stdout)["sites"][0]
    z = Z.astype(np.float64); yz = np.arange(n) % 3
    swz = sum((z[yz == c] - z[yz == c].mean(0)).T @ (z[yz == c] - z[yz == c].mean(0)) for c in range(3))
    assert np.linalg.cond(swz) > 1e6
    assert s["fisher_ill_conditioned"] is True and (s["fisher_condition"] is None or s["fisher_condition"] > 1e6)
    table = probe("separability", "--file", path, "--site", "/Z", "--label", "/yz", "--k", "3").stdout
    assert "!" in table and "condition number exceeds 1e+06" in table


def test_threads_option_on_probe(tmp_path):
    path, *_ = make_file(tmp_path)
    outs = [probe("separability", "--file", path, "--site", "/X", "--label", "/y", "--json", "--threads", t).stdout for t in ["1", "2", "0"]]
    one, two, auto = (json.loads(o)["sites"][0] for o in outs)
    for key in ["silhouette", "davies_bouldin", "calinski_harabasz", "fisher_ratio", "knn_accuracy"]:
        assert abs(one[key] - two[key]) <= 1e-5 * max(1, abs(one[key])) and abs(one[key] - auto[key]) <= 1e-5 * max(1, abs(one[key]))
    proc = probe("separability", "--file", path, "--site", "/X", "--label", "/y", "--threads", "-1", check=False)
    # a bad option value is a usage error (exit 64), refused before anything is read
    assert proc.returncode == 64 and "--threads is -1" in proc.stderr
