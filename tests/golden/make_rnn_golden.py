#!/usr/bin/python3
"""Writes tests/golden/rnn/rnn.json: PyTorch 1.13 reference values for nn::LSTM and nn::GRU
(tests/test_rnn.cpp).

Each case builds torch.nn.LSTM / torch.nn.GRU in float64 with seeded parameters and records:
the options, every parameter under its PyTorch name, the input, the optional initial states and
lengths, the output, h_n (and c_n), seeded gradients for output / h_n / c_n, and the gradients
of sum(out * g_out) + sum(h_n * g_h) [+ sum(c_n * g_c)] w.r.t. the input, the initial states and
every parameter. With lengths the model runs on
pack_padded_sequence(enforce_sorted=False) → RNN → pad_packed_sequence(total_length=T), which is
what Ember's `lengths` argument means. Run with the system Python and its torch (Debian
python3-torch):

    /usr/bin/python3 tests/golden/make_rnn_golden.py

Deterministic for a given torch version; the file stays small (< 200 KB).
"""
import json
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(2024)
DT = torch.float64
CASES = []


def enc(t):
    t = t.detach()
    if t.is_floating_point():
        return {"shape": list(t.shape), "dtype": "float64", "data": [float(v) for v in t.reshape(-1).tolist()]}
    return {"shape": list(t.shape), "dtype": "int64", "data": [int(v) for v in t.reshape(-1).tolist()]}


def case(name, mode, T, B, I, H, num_layers=1, bidirectional=False, batch_first=False, bias=True,
         lengths=None, init_state=False, unbatched=False):
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    m = cls(I, H, num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional).to(DT)
    D = 2 if bidirectional else 1
    if unbatched:
        x = torch.randn(T, I, dtype=DT)
    else:
        x = torch.randn(B, T, I, dtype=DT) if batch_first else torch.randn(T, B, I, dtype=DT)
    x.requires_grad_(True)
    sshape = (num_layers * D, H) if unbatched else (num_layers * D, B, H)
    h0 = torch.randn(*sshape, dtype=DT).requires_grad_(True) if init_state else None
    c0 = torch.randn(*sshape, dtype=DT).requires_grad_(True) if init_state and mode == "lstm" else None
    hx = None
    if init_state:
        hx = (h0, c0) if mode == "lstm" else h0
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        out_p, st = m(packed, hx)
        out, _ = pad_packed_sequence(out_p, batch_first=batch_first, total_length=T)
    else:
        out, st = m(x, hx)
    hn, cn = (st if mode == "lstm" else (st, None))
    g_out = torch.randn(out.shape, dtype=DT)
    g_h = torch.randn(hn.shape, dtype=DT)
    loss = (out * g_out).sum() + (hn * g_h).sum()
    g_c = None
    if cn is not None:
        g_c = torch.randn(cn.shape, dtype=DT)
        loss = loss + (cn * g_c).sum()
    names = [n for n, _ in m.named_parameters()]
    params = [p for _, p in m.named_parameters()]
    wrt = [x] + ([h0] if h0 is not None else []) + ([c0] if c0 is not None else []) + params
    grads = torch.autograd.grad(loss, wrt)
    gi = iter(grads)
    gd = {"input": enc(next(gi))}
    if h0 is not None:
        gd["h0"] = enc(next(gi))
    if c0 is not None:
        gd["c0"] = enc(next(gi))
    for n in names:
        gd[n] = enc(next(gi))
    c = {"name": name, "mode": mode,
         "options": {"input_size": I, "hidden_size": H, "num_layers": num_layers, "bias": bias,
                     "batch_first": batch_first, "bidirectional": bidirectional},
         "params": {n: enc(p) for n, p in zip(names, params)}, "input": enc(x),
         "output": enc(out), "h_n": enc(hn), "grad_output": enc(g_out), "grad_h_n": enc(g_h), "grads": gd}
    if h0 is not None:
        c["h0"] = enc(h0)
    if c0 is not None:
        c["c0"] = enc(c0)
    if cn is not None:
        c["c_n"] = enc(cn)
        c["grad_c_n"] = enc(g_c)
    if lengths is not None:
        c["lengths"] = list(lengths)
    CASES.append(c)


for mode in ("lstm", "gru"):
    case(f"{mode}_1layer", mode, T=5, B=3, I=4, H=3)
    case(f"{mode}_2layer_bidirectional_batch_first", mode, T=4, B=3, I=3, H=2, num_layers=2, bidirectional=True,
         batch_first=True)
    # Unsorted lengths with one full-length sequence (T) and a length-1 sequence.
    case(f"{mode}_lengths_2layer_bidirectional", mode, T=5, B=4, I=3, H=2, num_layers=2, bidirectional=True,
         batch_first=True, lengths=[3, 5, 1, 4])
    case(f"{mode}_initial_state_bidirectional", mode, T=4, B=2, I=3, H=3, bidirectional=True, init_state=True)
    case(f"{mode}_initial_state_lengths", mode, T=4, B=3, I=2, H=2, num_layers=2, bidirectional=True,
         batch_first=True, init_state=True, lengths=[2, 4, 1])
    case(f"{mode}_no_bias", mode, T=3, B=2, I=3, H=2, bias=False)
    case(f"{mode}_unbatched", mode, T=3, B=1, I=2, H=2, num_layers=2, init_state=True, unbatched=True)

here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, "rnn"), exist_ok=True)
path = os.path.join(here, "rnn", "rnn.json")
with open(path, "w") as f:
    f.write('{"generator":"tests/golden/make_rnn_golden.py","torch":%s,"cases":[\n' % json.dumps(torch.__version__))
    f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in CASES))
    f.write("\n]}\n")
print(f"wrote {len(CASES)} cases to {path} ({os.path.getsize(path)} bytes)")
