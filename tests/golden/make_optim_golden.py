#!/usr/bin/python3
"""Golden values for tests/test_optim.cpp, produced by real torch.optim.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/golden/make_optim_golden.py
It rewrites tests/golden/optim.json next to this script.

* "optimizers": each case minimises (or maximises) a fixed quadratic in float64 over two
  parameters x [3] and W [2, 2] for 5 steps and records the flattened [x, W] after every step.
  Option names are those of Ember's OptimizerOptions::values() ("betas.0" for betas[0]).
* "schedulers": lr of each of two parameter groups after construction and after each step.
* "clip_grad_norm": total norm and clipped gradients for a few norm types.
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)

X0 = [1.0, -2.0, 0.5]
W0 = [[0.3, -0.7], [1.5, 0.2]]
A = torch.tensor([1.0, 3.0, 0.5])
B = torch.tensor([0.2, -0.1, 0.3])
C = torch.tensor([[2.0, 0.5], [1.0, 4.0]])
D = torch.tensor([[0.1, 0.0], [-0.2, 0.3]])
STEPS = 5


def loss_fn(x, w):
    return (A * x * x).sum() + (B * x).sum() + (C * w * w).sum() + (D * w).sum()


def torch_kwargs(options):
    kw = {}
    for k, v in options.items():
        if k.startswith("betas."):
            continue
        if k in ("nesterov", "amsgrad", "centered", "maximize"):
            v = bool(v)
        kw[k] = v
    if "betas.0" in options:
        kw["betas"] = (options["betas.0"], options["betas.1"])
    return kw


OPTIMIZER_CASES = [
    ("sgd_plain", "SGD", {"lr": 0.1}, None),
    ("sgd_momentum", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}, None),
    ("sgd_nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": 1, "weight_decay": 0.1}, None),
    ("sgd_maximize", "SGD", {"lr": 0.01, "momentum": 0.5, "maximize": 1}, None),
    ("adam", "Adam", {"lr": 0.1}, None),
    ("adam_wd_amsgrad", "Adam", {"lr": 0.2, "betas.0": 0.8, "betas.1": 0.9, "eps": 1e-6, "weight_decay": 0.1,
                                 "amsgrad": 1}, None),
    ("adam_groups", "Adam", {"lr": 0.1}, {"lr": 0.01, "betas.0": 0.5, "betas.1": 0.99}),
    ("adamw", "AdamW", {"lr": 0.1, "weight_decay": 0.1}, None),
    ("adamw_amsgrad_maximize", "AdamW", {"lr": 0.05, "amsgrad": 1, "maximize": 1}, None),
    ("rmsprop", "RMSprop", {"lr": 0.01}, None),
    ("rmsprop_centered_momentum", "RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "centered": 1,
                                              "weight_decay": 0.1, "eps": 1e-4}, None),
]


def run_optimizer(kind, options, w_group_options):
    x = torch.tensor(X0, requires_grad=True)
    w = torch.tensor(W0, requires_grad=True)
    cls = getattr(torch.optim, kind)
    if w_group_options is None:
        opt = cls([x, w], **torch_kwargs(options))
    else:
        opt = cls([{"params": [x]}, {"params": [w], **torch_kwargs(w_group_options)}], **torch_kwargs(options))
    traj = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(x, w).backward()
        opt.step()
        traj.append(torch.cat([x.detach().flatten(), w.detach().flatten()]).tolist())
    return traj


def sched_optimizer():
    p1 = torch.zeros(2, requires_grad=True)
    p2 = torch.zeros(2, requires_grad=True)
    return torch.optim.SGD([{"params": [p1]}, {"params": [p2], "lr": 0.02}], lr=0.1)


def run_scheduler(make, steps=15, metrics=None):
    opt = sched_optimizer()
    sched = make(opt)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        lrs.append([g["lr"] for g in opt.param_groups])
    return lrs


LS = torch.optim.lr_scheduler
PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.91, 0.899, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
SCHEDULER_CASES = {
    "step": lambda o: LS.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda o: LS.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.1),
    "cosine": lambda o: LS.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "linear": lambda o: LS.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
    "lambda": lambda o: LS.LambdaLR(o, lambda e: 0.95 ** e),
}


def main():
    out = {"optimizers": [], "schedulers": {}, "clip_grad_norm": [], "torch_version": torch.__version__}
    for name, kind, options, w_group in OPTIMIZER_CASES:
        out["optimizers"].append({"name": name, "optimizer": kind, "options": options,
                                  "w_group_options": w_group or {},
                                  "trajectory": run_optimizer(kind, options, w_group)})
    for name, make in SCHEDULER_CASES.items():
        out["schedulers"][name] = run_scheduler(make)
    out["schedulers"]["plateau_min"] = run_scheduler(
        lambda o: LS.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1,
                                       min_lr=0.004), steps=len(PLATEAU_METRICS), metrics=PLATEAU_METRICS)
    acc = [1 - m for m in PLATEAU_METRICS]
    out["schedulers"]["plateau_max_abs"] = run_scheduler(
        lambda o: LS.ReduceLROnPlateau(o, mode="max", factor=0.2, patience=1, threshold=0.05, threshold_mode="abs"),
        steps=len(acc), metrics=acc)
    out["plateau_metrics"] = PLATEAU_METRICS
    for norm_type in (2.0, 1.0, math.inf, 3.0):
        for max_norm in (1.0, 100.0):
            g1 = torch.tensor([3.0, 4.0], requires_grad=True)
            g2 = torch.tensor([[1.0, -2.0], [0.0, 2.0]], requires_grad=True)
            g1.grad = torch.tensor([3.0, 4.0])
            g2.grad = torch.tensor([[1.0, -2.0], [0.0, 2.0]])
            total = torch.nn.utils.clip_grad_norm_([g1, g2], max_norm, norm_type=norm_type)
            out["clip_grad_norm"].append({"norm_type": "inf" if math.isinf(norm_type) else norm_type,
                                          "max_norm": max_norm, "total": float(total),
                                          "grads": g1.grad.tolist() + g2.grad.flatten().tolist()})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
