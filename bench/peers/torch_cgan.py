"""PyTorch 1.13 reference for tutorial 4 (examples/cgan_mnist): the conditional WGAN-GP with spectral
normalisation of issue 10, to put its losses, samples and epoch/step times beside Ember's.

  /usr/bin/python3 bench/peers/torch_cgan.py [--data ../shared/data/mnist] [--epochs 25] [--threads 2]
      [--seed 1] [--max-batches N] [--out DIR] [--step-bench [--steps 10]]

Recipe: MNIST pixels to [-1, 1] (ToTensor + Normalize(0.5, 0.5)), batch 128, shuffled.
Generator: Embedding(10, 10) of the label concatenated with 100-d noise (label first) -> Linear(110, 256)
-> LeakyReLU(0.2) -> Linear(256, 512) -> LeakyReLU -> Linear(512, 1024) -> LeakyReLU -> Linear(1024, 6272)
-> BatchNorm1d -> LeakyReLU -> view [128, 7, 7] -> ConvTranspose2d(128, 128, 4, 2, 1) -> BatchNorm2d ->
LeakyReLU -> ConvTranspose2d(128, 64, 4, 2, 1) -> BatchNorm2d -> LeakyReLU -> Conv2d(64, 1, 3, 1, 1) -> Tanh.
Critic: Embedding(10, 784) of the label as a second image channel (image first) -> Conv2d(2, 64, 4, 2, 1)
-> LeakyReLU(0.2) -> Dropout(0.3) -> SN(Conv2d(64, 128, 4, 2, 1)) -> LeakyReLU -> Dropout ->
SN(Conv2d(128, 256, 3, 1, 1)) -> LeakyReLU -> Dropout -> flatten -> SN(Linear(12544, 1024)) -> LeakyReLU ->
Dropout -> SN(Linear(1024, 1)); SN = torch.nn.utils.spectral_norm.
weights_init (applied after construction, so on weight_orig): Conv* weights N(0, 0.02); Linear weights
N(0, 0.02), biases 0; BatchNorm weights N(1, 0.02), biases 0.
Each batch (real images x, their labels y): fake = G(z, y) with z ~ N(0, 1); one critic step with
d_loss = -mean(D(x, y)) + mean(D(fake.detach(), y)) + 10 * GP, GP = mean((||grad D(x_hat, y)||_2 - 1)^2) at
x_hat = a*x + (1-a)*fake, a ~ U(0, 1) per sample (autograd.grad with create_graph=True); every 5th batch
also a generator step with g_loss = -mean(D(G(z', y), y)) on fresh noise z'. Adam(G: lr 1e-4, D: lr 2e-4,
betas (0.5, 0.999)); ReduceLROnPlateau(factor 0.5, patience 5) for each, stepped once per epoch on that
network's mean training loss (Train_loss_D / Train_loss_G).

Per-epoch line: `Epoch: 1, Train_loss_G:…, Train_loss_D:…, Test_loss_G:…, Test_loss_D:…` then the epoch's
seconds. Train losses are the means over the epoch's steps (D over every batch, G over its steps).
Test losses are the same two losses on the 10,000 test images and their labels, with no updates, both
networks in eval mode (no dropout, BatchNorm running statistics, no power iteration) and noise/alpha
drawn from a generator seeded per epoch identically; Test_loss_D includes 10 * GP (its input gradient
is taken with autograd, the parameters get none). A 10x10 grid from fixed noise (row = digit, 0 at the
top) is written to OUT/samples_epoch_N.png at epoch 1 and every 5 epochs (Pillow).

--step-bench times one critic step with the gradient penalty at batch 128 on synthetic data (the
three critic forwards, the double backward and Adam's update; fake images from the generator under
no_grad, not timed) and exits: median and best of --steps after 2 warm-up steps.
"""
import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "mnist"))
NZ, CLASSES, BATCH, N_CRITIC, GP_WEIGHT = 100, 10, 128, 5, 10.0


