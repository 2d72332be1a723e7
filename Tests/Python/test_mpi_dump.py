"""`mpirun -np 2 rulelens dump`: per-rank shards joined by HDF5 virtual datasets, checked against the one-process
dump through h5py, h5dump, RuleLens's own reader and a probe; shard resume; disagreeing ranks."""
import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from conftest import rulelens_bin, run_rulelens
from mpi import MPIRUN, run_mpi



@pytest.fixture(autouse=True)
def _needs_mpirun():
    """A missing mpirun is a failure, not a skip: `make test` installs openmpi-bin first."""
    if MPIRUN is None:
        pytest.fail("Open MPI's mpirun is not installed: run `make deps` (it installs openmpi-bin)")

HOOKS = "hook_embed,blocks.0.hook_resid_post,blocks.1.attn.hook_pattern,blocks.1.mlp.hook_post"
# Root attributes that legitimately differ between two dumps of the same data (times), or only the joined file has.
VOLATILE = {"created_utc", "completed_utc", "shards"}


# Attributes the HDF5 dimension-scale functions own (object references into their own file): compared as names above.
DIMENSION_SCALE_ATTRIBUTES = {"DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS", "CLASS", "NAME"}


def attributes(ds):
    return {k: v for k, v in ds.attrs.items() if k not in DIMENSION_SCALE_ATTRIBUTES}


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_dump(one_path, joined_path):
    """Dataset by dataset: same names, dtypes, shapes and attributes; /meta equal exactly, /acts within rounding
    (shards batch other examples together, so the padded lengths and BLAS calls differ)."""
    with h5py.File(one_path, "r") as a, h5py.File(joined_path, "r") as b:
        da, db = datasets(a), datasets(b)
        assert sorted(da) == sorted(db)
        for name in da:
            x, y = da[name], db[name]
            assert x.dtype == y.dtype and x.shape == y.shape, name
            if "/" not in name:   # a root-level dimension scale: the joined file's own, with the same values
                assert not y.is_virtual and np.array_equal(x[()], y[()]) and y.attrs["CLASS"] == b"DIMENSION_SCALE", name
                continue
            assert db[name].is_virtual, name
            assert attributes(x) == attributes(y), name
            # The same named dimensions, pointing at the joined file's own scales.
            assert [d.label for d in x.dims] == [d.label for d in y.dims], name
            assert [d[0].name for d in y.dims] == ["/" + d.label for d in y.dims], name
            if name.startswith("meta/"):
                assert np.array_equal(x[()], y[()]), name
            else:
                np.testing.assert_allclose(y[()], x[()], rtol=1e-5, atol=1e-6, err_msg=name)
        keys = (set(a.attrs) | set(b.attrs)) - VOLATILE
        assert {k: str(a.attrs.get(k)) for k in keys} == {k: str(b.attrs.get(k)) for k in keys}
        assert b.attrs["complete"] == 1 and b.attrs["n_examples"] == a.attrs["n_examples"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpi_dump")
    ckpt = root / "ckpt"
    run_rulelens("train", "--task", "addition", "--seed", "3", "--steps", "3", "--batch", "8", "--layers", "2",
                 "--d-model", "16", "--heads", "2", "--out", ckpt, "--quiet", "--threads", "1")
    data = ckpt / "data" / "test.jsonl"
    lines = data.read_text().splitlines()[:203]  # an odd count: the two shards differ in size
    small = root / "data.jsonl"
    small.write_text("\n".join(lines) + "\n")
    one = root / "one.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", small, "--hooks", HOOKS, "--batch", 16, "--out", one,
                 "--quiet", "--threads", 1)
    two = root / "two.h5"
    proc = run_mpi(2, "dump", "--checkpoint", ckpt, "--data", small, "--hooks", HOOKS, "--batch", 16, "--out", two,
                   "--quiet", "--threads", 1)
    return {"root": root, "ckpt": ckpt, "data": small, "one": one, "two": two, "stdout": proc.stdout}


def test_sharded_dump_equals_the_one_process_dump(run):
    assert run["stdout"].count("wrote") == 1, "only rank 0 reports"
    assert "203 examples (203 this run)" in run["stdout"]
    shards = [run["root"] / "two.rank0.h5", run["root"] / "two.rank1.h5"]
    for r, shard in enumerate(shards):
        with h5py.File(shard, "r") as f:
            assert f.attrs["complete"] == 1 and f.attrs["shard_index"] == str(r)
            assert f.attrs["n_examples"] == (101 if r == 0 else 102)
            assert not f["acts/hook_embed"].is_virtual
    with h5py.File(run["two"], "r") as f:
        assert json.loads(f.attrs["shards"]) == ["two.rank0.h5", "two.rank1.h5"]
        sources = f["meta/id"].virtual_sources()
        assert [s.file_name for s in sources] == ["two.rank0.h5", "two.rank1.h5"], "relative names: the folder can move"
    assert_same_dump(run["one"], run["two"])


