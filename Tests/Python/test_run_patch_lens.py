"""`patch`, `lens` and `ablate` steps of `rulelens run`: their results are those of `rulelens patch` / `rulelens lens` /
`rulelens ablate` on the same checkpoint and examples (the step calls the same jobs), the per-layer summaries the specs read
(`by_site.SITE.layer_max` / `.last`, `dla.attn` / `dla.mlp`, `stage.NAME.accuracy`) are recomputed here with numpy
from the commands' JSON, the HDF5 outputs open in h5py, and a spec whose expectation reads them can fail."""
import json

import h5py
import numpy as np
import pytest

from conftest import ROOT, run_rulelens

SPEC = """\
name: patch and lens steps
claim: the patch and lens steps report what the commands report
steps:
  - data: {task: syllogism, count: 600, seed: 0}
  - train: {data: "${data}", layers: 2, heads: 2, d-model: 32, ctx: 96, steps: 80, batch: 32, lr: 3e-3, warmup: 10, seed: 0}
  - patch: {checkpoint: "${train}", data: "${data}", part: test, limit: 12, sites: [resid_pre, resid_mid, attn_out, mlp_out, z]}
  - lens: {checkpoint: "${train}", data: "${data}", part: test, label: rule, limit: 50}
  - ablate: {checkpoint: "${train}", data: "${data}", part: test, method: mean, positions: answer, bootstrap: 20,
             label: rule, separability-at: blocks.1.hook_resid_post}
expect:
  - that: max(patch.by_site.mlp_out.layer_max) > max(patch.by_site.attn_out.layer_max) - 1000
  - that: sum(lens.dla.mlp) + sum(lens.dla.attn) < 1000
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("patchlens")
    spec = base / "spec.yaml"
    spec.write_text(SPEC)
    out = base / "run"
    run_rulelens("run", spec, "--out", out, "--quiet", "--threads", "1", cwd=ROOT, timeout=300)
    results = json.loads((out / "results.json").read_text())
    return out, results["variants"][0]["steps"], results


def test_patch_step_equals_the_command(run, tmp_path):
    out, steps, _ = run
    got = steps["patch"]["results"]
    pairs = out / "patch" / "pairs"
    assert (pairs / "clean.jsonl").exists() and (pairs / "corrupt.jsonl").exists()
    clean = [json.loads(l) for l in (pairs / "clean.jsonl").read_text().splitlines()]
    corrupt = [json.loads(l) for l in (pairs / "corrupt.jsonl").read_text().splitlines()]
    assert len(clean) == len(corrupt) == got["pairs"] == got["pairs_built"] <= 12
    # Counterparts: the same prompt length, another first answer token (`data pairs` semantics).
    for c, k in zip(clean, corrupt):
        assert len(c["prompt"]) == len(k["prompt"]) and c["target"][0] != k["target"][0]
    ref = json.loads(run_rulelens("patch", "--checkpoint", out / "train", "--clean", pairs / "clean.jsonl",
                                  "--corrupt", pairs / "corrupt.jsonl",
                                  *[a for s in ("resid_pre", "resid_mid", "attn_out", "mlp_out", "z") for a in ("--sites", s)],
                                  "--json").stdout)
    # The command runs with its own thread count: float32 sums may differ in the last bits, hence tolerances.
    assert got["clean"] == pytest.approx(ref["clean"], rel=1e-5, abs=1e-6)
    assert got["corrupt"] == pytest.approx(ref["corrupt"], rel=1e-5, abs=1e-6)
    assert set(got["sites"]) == set(ref["sites"]) == {"resid_pre", "resid_mid", "attn_out", "mlp_out", "z"}
    for site, m in ref["sites"].items():
        normalized = np.array(got["sites"][site]["normalized"], dtype=float)
        np.testing.assert_allclose(normalized, np.array(m["normalized"], dtype=float), rtol=1e-3, atol=1e-4)
        summary = got["by_site"][site]
        np.testing.assert_allclose(summary["layer_max"], np.nanmax(normalized, axis=1), rtol=1e-12)
        if site == "z":
            assert "last" not in summary
        else:
            np.testing.assert_allclose(summary["last"], normalized[:, -1], rtol=1e-12)
    # The last layer's resid_mid at the last position is all the MLP and unembedding see of that position:
    # patching it restores the clean logit difference exactly (normalised 1).
    assert got["by_site"]["resid_mid"]["last"][-1] == pytest.approx(1.0, abs=1e-3)
    with h5py.File(out / "patch" / "patch.h5", "r") as f:
        np.testing.assert_allclose(f["mlp_out/normalized"][...], np.array(got["sites"]["mlp_out"]["normalized"], dtype=float),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f["baselines"][...], [got["clean"], got["corrupt"]], rtol=1e-9)
    figures = set(steps["patch"]["figures"])
    assert figures == {f"patch.{s}.svg" for s in ("resid_pre", "resid_mid", "attn_out", "mlp_out", "z")}


def test_lens_step_equals_the_command(run):
    out, steps, _ = run
    got = steps["lens"]["results"]
    assert got["n"] == 50
    ref = json.loads(run_rulelens("lens", "--checkpoint", out / "train", "--data", out / "data", "--part", "test", "--limit", "50",
                                  "--label", "rule", "--json").stdout)
    examples = out / "data" / "test.jsonl"
    assert got["stages"] == ref["stages"] and got["components"] == ref["components"]
    attribution = np.array(got["overall"]["dla"]["attribution"], dtype=float)
    np.testing.assert_allclose(attribution, np.array(ref["overall"]["dla"]["attribution"], dtype=float), rtol=1e-4, atol=1e-5)
    layers = sorted({int(c.split()[0][1:]) for c in ref["components"] if c.startswith("L")})
    for kind in ("attn", "mlp"):
        expected = [attribution[ref["components"].index(f"L{l} {kind}")] for l in layers]
        np.testing.assert_allclose(got["dla"][kind], expected, rtol=1e-12)
    for s, name in enumerate(ref["stages"]):
        assert got["stage"][name]["accuracy"] == got["overall"]["lens"]["accuracy"][s]
        assert got["stage"][name]["probability"] == got["overall"]["lens"]["probability"][s]
        assert got["stage"][name]["probability"] == pytest.approx(ref["overall"]["lens"]["probability"][s], rel=1e-4)
    assert set(got["by_label"]) == {json.loads(l)["rule"] for l in examples.read_text().splitlines()[:50]}
    # The lens's last stage is the model's own output: its top-1 accuracy is recomputed from the HDF5 logits.
    with h5py.File(out / "lens" / "lens.h5", "r") as f:
        logits = f["lens/logits"][...]
        answer = f["meta/answer_token"][...]
        top1 = (logits[-1].argmax(axis=-1) == answer).mean()
    assert got["stage"]["final_post"]["accuracy"] == pytest.approx(top1, abs=1e-12)
    assert set(steps["lens"]["figures"]) == {"lens.svg", "lens.dla.svg"}


def test_ablate_step_with_positions_and_separability_equals_the_command(run):
    out, steps, _ = run
    got = steps["ablate"]["results"]
    cmd = steps["ablate"]["command"]
    assert "--method mean --positions answer" in cmd and "--separability-at blocks.1.hook_resid_post" in cmd
    ref = json.loads(run_rulelens("ablate", "--checkpoint", out / "train", "--data", out / "data", "--part", "test",
                                  "--method", "mean", "--positions", "answer", "--bootstrap", "20", "--label", "rule",
                                  "--separability-at", "blocks.1.hook_resid_post", "--json").stdout)
    assert got["positions"] == ref["positions"] == "answer" and got["method"] == "mean"
    assert len(ref["overall"]["cells"]) == len(got["overall"]["cells"]) == 4   # 2 layers × attn, mlp
    for mine, theirs in zip(got["overall"]["cells"], ref["overall"]["cells"]):
        assert mine["component"] == theirs["component"] and mine["layer"] == theirs["layer"]
        for metric in ("accuracy", "loss"):
            assert mine["effects"][metric]["change"]["value"] == pytest.approx(theirs["effects"][metric]["change"]["value"], rel=1e-4, abs=1e-6)
    assert got["separability"]["site"] == "blocks.1.hook_resid_post"
    for mine, theirs in zip(got["separability"]["cells"], ref["separability"]["cells"]):
        assert mine["name"] == theirs["name"]
        assert mine["scores"]["knn_accuracy"] == pytest.approx(theirs["scores"]["knn_accuracy"], abs=1e-9)
        assert mine["scores"]["silhouette"] == pytest.approx(theirs["scores"]["silhouette"], rel=1e-3, abs=1e-5)
    # The per-component summary the specs read is each cell's accuracy change, layer by layer.
    for component in ("attn", "mlp"):
        expected = [c["effects"]["accuracy"]["change"]["value"] for c in got["overall"]["cells"] if c["component"] == component]
        assert got["by_component"][component]["accuracy_change"] == expected
    # Each component's ablation at the answer position changes the loss by its own amount.
    changes = [c["effects"]["loss"]["change"]["value"] for c in got["overall"]["cells"]]
    assert len(set(round(x, 9) for x in changes)) == 4 and all(x != 0 for x in changes), changes


def test_an_expectation_over_patch_results_can_fail(run, tmp_path):
    spec = tmp_path / "fail.yaml"
    spec.write_text(SPEC.replace("- 1000", "+ 1000"))
    proc = run_rulelens("run", spec, "--out", run[0], "--quiet", "--threads", "1", cwd=ROOT, check=False, timeout=300)
    assert proc.returncode == 1
    assert "FAIL  max(patch.by_site.mlp_out.layer_max) > max(patch.by_site.attn_out.layer_max) + 1000" in proc.stdout
    # The steps themselves were up to date: nothing re-ran.
    assert "running" not in proc.stderr
