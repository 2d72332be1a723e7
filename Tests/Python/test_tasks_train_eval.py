"""`rulelens train` / `rulelens eval` with --task in place of --data: the same data as `data generate`,
resume checks, and the operand-plane report beside eval's --out."""
import json

import numpy as np

from conftest import run_rulelens

TINY = ["--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 16, "--batch", 8, "--steps", 4, "--save-every", 2,
        "--quiet", "--threads", 1]
TASK = ["--task", "addition", "--split", "leave-square-out", "--half", 5, "--seed", 3]


def test_train_generates_the_same_data_as_data_generate(tmp_path):
    run_rulelens("train", *TASK, "--out", tmp_path / "run", *TINY)
    run_rulelens("data", "generate", *TASK, "--out", tmp_path / "gen")
    for f in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (tmp_path / "run" / "data" / f).read_bytes() == (tmp_path / "gen" / f).read_bytes()
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["seed"] == 3
    # Resuming with other data options is refused; with the same ones it is fine.
    r = run_rulelens("train", "--task", "addition", "--split", "leave-square-out", "--half", 6, "--seed", 3,
                     "--out", tmp_path / "run", *TINY, "--resume", check=False)
    assert r.returncode != 0 and "other options" in r.stderr
    run_rulelens("train", *TASK, "--out", tmp_path / "run", *TINY, "--resume")
    run_rulelens("train", "--out", tmp_path / "run", "--resume", "--quiet")      # data options from the saved run


def test_eval_writes_the_plane_report(tmp_path):
    run_rulelens("train", *TASK, "--out", tmp_path / "run", *TINY)
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", *TASK, "--json", "--out", tmp_path / "ev")
    full = json.loads(proc.stdout)
    assert set(full) == {"test", "provenance"}        # results are keyed by part
    result = full["test"]
    assert result["n"] == 121 and {"inside", "centre", "rim", "answer_accuracy"} <= set(result)
    preds = [json.loads(l) for l in (tmp_path / "ev" / "predictions_test.jsonl").read_text().splitlines()]
    grid = np.load(tmp_path / "ev" / "plane_test.npy")
    assert grid.shape == (100, 100)
    square = grid[45:56, 45:56]
    assert not np.isnan(square).any() and np.isnan(grid).sum() == 10000 - 121
    assert np.isclose(np.nanmean(grid), result["inside"])
    assert np.isclose(result["answer_accuracy"], np.mean([p["prediction"] == p["target"] for p in preds]))
    assert (tmp_path / "ev" / "plane_test.svg").read_text().startswith("<svg")
    # `data plane` reads eval's predictions as they are (paired with the test part line by line).
    pred = tmp_path / "ev" / "predictions_test.jsonl"
    run_rulelens("data", "plane", tmp_path / "run" / "data", "--predictions", pred, "--out", tmp_path / "again")
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), grid)
    r = run_rulelens("data", "plane", tmp_path / "run" / "data", "--predictions", pred, "--part", "train",
                     "--out", tmp_path / "wrong", check=False)
    assert r.returncode != 0 and "--part" in r.stderr
    # The whole plane through the generated directory, and the same numbers either way.
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", tmp_path / "run" / "data", "--part", "all", "--json")
    assert json.loads(proc.stdout)["all"]["n"] == 10000
    proc = run_rulelens("eval", "--checkpoint", tmp_path / "run", "--data", tmp_path / "run" / "data", "--json")
    assert json.loads(proc.stdout) == full
    # Refusals: both sources, an existing plane file (kept as it was), a typed enum.
    r = run_rulelens("eval", "--checkpoint", tmp_path / "run", *TASK, "--data", pred, check=False)
    assert r.returncode != 0 and "both --data and --task" in r.stderr
    (tmp_path / "p2").mkdir()
    (tmp_path / "p2" / "plane_test.svg").write_text("mine")
    r = run_rulelens("eval", "--checkpoint", tmp_path / "run", *TASK, "--out", tmp_path / "p2", check=False)
    assert r.returncode != 0 and (tmp_path / "p2" / "plane_test.svg").read_text() == "mine"
    r = run_rulelens("eval", "--checkpoint", tmp_path / "run", *TASK, "--mode", "greedier", check=False)
    assert r.returncode != 0 and "greedy" in r.stderr and "teacher-forced" in r.stderr
