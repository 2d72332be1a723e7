"""Dumps carry named dimensions (HDF5 dimension scales, the netCDF-4 convention) and variable-length UTF-8 strings.

Checked with readers that do not know RuleLens: h5py's dimension-scale API (`ds.dims`, the same attributes xarray's
h5netcdf engine and netCDF-C read), xarray on those names, and Debian's `ncdump` (netcdf-bin), which before this
crashed on the fixed-length string columns and showed `phony_dim_N` for every axis.
"""
import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest
import xarray as xr

from conftest import run_rulelens

HOOKS = "hook_embed,blocks.*.hook_resid_post,blocks.0.attn.hook_pattern,blocks.0.attn.hook_z,blocks.1.mlp.hook_post,unembed.hook_out"
ROWS = [{"prompt": "12+7=", "target": "19", "rule": "add"}, {"prompt": "All A are B. All B are C.", "target": "All A are C.", "rule": "Barbara ünï"},
        {"prompt": "3+4=", "target": "7", "rule": "add"}, {"prompt": "5+5=", "target": "10", "rule": "carry"}]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    root = tmp_path_factory.mktemp("dims")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    ckpt = root / "run"
    run_rulelens("train", "--data", data, "--out", ckpt, "--layers", 2, "--heads", 2, "--d-model", 16, "--ctx", 40,
                 "--steps", 2, "--batch", 4, "--quiet")
    out = {}
    for positions in ["all", "answer"]:
        out[positions] = root / f"{positions}.h5"
        run_rulelens("dump", "--checkpoint", ckpt, "--data", data, "--hooks", HOOKS, "--positions", positions,
                     "--batch", 3, "--out", out[positions], "--quiet")
    return out


def every_dataset(f):
    return {g + "/" + k: f[g][k] for g in ("acts", "meta") for k in f[g]}


