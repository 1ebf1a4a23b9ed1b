"""PyTorch reference for tutorial 3 (examples/review_sentiment, `train --model bilstm`): the original
recipe, Word2Vec embeddings feeding a 2-layer bidirectional LSTM, to put its test accuracy and step
time beside Ember's.

  /usr/bin/python3 bench/peers/torch_sentiment.py --data douban_reviews|chnsenticorp|DIR
      [--epochs 10] [--threads 2] [--seed 1] [--max-batches N] [--stopwords FILE]
  /usr/bin/python3 bench/peers/torch_sentiment.py --step-bench [--threads 2] [--steps 20]

Recipe (as the original):
- preprocessing per review: re.sub(r'\\d+', '', text); traditional -> simplified with OpenCC t2s;
  jieba.cut(text) (default mode, HMM on); drop the words in cn_stopwords.txt. Debian has no Python
  OpenCC module, so when `import opencc` fails the texts go through the `opencc` command-line tool
  (Debian package opencc: `opencc -c t2s.json`, one text per line, inner newlines kept by
  converting line by line); with neither, t2s is skipped and a warning says so.
- Word2Vec (gensim defaults, i.e. CBOW, negative 5, 5 epochs) with vector_size=64, window=8,
  min_count=1 on the preprocessed training texts; vocabulary <PAD>=0 followed by the Word2Vec words
  (gensim's index order); a word not in it (only in test texts) maps to 0, like the padding.
- every text as 100 indices (truncated, or padded at the end with 0);
  Embedding.from_pretrained(vectors, freeze=True, padding_idx=0) -> LSTM(64, 64, num_layers=2,
  batch_first, bidirectional, dropout=0.5) -> output at the last time step (out[:, -1, :], which is
  padding for most reviews) -> Dropout(0.5) -> Linear(128, 64) -> ReLU -> Linear(64, 2);
  CrossEntropyLoss, Adam(lr 1e-3), StepLR(step_size=2, gamma=0.5), batch 32, shuffled.
On a CPU with AVX-512, Debian's OpenBLAS may pick a slow generic kernel: run with
OPENBLAS_CORETYPE=SkylakeX (as scripts/bench.sh does for libtorch) for fair timings.
Prints one line per epoch in the original's format plus the epoch's seconds. --step-bench times
training steps at batch 32, sequence 100 on synthetic data (random tokens over a 20k-word frozen
table) and prints the median step time.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))


class Net(nn.Module):
    def __init__(self, vectors):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=True, padding_idx=0)
        self.lstm = nn.LSTM(64, 64, num_layers=2, batch_first=True, bidirectional=True, dropout=0.5)
        self.dropout = nn.Dropout(0.5)
        self.fc1 = nn.Linear(128, 64)
        self.fc2 = nn.Linear(64, 2)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.fc2(torch.relu(self.fc1(self.dropout(out[:, -1, :]))))


# ---- preprocessing ------------------------------------------------------------------------------

def t2s_all(texts):
    """Traditional -> simplified for every text (Python OpenCC, else the opencc tool, else unchanged)."""
    try:
        import opencc  # noqa: F401
        conv = opencc.OpenCC("t2s.json") if hasattr(opencc, "OpenCC") else None
        if conv is not None:
            return [conv.convert(t) for t in texts], "python opencc"
    except ImportError:
        pass
    tool = shutil.which("opencc")
    if tool:
        # One line per input line; a text's inner newlines become separate lines and are rejoined.
        counts, lines = [], []
        for t in texts:
            parts = t.split("\n")
            counts.append(len(parts))
            lines.extend(parts)
        res = subprocess.run([tool, "-c", "t2s.json"], input="\n".join(lines) + "\n", capture_output=True,
                             text=True, check=True)
        out_lines = res.stdout.split("\n")[:len(lines)]
        if len(out_lines) != len(lines):
            raise RuntimeError("opencc returned %d lines for %d" % (len(out_lines), len(lines)))
        out, k = [], 0
        for c in counts:
            out.append("\n".join(out_lines[k:k + c]))
            k += c
        return out, "opencc command-line tool"
    print("warning: no OpenCC (python module or `opencc` tool): t2s skipped", file=sys.stderr)
    return list(texts), "skipped"


def preprocess(texts, stopwords):
    import jieba
    jieba.setLogLevel(60)
    texts = [re.sub(r"\d+", "", t) for t in texts]
    texts, how = t2s_all(texts)
    return [[w for w in jieba.cut(t) if w not in stopwords] for t in texts], how


def read_jsonl(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            texts.append(r["content"])
            labels.append(int(r["label"]))
    return texts, labels


def encode(docs, index, seq_len=100):
    rows = []
    for d in docs:
        ids = [index.get(w, 0) for w in d][:seq_len]
        rows.append(ids + [0] * (seq_len - len(ids)))
    return torch.tensor(rows, dtype=torch.long)


# ---- training -----------------------------------------------------------------------------------

def step_bench(a):
    torch.manual_seed(a.seed)
    vectors = torch.randn(20000, 64)
    vectors[0] = 0
    model = Net(vectors)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randint(1, 20000, (32, 100))
    y = torch.randint(0, 2, (32,))
    model.train()
    times = []
    for i in range(a.steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    lstm = nn.LSTM(64, 64, num_layers=2, batch_first=True, bidirectional=True, dropout=0.5)
    xe = torch.randn(32, 100, 64)
    fb = []
    for i in range(a.steps + 2):
        t0 = time.perf_counter()
        out, _ = lstm(xe)
        out.sum().backward()
        if i >= 2:
            fb.append(time.perf_counter() - t0)
    print("torch %s, %d threads: training step (batch 32, seq 100) median %.4f s (min %.4f); "
          "LSTM forward+backward median %.4f s" % (torch.__version__, a.threads, statistics.median(times), min(times),
                                                   statistics.median(fb)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="chnsenticorp", help="douban_reviews, chnsenticorp or a folder with "
                    "train.jsonl and test.jsonl")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stopwords", default=os.path.join(SHARED, "stopwords", "cn_stopwords.txt"))
    ap.add_argument("--max-batches", type=int, default=0, help="stop each epoch after N batches (smoke/timing runs)")
    ap.add_argument("--step-bench", action="store_true", help="time training steps on synthetic data and exit")
    ap.add_argument("--steps", type=int, default=20, help="timed steps for --step-bench")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    if a.step_bench:
        step_bench(a)
        return
    data = a.data if os.path.isdir(a.data) else os.path.join(SHARED, a.data)
    with open(a.stopwords, encoding="utf-8") as f:
        stopwords = {line.strip() for line in f if line.strip()}
    tr_texts, tr_labels = read_jsonl(os.path.join(data, "train.jsonl"))
    te_texts, te_labels = read_jsonl(os.path.join(data, "test.jsonl"))
    t0 = time.perf_counter()
    tr_docs, how = preprocess(tr_texts, stopwords)
    te_docs, _ = preprocess(te_texts, stopwords)
    t_pre = time.perf_counter() - t0
    from gensim.models import Word2Vec
    t0 = time.perf_counter()
    w2v = Word2Vec(sentences=tr_docs, vector_size=64, window=8, min_count=1, workers=a.threads, seed=a.seed)
    t_w2v = time.perf_counter() - t0
    words = w2v.wv.index_to_key
    index = {w: i + 1 for i, w in enumerate(words)}
    vectors = torch.zeros(len(words) + 1, 64)
    vectors[1:] = torch.tensor(w2v.wv.vectors)
    print("%s: %d train / %d test texts; preprocessing %.1f s (t2s: %s), Word2Vec %.1f s, vocabulary %d"
          % (data, len(tr_docs), len(te_docs), t_pre, how, t_w2v, len(index) + 1), flush=True)
    xtr, ytr = encode(tr_docs, index), torch.tensor(tr_labels)
    xte, yte = encode(te_docs, index), torch.tensor(te_labels)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr), batch_size=32, shuffle=True)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xte, yte), batch_size=32)
    model = Net(vectors)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        n = correct = 0
        loss_sum = 0.0
        for b, (x, y) in enumerate(train_loader):
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
        print("Epoch: %d, Train_acc:%.4f, Train_loss:%.4f, Test_acc:%.4f, Test_loss:%.4f  (%.1f s, %.3f s/step)"
              % (epoch, correct / n, loss_sum / n, tc / tn, tl / tn, secs, secs / max(1, (n + 31) // 32)), flush=True)


if __name__ == "__main__":
    main()
