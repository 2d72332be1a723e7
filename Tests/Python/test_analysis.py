"""rulelens probe against scikit-learn / numpy on the same synthetic data (written with h5py).

Every number the CLI reports (--json) is compared with the reference implementation users trust:
scikit-learn's PCA, silhouette_score, davies_bouldin_score, calinski_harabasz_score, LogisticRegression,
normalized_mutual_info_score, NearestNeighbors; numpy for Fisher's ratio and linear CKA.
"""
import json
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (calinski_harabasz_score, davies_bouldin_score, normalized_mutual_info_score,
                             silhouette_score)
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors

from conftest import run_rulelens

N, D, K = 240, 12, 4


def blobs(seed=0, n=N, d=D, k=K, spread=1.2):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * spread
    y = rng.integers(0, k, size=n)
    x = centres[y] + rng.normal(size=(n, d)) * (1 + np.arange(d) / d)
    return (x + 5).astype(np.float32), y


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """A small dump-shaped file: two [N, d] sites, one [N, T, d] site with lengths, meta columns."""
    path = tmp_path_factory.mktemp("probe") / "acts.h5"
    x0, y = blobs(0)
    rng = np.random.default_rng(1)
    x1 = (x0 @ rng.normal(size=(D, 20))).astype(np.float32) + rng.normal(size=(N, 20)).astype(np.float32)
    seq = rng.normal(size=(N, 6, D)).astype(np.float32)
    lengths = rng.integers(2, 7, size=N)
    with h5py.File(path, "w") as f:
        f["acts/blocks.0.hook_attn_out"] = x0
        f["acts/blocks.0.hook_mlp_out"] = x1
        seq_ds = f.create_dataset("acts/blocks.1.hook_resid_post", data=seq)
        seq_ds.attrs["dims"] = "example,pos,d_model"
        f["meta/rule_id"] = y.astype(np.int32)
        f["meta/rule"] = np.array([f"rule{v}" for v in y], dtype=h5py.string_dtype())
        f["meta/length"] = lengths.astype(np.int32)
        f["probe_x"] = x0 - 5  # centred copy: scikit-learn's lbfgs needs ~30 rather than ~800 iterations on it
        f["meta/prompt"] = np.array([f"p{i % 60}" for i in range(N)], dtype=h5py.string_dtype())
    return path, x0, x1, seq, lengths, y


