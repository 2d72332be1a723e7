"""Every command that prints a result has --json, and what it prints is what the files say: hooks against the text
listing, dump-info against h5py, data show against meta.json and the JSONL files, data plane against PREFIX.json."""
import json

import h5py
import pytest

from conftest import run_rulelens


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("json")
    run_rulelens("data", "generate", "--task", "addition", "--split", "leave-square-out", "--half", 5, "--out", root / "d")
    run_rulelens("train", "--data", root / "d", "--out", root / "m", "--layers", 1, "--heads", 2, "--d-model", 16, "--ctx", 16,
                 "--steps", 3, "--batch", 8, "--warmup", 1, "--threads", 1, "--quiet")
    return root


def test_hooks_json_lists_the_table(run):
    listed = json.loads(run_rulelens("hooks", run / "m", "--json").stdout)
    table = [line.split()[0] for line in run_rulelens("hooks", run / "m").stdout.splitlines() if line.strip()]
    assert [h["name"] for h in listed] == table
    q = next(h for h in listed if h["name"] == "blocks.0.attn.hook_q")
    assert q["shape"] == ["pos", 2, 8] and q["dims"] == ["pos", "head", "d_head"]


def test_dump_info_json_is_what_h5py_reads(run):
    run_rulelens("dump", "--checkpoint", run / "m", "--data", run / "d", "--hooks", "blocks.0.hook_resid_post", "--limit", 6,
                 "--out", run / "dump")
    info = json.loads(run_rulelens("dump-info", run / "dump" / "acts.h5", "--json", "--verify").stdout)
    with h5py.File(run / "dump" / "acts.h5") as f:
        assert info["examples"] == 6 and info["complete"] is True
        for site in info["sites"]:
            assert list(f["acts"][site["name"]].shape) == site["shape"]
        assert set(info["meta"]) == set(f["meta"].keys())
    assert info["verified"]["non_finite"] == 0


def test_data_show_and_plane_json(run):
    shown = json.loads(run_rulelens("data", "show", run / "d", "--examples", 2, "--json").stdout)
    meta = json.loads((run / "d" / "meta.json").read_text())
    assert shown["counts"] == meta["counts"] and shown["squares"] == meta["squares"]
    first = [json.loads(l) for l in (run / "d" / "test.jsonl").read_text().splitlines()[:2]]
    assert shown["examples_test"] == first
    run_rulelens("eval", "--checkpoint", run / "m", "--data", run / "d", "--part", "test", "--out", run / "e")
    plane = json.loads(run_rulelens("data", "plane", run / "d", "--predictions", run / "e" / "predictions_test.jsonl",
                                    "--out", run / "p", "--json").stdout)
    assert plane == json.loads((run / "p.json").read_text()) and "inside" in plane


def test_info_json_for_a_vae_is_its_config(tmp_path):
    run_rulelens("vae", "train", "--task", "syllogism", "--count", 60, "--layers", 1, "--enc-layers", 1, "--heads", 2,
                 "--d-model", 16, "--latent", 4, "--ctx", 96, "--steps", 2, "--batch", 4, "--warmup", 1, "--quiet",
                 "--out", tmp_path / "vae")
    info = json.loads(run_rulelens("info", tmp_path / "vae", "--json").stdout)
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert info["model_type"] == "rulelens-vae" and info["config"]["latent_size"] == config["latent_size"] == 4
    assert info["parameters"]["total"] == sum(info["parameters"][k] for k in ("encoder", "latent", "decoder"))
