"""`rulelens ablate`, `patch` and `lens` on the Llama/Qwen2 family equal TransformerLens 4.x on the same checkpoint.

Tiny random models made here by `transformers` (Qwen2 with grouped-query attention and q/k/v biases, tied head;
Llama untied with head_dim 12 ≠ d_model / heads), each with a byte-level BPE tokenizer trained by HF `tokenizers`.
TransformerLens boots each folder (`TransformerBridge.boot_transformers`) with `enable_compatibility_mode(no_processing=True)`:
its processed mode (fold_ln, centred writing weights, folded value biases) changes these models' logits by ~0.08 in
TransformerLens 4.3, so it cannot be the reference here; the unprocessed bridge equals transformers exactly.

(a) the loss under the same zero / mean ablation hook (attn_out, mlp_out, one head's hook_z) within 1e-4;
(b) the patching matrices of its `patching` functions within 1e-4 on the raw logit difference (resid_mid as in the
    GPT-2 test: the bridge aliases it to the MLP input, so the residual bypass is completed);
(c) the logit lens (`accumulated_resid(apply_ln=True)` through the unembedding) within 1e-4, and direct logit
    attribution: `decompose_resid` / `stack_head_results` through `apply_ln_to_stack` (the frozen final RMSNorm
    scale), dotted with the norm weight ⊙ (W_U[answer] − W_U[other]) — what `logit_attrs` computes once the norm
    weight is folded into W_U — within 1e-4, heads without the value bias (which TransformerLens folds into b_O).
"""
import json

import h5py
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from conftest import run_rulelens
from hf_fixtures import save_tokenizer, train
from test_interventions_tl import resid_mid_patch
from test_llama_family import make_model, save

TOL = 1e-4
PAIRS = [(12, 34), (25, 61), (40, 47), (73, 18), (56, 29), (81, 11)]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return save_tokenizer(train("qwen2"), tmp_path_factory.mktemp("tok") / "tok")


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def family(request, tokenizer_dir, tmp_path_factory):
    from transformer_lens.model_bridge import TransformerBridge
    kind = request.param
    tmp = tmp_path_factory.mktemp(kind)
    model = make_model(kind, tokenizer_dir, seed=5)
    ckpt = tmp / "model"
    save(model, ckpt, tokenizer_dir)
    bridge = TransformerBridge.boot_transformers(str(ckpt), device="cpu")
    bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    hf = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    rows = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in PAIRS]
    rows += [{"prompt": "7+8=", "target": "15"}, {"prompt": "All A are B. All B are C. ", "target": "All A are C."}]
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return kind, tmp, ckpt, model, bridge, hf, rows, data


def encode(hf, text):
    return hf.encode(text, add_special_tokens=False).ids


def sequence(hf, row):
    """[bos] + prompt + target + [eos] as RuleLens frames it (bos = eos = <|endoftext|> for this tokenizer)."""
    eos = hf.token_to_id("<|endoftext|>")
    prompt = encode(hf, row["prompt"])
    return [eos] + prompt + encode(hf, row["target"]) + [eos], 1 + len(prompt)


def target_loss(logits, full, prompt_len):
    logp = torch.log_softmax(logits.double(), -1)
    return float(np.mean([-logp[t, full[t + 1]].item() for t in range(prompt_len - 1, len(full) - 1)]))


def strings(values):
    return [s.decode() if isinstance(s, bytes) else s for s in values]