def probe(*args):
    return json.loads(run_rulelens("probe", *args, "--json").stdout)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def test_pca_matches_sklearn_and_streaming_equals_in_memory(dump, tmp_path):
    path, x0, *_ = dump
    out = probe("pca", "--file", path, "--site", "blocks.0.hook_attn_out", "--components", "5", "--chunk-rows", "7")
    site = out["sites"][0]
    ref = PCA(n_components=5).fit(x0.astype(np.float64))
    np.testing.assert_allclose(site["explained_variance_ratio"], ref.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(site["explained_variance"], ref.explained_variance_, rtol=1e-4)
    comps = np.array(site["components"])
    for c in range(5):  # equal up to sign
        sign = np.sign(comps[c] @ ref.components_[c])
        np.testing.assert_allclose(comps[c] * sign, ref.components_[c], atol=2e-3)
    # 3 of 20 components: the covariance path uses the top-k eigensolver (dsyevr)
    x1 = dump[2].astype(np.float64)
    few = probe("pca", "--file", path, "--site", "blocks.0.hook_mlp_out", "--components", "3")["sites"][0]
    np.testing.assert_allclose(few["explained_variance_ratio"], PCA(n_components=3).fit(x1).explained_variance_ratio_, rtol=1e-4)
    svd = probe("pca", "--file", path, "--site", "blocks.0.hook_attn_out", "--components", "5", "--solver", "svd")
    np.testing.assert_allclose(svd["sites"][0]["explained_variance_ratio"], site["explained_variance_ratio"], rtol=1e-5)
    # --out DIR holds the projections (probe.h5) and an SVG scatter with the variance on the axes (plot.svg)
    h5, svg = tmp_path / "pca" / "probe.h5", tmp_path / "pca" / "plot.svg"
    run_rulelens("probe", "pca", "--file", path, "--site", "blocks.0.hook_attn_out", "--components", "3",
                 "--label", "rule", "--out", tmp_path / "pca")
    with h5py.File(h5) as f:
        proj = f["pca/blocks.0.hook_attn_out/projections"][()]
    ref3 = PCA(n_components=3).fit(x0.astype(np.float64)).transform(x0.astype(np.float64))
    np.testing.assert_allclose(np.abs(proj), np.abs(ref3), atol=2e-3 * np.abs(ref3).max())
    text = svg.read_text()
    ET.fromstring(text)
    assert "% of variance" in text and "rule3" in text


def test_separability_matches_sklearn(dump, tmp_path):
    path, x0, *_, y = dump
    h5 = tmp_path / "sep.h5"
    out = probe("separability", "--file", path, "--site", "blocks.0.hook_attn_out", "--label", "rule_id", "--out", h5)
    s = out["sites"][0]
    x = x0.astype(np.float64)
    assert rel(s["silhouette"], silhouette_score(x, y)) < 1e-4
    assert rel(s["davies_bouldin"], davies_bouldin_score(x, y)) < 1e-4
    assert rel(s["calinski_harabasz"], calinski_harabasz_score(x, y)) < 1e-4
    with h5py.File(h5) as f:
        clusters = f["kmeans/blocks.0.hook_attn_out"][()]
    assert rel(s["kmeans_nmi"], normalized_mutual_info_score(y, clusters)) < 1e-4
    # leave-one-out 5-NN (self excluded), ties to the smallest class as KNeighborsClassifier
    _, idx = NearestNeighbors(n_neighbors=5).fit(x).kneighbors()
    pred = np.array([np.bincount(y[row], minlength=K).argmax() for row in idx])
    assert abs(s["knn_accuracy"] - (pred == y).mean()) <= 1.0 / N + 1e-12
    # Fisher's ratio tr(Sw^-1 Sb) with unnormalised scatter matrices
    mu = x.mean(0)
    sw = sum((x[y == c] - x[y == c].mean(0)).T @ (x[y == c] - x[y == c].mean(0)) for c in range(K))
    sb = sum((y == c).sum() * np.outer(x[y == c].mean(0) - mu, x[y == c].mean(0) - mu) for c in range(K))
    assert s["fisher_ridge"] == 0
    assert rel(s["fisher_ratio"], np.trace(np.linalg.solve(sw, sb))) < 1e-4


def test_string_labels_and_position_selection(dump):
    path, _, _, seq, lengths, y = dump
    for position, ref in [("last", seq[np.arange(N), lengths - 1]), ("1", seq[:, 1]),
                          ("-2", seq[np.arange(N), lengths - 2]), ("mean", None)]:
        if ref is None:
            ref = np.stack([seq[i, :lengths[i]].mean(0) for i in range(N)])
        out = probe("separability", "--file", path, "--site", "blocks.1.hook_resid_post", "--label", "rule",
                    f"--position={position}")
        assert rel(out["sites"][0]["calinski_harabasz"], calinski_harabasz_score(ref.astype(np.float64), y)) < 1e-4
    # a position past some example's length is an error, not a silently padded row
    proc = run_rulelens("probe", "separability", "--file", path, "--site", "blocks.1.hook_resid_post", "--label", "rule",
                        "--position", "5", check=False)
    assert proc.returncode == 1 and "outside example" in proc.stderr


def test_linear_probe_matches_sklearn_per_fold(dump):
    path, x0, *_, y = dump
    out = probe("linear", "--file", path, "--site", "/probe_x", "--label", "rule_id", "--C", "0.5",
                "--folds", "5", "--contiguous-folds")
    s = out["sites"][0]
    x0 = x0 - 5
    for f, (train, test) in enumerate(KFold(n_splits=5).split(x0)):
        clf = LogisticRegression(C=0.5, max_iter=2000, tol=1e-6).fit(x0[train].astype(np.float64), y[train])
        correct = int((clf.predict(x0[test].astype(np.float64)) == y[test]).sum())
        assert abs(s["fold_correct"][f] - correct) <= 1, (f, s["fold_correct"][f], correct)
    # control task over the prompt types: a probe cannot predict random labels of unseen types
    assert s["control_accuracy"] is not None and s["selectivity"] == pytest.approx(s["accuracy"] - s["control_accuracy"])
    assert s["control_accuracy"] < s["accuracy"]


def test_binary_probe_matches_sklearn(dump):
    path, x0, *_, y = dump
    with h5py.File(path, "a") as f:
        if "meta/binary" not in f:
            f["meta/binary"] = (y % 2).astype(np.int64)
    out = probe("linear", "--file", path, "--site", "blocks.0.hook_mlp_out", "--label", "binary", "--C", "0.05",
                "--folds", "4", "--contiguous-folds", "--no-control")
    x1 = dump[2].astype(np.float64)
    for f, (train, test) in enumerate(KFold(n_splits=4).split(x1)):
        clf = LogisticRegression(C=0.05, max_iter=2000, tol=1e-6).fit(x1[train], y[train] % 2)
        assert abs(out["sites"][0]["fold_correct"][f] - int((clf.predict(x1[test]) == y[test] % 2).sum())) <= 1


def linear_cka(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))


