"""`rulelens ablate`, `patch` and `lens` give TransformerLens 4.x's numbers on the same checkpoint and tokens.

TransformerLens boots the RuleLens run folder as it is (`TransformerBridge.boot_transformers(run)`):
(a) the loss under the same zero / mean ablation hook (`run_with_hooks`) within 1e-4,
(b) the patching matrices of its `patching` functions within 1e-4 on the raw logit difference,
(c) the logit lens (`accumulated_resid(apply_ln=True)` through the unembedding) and direct logit attribution
    (`logit_attrs`) within 1e-4.
"""
import json

import h5py
import numpy as np
import pytest
import torch

from conftest import run_rulelens

TOL = 1e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tl")
    ckpt = tmp / "run"
    run_rulelens("train", "--task", "addition", "--split", "random", "--train-fraction", "0.9", "--seed", "3",
                 "--out", ckpt, "--layers", 2, "--heads", 4, "--d-model", 32, "--steps", 400, "--batch", 32,
                 "--lr", 3e-3, "--warmup", 20, "--threads", 1, "--quiet")
    # A small evaluation set of mixed lengths (1- and 2-digit operands).
    rows = [json.loads(l) for l in (ckpt / "data" / "test.jsonl").read_text().splitlines()][:40]
    rows += [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in [(3, 4), (9, 9), (5, 12), (7, 81)]]
    data = tmp / "eval.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp, ckpt, data, rows


@pytest.fixture(scope="module")
def bridges(run):
    from transformer_lens.model_bridge import TransformerBridge
    _, ckpt, _, _ = run
    raw = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
    raw.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    processed = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
    processed.enable_compatibility_mode(disable_warnings=True)          # fold_ln etc., as HookedTransformer
    return raw, processed


def tokens_of(bridge, row):
    full = bridge.to_tokens(row["prompt"] + row["target"])[0].tolist() + [2]   # [bos] + prompt + target + [eos]
    return full, 1 + len(row["prompt"])


def target_loss(logits, full, prompt_len):
    logp = torch.log_softmax(logits.double(), -1)
    return float(np.mean([-logp[t, full[t + 1]].item() for t in range(prompt_len - 1, len(full) - 1)]))


def test_ablation_loss_equals_transformerlens(run, bridges):
    tmp, ckpt, data, rows = run
    raw, _ = bridges
    seqs = [tokens_of(raw, r) for r in rows]
    inputs = [torch.tensor([f[:-1]]) for f, _ in seqs]
    for method in ["zero", "mean"]:
        out = tmp / f"ablate_{method}" / "ablate.h5"
        run_rulelens("ablate", "--checkpoint", ckpt, "--data", data, "--method", method, "--bootstrap", 0,
                     "--out", out.parent, "--quiet", "--force")
        with h5py.File(out) as f:
            names = [s.decode() if isinstance(s, bytes) else s for s in f["runs"][:]]
            loss = f["per_example/loss"][:]
            assert f["per_example/loss"].attrs["dims"] == "run,example"
        # The mean at each position over the examples that reach it (the data itself), from TransformerLens's cache.
        caches = []
        if method == "mean":
            with torch.no_grad():
                caches = [raw.run_with_cache(x)[1] for x in inputs]
        for k, name in enumerate(names):
            if name == "clean":
                hook_name, fn = None, None
            else:
                layer, comp = name.split()
                site = f"blocks.{layer[1:]}.hook_{comp}_out"
                if method == "zero":
                    fn = lambda act, hook: torch.zeros_like(act)
                else:
                    longest = max(x.shape[1] for x in inputs)
                    sums = torch.zeros(longest, raw.cfg.d_model, dtype=torch.float64)
                    counts = torch.zeros(longest, 1, dtype=torch.float64)
                    for c in caches:
                        a = c[site][0].double()
                        sums[: a.shape[0]] += a
                        counts[: a.shape[0]] += 1
                    mean = (sums / counts).float()
                    fn = lambda act, hook, mean=mean: mean[: act.shape[1]].unsqueeze(0).expand_as(act).clone()
                hook_name = site
            for i, x in enumerate(inputs):
                with torch.no_grad():
                    logits = raw(x) if fn is None else raw.run_with_hooks(x, fwd_hooks=[(hook_name, fn)])
                expected = target_loss(logits[0], seqs[i][0], seqs[i][1])
                assert abs(expected - loss[k, i]) < TOL, (method, name, i, expected, loss[k, i])


