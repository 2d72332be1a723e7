"""`rulelens retrieve` on the Llama/Qwen2 family (grouped-query attention: keys and values narrower than queries): every
site's conditions are measured, a prior at α = 0 measures bitwise what the unedited run does, attention masses are probabilities, and
the unedited run's exact match equals `rulelens eval`'s accuracy on the same examples."""
import json

import pytest

from conftest import run_rulelens


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieve-qwen2")
    run_rulelens("data", "generate", "--task", "syllogism", "--count", "240", "--out", root / "d")
    run_rulelens("train", "--arch", "qwen2", "--kv-heads", 1, "--layers", 2, "--heads", 2, "--d-model", 32, "--ctx", 96,
                 "--steps", 200, "--batch", 16, "--lr", 3e-3, "--warmup", 10, "--threads", 1, "--quiet",
                 "--data", root / "d" / "train.jsonl", "--out", root / "m")
    return root


def retrieve(root, *extra):
    out = run_rulelens("retrieve", "--checkpoint", root / "m", "--data", root / "d" / "test.jsonl", "--limit", 30,
                       "--bootstrap", 10, "--sites", "q", "--sites", "k", "--sites", "v", "--json", *extra)
    return json.loads(out.stdout)


def test_retrieve_measures_every_site_of_a_grouped_query_model(qwen2):
    r = retrieve(qwen2, "--alpha", 0, "--alpha", 2)
    names = set(r["by_condition"])
    for site in "qkv":
        for layer in (0, 1):
            for kind in ("prior", "wrong_prior", "random"):
                assert f"{kind}_{site}_{layer}_a2" in names
            # Means equal bitwise (each condition's bootstrap draws its own resamples, so intervals differ).
            for metric in ("exact", "token_accuracy", "mass", "rank", "entropy"):
                assert r["by_condition"][f"prior_{site}_{layer}_a0"][metric]["mean"] == r["by_condition"]["none"][metric]["mean"]
    for site in "kv":     # the narrower key and value sites are edited, not skipped
        assert any(r["by_condition"][f"prior_{site}_{layer}_a2"]["mass"]["mean"] != r["by_condition"]["none"]["mass"]["mean"]
                   for layer in (0, 1))
    for c in r["conditions"]:
        masses = [m for m in c["mean_mass_by_layer_head"] if m is not None]
        assert masses and all(0 <= m <= 1 for m in masses)
    assert r["layers"] == 2 and r["heads"] == 2
    evaluated = json.loads(run_rulelens("eval", "--checkpoint", qwen2 / "m", "--data", qwen2 / "d" / "test.jsonl",
                                        "--limit", 30, "--json").stdout)
    assert r["by_condition"]["none"]["exact"]["mean"] == pytest.approx(evaluated["test"]["accuracy"], abs=1e-12)
