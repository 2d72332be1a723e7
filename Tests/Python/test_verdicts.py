"""Verdicts of `rulelens run`: `seeds:` runs the steps once per seed and the report shows every seed's value; interval
checks (`ci_low`, `ci_high`) are the seed-level percentile bootstrap, checked against numpy; an interval that crosses
the bound FAILs where the mean alone would pass; a failed precondition makes the checks that need it INCONCLUSIVE
(a model trained for one step); exit codes 0/1/2/3; the findings page from the runs' results.json."""
import json

import numpy as np
import pytest

from conftest import run_rulelens

# Seed s sets train-fraction 0.s, so each seed's training-set size is known and the values are skewed.
SEEDS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]

SEEDED = f"""
name: seeded — constructed seed-level values
claim: the training part holds more than 3,000 cases
study: {{citation: "A constructed case", setting: "train-fraction 0.SEED", measure: training cases, number: "4000",
         here: "mean(data.train)"}}
deviations:
  - {{aspect: data, study: "one fraction", here: "a fraction per seed"}}
seeds: {SEEDS}
steps:
  - data: {{task: addition, split: random, train-fraction: "0.${{seed}}", seed: 0}}
expect:
  - that: mean(data.train) > 3000
  - that: ci_low(data.train) > 3000
    why: the mean is above the bound, but its interval crosses it
  - that: ci_high(data.train) > 3000
  - that: ci_low(data.test - data.train) > -10000
    why: a paired difference, read in each seed
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeded")
    spec = tmp / "seeded.yaml"
    spec.write_text(SEEDED)
    proc = run_rulelens("run", spec, "--out", tmp / "run", "--quiet", "--threads", "1", check=False, cwd=tmp, timeout=300)
    return tmp / "run", proc


def fmt(x):
    """A number as the report writes it (RunValue.format)."""
    if x == round(x) and abs(x) < 1e12:
        return str(int(x))
    return f"{x:.3e}" if abs(x) >= 1e5 or abs(x) < 1e-3 else f"{x:.4f}"


def numpy_percentile_bootstrap(values, resamples=200_000, level=0.95, seed=12345):
    """The percentile bootstrap of the mean, computed independently (numpy's generator, many more resamples)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return np.percentile(means, [100 * tail, 100 * (1 - tail)]), means.std()


def test_seeds_run_once_each_and_every_value_is_shown(seeded):
    out, proc = seeded
    results = json.loads((out / "results.json").read_text())
    assert [v["id"] for v in results["variants"]] == [f"seed={s}" for s in SEEDS]
    assert [v["folder"] for v in results["variants"]] == [f"seed-{s}" for s in SEEDS]
    assert results["seeds"] == [str(s) for s in SEEDS]
    train = [v["steps"]["data"]["results"]["train"] for v in results["variants"]]
    # ${seed} reached the step: each seed's own fraction.
    assert train == [round(10_000 * float(f"0.{s}")) for s in SEEDS]
    stat = results["expectations"][0]["statistics"][0]
    assert stat["call"] == "mean(data.train)" and stat["over"] == ["seed"]
    assert [x["label"] for x in stat["values"]] == [f"seed={s}" for s in SEEDS]
    assert [x["value"] for x in stat["values"]] == train
    # The paired difference is taken within each seed.
    test = [v["steps"]["data"]["results"]["test"] for v in results["variants"]]
    paired = results["expectations"][3]["statistics"][0]
    assert [x["value"] for x in paired["values"]] == [t - r for t, r in zip(test, train)]
    html = (out / "report" / "index.html").read_text()
    for s, n in zip(SEEDS, train):
        assert f"seed={s}: {n}" in html
    assert "95% [" in html


def test_interval_is_the_seed_level_bootstrap(seeded):
    out, _ = seeded
    results = json.loads((out / "results.json").read_text())
    for check in results["expectations"]:
        for stat in check["statistics"]:
            values = [x["value"] for x in stat["values"]]
            (low, high), spread = numpy_percentile_bootstrap(values)
            assert stat["resamples"] == 10_000 and stat["level"] == 0.95
            assert stat["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            # Monte Carlo error of a 2.5% quantile from 10,000 resamples is about 0.03 bootstrap SDs; a 90% interval
            # would sit 0.3 SDs inside.
            assert stat["ci_low"] == pytest.approx(low, abs=0.1 * spread), (stat["call"], stat["ci_low"], low)
            assert stat["ci_high"] == pytest.approx(high, abs=0.1 * spread), (stat["call"], stat["ci_high"], high)
            assert stat["sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)


def test_an_interval_that_crosses_the_bound_fails(seeded):
    out, proc = seeded
    results = json.loads((out / "results.json").read_text())
    values = [x["value"] for x in results["expectations"][0]["statistics"][0]["values"]]
    (low, high), _ = numpy_percentile_bootstrap(values)
    assert np.mean(values) > 3000 and low < 3000 < high, "the constructed case must straddle the bound"
    assert [e["status"] for e in results["expectations"]] == ["PASS", "FAIL", "PASS", "PASS"]
    assert results["verdict"] == "FAIL" and results["exit_code"] == 1
    assert proc.returncode == 1, proc.stderr
    assert "FAIL  ci_low(data.train) > 3000" in proc.stdout
    # The study's number beside this run's, with its interval, in the report's header.
    here = results["study"]["here"]
    assert here["value"] == pytest.approx(np.mean(values)) and here["statistic"]["ci_low"] < here["value"]
    html = (out / "report" / "index.html").read_text()
    assert 'id="study-number">4000<' in html and 'id="run-number"' in html and "a fraction per seed" in html


UNDERFIT = """
name: underfit
claim: held-out cases are solved less often than training cases
seeds: 2
steps:
  - data: {task: addition, split: random, train-fraction: 0.7, seed: 0}
  - train: {data: "${data}", layers: 1, heads: 2, d-model: 16, ctx: 16, steps: 1, batch: 8, seed: "${seed}"}
  - eval: {checkpoint: "${train}", data: "${data}", part: [train, test], limit: 20}
preconditions:
  - id: fits
    that: eval.train.accuracy > 0.9
    why: a model that has not learned its training cases says nothing about held-out ones
expect:
  - that: ci_low(eval.train.accuracy - eval.test.accuracy) > 0.2
  - that: data.train == 7000
    needs: []
"""


def test_a_failed_precondition_is_inconclusive(tmp_path):
    spec = tmp_path / "underfit.yaml"
    spec.write_text(UNDERFIT)
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", "--quiet", "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "error:" not in proc.stderr, proc.stderr  # an exit status, not an error paragraph
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [p["status"] for p in results["preconditions"]] == ["FAIL", "FAIL"]
    assert [p["variant"] for p in results["preconditions"]] == ["seed=0", "seed=1"]
    first, *independent = results["expectations"]
    assert first["status"] == "INCONCLUSIVE" and "precondition fits" in first["inconclusive"]
    assert "eval.train.accuracy" in first["inconclusive"] and "says nothing about held-out ones" in first["inconclusive"]
    # A check that needs no precondition keeps its verdict (one row per seed: a bare path).
    assert [(e["variant"], e["status"], e["needs"]) for e in independent] == [("seed=0", "PASS", []), ("seed=1", "PASS", [])]
    assert results["verdict"] == "INCONCLUSIVE" and results["inconclusive"] == 1
    assert "INCONCLUSIVE  ci_low(eval.train.accuracy - eval.test.accuracy) > 0.2" in proc.stdout
    assert "FAIL  precondition fits: eval.train.accuracy > 0.9  [seed=0]" in proc.stdout
    html = (tmp_path / "run" / "report" / "index.html").read_text()
    assert 'data-status="INCONCLUSIVE"' in html and html.count('data-precondition="FAIL"') == 2
    assert 'data-verdict="INCONCLUSIVE"' in html
    # The same without the precondition: a definite verdict (the interval is the claim's own test).
    spec.write_text(UNDERFIT.split("preconditions:")[0] + "expect:" + UNDERFIT.split("expect:")[1])
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", "--quiet", "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    assert proc.returncode in (0, 1) and "INCONCLUSIVE" not in proc.stdout, proc.stdout
    # --quick: a smoke run exits 0 even when inconclusive.
    spec.write_text(UNDERFIT)
    proc = run_rulelens("run", spec, "--out", tmp_path / "quick", "--quick", "--quiet", "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0 and "INCONCLUSIVE" in proc.stdout, proc.stdout + proc.stderr


def test_exit_code_2_for_a_broken_spec_or_check(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: b\nclaim: c\nsteps:\n  - data: {task: addition}\nexpect:\n  - ci_low(data.train) > 0\n")
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "add `seeds: 5`" in proc.stderr and "fix:" in proc.stderr, proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    spec.write_text("name: b\nclaim: c\nsteps:\n  - data: {task: addition}\nexpect:\n  - data.trian > 0\n")
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", "--quiet", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "ERROR  data.trian > 0" in proc.stdout, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["verdict"] == "ERROR"


def test_findings_page(seeded, tmp_path):
    out, _ = seeded
    underfit = tmp_path / "underfit.yaml"
    underfit.write_text(UNDERFIT)
    run_rulelens("run", underfit, "--out", tmp_path / "underfit", "--quiet", "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    page = tmp_path / "docs" / "findings.md"
    proc = run_rulelens("findings", out, tmp_path / "underfit" / "results.json", "--out", page)
    text = page.read_text()
    results = json.loads((out / "results.json").read_text())
    here = results["study"]["here"]
    assert "| [seeded — constructed seed-level values]" in text
    assert "the training part holds more than 3,000 cases" in text
    assert "| A constructed case | 4000 (training cases) |" in text
    low, high = here["statistic"]["ci_low"], here["statistic"]["ci_high"]
    assert f"{fmt(here['value'])} (95% [{fmt(low)}, {fmt(high)}], n = 10)" in text
    assert "| FAIL |" in text and "| INCONCLUSIVE |" in text
    assert "| data | one fraction | a fraction per seed |" in text
    assert "seed=89: 8900" in text
    assert "inconclusive: precondition fits" in text
    # Bad input: a folder that is no run; nothing is written.
    proc = run_rulelens("findings", tmp_path / "docs", "--out", tmp_path / "other.md", check=False)
    assert proc.returncode != 0 and "has no results.json" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "other.md").exists()


def test_an_interval_of_undefined_values_is_inconclusive(tmp_path):
    # A model trained for one step gets every cell of the square wrong, so each seed's ρ of accuracy against distance
    # is undefined (eval writes null): an interval of nothing but nulls is INCONCLUSIVE, not a broken spec (ERROR).
    spec = tmp_path / "constant.yaml"
    spec.write_text("""
name: constant cells
claim: the hole deepens towards the centre
seeds: 2
steps:
  - data: {task: addition, split: leave-square-out, half: 2, seed: 0}
  - train: {data: "${data}", layers: 1, d-model: 16, ctx: 16, steps: 1, batch: 4, seed: "${seed}"}
  - eval: {checkpoint: "${train}", data: "${data}", part: test}
expect:
  - ci_low(eval.test.distance.spearman) > 0
""")
    proc = run_rulelens("run", spec, "--out", tmp_path / "run", "--quiet", "--threads", "1", check=False, cwd=tmp_path, timeout=300)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    [check] = results["expectations"]
    assert [v["steps"]["eval"]["results"]["test"]["distance"]["spearman"] for v in results["variants"]] == [None, None]
    assert check["status"] == "INCONCLUSIVE" and "every value it reads is null" in check["inconclusive"], check
    assert proc.returncode == 3 and results["verdict"] == "INCONCLUSIVE", proc.stdout + proc.stderr
