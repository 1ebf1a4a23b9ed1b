#!/usr/bin/python3
"""Writes tests/golden/gan/: PyTorch 1.13 reference values for spectral normalisation and the
WGAN-GP critic step (tests/test_spectral_norm.cpp, tests/test_gan.cpp).

spectral_norm.json, one case per layer (Linear, Conv2d with 2 power iterations, ConvTranspose2d
with dim 1), float64: the layer's state_dict after torch.nn.utils.spectral_norm (keys in
PyTorch's order), then for each training step the input, the output, weight_u/weight_v after the
forward, the gradients of (out * grad_output).sum() w.r.t. weight_orig and bias, and an SGD
update (lr 0.1) of both before the next step; finally an eval-mode forward (no power iteration).

gp.json: a tiny version of tutorial 4's critic (label embedding as a second image channel,
Conv2d + LeakyReLU(0.2), spectrally normalised Conv2d/Conv2d/Linear/Linear, dropout left out
because the RNGs differ) with fixed float64 weights, its state_dict, a batch of real and fake
images, labels and alphas, and after one critic step in training mode (forwards on real, fake,
then the interpolates, in that order): D(real).mean(), D(fake).mean(), the gradient penalty
mean((||grad_x D(x_hat)||_2 - 1)^2) computed with create_graph=True, the parameter gradients of
10 * GP alone and of the whole d_loss = -D(real).mean() + D(fake).mean() + 10 * GP, and every
weight_u/weight_v after the three forwards.

    /usr/bin/python3 tests/golden/make_gan_golden.py

Deterministic for a given torch version; the files stay small (< 100 KB each).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

DT = torch.float64
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gan")


def enc(t):
    t = t.detach()
    if t.is_floating_point():
        dtype, data = "float64", [float(v) for v in t.reshape(-1).tolist()]
    else:
        dtype, data = "int64", [int(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "dtype": dtype, "data": data}


def enc_sd(m):
    return {"keys": list(m.state_dict().keys()), "tensors": {k: enc(v) for k, v in m.state_dict().items()}}


# ---- spectral_norm over training steps ------------------------------------------------------------
def sn_case(name, layer, in_shape, steps, n_power_iterations=1, kind="linear", args=None):
    layer = layer.to(DT)
    m = spectral_norm(layer, n_power_iterations=n_power_iterations)
    m.train()
    case = {"name": name, "kind": kind, "args": args or {}, "n_power_iterations": n_power_iterations,
            "initial": enc_sd(m), "steps": []}
    for _ in range(steps):
        x = torch.randn(*in_shape, dtype=DT)
        out = m(x)
        gout = torch.randn(out.shape, dtype=DT)
        (out * gout).sum().backward()
        case["steps"].append({"input": enc(x), "output": enc(out), "grad_output": enc(gout),
                              "weight": enc(m.weight), "weight_u": enc(m.weight_u), "weight_v": enc(m.weight_v),
                              "grad_weight_orig": enc(m.weight_orig.grad), "grad_bias": enc(m.bias.grad)})
        with torch.no_grad():
            for p in m.parameters():
                p -= 0.1 * p.grad
                p.grad = None
    m.eval()
    x = torch.randn(*in_shape, dtype=DT)
    out = m(x)
    case["eval"] = {"input": enc(x), "output": enc(out), "weight_u": enc(m.weight_u), "weight_v": enc(m.weight_v)}
    return case


def spectral_norm_cases():
    torch.manual_seed(1234)
    cases = [
        sn_case("linear", nn.Linear(5, 4), (3, 5), 3, kind="linear", args={"in": 5, "out": 4}),
        sn_case("conv2d", nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 5, 5), 3, n_power_iterations=2,
                kind="conv2d", args={"in": 3, "out": 4, "k": 3, "stride": 2, "padding": 1}),
        sn_case("conv_transpose2d", nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (2, 3, 3, 3), 2,
                kind="conv_transpose2d", args={"in": 3, "out": 2, "k": 4, "stride": 2, "padding": 1}),
    ]
    return {"torch": torch.__version__, "cases": cases}


# ---- the tiny critic and one WGAN-GP critic step ---------------------------------------------------
class Critic(nn.Module):
    """Tutorial 4's critic at 8x8 with few channels; dropout omitted (p = 0 in the golden)."""

    def __init__(self, classes=10, c1=4, c2=6, c3=5, hidden=7):
        super().__init__()
        self.label_emb = nn.Embedding(classes, 64)
        self.conv1 = nn.Conv2d(2, c1, 4, 2, 1)                      # 8 -> 4
        self.conv2 = spectral_norm(nn.Conv2d(c1, c2, 4, 2, 1))      # 4 -> 2
        self.conv3 = spectral_norm(nn.Conv2d(c2, c3, 3, 1, 1))      # 2 -> 2
        self.fc1 = spectral_norm(nn.Linear(c3 * 4, hidden))
        self.fc2 = spectral_norm(nn.Linear(hidden, 1))

    def forward(self, x, y):
        c = self.label_emb(y).view(-1, 1, 8, 8)
        h = torch.cat([x, c], 1)
        h = F.leaky_relu(self.conv1(h), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        h = F.leaky_relu(self.conv3(h), 0.2)
        h = F.leaky_relu(self.fc1(h.view(h.size(0), -1)), 0.2)
        return self.fc2(h)


def gradient_penalty(D, real, fake, y, alpha):
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d = D(x_hat, y)
    g, = torch.autograd.grad(d, x_hat, grad_outputs=torch.ones_like(d), create_graph=True, retain_graph=True)
    g = g.view(g.size(0), -1)
    return ((g.norm(2, dim=1) - 1) ** 2).mean()


def gp_case():
    torch.manual_seed(99)
    D = Critic().to(DT)
    with torch.no_grad():  # weights_init of the recipe, but larger so the penalty is far from 0
        for n, p in D.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
            elif not n.startswith("label_emb"):
                p.normal_(0, 0.3)
    D.train()
    initial = enc_sd(D)
    B = 3
    real = torch.rand(B, 1, 8, 8, dtype=DT) * 2 - 1
    fake = torch.tanh(torch.randn(B, 1, 8, 8, dtype=DT))
    y = torch.tensor([3, 0, 7])
    alpha = torch.rand(B, 1, 1, 1, dtype=DT)
    d_real = D(real, y).mean()
    d_fake = D(fake, y).mean()
    gp = gradient_penalty(D, real, fake, y, alpha)
    params = [p for _, p in D.named_parameters()]
    names = [n for n, _ in D.named_parameters()]
    g_gp = torch.autograd.grad(10 * gp, params, retain_graph=True, allow_unused=True)  # fc2.bias: unused
    d_loss = -d_real + d_fake + 10 * gp
    g_loss = torch.autograd.grad(d_loss, params)
    return {"torch": torch.__version__, "initial": initial, "real": enc(real), "fake": enc(fake), "labels": enc(y),
            "alpha": enc(alpha), "d_real": d_real.item(), "d_fake": d_fake.item(), "gp": gp.item(),
            "d_loss": d_loss.item(), "param_names": names,
            "grad_10gp": {n: None if g is None else enc(g) for n, g in zip(names, g_gp)},
            "grad_d_loss": {n: enc(g) for n, g in zip(names, g_loss)},
            "buffers_after": {n: enc(b) for n, b in D.named_buffers()}}


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    write("spectral_norm.json", spectral_norm_cases())
    write("gp.json", gp_case())
