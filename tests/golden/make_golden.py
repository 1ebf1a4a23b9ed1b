#!/usr/bin/python3
"""Writes tests/golden/ops.json: PyTorch reference values for Ember's op tests (tests/test_golden.cpp).

For every case: the seeded float64 inputs, the op's output, a seeded grad_output of the output's
shape, and the gradients of (out * grad_output).sum() w.r.t. every floating-point input.
Run with the system Python and its torch (Debian python3-torch):

    /usr/bin/python3 tests/golden/make_golden.py

The output is deterministic for a given torch version; keep it small (< 300 KB).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
DT = torch.float64
CASES = []


def randn(*shape, lo=None, scale=1.0, shift=0.0):
    t = torch.randn(*shape, dtype=DT) * scale + shift
    if lo is not None:  # keep away from a singular point (log, sqrt, div)
        t = t.abs() + lo
    return t


def case(name, op, fn, inputs, args=None):
    """fn(*inputs) -> tensor; float inputs get gradients, others (index, mask) are constants."""
    ins = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = fn(*ins)
    gout = torch.randn(out.shape, dtype=DT)
    float_ins = [t for t in ins if t.is_floating_point()]
    grads = torch.autograd.grad((out * gout).sum(), float_ins, allow_unused=True)
    gi = iter(grads)
    gl = []
    for t in ins:
        if t.is_floating_point():
            g = next(gi)
            gl.append(None if g is None else enc(g))
        else:
            gl.append(None)
    CASES.append({
        "name": name,
        "op": op,
        "args": args or {},
        "inputs": [enc(t) for t in ins],
        "output": enc(out),
        "grad_output": enc(gout),
        "grads": gl,
    })


def enc(t):
    t = t.detach()
    if t.dtype == torch.bool:
        dtype, data = "bool", [bool(v) for v in t.reshape(-1).tolist()]
    elif t.is_floating_point():
        dtype, data = "float64", [float(v) for v in t.reshape(-1).tolist()]
    else:
        dtype, data = "int64", [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "dtype": dtype, "data": data}


# ---- binary with broadcasting -----------------------------------------------------------------
case("add_broadcast", "add", lambda a, b: a + b, [randn(2, 3, 1), randn(3, 4)])
case("sub_broadcast", "sub", lambda a, b: a - b, [randn(4), randn(3, 1)])
case("mul_broadcast", "mul", lambda a, b: a * b, [randn(2, 1, 4), randn(3, 1)])
case("div_broadcast", "div", lambda a, b: a / b, [randn(3, 4), randn(4, lo=0.5)])
case("pow_scalar", "pow_scalar", lambda a: a.pow(2.5), [randn(3, 4, lo=0.2)], {"exponent": 2.5})
case("pow_int_scalar", "pow_scalar", lambda a: a.pow(3.0), [randn(2, 3)], {"exponent": 3.0})
case("pow_tensor", "pow_tensor", lambda a, b: a.pow(b), [randn(2, 3, lo=0.3), randn(3)])

# ---- unary / activations --------------------------------------------------------------------
case("exp", "exp", torch.exp, [randn(3, 4)])
case("log", "log", torch.log, [randn(3, 4, lo=0.1)])
case("sqrt", "sqrt", torch.sqrt, [randn(3, 4, lo=0.1)])
case("tanh", "tanh", torch.tanh, [randn(3, 4)])
case("sigmoid", "sigmoid", torch.sigmoid, [randn(3, 4, scale=3)])
case("relu", "relu", F.relu, [randn(3, 4)])
case("leaky_relu", "leaky_relu", lambda a: F.leaky_relu(a, 0.2), [randn(3, 4)], {"negative_slope": 0.2})
case("elu", "elu", lambda a: F.elu(a, 1.0), [randn(3, 4, scale=2)], {"alpha": 1.0})
case("elu_alpha", "elu", lambda a: F.elu(a, 0.5), [randn(3, 4, scale=2)], {"alpha": 0.5})
case("gelu_exact", "gelu", lambda a: F.gelu(a), [randn(3, 4, scale=2)], {"approximate": "none"})
case("gelu_tanh", "gelu", lambda a: F.gelu(a, approximate="tanh"), [randn(3, 4, scale=2)], {"approximate": "tanh"})
case("silu", "silu", F.silu, [randn(3, 4, scale=2)])
case("softplus", "softplus", lambda a: F.softplus(a), [randn(3, 4, scale=3)], {"beta": 1.0, "threshold": 20.0})
case("softplus_beta", "softplus", lambda a: F.softplus(a, beta=2.0, threshold=5.0), [randn(3, 4, scale=3)],
     {"beta": 2.0, "threshold": 5.0})
case("clamp", "clamp", lambda a: torch.clamp(a, -0.5, 0.7), [randn(3, 4)], {"min": -0.5, "max": 0.7})

# ---- reductions ---------------------------------------------------------------------------------
case("sum_all", "sum", lambda a: a.sum(), [randn(2, 3, 4)], {"dims": [], "keepdim": False})
case("sum_dims", "sum", lambda a: a.sum((0, 2)), [randn(2, 3, 4)], {"dims": [0, 2], "keepdim": False})
case("sum_keepdim", "sum", lambda a: a.sum(1, keepdim=True), [randn(2, 3, 4)], {"dims": [1], "keepdim": True})
case("mean_all", "mean", lambda a: a.mean(), [randn(2, 3, 4)], {"dims": [], "keepdim": False})
case("mean_dims", "mean", lambda a: a.mean((-1,), keepdim=True), [randn(2, 3, 4)], {"dims": [-1], "keepdim": True})
case("var_dim", "var", lambda a: a.var(1), [randn(3, 5)], {"dims": [1], "unbiased": True, "keepdim": False})
case("var_biased", "var", lambda a: a.var((0, 1), unbiased=False, keepdim=True), [randn(3, 5)],
     {"dims": [0, 1], "unbiased": False, "keepdim": True})
case("std_dim", "std", lambda a: a.std(0), [randn(4, 3)], {"dims": [0], "unbiased": True, "keepdim": False})
case("norm_all", "norm", lambda a: a.norm(), [randn(3, 4)], {"p": 2.0, "dims": [], "keepdim": False})
case("norm_dim", "norm", lambda a: torch.norm(a, 2, dim=1), [randn(3, 4)], {"p": 2.0, "dims": [1], "keepdim": False})
case("logsumexp", "logsumexp", lambda a: torch.logsumexp(a, 1), [randn(3, 5, scale=3)], {"dims": [1], "keepdim": False})
case("logsumexp_keep", "logsumexp", lambda a: torch.logsumexp(a, (0,), keepdim=True), [randn(3, 5)],
     {"dims": [0], "keepdim": True})
case("max_dim", "max_dim", lambda a: torch.max(a, 1)[0], [randn(3, 5)], {"dim": 1, "keepdim": False})
case("max_dim_keep", "max_dim", lambda a: torch.max(a, 0, keepdim=True)[0], [randn(3, 5)], {"dim": 0, "keepdim": True})
case("softmax", "softmax", lambda a: torch.softmax(a, -1), [randn(3, 5, scale=2)], {"dim": -1})
case("softmax_dim0", "softmax", lambda a: torch.softmax(a, 0), [randn(3, 2, 4)], {"dim": 0})
case("log_softmax", "log_softmax", lambda a: torch.log_softmax(a, 1), [randn(3, 5, scale=2)], {"dim": 1})

# ---- linear algebra -------------------------------------------------------------------------------
case("matmul_2d", "matmul", torch.matmul, [randn(3, 4), randn(4, 2)])
case("matmul_batched", "matmul", torch.matmul, [randn(2, 3, 4), randn(4, 5)])
case("matmul_broadcast", "matmul", torch.matmul, [randn(2, 1, 3, 4), randn(3, 4, 2)])
case("matmul_vec", "matmul", torch.matmul, [randn(2, 3, 4), randn(4)])
case("linear", "linear", F.linear, [randn(2, 3, 4), randn(5, 4), randn(5)])
case("linear_nobias", "linear", F.linear, [randn(3, 4), randn(2, 4)])

# ---- joins, indexing, views -------------------------------------------------------------------------
case("cat_dim1", "cat", lambda a, b, c: torch.cat([a, b, c], 1), [randn(2, 1, 3), randn(2, 2, 3), randn(2, 3, 3)],
     {"dim": 1})
case("cat_dim0", "cat", lambda a, b: torch.cat([a, b], 0), [randn(1, 3), randn(2, 3)], {"dim": 0})
case("stack_dim0", "stack", lambda a, b: torch.stack([a, b], 0), [randn(2, 3), randn(2, 3)], {"dim": 0})
case("stack_last", "stack", lambda a, b, c: torch.stack([a, b, c], -1), [randn(2, 3), randn(2, 3), randn(2, 3)],
     {"dim": -1})
case("index_select", "index_select", lambda a, i: torch.index_select(a, 0, i),
     [randn(4, 3), torch.tensor([3, 0, 3, 1])], {"dim": 0})
case("index_select_dim1", "index_select", lambda a, i: torch.index_select(a, 1, i),
     [randn(2, 5), torch.tensor([4, 4, 0])], {"dim": 1})
case("gather", "gather", lambda a, i: torch.gather(a, 1, i),
     [randn(3, 4), torch.tensor([[0, 3], [2, 2], [1, 0]])], {"dim": 1})
case("gather_dim0", "gather", lambda a, i: torch.gather(a, 0, i),
     [randn(3, 2), torch.tensor([[2, 0], [2, 1]])], {"dim": 0})
case("transpose_contiguous", "transpose_contiguous", lambda a: a.transpose(0, 2).contiguous(), [randn(2, 3, 4)],
     {"dim0": 0, "dim1": 2})
case("where", "where", lambda c, a, b: torch.where(c, a, b),
     [torch.tensor([[True, False, True], [False, False, True]]), randn(2, 3), randn(3)])

# ---- composites (what a model does) -------------------------------------------------------------------
case("mlp_tanh", "mlp_tanh", lambda x, w1, b1, w2: torch.tanh(F.linear(x, w1, b1)).matmul(w2.t()).log_softmax(-1),
     [randn(4, 3), randn(5, 3), randn(5), randn(2, 5)])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops.json")
with open(path, "w") as f:
    # One case per line, so a regenerated file diffs readably.
    f.write('{"generator":"tests/golden/make_golden.py","torch":%s,"cases":[\n' % json.dumps(torch.__version__))
    f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in CASES))
    f.write("\n]}\n")
print(f"wrote {len(CASES)} cases to {path} ({os.path.getsize(path)} bytes)")
