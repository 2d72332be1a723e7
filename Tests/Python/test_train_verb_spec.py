"""The `train` step is the `train` verb: a spec trains a Llama-family model without positions (then evaluates and dumps
it), and trains a GPT-2 with a learned rule prior on syllogism data, with the options `rulelens train` takes."""
import json
import shlex

import h5py

from conftest import run_rulelens

LLAMA_SPEC = """
name: llama without positions
claim: a spec trains, evaluates and dumps a Llama model with positions none
steps:
  - data: {task: addition, split: leave-square-out, center: "50,50", half: 5, seed: 1}
  - train: {data: "${data}", arch: llama, positions: none, kv-heads: 1, layers: 1, heads: 2, d-model: 16, ctx: 16,
            steps: 6, batch: 8, warmup: 2, eval-every: 3, seed: 0}
  - eval: {checkpoint: "${train}", data: "${data}", limit: 20, mode: teacher-forced}
  - dump: {checkpoint: "${train}", data: "${data}", part: test, hooks: ["blocks.0.hook_resid_post"], positions: answer}
  - random-init: {like: "${train}", seed: 1}
expect:
  - that: train.steps == 6
  - that: train.eval_loss > 0
  - that: eval.test.n == 20
"""

PRIOR_SPEC = """
name: rule prior
claim: a spec trains a GPT-2 with a learned rule prior on the query
steps:
  - data: {task: syllogism, count: 240, seed: 0}
  - train: {data: "${data}", rule-prior: rule, inject: query, layers: 1, heads: 2, d-model: 16, ctx: 96,
            steps: 4, batch: 8, lr: 3e-3, warmup: 2, seed: 0}
  - eval: {checkpoint: "${train}", data: "${data}", part: train, limit: 20, mode: teacher-forced}
expect:
  - that: train.steps == 4
  - that: eval.train.n == 20
"""


def run_spec(tmp_path, text):
    (tmp_path / "spec.yaml").write_text(text)
    run_rulelens("run", tmp_path / "spec.yaml", "--out", tmp_path / "run", "--threads", "1", "--quiet")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert all(e["status"] == "PASS" for e in results["expectations"]), results["expectations"]
    return tmp_path / "run" / "train"


def recorded_command(step_dir):
    return shlex.split(json.loads((step_dir / ".rulelens-step.json").read_text())["command"])


def test_a_spec_trains_a_llama_model_without_positions_evaluates_and_dumps_it(tmp_path):
    train = run_spec(tmp_path, LLAMA_SPEC)
    assert json.loads((train / "config.json").read_text())["model_type"] == "llama"
    saved = json.loads((train / "train_config.json").read_text())
    assert saved["arch"] == "llama" and saved["positions"] == "none" and saved["kvHeads"] == 1
    assert (train / "eval_log.csv").exists() and (train / "loss.svg").exists()
    argv = recorded_command(train)
    assert argv[:2] == ["rulelens", "train"] and argv[argv.index("--positions") + 1] == "none"
    dumps = list((tmp_path / "run" / "dump").glob("*.h5"))
    assert dumps, "the dump step wrote no file"
    with h5py.File(dumps[0], "r") as f:
        assert len(f.keys()) > 0
    # The random-initialisation baseline copies the family and shape, positions none included.
    baseline = json.loads((tmp_path / "run" / "random_init" / "config.json").read_text())
    trained = json.loads((train / "config.json").read_text())
    assert baseline == trained
    assert (tmp_path / "run" / "random_init" / "model.safetensors").read_bytes() != (train / "model.safetensors").read_bytes()


def test_a_spec_trains_a_rule_prior(tmp_path):
    train = run_spec(tmp_path, PRIOR_SPEC)
    config = json.loads((train / "config.json").read_text())
    spec = config["rulelens_rule_prior"]
    assert spec["column"] == "rule" and spec["inject"] == "query" and len(spec["rules"]) > 1
    argv = recorded_command(train)
    assert argv[argv.index("--rule-prior") + 1] == "rule" and argv[argv.index("--inject") + 1] == "query"
