"""`rulelens ablate --mean-from FILE.h5`: mean and resample values from an activation dump (`rulelens dump --positions all`).

On a tiny random Qwen2 made by `transformers` (GQA, q/k/v biases):
- the mean ablation loss with the dump as reference equals (a) the same run with the JSONL the dump was made from and
  (b) TransformerLens's loss under a hook that writes a numpy mean over the dump (each example's input positions:
  its dumped length − 1) — within 1e-4, for attn_out, mlp_out and one head's hook_z;
- resample from the dump runs and differs from the clean run;
- a dump of other positions, without an ablated site, or of another model is a clear error naming the file and the
  fix, exit 1, nothing written.
"""
import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from conftest import run_rulelens
from hf_fixtures import save_tokenizer, train
from test_interventions_family import encode, sequence, target_loss
from test_llama_family import make_model, save

TOL = 1e-4
SITES = "blocks.*.hook_attn_out,blocks.*.hook_mlp_out,blocks.*.attn.hook_z"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tokenizers import Tokenizer
    from transformer_lens.model_bridge import TransformerBridge
    tmp = tmp_path_factory.mktemp("meanfrom")
    tok = save_tokenizer(train("qwen2"), tmp / "tok")
    ckpt = tmp / "model"
    save(make_model("qwen2", tok, seed=9), ckpt, tok)
    other = tmp / "other"
    save(make_model("qwen2", tok, seed=10), other, tok)
    reference = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in [(3, 4), (12, 30), (45, 17), (8, 91), (66, 6), (70, 29)]]
    data = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in [(5, 5), (21, 13), (34, 2)]]
    ref_file, data_file = tmp / "reference.jsonl", tmp / "data.jsonl"
    ref_file.write_text("".join(json.dumps(r) + "\n" for r in reference))
    data_file.write_text("".join(json.dumps(r) + "\n" for r in data))
    dump = tmp / "reference.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", ref_file, "--hooks", SITES, "--positions", "all", "--out", dump, "--quiet")
    bridge = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
    bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    hf = Tokenizer.from_file(str(tok / "tokenizer.json"))
    return tmp, ckpt, other, ref_file, data_file, dump, data, bridge, hf


def ablate(ckpt, data, out, *extra, check=True):
    """`rulelens ablate --out FOLDER`; its ablate.h5 is copied to `out`."""
    folder = out.with_name(out.name + ".d")
    proc = run_rulelens("ablate", "--checkpoint", ckpt, "--data", data, "--layers", "1", "--heads", "--bootstrap", 0,
                        "--out", folder, "--quiet", "--force", *extra, check=check)
    if proc.returncode == 0:
        shutil.copy(folder / "ablate.h5", out)
    return proc


def losses(path):
    with h5py.File(path) as f:
        names = [s.decode() if isinstance(s, bytes) else s for s in f["runs"][:]]
        return names, f["per_example/loss"][:]


def test_mean_from_dump_equals_jsonl_and_numpy(setup):
    tmp, ckpt, _, ref_file, data_file, dump, data, bridge, hf = setup
    ablate(ckpt, data_file, tmp / "dump.h5", "--method", "mean", "--mean-from", dump)
    ablate(ckpt, data_file, tmp / "jsonl.h5", "--method", "mean", "--mean-from", ref_file)
    names, from_dump = losses(tmp / "dump.h5")
    names2, from_jsonl = losses(tmp / "jsonl.h5")
    assert names == names2 and "L1 attn" in names and "L1 mlp" in names and "L1 H3" in names
    np.testing.assert_allclose(from_dump, from_jsonl, atol=TOL)
    # The numpy mean over the dump: position t over the examples whose input reaches it (dumped length − 1).
    with h5py.File(dump) as f:
        lengths = f["meta/length"][:] - 1
        acts = {name: f["acts"][name][:] for name in f["acts"]}
    T = acts["blocks.1.hook_attn_out"].shape[1]
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)
    for k, name in enumerate(names):
        if name == "clean":
            continue
        layer, comp = name.split()
        head = int(comp[1:]) if comp.startswith("H") else None
        site = f"blocks.{layer[1:]}.attn.hook_z" if head is not None else f"blocks.{layer[1:]}.hook_{comp}_out"
        a = acts[site].astype(np.float64)
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 2))
        mean = torch.tensor((a * m).sum(0) / np.maximum(m.sum(0), 1), dtype=torch.float32)   # [T, ...]

        def hook(act, hook, head=head, mean=mean):
            act = act.clone()
            n = act.shape[1]
            if head is None:
                act[0] = mean[:n]
            else:
                act[0, :, head] = mean[:n, head]
            return act

        for i, row in enumerate(data):
            full, prompt_len = sequence(hf, row)
            with torch.no_grad():
                logits = bridge.run_with_hooks(torch.tensor([full[:-1]]), fwd_hooks=[(site, hook)])
            expected = target_loss(logits[0], full, prompt_len)
            assert abs(expected - from_dump[k, i]) < TOL, (name, i, expected, from_dump[k, i])


def test_resample_from_dump(setup):
    tmp, ckpt, _, _, data_file, dump, _, _, _ = setup
    ablate(ckpt, data_file, tmp / "resample.h5", "--method", "resample", "--mean-from", dump, "--seed", 3)
    names, loss = losses(tmp / "resample.h5")
    assert np.abs(loss[1:] - loss[0]).max() > 1e-3


def test_bad_dumps(setup):
    tmp, ckpt, other, ref_file, data_file, dump, _, _, _ = setup
    answer_only = tmp / "answer.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", ref_file, "--hooks", SITES, "--positions", "answer", "--out", answer_only, "--quiet")
    attn_only = tmp / "attn.h5"
    run_rulelens("dump", "--checkpoint", ckpt, "--data", ref_file, "--hooks", "blocks.*.hook_attn_out", "--positions", "all", "--out", attn_only, "--quiet")
    other_model = tmp / "other.h5"
    run_rulelens("dump", "--checkpoint", other, "--data", ref_file, "--hooks", SITES, "--positions", "all", "--out", other_model, "--quiet")
    cases = [(answer_only, "was dumped with --positions answer"), (attn_only, "has no blocks.1.hook_mlp_out"),
             (other_model, "holds activations of another model")]
    for path, message in cases:
        out = tmp / "never.h5"
        proc = ablate(ckpt, data_file, out, "--method", "mean", "--mean-from", path, check=False)
        assert proc.returncode == 1, proc.stderr
        assert f"error: --mean-from {path}" in proc.stderr and message in proc.stderr, proc.stderr
        assert "fix:" in proc.stderr and "--positions all" in proc.stderr
        assert not out.exists()
