#!/usr/bin/python3
"""Writes tests/golden/transformer/transformer.json: PyTorch 1.13 reference values for
layer_norm / nn::LayerNorm, scaled_dot_product_attention with a padding mask,
nn::MultiheadAttention and nn::TransformerEncoderLayer / nn::TransformerEncoder
(tests/test_transformer.cpp).

Every case runs in float64 with seeded inputs and parameters (biases too, so none is a trivial
zero), in eval mode / dropout 0 so it is deterministic, and records: the options, every
parameter under its PyTorch state_dict name (in state_dict order), the inputs, the outputs, a
seeded grad_output per output and the gradients of sum(out * grad_out) w.r.t. the inputs and
every parameter. Torch 1.13 has no public scaled_dot_product_attention, so that case is written
out as its definition: softmax(q k^T / sqrt(E) + mask) v.
Run with the system Python and its torch (Debian python3-torch):

    /usr/bin/python3 tests/golden/make_transformer_golden.py

Deterministic for a given torch version; the file stays small (< 200 KB).
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
DT = torch.float64
CASES = []


def enc(t):
    t = t.detach()
    if t.dtype == torch.bool:
        return {"shape": list(t.shape), "dtype": "int64", "data": [int(v) for v in t.reshape(-1).tolist()]}
    if t.is_floating_point():
        return {"shape": list(t.shape), "dtype": "float64", "data": [float(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "int64", "data": [int(v) for v in t.reshape(-1).tolist()]}


def randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, dtype=DT) * 0.5)


def finish(case, outputs, inputs, module=None):
    """Seeded grad_outputs for `outputs` (dict name → tensor), gradients w.r.t. `inputs`
    (dict name → tensor) and the module's parameters."""
    gouts = {k: torch.randn(v.shape, dtype=DT) for k, v in outputs.items()}
    loss = sum((v * gouts[k]).sum() for k, v in outputs.items())
    wrt = dict(inputs)
    if module is not None:
        case["params"] = {k: enc(v) for k, v in module.state_dict().items()}
        case["state_dict_keys"] = list(module.state_dict().keys())
        for k, p in module.named_parameters():
            wrt[k] = p
    grads = torch.autograd.grad(loss, list(wrt.values()), allow_unused=True)
    case["outputs"] = {k: enc(v) for k, v in outputs.items()}
    case["grad_outputs"] = {k: enc(v) for k, v in gouts.items()}
    case["grads"] = {k: enc(g if g is not None else torch.zeros_like(wrt[k])) for k, g in zip(wrt.keys(), grads)}
    CASES.append(case)


def layer_norm_case(name, shape, normalized_shape, affine=True, eps=1e-5):
    m = torch.nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=affine).to(DT)
    randomize(m)
    x = (torch.randn(shape, dtype=DT) * 3 + 2).requires_grad_(True)
    case = {"name": name, "kind": "layer_norm", "options": {"normalized_shape": list(normalized_shape), "eps": eps,
                                                            "elementwise_affine": affine}, "inputs": {"x": enc(x)}}
    finish(case, {"y": m(x)}, {"x": x}, m)


def sdpa_case(name, B, H, L, S, E, Ev, lengths=None, causal=False, bool_mask=False):
    q = torch.randn(B, H, L, E, dtype=DT, requires_grad=True)
    k = torch.randn(B, H, S, E, dtype=DT, requires_grad=True)
    v = torch.randn(B, H, S, Ev, dtype=DT, requires_grad=True)
    scores = q @ k.transpose(-2, -1) / math.sqrt(E)
    case = {"name": name, "kind": "sdpa", "options": {"causal": causal}, "inputs": {"q": enc(q), "k": enc(k), "v": enc(v)}}
    if lengths is not None:
        pad = torch.arange(S)[None, :] >= torch.tensor(lengths)[:, None]  # [B, S], True = padding
        case["key_padding_mask"] = enc(pad)
        scores = scores + torch.zeros(B, S, dtype=DT).masked_fill(pad, float("-inf"))[:, None, None, :]
    if bool_mask:
        allow = torch.rand(L, S) > 0.3
        allow[:, 0] = True
        case["attn_mask_bool"] = enc(allow)
        scores = scores.masked_fill(~allow, float("-inf"))
    if causal:
        scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), float("-inf"))
    out = torch.softmax(scores, -1) @ v
    finish(case, {"out": out}, {"q": q, "k": k, "v": v})