def read_idx(path):
    """An IDX file (optionally gzip) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(root, split):
    pre = "train" if split == "train" else "t10k"

    def find(name):
        for cand in (name, name + ".gz"):
            p = os.path.join(root, cand)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(os.path.join(root, name + "[.gz]"))
    x = torch.from_numpy(read_idx(find(pre + "-images-idx3-ubyte")).copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(find(pre + "-labels-idx1-ubyte")).astype(np.int64))
    return (x - 0.5) / 0.5, y


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_emb = nn.Embedding(CLASSES, CLASSES)
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.fc = nn.Sequential(nn.Linear(NZ + CLASSES, 256), act(), nn.Linear(256, 512), act(),
                                nn.Linear(512, 1024), act(), nn.Linear(1024, 128 * 7 * 7),
                                nn.BatchNorm1d(128 * 7 * 7), act())
        self.conv = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.BatchNorm2d(128), act(),
                                  nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), act(),
                                  nn.Conv2d(64, 1, 3, 1, 1), nn.Tanh())

    def forward(self, z, y):
        h = self.fc(torch.cat([self.label_emb(y), z], 1))
        return self.conv(h.view(-1, 128, 7, 7))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.label_emb = nn.Embedding(CLASSES, 28 * 28)
        act = lambda: [nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3)]  # noqa: E731
        self.conv = nn.Sequential(nn.Conv2d(2, 64, 4, 2, 1), *act(),
                                  spectral_norm(nn.Conv2d(64, 128, 4, 2, 1)), *act(),
                                  spectral_norm(nn.Conv2d(128, 256, 3, 1, 1)), *act())
        self.fc = nn.Sequential(spectral_norm(nn.Linear(256 * 7 * 7, 1024)), *act(),
                                spectral_norm(nn.Linear(1024, 1)))

    def forward(self, x, y):
        h = torch.cat([x, self.label_emb(y).view(-1, 1, 28, 28)], 1)
        h = self.conv(h)
        return self.fc(h.view(h.size(0), -1))


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)
    elif classname.find("Linear") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def gradient_penalty(D, real, fake, y, gen=None):
    alpha = torch.rand(real.size(0), 1, 1, 1, generator=gen)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d = D(x_hat, y)
    g, = torch.autograd.grad(d, x_hat, grad_outputs=torch.ones_like(d), create_graph=True, retain_graph=True)
    g = g.view(g.size(0), -1)
    return ((g.norm(2, dim=1) - 1) ** 2).mean()


def critic_step(D, G, opt_d, real, y):
    """One critic update; returns d_loss and the fake batch (for the generator's schedule)."""
    with torch.no_grad():
        fake = G(torch.randn(real.size(0), NZ), y)
    d_loss = -D(real, y).mean() + D(fake, y).mean() + GP_WEIGHT * gradient_penalty(D, real, fake, y)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    return d_loss.item()


def generator_step(D, G, opt_g, y):
    g_loss = -D(G(torch.randn(y.size(0), NZ), y), y).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return g_loss.item()


def evaluate(D, G, xte, yte, epoch_seed):
    """Test_loss_G, Test_loss_D on the test set, eval mode, no updates."""
    D.eval()
    G.eval()
    gen = torch.Generator().manual_seed(epoch_seed)
    n = 0
    lg = ld = 0.0
    for i in range(0, len(xte), BATCH):
        real, y = xte[i:i + BATCH], yte[i:i + BATCH]
        with torch.no_grad():
            fake = G(torch.randn(real.size(0), NZ, generator=gen), y)
            d_fake = D(fake, y).mean()
            d_real = D(real, y).mean()
        gp = gradient_penalty(D, real, fake, y, gen).detach()
        lg += -d_fake.item() * real.size(0)
        ld += (-d_real + d_fake + GP_WEIGHT * gp).item() * real.size(0)
        n += real.size(0)
    D.train()
    G.train()
    return lg / n, ld / n


def save_grid(G, fixed_z, path):
    from PIL import Image
    G.eval()
    with torch.no_grad():
        y = torch.arange(CLASSES).repeat_interleave(10)
        imgs = G(fixed_z, y).squeeze(1).add(1).mul(127.5).clamp(0, 255).to(torch.uint8).numpy()
    G.train()
    pad = 2
    grid = np.full((10 * (28 + pad) + pad, 10 * (28 + pad) + pad), 255, np.uint8)
    for k, im in enumerate(imgs):
        r, c = divmod(k, 10)
        grid[pad + r * (28 + pad):pad + r * (28 + pad) + 28, pad + c * (28 + pad):pad + c * (28 + pad) + 28] = im
    Image.fromarray(grid).save(path)


def make_models(seed):
    torch.manual_seed(seed)
    G, D = Generator(), Critic()
    G.apply(weights_init)
    D.apply(weights_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return G, D, opt_g, opt_d


def step_bench(a):
    G, D, _, opt_d = make_models(a.seed)
    real = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    y = torch.randint(0, CLASSES, (BATCH,))
    with torch.no_grad():
        fake = G(torch.randn(BATCH, NZ), y)
    times = []
    for i in range(a.steps + 2):
        t0 = time.perf_counter()
        d_loss = -D(real, y).mean() + D(fake, y).mean() + GP_WEIGHT * gradient_penalty(D, real, fake, y)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    print("torch %s, %d threads: critic step with gradient penalty (batch %d) median %.4f s (best %.4f, %d steps)"
          % (torch.__version__, a.threads, BATCH, statistics.median(times), min(times), len(times)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=MNIST, help="folder with the MNIST IDX files (plain or .gz)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="torch_cgan_out", help="folder for the sample grids")
    ap.add_argument("--max-batches", type=int, default=0, help="stop each epoch after N batches (smoke/timing runs)")
    ap.add_argument("--step-bench", action="store_true", help="time critic steps on synthetic data and exit")
    ap.add_argument("--steps", type=int, default=10, help="timed steps for --step-bench")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.step_bench:
        step_bench(a)
        return
    xtr, ytr = load_mnist(a.data, "train")
    xte, yte = load_mnist(a.data, "test")
    if a.max_batches:  # smoke runs: a test set of the same size as the training run
        xte, yte = xte[:a.max_batches * BATCH], yte[:a.max_batches * BATCH]
    G, D, opt_g, opt_d = make_models(a.seed)
    sched_g = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_g, factor=0.5, patience=5)
    sched_d = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_d, factor=0.5, patience=5)
    fixed_z = torch.randn(100, NZ, generator=torch.Generator().manual_seed(a.seed + 1))
    os.makedirs(a.out, exist_ok=True)
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        d_losses, g_losses = [], []
        for b, i in enumerate(range(0, len(xtr), BATCH)):
            idx = perm[i:i + BATCH]
            real, y = xtr[idx], ytr[idx]
            d_losses.append(critic_step(D, G, opt_d, real, y))
            if (b + 1) % N_CRITIC == 0:
                g_losses.append(generator_step(D, G, opt_g, y))
            if a.max_batches and b + 1 >= a.max_batches:
                break
        secs = time.perf_counter() - t0
        train_d = sum(d_losses) / len(d_losses)
        train_g = sum(g_losses) / len(g_losses) if g_losses else float("nan")
        test_g, test_d = evaluate(D, G, xte, yte, a.seed + 1000 + epoch)
        if g_losses:
            sched_g.step(train_g)
        sched_d.step(train_d)
        print("Epoch: %d, Train_loss_G:%.4f, Train_loss_D:%.4f, Test_loss_G:%.4f, Test_loss_D:%.4f  (%.1f s, %d steps)"
              % (epoch, train_g, train_d, test_g, test_d, secs, len(d_losses)), flush=True)
        if epoch == 1 or epoch % 5 == 0:
            save_grid(G, fixed_z, os.path.join(a.out, "samples_epoch_%d.png" % epoch))


if __name__ == "__main__":
    main()