def test_ablation_loss_equals_transformerlens(family):
    kind, tmp, ckpt, _, bridge, hf, rows, data = family
    seqs = [sequence(hf, r) for r in rows]
    inputs = [torch.tensor([f[:-1]]) for f, _ in seqs]
    dh = bridge.cfg.d_head
    for method in ["zero", "mean"]:
        out = tmp / f"ablate_{method}" / "ablate.h5"
        run_rulelens("ablate", "--checkpoint", ckpt, "--data", data, "--method", method, "--heads", "--bootstrap", 0,
                     "--out", out.parent, "--quiet", "--force")
        with h5py.File(out) as f:
            names = strings(f["runs"][:])
            loss = f["per_example/loss"][:]
        assert len(names) == 1 + bridge.cfg.n_layers * (2 + bridge.cfg.n_heads)
        caches = []
        if method == "mean":
            with torch.no_grad():
                caches = [bridge.run_with_cache(x)[1] for x in inputs]
        for k, name in enumerate(names):
            hook_name, fn = None, None
            if name != "clean":
                layer, comp = name.split()
                head = int(comp[1:]) if comp.startswith("H") else None
                hook_name = f"blocks.{layer[1:]}.attn.hook_z" if head is not None else f"blocks.{layer[1:]}.hook_{comp}_out"
                if method == "zero":
                    if head is None:
                        fn = lambda act, hook: torch.zeros_like(act)
                    else:
                        def fn(act, hook, head=head):
                            act = act.clone(); act[:, :, head, :] = 0; return act
                else:
                    longest = max(x.shape[1] for x in inputs)
                    shape = caches[0][hook_name].shape[2:]
                    sums = torch.zeros((longest,) + tuple(shape), dtype=torch.float64)
                    counts = torch.zeros((longest,) + (1,) * len(shape), dtype=torch.float64)
                    for c in caches:
                        a = c[hook_name][0].double()
                        sums[: a.shape[0]] += a
                        counts[: a.shape[0]] += 1
                    mean = (sums / counts).float()
                    if head is None:
                        fn = lambda act, hook, mean=mean: mean[: act.shape[1]].unsqueeze(0).expand_as(act).clone()
                    else:
                        def fn(act, hook, head=head, mean=mean):
                            act = act.clone(); act[0, :, head, :] = mean[: act.shape[1], head, :]; return act
            for i, x in enumerate(inputs):
                with torch.no_grad():
                    logits = bridge(x) if fn is None else bridge.run_with_hooks(x, fwd_hooks=[(hook_name, fn)])
                expected = target_loss(logits[0], seqs[i][0], seqs[i][1])
                assert abs(expected - loss[k, i]) < TOL, (kind, method, name, i, expected, loss[k, i])
    assert dh > 0