def test_the_folder_moves_as_a_whole(run, tmp_path):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ["two.h5", "two.rank0.h5", "two.rank1.h5"]:
        shutil.copy(run["root"] / name, moved / name)
    assert_same_dump(run["one"], moved / "two.h5")


def test_h5dump_and_rulelens_reader_and_probe_see_one_file(run):
    # h5dump reads through the virtual mapping: example 101 (the first row of shard 1) is a row like any other.
    out = subprocess.run(["h5dump", "-d", "/meta/id", "-s", "100", "-c", "3", str(run["two"])],
                         capture_output=True, text=True, check=True).stdout
    with h5py.File(run["one"], "r") as f:
        ids = f["meta/id"][100:103]
    assert "(100): " + ", ".join(str(i) for i in ids) in out
    header = subprocess.run(["h5dump", "-p", "-H", "-d", "/acts/hook_embed", str(run["two"])],
                            capture_output=True, text=True, check=True).stdout
    assert "VIRTUAL" in header and "two.rank1.h5" in header
    info = run_rulelens("dump-info", "--verify", run["two"]).stdout
    assert "203 examples, complete=1" in info and "blocks.1.attn.hook_pattern" in info
    assert "verified:" in info, "every row read through the virtual datasets"
    # netCDF-C reads the joined file's dimensions and every row through the mapping.
    if shutil.which("ncdump"):
        nc = subprocess.run(["ncdump", str(run["two"])], capture_output=True, text=True, timeout=120)
        assert nc.returncode == 0 and "example = UNLIMITED ; // (203 currently)" in nc.stdout, nc.stderr[-1000:]
        assert "float hook_embed(example, pos, d_model) ;" in nc.stdout
    pca = [json.loads(run_rulelens("probe", "pca", "--file", p, "--site", "blocks.0.hook_resid_post", "--position",
                                   "answer", "--components", "3", "--json").stdout) for p in (run["one"], run["two"])]
    a, b = (np.array(p["sites"][0]["explained_variance"]) for p in pca)
    np.testing.assert_allclose(b, a, rtol=1e-4)


def test_resume_finishes_each_shard(run, tmp_path):
    """A killed dump leaves each shard as the writer's protocol says: complete=0, the first examples_written rows
    valid, anything after them garbage. Reproduced exactly here (a real kill is timing-dependent), then resumed."""
    work = tmp_path / "resume"
    work.mkdir()
    for name in ["two.rank0.h5", "two.rank1.h5"]:
        shutil.copy(run["root"] / name, work / name)
    kept = {0: 48, 1: 0}  # rank 0 flushed three batches, rank 1 none
    for r, k in kept.items():
        with h5py.File(work / f"two.rank{r}.h5", "r+") as f:
            f.attrs["complete"] = 0
            f.attrs["examples_written"] = k
            for name, ds in datasets(f).items():
                if name.startswith("acts/"):
                    ds[k:] = np.nan
    out = work / "two.h5"
    refused = run_mpi(2, "dump", "--checkpoint", run["ckpt"], "--data", run["data"], "--hooks", HOOKS, "--batch", 16,
                      "--out", out, "--quiet", "--threads", 1, check=False)
    assert refused.returncode != 0 and "already exists" in refused.stderr and not out.exists()
    proc = run_mpi(2, "dump", "--checkpoint", run["ckpt"], "--data", run["data"], "--hooks", HOOKS, "--batch", 16,
                   "--out", out, "--quiet", "--threads", 1, "--resume")
    assert "203 examples (155 this run)" in proc.stdout
    assert_same_dump(run["one"], out)
    # Everything complete: a second --resume computes nothing and rewrites the same joined file.
    again = run_mpi(2, "dump", "--checkpoint", run["ckpt"], "--data", run["data"], "--hooks", HOOKS, "--batch", 16,
                    "--out", out, "--quiet", "--threads", 1, "--resume")
    assert "(0 this run)" in again.stdout
    assert_same_dump(run["one"], out)


def test_ranks_with_different_options_stop_with_one_error(run, tmp_path):
    out = tmp_path / "mismatch.h5"
    shell = (f"exec {rulelens_bin()} dump --checkpoint {run['ckpt']} --data {run['data']} "
             f"--hooks hook_embed --out {out} --quiet --batch $((16 + OMPI_COMM_WORLD_RANK))")
    proc = run_mpi(2, per_rank_shell=shell, check=False)
    assert proc.returncode != 0
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert "disagree" in proc.stderr and "batch: rank 0 has 16, rank 1 has 17" in proc.stderr
    assert list(tmp_path.iterdir()) == []
