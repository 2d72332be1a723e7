"""Issue 8 item 8 (HDF5): `dump-info --verify` reads every chunk and parses every attribute, and damage HDF5 does
not check for (the global heap, where variable-length strings live) is an error paragraph, never a signal."""
import shutil
import subprocess

import h5py
import pytest

from conftest import run_rulelens, rulelens_bin


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    data = root / "d.jsonl"
    data.write_text("".join('{"prompt": "%d+%d=", "target": "%d", "rule": "r%d"}\n' % (i, i % 7, i + i % 7, i % 3) for i in range(30)))
    run_rulelens("init", "--out", root / "m", "--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "12")
    run_rulelens("dump", "--checkpoint", root / "m", "--data", data, "--hooks", "blocks.0.hook_resid_post,blocks.0.mlp.hook_post",
                 "--out", root / "good.h5", "--quiet")
    return root


def copy(dump, name):
    shutil.copy(dump / "good.h5", dump / name)
    return dump / name


def is_clear_error(proc):
    return proc.returncode == 1 and "error: " in proc.stderr and "\nfix: " in proc.stderr


def test_verify_reads_a_good_file(dump):
    out = run_rulelens("dump-info", "--verify", dump / "good.h5").stdout
    assert "verified: " in out and "every chunk inflated" in out


def test_verify_fails_on_a_chunk_that_does_not_inflate(dump):
    path = copy(dump, "badchunk.h5")
    with h5py.File(path, "r") as f:
        ds = f["acts/blocks.0.mlp.hook_post"]
        offset, size = ds.id.get_chunk_info(0).byte_offset, ds.id.get_chunk_info(0).size
    raw = bytearray(path.read_bytes())
    for i in range(offset + size // 3, offset + size // 3 + 16):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    assert run_rulelens("dump-info", path).returncode == 0            # the listing does not read chunks…
    proc = run_rulelens("dump-info", "--verify", path, check=False)   # …--verify does
    assert is_clear_error(proc), proc.stderr
    assert "blocks.0.mlp.hook_post" in proc.stderr and ("inflate" in proc.stderr or "filter" in proc.stderr)


def test_verify_fails_on_a_garbled_model_config(dump):
    path = copy(dump, "badconfig.h5")
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = '{"n_layer": 1, "n_head": '
    assert run_rulelens("dump-info", path).returncode == 0
    proc = run_rulelens("dump-info", "--verify", path, check=False)
    assert is_clear_error(proc) and "model_config" in proc.stderr, proc.stderr
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = '{"n_layer": 1}'
    proc = run_rulelens("dump-info", "--verify", path, check=False)
    assert is_clear_error(proc) and "model_config has no positive integer n_head" in proc.stderr, proc.stderr


def test_global_heap_damage_is_never_a_signal(dump):
    good = (dump / "good.h5").read_bytes()
    heap = good.find(b"GCOL")
    assert heap > 0, "the dump keeps its string attributes in a global heap collection"
    path = dump / "heap.h5"
    outcomes = {"ok": 0, "error": 0, "guarded crash": 0}
    for offset in range(heap, min(len(good), heap + 192), 3):
        for xor in (0x01, 0xFF):
            raw = bytearray(good)
            raw[offset] ^= xor
            path.write_bytes(bytes(raw))
            for args in (["dump-info", path], ["dump-info", "--verify", path]):
                proc = subprocess.run([rulelens_bin(), *map(str, args)], capture_output=True, text=True, timeout=30)
                assert proc.returncode >= 0, f"signal {-proc.returncode} at heap byte {offset - heap} ^ {xor:#x}: {proc.stderr}"
                assert proc.returncode == 0 or is_clear_error(proc), proc.stderr
                key = "ok" if proc.returncode == 0 else ("guarded crash" if "HDF5 library crashed" in proc.stderr else "error")
                outcomes[key] += 1
    print(outcomes)
    assert outcomes["error"] + outcomes["guarded crash"] > 0