def test_patching_matrices_equal_transformerlens(run, bridges):
    from transformer_lens import patching
    tmp, ckpt, _, _ = run
    raw, _ = bridges
    pairs = tmp / "pairs"
    run_rulelens("data", "pairs", "--data", ckpt / "data", "--part", "test", "--out", pairs, "--one-length", "--limit", 24, "--force")
    result = json.loads(run_rulelens("patch", "--checkpoint", ckpt, "--clean", pairs / "clean.jsonl", "--corrupt",
                                     pairs / "corrupt.jsonl", "--json", "--quiet").stdout)
    clean_rows = [json.loads(l) for l in (pairs / "clean.jsonl").read_text().splitlines()]
    corrupt_rows = [json.loads(l) for l in (pairs / "corrupt.jsonl").read_text().splitlines()]
    clean_tokens = raw.to_tokens([r["prompt"] for r in clean_rows])
    corrupt_tokens = raw.to_tokens([r["prompt"] for r in corrupt_rows])
    clean_answer = torch.tensor([raw.to_tokens(r["target"], prepend_bos=False)[0, 0].item() for r in clean_rows])
    corrupt_answer = torch.tensor([raw.to_tokens(r["target"], prepend_bos=False)[0, 0].item() for r in corrupt_rows])
    assert (clean_answer != corrupt_answer).all()

    def metric(logits):
        last = logits[:, -1, :]
        idx = torch.arange(last.shape[0])
        return (last[idx, clean_answer] - last[idx, corrupt_answer]).mean()

    with torch.no_grad():
        clean_logits, clean_cache = raw.run_with_cache(clean_tokens)
        corrupt_logits = raw(corrupt_tokens)
    assert abs(metric(clean_logits).item() - result["clean"]) < TOL
    assert abs(metric(corrupt_logits).item() - result["corrupt"]) < TOL
    functions = {"resid_pre": patching.get_act_patch_resid_pre, "resid_mid": resid_mid_patch,
                 "attn_out": patching.get_act_patch_attn_out, "mlp_out": patching.get_act_patch_mlp_out,
                 "z": patching.get_act_patch_attn_head_out_all_pos}
    for site, fn in functions.items():
        expected = fn(raw, corrupt_tokens, clean_cache, metric).detach().numpy()
        got = np.array(result["sites"][site]["logit_diff"], dtype=np.float64)
        assert got.shape == expected.shape, site
        np.testing.assert_allclose(got, expected, atol=TOL, err_msg=site)
        norm = (expected - result["corrupt"]) / (result["clean"] - result["corrupt"])
        np.testing.assert_allclose(np.array(result["sites"][site]["normalized"]), norm, atol=1e-3, err_msg=site)


def resid_mid_patch(bridge, corrupt_tokens, clean_cache, metric):
    """Patching the residual stream between attention and MLP, as HookedTransformer defines hook_resid_mid.

    TransformerLens 4.3's bridge aliases `hook_resid_mid` to `ln2.hook_in`, so its `get_act_patch_resid_mid` edits
    only the MLP's input while the residual that bypasses the MLP keeps the corrupted value. The real residual patch
    is that edit plus the same change carried on the bypass: add (clean − corrupt) resid_mid to resid_post there.
    """
    with torch.no_grad():
        _, corrupt_cache = bridge.run_with_cache(corrupt_tokens)
    L, T = bridge.cfg.n_layers, corrupt_tokens.shape[1]
    out = torch.zeros(L, T)
    for l in range(L):
        site = f"blocks.{l}.hook_resid_mid"
        for p in range(T):
            delta = clean_cache[site][:, p] - corrupt_cache[site][:, p]

            def mid(act, hook, p=p, site=site):
                act = act.clone(); act[:, p] = clean_cache[site][:, p]; return act

            def post(act, hook, p=p, delta=delta):
                act = act.clone(); act[:, p] = act[:, p] + delta; return act

            with torch.no_grad():
                logits = bridge.run_with_hooks(corrupt_tokens, fwd_hooks=[(site, mid), (f"blocks.{l}.hook_resid_post", post)])
            out[l, p] = metric(logits)
    return out


