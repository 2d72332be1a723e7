"""Numbers in, numbers out, sizes before allocation, defaults that fit the data (issue 21 items 3, 4, 6, 7).

Each test checks one behaviour against an independent computation (scikit-learn, the JSONL read here) and fails on a
build without it: separability of data at 1e30 scale equals scikit-learn's; logits that would be NaN are refused;
undefined patching recoveries are null with the reason, never `nan`; wide probes, huge bootstraps, huge generated
sets and far too long contexts are refused with the estimate before anything is allocated; train and vae train
derive --ctx from the longest example; γ defaults to the reconstruction's scale.
"""
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.model_selection import LeaveOneOut, cross_val_score

import fuzzlib
from conftest import run_rulelens

TINY = ["--layers", "1", "--heads", "2", "--d-model", "16", "--batch", "4", "--steps", "2", "--warmup", "1", "--threads", "1"]


def clear(result):
    code, out, err = result
    assert fuzzlib.clear_error(code, err) or fuzzlib.usage_error(code, err), f"exit {code}: {err[-600:]}"
    return err


@pytest.fixture(scope="module")
def syl(tmp_path_factory):
    root = tmp_path_factory.mktemp("verb_numbers")
    # 240 examples: every one of the 24 forms is in the training part (the classifier's classes).
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "240", "--out", root / "syl", "--quiet")
    return root


def longest_sequence(*files):
    """[bos] + prompt + target + [eos] in characters, read independently of RuleLens."""
    return max(len(e["prompt"]) + len(e["target"]) + 2 for f in files for e in map(json.loads, Path(f).read_text().splitlines()))


def test_separability_at_1e30_scale_equals_scikit_learn(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 8))
    x[:, 0] += 0.3 * y
    path = tmp_path / "scaled.h5"
    with h5py.File(path, "w") as f:
        f["X"] = x.astype(np.float32)
        f["X30"] = (x * 1e30).astype(np.float32)
        f["y"] = y.astype(np.int32)
    for site, data in [("/X", x.astype(np.float32)), ("/X30", (x * 1e30).astype(np.float32))]:
        proc = run_rulelens("probe", "separability", "--file", path, "--site", site, "--label", "/y", "--json", "--quiet")
        s = json.loads(proc.stdout)["sites"][0]
        reference = silhouette_score(data.astype(np.float64), y)
        assert abs(s["silhouette"] - reference) < 1e-4, (site, s["silhouette"], reference)
        knn = cross_val_score(KNeighborsClassifier(n_neighbors=5), data.astype(np.float64), y, cv=LeaveOneOut()).mean()
        assert abs(s["knn_accuracy"] - knn) < 0.05, (site, s["knn_accuracy"], knn)
        assert s["kmeans_inertia"] is not None and np.isfinite(s["kmeans_inertia"]) and s["kmeans_nmi"] >= 0
    # The same clustering at both scales: k-means is scale-free, its inertia scales by the square.
    both = [json.loads(run_rulelens("probe", "separability", "--file", path, "--site", s, "--label", "/y", "--json",
                                    "--quiet").stdout)["sites"][0] for s in ["/X", "/X30"]]
    assert both[0]["kmeans_nmi"] == pytest.approx(both[1]["kmeans_nmi"], abs=1e-9)
    assert both[1]["kmeans_inertia"] == pytest.approx(both[0]["kmeans_inertia"] * 1e60, rel=1e-3)


def test_probe_of_wide_data_is_refused_with_the_estimate(tmp_path):
    path = tmp_path / "wide.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.random.default_rng(0).normal(size=(20, 200_000)).astype(np.float32)
        f["y"] = (np.arange(20) % 2).astype(np.int32)
    err = clear(fuzzlib.run(["probe", "separability", "--file", path, "--site", "/X", "--label", "/y"], timeout=60))
    assert "needs about" in err and "GB" in err and "pca" in err
    for method in ["pca", "linear"]:
        code, out, err = fuzzlib.run(["probe", method, "--file", path, "--site", "/X", "--label", "/y", "--json"], timeout=120,
                                     env={**os.environ, "RULELENS_MEMORY_LIMIT": "50M"})
        assert fuzzlib.clear_error(code, err) and "more than the 50.0 MB" in err, (method, code, err[-400:])


def test_logits_that_would_not_be_numbers_are_refused(syl, tmp_path):
    run_rulelens("train", "--data", syl / "syl", "--out", tmp_path / "ck", "--ctx", "96", *TINY, "--quiet")
    test = syl / "syl" / "test.jsonl"
    for values, words in [([1e39] * 16, "float32 cannot hold"), ([3e38] * 16, "NaN or infinite")]:
        vector = tmp_path / "v.json"
        vector.write_text(json.dumps(values))
        out = tmp_path / "lg"
        err = clear(fuzzlib.run(["logits", "--checkpoint", tmp_path / "ck", "--data", test, "--out", out,
                                 "--add", f"blocks.0.hook_resid_pre={vector}"], timeout=60))
        assert words in err
        assert not (out / "logits.safetensors").exists()