@pytest.mark.parametrize("positions", ["all", "answer"])
def test_every_axis_has_a_named_dimension_and_example_is_shared(dumps, positions):
    with h5py.File(dumps[positions], "r") as f:
        n, T = f.attrs["n_examples"], f.attrs["max_length"]
        config = json.loads(f.attrs["model_config"])
        sizes = {"example": n, "pos": T, "q_pos": T, "k_pos": T, "d_model": config["n_embd"], "head": config["n_head"],
                 "d_head": config["n_embd"] // config["n_head"], "d_mlp": 4 * config["n_embd"], "d_vocab": config["vocab_size"]}
        for name, ds in every_dataset(f).items():
            labels = [d.label for d in ds.dims]
            scales = [list(d.keys()) for d in ds.dims]
            assert all(len(s) == 1 for s in scales), (name, scales)           # one scale per axis
            assert [s[0] for s in scales] == labels, name
            if name.startswith("acts/"):
                assert labels == ds.attrs["dims"].split(","), name          # the names the `dims` attribute gives
            for axis, label in enumerate(labels):
                assert ds.shape[axis] == sizes[label], (name, label)
                scale = ds.dims[axis][0]
                assert scale.name == "/" + label and scale.shape == (sizes[label],)
        # One example dimension for /acts and /meta, holding the row index.
        assert f["acts/blocks.0.hook_resid_post"].dims[0][0] == f["meta/id"].dims[0][0] == f["example"]
        np.testing.assert_array_equal(f["example"][:], np.arange(n))
        assert f["meta/tokens"].dims[1].label == "pos"
        # Strings are variable-length UTF-8.
        for column in ["prompt", "target", "prediction", "rule"]:
            info = h5py.check_string_dtype(f["meta/" + column].dtype)
            assert info.length is None and info.encoding == "utf-8", column
        assert list(f["meta/rule"].asstr()[:]) == [r["rule"] for r in ROWS]


def test_xarray_aligns_acts_with_meta_by_dimension_name(dumps):
    """The names come from the file (no rename code): one Dataset of activations and columns on `example`."""
    def group(f, g):
        return xr.Dataset({k: ([d.label for d in v.dims], v[()]) for k, v in f[g].items()})
    with h5py.File(dumps["all"], "r") as f:
        merged = xr.merge([group(f, "acts"), group(f, "meta")])
    assert merged.sizes["example"] == len(ROWS)
    resid = merged["blocks.1.hook_resid_post"]
    assert resid.dims == ("example", "pos", "d_model")
    at_answer = resid.isel(pos=merged["answer_pos"])
    assert at_answer.dims == ("example", "d_model")
    np.testing.assert_array_equal(at_answer.values, resid.values[np.arange(len(ROWS)), merged["answer_pos"].values])


def test_ncdump_reads_every_dataset_with_names(dumps):
    assert shutil.which("ncdump"), "ncdump (Debian netcdf-bin) is missing: `make test` installs it (Makefile APT_PACKAGES)"
    for positions, path in dumps.items():
        full = subprocess.run(["ncdump", str(path)], capture_output=True, text=True, timeout=120)
        assert full.returncode == 0, (positions, full.stderr[-2000:])
        assert "phony_dim" not in full.stdout
        assert f"example = UNLIMITED ; // ({len(ROWS)} currently)" in full.stdout
        assert 'prompt = "12+7=", "All A are B. All B are C.", "3+4=", "5+5=" ;' in full.stdout
        if positions == "all":
            assert "float blocks.0.hook_resid_post(example, pos, d_model) ;" in full.stdout
            assert "float blocks.0.attn.hook_pattern(example, head, q_pos, k_pos) ;" in full.stdout
            assert "int tokens(example, pos) ;" in full.stdout
        else:
            assert "float blocks.0.hook_resid_post(example, d_model) ;" in full.stdout


def test_dump_info_verify_follows_the_dimension_references(dumps):
    proc = run_rulelens("dump-info", "--verify", dumps["all"])
    assert "verified:" in proc.stdout


def test_documented_hugging_face_datasets_line_loads_a_dump(dumps):
    """docs/hooks-and-store.md's `datasets` line, run as written: one row per example, strings as str."""
    import re
    import datasets
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "hooks-and-store.md").read_text()
    [line] = re.findall(r"`(datasets\.Dataset\.from_dict\(.*\))`", doc)
    ds = eval(line, {"datasets": datasets, "h5py": h5py, "path": str(dumps["all"])})
    assert ds.num_rows == len(ROWS) and ds[1]["prompt"] == ROWS[1]["prompt"] and ds[1]["rule"] == ROWS[1]["rule"]
    with h5py.File(dumps["all"], "r") as f:
        np.testing.assert_array_equal(np.asarray(ds[2]["blocks.1.hook_resid_post"], dtype=np.float32),
                                      f["acts/blocks.1.hook_resid_post"][2])


def test_a_damaged_string_in_the_heap_is_an_error_not_a_different_label(dumps, tmp_path):
    """Variable-length strings live in HDF5's global heap, outside any compressed chunk: the column checksum catches a
    changed byte there (a probe would otherwise group by a silently different label)."""
    data = bytearray(dumps["answer"].read_bytes())
    at = data.find("Barbara ünï".encode())
    assert at > 0
    data[at] ^= 0x01                                              # "Barbara" -> "Carbara"
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(data))
    with h5py.File(bad, "r") as f:                                # h5py reads it, silently changed
        assert f["meta/rule"].asstr()[1] == "Carbara ünï"
        assert f["meta/rule"].attrs["utf8_fnv1a"].startswith(f"{len(ROWS)}:")
    proc = run_rulelens("dump-info", "--verify", bad, check=False)
    assert proc.returncode == 1 and "do not match the checksum" in proc.stderr and "fix:" in proc.stderr
    proc = run_rulelens("probe", "separability", "--file", bad, "--site", "blocks.1.hook_resid_post", "--label", "rule",
                        "--json", check=False)
    assert proc.returncode == 1 and "do not match the checksum" in proc.stderr