def test_cka_matrix_and_heatmap(dump, tmp_path):
    path, x0, x1, *_ = dump
    svg = tmp_path / "cka" / "plot.svg"
    out = probe("cka", "--file", path, "--site", "blocks.0.*", "--out", tmp_path / "cka")
    assert out["sites"] == ["blocks.0.hook_attn_out", "blocks.0.hook_mlp_out"]
    assert rel(out["cka"], linear_cka(x0.astype(np.float64), x1.astype(np.float64))) < 1e-4
    assert out["matrix"][0][0] == 1
    ET.fromstring(svg.read_text())


def test_sweep_is_ordered_by_layer_and_plots(dump, tmp_path):
    path, *_ = dump
    svg = tmp_path / "sep" / "plot.svg"
    proc = run_rulelens("probe", "separability", "--file", path, "--site", "*", "--label", "rule_id", "--out", tmp_path / "sep")
    rows = [line.split()[2] for line in proc.stdout.splitlines()[2:] if not line.startswith("wrote")]
    assert rows == ["blocks.0.hook_attn_out", "blocks.0.hook_mlp_out", "blocks.1.hook_resid_post"]
    text = svg.read_text()
    ET.fromstring(text)
    assert "attention" in text and "ffn" in text


@pytest.mark.parametrize("args, message", [
    (["--site", "blocks.0.hook_atn_out", "--label", "rule_id"], "did you mean blocks.0.hook_attn_out"),
    (["--site", "blocks.0.hook_attn_out", "--label", "nope"], "no label column nope"),
    (["--site", "blocks.0.hook_attn_out", "--label", "one"], "at least 2"),
    (["--site", "/nan", "--label", "rule_id"], "NaN"),
    (["--site", "/tiny", "--label", "/tiny_labels"], "classes"),
])
def test_degenerate_input_is_a_clear_error(dump, tmp_path, args, message):
    path, x0, *_ = dump
    bad = tmp_path / "bad.h5"
    with h5py.File(path) as src, h5py.File(bad, "w") as f:
        src.copy("acts", f)
        src.copy("meta", f)
        f["meta/one"] = np.zeros(N, dtype=np.int32)
        nan = x0.copy()
        nan[3, 4] = np.nan
        f["nan"] = nan
        f["tiny"] = x0[:3]
        f["tiny_labels"] = np.array([0, 1, 2], dtype=np.int32)
    proc = run_rulelens("probe", "separability", "--file", bad, *args, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "fix:" in proc.stderr
    assert "nan" not in proc.stdout.lower()


def test_constant_and_duplicate_columns_give_documented_values(tmp_path):
    x, y = blobs(3)
    x = np.concatenate([x, np.full((N, 1), 2.0, np.float32), x[:, :2]], axis=1)
    path = tmp_path / "degenerate.h5"
    with h5py.File(path, "w") as f:
        f["X"] = x
        f["y"] = y
    s = probe("separability", "--file", path, "--site", "/X", "--label", "/y")["sites"][0]
    assert s["fisher_ridge"] > 0 and np.isfinite(s["fisher_ratio"])
    assert rel(s["silhouette"], silhouette_score(x.astype(np.float64), y)) < 1e-4


def test_out_is_never_overwritten_without_force(dump, tmp_path):
    path, *_ = dump
    out = tmp_path / "keep.h5"
    out.write_bytes(b"user data")
    proc = run_rulelens("probe", "cka", "--file", path, "--site", "blocks.0.*", "--out", out, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert out.read_bytes() == b"user data"
    run_rulelens("probe", "cka", "--file", path, "--site", "blocks.0.*", "--out", out, "--force")
    with h5py.File(out) as f:
        assert f["cka"].shape == (2, 2)
