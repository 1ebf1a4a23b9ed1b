#!/usr/bin/python3
"""Writes tests/golden/layers.json: PyTorch reference values for Ember's convolution, pooling,
batch-norm and embedding tests (tests/test_conv.cpp, test_pool.cpp, test_batchnorm.cpp,
test_embedding.cpp).

For every case: the seeded float64 inputs, the op's output, a seeded grad_output of the output's
shape, and the gradients of (out * grad_output).sum() w.r.t. every floating-point input that
requires grad (null for index inputs and running statistics). Batch-norm cases also record the
running statistics after the call. Run with the system Python and its torch (Debian python3-torch):

    /usr/bin/python3 tests/golden/make_layer_golden.py

Deterministic for a given torch version; keep the file small (< 300 KB).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(4321)
DT = torch.float64
CASES = []


def randn(*shape):
    return torch.randn(*shape, dtype=DT)


def enc(t):
    t = t.detach()
    if t.is_floating_point():
        dtype, data = "float64", [float(v) for v in t.reshape(-1).tolist()]
    else:
        dtype, data = "int64", [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "dtype": dtype, "data": data}


def case(name, op, fn, inputs, args=None, no_grad=(), extra=None):
    """fn(*inputs) -> tensor. Float inputs get gradients unless their index is in no_grad;
    extra(*inputs) -> dict of tensors recorded after the call (running statistics)."""
    ins = [t.clone().requires_grad_(t.is_floating_point() and i not in no_grad) for i, t in enumerate(inputs)]
    out = fn(*ins)
    gout = torch.randn(out.shape, dtype=DT)
    diff = [t for t in ins if t.requires_grad]
    grads = torch.autograd.grad((out * gout).sum(), diff, allow_unused=True)
    gi = iter(grads)
    gl = []
    for t in ins:
        if t.requires_grad:
            g = next(gi)
            gl.append(None if g is None else enc(g))
        else:
            gl.append(None)
    c = {"name": name, "op": op, "args": args or {}, "inputs": [enc(t) for t in inputs], "output": enc(out),
         "grad_output": enc(gout), "grads": gl}
    if extra is not None:
        c["extra"] = {k: enc(v) for k, v in extra(*ins).items()}
    CASES.append(c)


# ---- conv2d ------------------------------------------------------------------------------------------
def conv(name, x, w, b, stride=1, padding=0, dilation=1, groups=1):
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "bias": b is not None}
    ins = [x, w] + ([b] if b is not None else [])
    case(name, "conv2d", lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups),
         ins, args)


conv("conv2d_basic", randn(2, 3, 6, 5), randn(4, 3, 3, 3), randn(4))
conv("conv2d_stride_pad", randn(2, 2, 7, 6), randn(3, 2, 3, 2), randn(3), stride=[2, 1], padding=[1, 2])
conv("conv2d_dilation", randn(1, 2, 8, 7), randn(2, 2, 3, 3), None, dilation=[2, 1], padding=1)
conv("conv2d_groups", randn(2, 4, 5, 5), randn(6, 2, 3, 3), randn(6), groups=2, stride=2, padding=1)
conv("conv2d_depthwise", randn(1, 3, 5, 6), randn(3, 1, 3, 3), None, groups=3, padding=1)
conv("conv2d_1x1", randn(2, 3, 4, 4), randn(5, 3, 1, 1), randn(5))
conv("conv2d_same_even", randn(1, 2, 5, 6), randn(3, 2, 4, 2), randn(3), padding="same")
conv("conv2d_mnist1", randn(2, 1, 10, 10), randn(4, 1, 3, 3), randn(4))


def convT(name, x, w, b, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    args = {"stride": stride, "padding": padding, "output_padding": output_padding, "groups": groups,
            "dilation": dilation, "bias": b is not None}
    ins = [x, w] + ([b] if b is not None else [])
    case(name, "conv_transpose2d",
         lambda x, w, *b: F.conv_transpose2d(x, w, b[0] if b else None, stride, padding, output_padding, groups,
                                             dilation), ins, args)


convT("conv_transpose2d_basic", randn(2, 3, 4, 4), randn(3, 2, 3, 3), randn(2))
convT("conv_transpose2d_stride2", randn(2, 4, 3, 3), randn(4, 3, 4, 4), randn(3), stride=2, padding=1)
convT("conv_transpose2d_outpad", randn(1, 2, 3, 4), randn(2, 2, 3, 3), None, stride=2, padding=1, output_padding=1)
convT("conv_transpose2d_groups_dil", randn(1, 4, 3, 3), randn(4, 1, 3, 2), randn(2), groups=2, dilation=[1, 2])

# ---- pooling -------------------------------------------------------------------------------------------
def maxpool(name, x, k, s=None, p=0, d=1, ceil=False):
    args = {"kernel": k, "stride": s if s is not None else k, "padding": p, "dilation": d, "ceil_mode": ceil}
    case(name, "max_pool2d", lambda x: F.max_pool2d(x, k, s, p, d, ceil), [x], args)
    _, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    CASES[-1]["extra"] = {"indices": enc(idx)}


maxpool("max_pool2d_2", randn(2, 3, 6, 6), 2)
maxpool("max_pool2d_odd", randn(1, 2, 7, 5), 2)
maxpool("max_pool2d_pad_stride", randn(1, 2, 7, 7), 3, 2, 1)
maxpool("max_pool2d_ceil", randn(1, 2, 7, 6), [3, 2], [2, 2], 0, 1, True)
maxpool("max_pool2d_dilation", randn(1, 1, 8, 8), 2, 1, 1, 2)


def avgpool(name, x, k, s=None, p=0, ceil=False, cip=True):
    args = {"kernel": k, "stride": s if s is not None else k, "padding": p, "ceil_mode": ceil, "count_include_pad": cip}
    case(name, "avg_pool2d", lambda x: F.avg_pool2d(x, k, s, p, ceil, cip), [x], args)


avgpool("avg_pool2d_2", randn(2, 3, 6, 6), 2)
avgpool("avg_pool2d_pad", randn(1, 2, 7, 7), 3, 2, 1)
avgpool("avg_pool2d_pad_nocount", randn(1, 2, 7, 7), 3, 2, 1, False, False)
avgpool("avg_pool2d_ceil", randn(1, 2, 7, 6), [3, 2], [2, 2], [1, 0], True, True)
avgpool("avg_pool2d_ceil_nocount", randn(1, 2, 8, 5), 3, 2, 1, True, False)


def adaptive(name, x, out):
    case(name, "adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, out), [x], {"output_size": out})


adaptive("adaptive_avg_pool2d_1", randn(2, 3, 5, 7), [1, 1])
adaptive("adaptive_avg_pool2d_div", randn(1, 2, 6, 8), [3, 4])
adaptive("adaptive_avg_pool2d_nondiv", randn(1, 2, 7, 5), [3, 2])
adaptive("adaptive_avg_pool2d_up", randn(1, 1, 3, 2), [4, 5])

# ---- batch norm -----------------------------------------------------------------------------------------
def bn(name, x, training, affine=True, momentum=0.1, eps=1e-5):
    C = x.shape[1]
    rm, rv = randn(C) * 0.1, randn(C).abs() + 0.5
    w, b = randn(C), randn(C)
    args = {"training": training, "momentum": momentum, "eps": eps, "affine": affine}
    ins = [x, rm, rv] + ([w, b] if affine else [])

    def fn(x, rm, rv, *wb):
        return F.batch_norm(x, rm, rv, wb[0] if wb else None, wb[1] if wb else None, training, momentum, eps)

    case(name, "batch_norm", fn, ins, args, no_grad=(1, 2), extra=lambda x, rm, rv, *wb: {"running_mean": rm,
                                                                                           "running_var": rv})


bn("batch_norm_2d_train", randn(4, 3, 3, 2) * 2 + 1, True)
bn("batch_norm_2d_eval", randn(2, 3, 2, 2), False)
bn("batch_norm_1d_train", randn(5, 4) * 3 - 1, True, momentum=0.3, eps=1e-3)
bn("batch_norm_1d_eval", randn(3, 4), False)
bn("batch_norm_3d_train_noaffine", randn(3, 2, 4), True, affine=False)

# ---- embedding ------------------------------------------------------------------------------------------
w = randn(6, 3)
w[2] = 0
case("embedding_padding_idx", "embedding", lambda w, i: F.embedding(i, w, padding_idx=2),
     [w, torch.tensor([[0, 2, 5], [2, 1, 0]])], {"padding_idx": 2})
case("embedding_plain", "embedding", lambda w, i: F.embedding(i, w), [randn(5, 2), torch.tensor([4, 4, 1, 0])],
     {"padding_idx": None})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.json")
with open(path, "w") as f:
    f.write('{"generator":"tests/golden/make_layer_golden.py","torch":%s,"cases":[\n' % json.dumps(torch.__version__))
    f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in CASES))
    f.write("\n]}\n")
print(f"wrote {len(CASES)} cases to {path} ({os.path.getsize(path)} bytes)")