def test_logit_lens_and_attribution_equal_transformerlens(run, bridges):
    tmp, ckpt, data, rows = run
    raw, processed = bridges
    out = tmp / "lens" / "lens.h5"
    run_rulelens("lens", "--checkpoint", ckpt, "--data", data, "--out", out.parent, "--quiet", "--force")
    with h5py.File(out) as f:
        lens_logits = f["lens/logits"][:]                       # [stage, example, vocab]
        assert f["lens/logits"].attrs["dims"] == "stage,example,d_vocab"
        stages = [s.decode() if isinstance(s, bytes) else s for s in f["stages"][:]]
        components = [s.decode() if isinstance(s, bytes) else s for s in f["components"][:]]
        attribution = f["dla/attribution"][:]                    # [component, example]
        other = f["meta/other_token"][:]
        logit_diff = f["meta/logit_diff"][:]
    L, H = raw.cfg.n_layers, raw.cfg.n_heads
    for i, r in enumerate(rows):
        x = raw.to_tokens(r["prompt"])                            # [bos] + prompt: the last position predicts the answer
        answer = raw.to_tokens(r["target"], prepend_bos=False)[0, 0].item()
        with torch.no_grad():
            logits, cache = raw.run_with_cache(x)
            accum, labels = cache.accumulated_resid(incl_mid=True, apply_ln=True, return_labels=True)
            lens = raw.unembed(accum[:, :, -1:, :])[:, 0, 0, :]    # [stage, vocab]
        assert labels == stages
        np.testing.assert_allclose(lens_logits[:, i, :], lens.numpy(), atol=TOL)
        # Direct logit attribution on the processed model (fold_ln), as users run it.
        with torch.no_grad():
            _, pcache = processed.run_with_cache(x)
            resid, rlabels = pcache.decompose_resid(return_labels=True, pos_slice=-1)
            heads, hlabels = pcache.stack_head_results(return_labels=True, pos_slice=-1)
            attrs = pcache.logit_attrs(resid, tokens=torch.tensor([answer]), incorrect_tokens=torch.tensor([int(other[i])]), pos_slice=-1)
            head_attrs = pcache.logit_attrs(heads, tokens=torch.tensor([answer]), incorrect_tokens=torch.tensor([int(other[i])]), pos_slice=-1)
        tl = {}
        for lab, v in zip(rlabels, attrs.reshape(len(rlabels), -1)[:, 0].numpy()):
            name = {"embed": "embed", "pos_embed": "pos_embed"}.get(lab)
            if name is None:
                layer, kind = lab.split("_", 1)
                name = f"L{layer} {'attn' if kind == 'attn_out' else 'mlp'}"
            tl[name] = v
        for lab, v in zip(hlabels, head_attrs.reshape(len(hlabels), -1)[:, 0].numpy()):
            layer, head = lab[1:].split("H")
            tl[f"L{layer} H{head}"] = v
        for name, v in tl.items():
            assert abs(attribution[components.index(name), i] - v) < TOL, (i, name, attribution[components.index(name), i], v)
        total = sum(attribution[components.index(n), i] for n in ["embed", "pos_embed"] + [f"L{l} {k}" for l in range(L) for k in ["attn", "mlp"]] + ["ln_final bias"])
        assert abs(total - logit_diff[i]) < TOL
        assert abs(logit_diff[i] - (logits[0, -1, answer] - logits[0, -1, int(other[i])]).item()) < TOL