def mha_case(name, E, H, L, S, N, batch_first, self_attn, lengths=None, bias=True, attn_mask=False):
    m = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first).to(DT)
    randomize(m)
    m.eval()
    qshape = (N, L, E) if batch_first else (L, N, E)
    kshape = (N, S, E) if batch_first else (S, N, E)
    q = torch.randn(qshape, dtype=DT, requires_grad=True)
    inputs = {"query": q}
    if self_attn:
        k = v = q
    else:
        k = torch.randn(kshape, dtype=DT, requires_grad=True)
        v = torch.randn(kshape, dtype=DT, requires_grad=True)
        inputs.update({"key": k, "value": v})
    case = {"name": name, "kind": "mha", "options": {"embed_dim": E, "num_heads": H, "batch_first": batch_first,
                                                     "bias": bias, "self_attn": self_attn},
            "inputs": {k_: enc(t) for k_, t in inputs.items()}}
    kpm = None
    if lengths is not None:
        kpm = torch.arange(S)[None, :] >= torch.tensor(lengths)[:, None]
        case["key_padding_mask"] = enc(kpm)
    am = None
    if attn_mask:
        am = torch.ones(L, S, dtype=torch.bool).triu(1)  # True = not allowed
        case["attn_mask_bool"] = enc(am)
    out, w = m(q, k, v, key_padding_mask=kpm, need_weights=True, attn_mask=am)
    finish(case, {"out": out, "weights": w}, inputs, m)


def encoder_case(name, d, nhead, ff, L, N, norm_first, activation, batch_first, lengths=None, num_layers=None,
                 final_norm=False):
    layer = torch.nn.TransformerEncoderLayer(d, nhead, dim_feedforward=ff, dropout=0.0, activation=activation,
                                             layer_norm_eps=1e-5, batch_first=batch_first, norm_first=norm_first).to(DT)
    if num_layers is None:
        m = layer
    else:
        m = torch.nn.TransformerEncoder(layer, num_layers, norm=torch.nn.LayerNorm(d).to(DT) if final_norm else None,
                                        enable_nested_tensor=False)
    randomize(m)
    m.eval()
    x = torch.randn((N, L, d) if batch_first else (L, N, d), dtype=DT, requires_grad=True)
    case = {"name": name, "kind": "encoder_layer" if num_layers is None else "encoder",
            "options": {"d_model": d, "nhead": nhead, "dim_feedforward": ff, "norm_first": norm_first,
                        "activation": activation, "batch_first": batch_first, "num_layers": num_layers or 0,
                        "final_norm": final_norm},
            "inputs": {"src": enc(x)}}
    kpm = None
    if lengths is not None:
        kpm = torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None]
        case["key_padding_mask"] = enc(kpm)
    out = m(x, src_key_padding_mask=kpm)
    finish(case, {"out": out}, {"src": x}, m)


layer_norm_case("layer_norm [3, 4, 6] over [6]", (3, 4, 6), (6,))
layer_norm_case("layer_norm [2, 3, 4] over [3, 4]", (2, 3, 4), (3, 4))
layer_norm_case("layer_norm [5, 7] no affine, eps 1e-12", (5, 7), (7,), affine=False, eps=1e-12)
sdpa_case("sdpa padding mask", 2, 2, 3, 5, 4, 3, lengths=[5, 2])
sdpa_case("sdpa causal", 2, 1, 4, 4, 3, 3, causal=True)
sdpa_case("sdpa bool attn_mask", 1, 2, 3, 4, 2, 2, bool_mask=True)
mha_case("mha self-attention, key_padding_mask", 8, 2, 5, 5, 3, False, True, lengths=[5, 3, 1])
mha_case("mha cross-attention, batch_first, key_padding_mask", 6, 3, 3, 4, 2, True, False, lengths=[2, 4])
mha_case("mha self-attention, no bias, causal attn_mask", 4, 2, 4, 4, 2, True, True, bias=False, attn_mask=True)
encoder_case("encoder layer post-norm relu", 8, 2, 12, 5, 2, False, "relu", False, lengths=[5, 3])
encoder_case("encoder layer pre-norm gelu, batch_first", 8, 2, 12, 4, 3, True, "gelu", True, lengths=[4, 2, 3])
encoder_case("encoder 2 layers post-norm gelu + final norm, batch_first", 8, 4, 8, 4, 2, False, "gelu", True,
             lengths=[3, 4], num_layers=2, final_norm=True)

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformer")
os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "transformer.json"), "w") as f:
    json.dump({"torch_version": torch.__version__, "cases": CASES}, f)
print("wrote", len(CASES), "cases to", out_dir)
