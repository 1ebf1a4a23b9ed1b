"""PyTorch reference for tutorial 2 (examples/catdog_cnn): the original notebook's recipe on the same
folder split, to put its test accuracy and epoch time beside Ember's.

  /usr/bin/python3 bench/peers/torch_catdog.py ../shared/data/cats_dogs [--epochs 20] [--workers 2]
      [--threads 2] [--seed 1] [--augmented-test] [--max-batches N]

Recipe (as the notebook): RandomHorizontalFlip, RandomRotation(15), ColorJitter(0.01 x 4),
RandomResizedCrop(150, scale=(0.8, 1.0)), ToTensor, Normalize(ImageNet); 4 x (Conv3x3 p1 - BN - ReLU -
MaxPool2) with 32/64/128/256 channels, Linear(20736, 512) - ReLU - Dropout(0.5) - Linear(512, 2);
CrossEntropyLoss, Adam(lr 1e-4, weight_decay 1e-4), StepLR(10, 0.1), batch 32. The test set is
evaluated with Resize(150) + CenterCrop(150), like `catdog_cnn train` (--augmented-test: the notebook's
augmented test set). Prints one line per epoch in the notebook's format plus the epoch's seconds and
the time the training loop waited for data.
"""
import argparse
import time

import torch
import torch.nn as nn
from torchvision import datasets, transforms


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


def net():
    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), *block(128, 256), nn.Flatten(),
                         nn.Linear(256 * 9 * 9, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--augmented-test", action="store_true")
    ap.add_argument("--max-batches", type=int, default=0, help="stop each epoch after N batches (timing runs)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_tf = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomRotation(15),
                                   transforms.ColorJitter(0.01, 0.01, 0.01, 0.01),
                                   transforms.RandomResizedCrop(150, scale=(0.8, 1.0)), transforms.ToTensor(), norm])
    test_tf = train_tf if a.augmented_test else transforms.Compose(
        [transforms.Resize(150), transforms.CenterCrop(150), transforms.ToTensor(), norm])
    train = datasets.ImageFolder(a.data + "/train", train_tf)
    test = datasets.ImageFolder(a.data + "/test", test_tf)
    train_loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, num_workers=a.workers)
    test_loader = torch.utils.data.DataLoader(test, batch_size=32, num_workers=a.workers)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        wait = 0.0
        n = correct = 0
        loss_sum = 0.0
        tw = time.perf_counter()
        for b, (x, y) in enumerate(train_loader):
            wait += time.perf_counter() - tw
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            n += x.size(0)
            correct += (out.argmax(1) == y).sum().item()
            loss_sum += loss.item() * x.size(0)
            if a.max_batches and b + 1 >= a.max_batches:
                break
            tw = time.perf_counter()
        secs = time.perf_counter() - t0
        model.eval()
        tn = tc = 0
        tl = 0.0
        with torch.no_grad():
            for x, y in test_loader:
                out = model(x)
                tl += loss_fn(out, y).item() * x.size(0)
                tc += (out.argmax(1) == y).sum().item()
                tn += x.size(0)
        sched.step()
        print("Epoch: %d, Train_acc:%.4f, Train_loss:%.4f, Test_acc:%.4f, Test_loss:%.4f  (%.1f s, data wait %.1f s)"
              % (epoch, correct / n, loss_sum / n, tc / tn, tl / tn, secs, wait), flush=True)


if __name__ == "__main__":
    main()