def test_patch_with_equal_baselines_reports_null_with_the_reason(syl, tmp_path):
    run_rulelens("train", "--data", syl / "syl", "--out", tmp_path / "ck", "--ctx", "96", *TINY, "--quiet")
    run_rulelens("patch", "--checkpoint", tmp_path / "ck", "--data", syl / "syl", "--limit", "4", "--sites", "resid_pre",
                 "--out", tmp_path / "p1", "--quiet")
    clean = tmp_path / "p1" / "pairs" / "clean.jsonl"
    proc = run_rulelens("patch", "--checkpoint", tmp_path / "ck", "--clean", clean, "--corrupt", clean, "--sites", "resid_pre", "--quiet")
    assert "nan" not in proc.stdout.lower()
    assert "undefined" in proc.stdout
    result = json.loads(run_rulelens("patch", "--checkpoint", tmp_path / "ck", "--clean", clean, "--corrupt", clean, "--sites",
                                     "resid_pre", "--quiet", "--json").stdout)
    assert result["clean"] == result["corrupt"]
    assert all(v is None for row in result["sites"]["resid_pre"]["normalized"] for v in row)
    assert "undefined" in result["normalized_undefined"]


def test_sizes_are_refused_before_allocation(syl, tmp_path):
    # A context far beyond every example: refused at once, naming the data's length and the cost, nothing created.
    longest = longest_sequence(syl / "syl" / "train.jsonl")
    err = clear(fuzzlib.run(["train", "--data", syl / "syl", "--out", tmp_path / "t", *TINY, "--ctx", "50000000"], timeout=20))
    assert f"--ctx {longest}" in err and not (tmp_path / "t").exists()
    # Bootstrap resamples beyond the bound, in both verbs that take --bootstrap, the same way.
    for verb in ["ablate", "retrieve"]:
        err = clear(fuzzlib.run([verb, "--checkpoint", tmp_path / "none", "--data", syl / "syl", "--bootstrap", "1000000000"]))
        assert "--bootstrap" in err and "1000000" in err
    # A generated set that cannot fit: refused with its estimated size, in seconds, nothing written.
    err = clear(fuzzlib.run(["data", "generate", "--task", "syllogism", "--count", "1000000000000", "--out", tmp_path / "g"], timeout=20))
    assert "TB" in err and "--count" in err and not (tmp_path / "g").exists()


def test_weight_decay_refusal_names_weight_decay(syl, tmp_path):
    for verb in [["train"], ["vae", "train", "--latent", "4"]]:
        err = clear(fuzzlib.run([*verb, "--data", syl / "syl", "--out", tmp_path / "w", *TINY, "--weight-decay", "1e30"]))
        assert "--weight-decay" in err.split("fix:")[1] and "lower --lr" not in err


def test_train_and_vae_train_derive_ctx_from_the_longest_example(syl, tmp_path):
    longest = longest_sequence(syl / "syl" / "train.jsonl", syl / "syl" / "test.jsonl")
    assert longest > 64   # the old defaults (32, 64) refused these examples
    proc = run_rulelens("train", "--data", syl / "syl", "--out", tmp_path / "t", *TINY)
    assert f"--ctx not given: using {longest} positions" in proc.stderr
    assert json.loads((tmp_path / "t" / "config.json").read_text())["n_positions"] == longest
    proc = run_rulelens("vae", "train", "--data", syl / "syl", "--out", tmp_path / "v", *TINY, "--enc-layers", "1", "--latent", "4")
    assert f"--ctx not given: using {longest} positions" in proc.stderr
    assert json.loads((tmp_path / "v" / "config.json").read_text())["n_positions"] == longest
    # A given --ctx is kept as given.
    run_rulelens("train", "--data", syl / "syl", "--out", tmp_path / "t2", *TINY, "--ctx", str(longest + 7), "--quiet")
    assert json.loads((tmp_path / "t2" / "config.json").read_text())["n_positions"] == longest + 7


def test_supervise_weight_defaults_to_the_reconstruction_scale(syl, tmp_path):
    rows = [json.loads(line) for line in (syl / "syl" / "train.jsonl").read_text().splitlines()]
    # decode all: every position after <bos> is reconstructed (prompt + target + eos).
    expected = np.mean([len(e["prompt"]) + len(e["target"]) + 1 for e in rows])
    proc = run_rulelens("vae", "train", "--data", syl / "syl", "--out", tmp_path / "v", *TINY, "--enc-layers", "1", "--latent", "4",
                        "--supervise", "rule")
    config = json.loads((tmp_path / "v" / "config.json").read_text())
    assert config["supervise_weight"] == pytest.approx(expected, rel=1e-5)
    assert f"γ = {expected:.2f}" in proc.stderr
    run_rulelens("vae", "train", "--data", syl / "syl", "--out", tmp_path / "v1", *TINY, "--enc-layers", "1", "--latent", "4",
                 "--supervise", "rule", "--supervise-weight", "1", "--quiet")
    assert json.loads((tmp_path / "v1" / "config.json").read_text())["supervise_weight"] == 1


def test_an_empty_list_in_a_spec_is_refused(syl, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"""name: empty-hooks
claim: an empty list is refused
steps:
  - train: {{id: ck, data: {syl / 'syl'}, layers: 1, heads: 2, d-model: 16, batch: 4, steps: 2, warmup: 1}}
  - dump: {{id: d, checkpoint: "${{ck}}", data: {syl / 'syl'}, hooks: []}}
""")
    err = clear(fuzzlib.run(["run", spec, "--out", tmp_path / "o"], timeout=120))
    assert "hooks" in err and "empty list" in err