def test_patching_matrices_equal_transformerlens(family):
    from transformer_lens import patching
    kind, tmp, ckpt, _, bridge, hf, _, _ = family
    # Corrupted counterparts: the second operand's tens digit changes, so the first answer token changes.
    clean_rows = [{"prompt": f"{a}+{b}=", "target": str(a + b)} for a, b in PAIRS]
    corrupt_rows = [{"prompt": f"{a}+{(b + 30) % 100 or 10}=", "target": str(a + ((b + 30) % 100 or 10))} for a, b in PAIRS]
    for name, rs in [("clean", clean_rows), ("corrupt", corrupt_rows)]:
        (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    result = json.loads(run_rulelens("patch", "--checkpoint", ckpt, "--clean", tmp / "clean.jsonl", "--corrupt",
                                     tmp / "corrupt.jsonl", "--json", "--quiet").stdout)
    eos = hf.token_to_id("<|endoftext|>")
    clean_tokens = torch.tensor([[eos] + encode(hf, r["prompt"]) for r in clean_rows])
    corrupt_tokens = torch.tensor([[eos] + encode(hf, r["prompt"]) for r in corrupt_rows])
    clean_answer = torch.tensor([encode(hf, r["target"])[0] for r in clean_rows])
    corrupt_answer = torch.tensor([encode(hf, r["target"])[0] for r in corrupt_rows])
    assert (clean_answer != corrupt_answer).all()
    assert result["positions"] == clean_tokens.shape[1] and result["position_tokens"][0] == "0 <bos>"

    def metric(logits):
        last = logits[:, -1, :]
        idx = torch.arange(last.shape[0])
        return (last[idx, clean_answer] - last[idx, corrupt_answer]).mean()

    with torch.no_grad():
        clean_logits, clean_cache = bridge.run_with_cache(clean_tokens)
        corrupt_logits = bridge(corrupt_tokens)
    assert abs(metric(clean_logits).item() - result["clean"]) < TOL
    assert abs(metric(corrupt_logits).item() - result["corrupt"]) < TOL
    assert abs(result["clean"] - result["corrupt"]) > 1e-2
    functions = {"resid_pre": patching.get_act_patch_resid_pre, "resid_mid": resid_mid_patch,
                 "attn_out": patching.get_act_patch_attn_out, "mlp_out": patching.get_act_patch_mlp_out,
                 "z": patching.get_act_patch_attn_head_out_all_pos}
    for site, fn in functions.items():
        expected = fn(bridge, corrupt_tokens, clean_cache, metric).detach().numpy()
        got = np.array(result["sites"][site]["logit_diff"], dtype=np.float64)
        assert got.shape == expected.shape, (kind, site)
        np.testing.assert_allclose(got, expected, atol=TOL, err_msg=f"{kind} {site}")


def test_logit_lens_and_attribution_equal_transformerlens(family):
    kind, tmp, ckpt, model, bridge, hf, rows, data = family
    out = tmp / "lens" / "lens.h5"
    plot = tmp / "lens" / "lens.svg"
    run_rulelens("lens", "--checkpoint", ckpt, "--data", data, "--out", out.parent, "--quiet", "--force")
    assert plot.exists() and (tmp / "lens" / "lens.dla.svg").exists()
    with h5py.File(out) as f:
        lens_logits = f["lens/logits"][:]                       # [stage, example, vocab]
        stages = strings(f["stages"][:])
        components = strings(f["components"][:])
        attribution = f["dla/attribution"][:]                    # [component, example]
        other = f["meta/other_token"][:]
        logit_diff = f["meta/logit_diff"][:]
    cfg = bridge.cfg
    L, H, dh = cfg.n_layers, cfg.n_heads, cfg.d_head
    assert "pos_embed" not in components and "ln_final bias" not in components     # rotary positions, RMSNorm
    norm_weight = model.model.norm.weight.detach().double()
    W_U = model.lm_head.weight.detach().double()                                     # [V, d] (tied or not)
    attn = [layer.self_attn for layer in model.model.layers]
    for i, r in enumerate(rows):
        full, prompt_len = sequence(hf, r)
        x = torch.tensor([full[:prompt_len]])                   # [bos] + prompt: the last position predicts the answer
        answer = full[prompt_len]
        with torch.no_grad():
            logits, cache = bridge.run_with_cache(x)
            accum, labels = cache.accumulated_resid(incl_mid=True, apply_ln=True, return_labels=True)
            lens = bridge.unembed(accum[:, :, -1:, :])[:, 0, 0, :]   # [stage, vocab]
            resid, rlabels = cache.decompose_resid(return_labels=True, pos_slice=-1)
            heads, hlabels = cache.stack_head_results(return_labels=True, pos_slice=-1)
        assert labels == stages
        np.testing.assert_allclose(lens_logits[:, i, :], lens.numpy(), atol=TOL, err_msg=f"{kind} lens example {i}")
        direction = norm_weight * (W_U[answer] - W_U[int(other[i])])
        with torch.no_grad():
            attrs = (cache.apply_ln_to_stack(resid, layer=None, pos_slice=-1)[:, 0].double() @ direction).numpy()
            # Each head without the constant part of its values: v_proj.bias of its key/value head through W_O.
            constants = []
            for l in range(L):
                W_O = attn[l].o_proj.weight.detach().double()                        # [d, H·dh]
                b_v = attn[l].v_proj.bias
                for h in range(H):
                    if b_v is None:
                        constants.append(torch.zeros(cfg.d_model, dtype=torch.float64))
                    else:
                        kv = h // (H // cfg.n_key_value_heads)
                        constants.append(W_O[:, h * dh:(h + 1) * dh] @ b_v.detach().double()[kv * dh:(kv + 1) * dh])
            head_stack = heads[:, 0].double() - torch.stack(constants)
            head_attrs = (cache.apply_ln_to_stack(head_stack.unsqueeze(1).float(), layer=None, pos_slice=-1)[:, 0].double() @ direction).numpy()
        expected = {}
        for lab, v in zip(rlabels, attrs):
            if lab == "embed":
                expected["embed"] = v
            else:
                layer, kind_ = lab.split("_", 1)
                expected[f"L{layer} {'attn' if kind_ == 'attn_out' else 'mlp'}"] = v
        for lab, v in zip(hlabels, head_attrs):
            layer, head = lab[1:].split("H")
            expected[f"L{layer} H{head}"] = v
        for name, v in expected.items():
            assert abs(attribution[components.index(name), i] - v) < TOL, (kind, i, name, attribution[components.index(name), i], v)
        # The starred rows (embed, every layer's attn and mlp) sum to the logit difference; heads + bias = attn.
        total = sum(attribution[components.index(n), i] for n in ["embed"] + [f"L{l} {k}" for l in range(L) for k in ["attn", "mlp"]])
        assert abs(total - logit_diff[i]) < TOL
        assert abs(logit_diff[i] - (logits[0, -1, answer] - logits[0, -1, int(other[i])]).item()) < TOL
        for l in range(L):
            parts = sum(attribution[components.index(f"L{l} H{h}"), i] for h in range(H)) + attribution[components.index(f"L{l} attn bias"), i]
            assert abs(parts - attribution[components.index(f"L{l} attn"), i]) < TOL
