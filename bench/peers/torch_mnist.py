"""PyTorch peer for the MNIST CNN figures: the original tutorial's network, one training epoch at
batch 32 and 128 (SGD lr 0.01, momentum 0.9) and the 10k-image evaluation, timed on the same data
and device as Ember's `mnist_cnn train`. Usage: torch_mnist.py MNIST_DIR [--device cuda|cpu] [--epochs N]"""
import argparse
import gzip
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load(root, split):
    import os
    pre = "train" if split == "train" else "t10k"
    def find(name):
        for cand in (name, name + ".gz"):
            p = os.path.join(root, cand)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(name)
    x = read_idx(find(pre + "-images-idx3-ubyte")).float().div(255).unsqueeze(1)
    y = read_idx(find(pre + "-labels-idx1-ubyte")).long()
    return (x - 0.1307) / 0.3081, y


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(self.fc1(x.flatten(1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-sizes", default="32,128")
    a = ap.parse_args()
    dev = torch.device(a.device)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    xtr, ytr, xte, yte = xtr.to(dev), ytr.to(dev), xte.to(dev), yte.to(dev)
    for bs in [int(b) for b in a.batch_sizes.split(",")]:
        torch.manual_seed(0)
        model = Net().to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for epoch in range(a.epochs):
            perm = torch.randperm(len(xtr), device=dev)
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            sync()
            t0 = time.perf_counter()
            model.train()
            for i in range(0, len(xtr), bs):
                idx = perm[i:i + bs]
                loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sync()
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.eval()
            correct = 0
            with torch.no_grad():
                for i in range(0, len(xte), 1000):
                    correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
            sync()
            t_eval = time.perf_counter() - t0
            print("torch %s batch %d epoch %d: train %.2f s, eval %.3f s, test acc %.4f"
                  % (dev.type, bs, epoch + 1, t_train, t_eval, correct / len(xte)))


if __name__ == "__main__":
    main()
