#!/usr/bin/python3
"""Full-set parity of Ember's segmenter with jieba 0.42, and its throughput against jieba.

Not part of CI (it needs the data sets and takes ~20 s). Build the tool first (one file, by hand):

    g++ -std=c++20 -O2 -fopenmp -Iinclude -isystem /usr/include/eigen3 $(pkg-config --cflags opencc) \\
        -DEMBER_HAVE_OPENCC bench/text_segment.cpp $(pkg-config --libs opencc) -o build/text_segment

then, from the repository root, with Debian's python3 (it has jieba):

    /usr/bin/python3 scripts/jieba_parity.py --tool build/text_segment            # parity
    /usr/bin/python3 scripts/jieba_parity.py --tool build/text_segment --bench    # + timings
    /usr/bin/python3 scripts/jieba_parity.py --tool build/text_segment --opencc   # + t2s backends

Parity: every text of ../shared/data/douban_reviews/test.jsonl and chnsenticorp/test.jsonl is
cut by `jieba.cut(text, HMM=True)` and by `text_segment tokens`; reports the share of texts with
identical token lists (target >= 99.5%) and prints the differing ones. Exit status 1 below target.
--opencc: Ember's t2s tables against libopencc's own conversion on every text of the four
files and on its s2t (Traditional) version (`text_segment opencc`); must be 100% identical.
--bench: jieba's time on the content of douban_reviews/train.jsonl (one process, and two
processes with multiprocessing), then `text_segment bench` on the same texts.
"""
import argparse
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time

import jieba

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")


def contents(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["content"] for line in f if line.strip()]


def ember_tokens(tool, path):
    out = subprocess.run([tool, "tokens", path], check=True, capture_output=True, text=True, encoding="utf-8").stdout
    return [json.loads(line) for line in out.splitlines()]


def parity(tool, sets, show):
    total = same = 0
    for name in sets:
        path = os.path.join(DATA, name, "test.jsonl")
        texts = contents(path)
        ours = ember_tokens(tool, path)
        assert len(ours) == len(texts), (name, len(ours), len(texts))
        diffs = []
        for t, o in zip(texts, ours):
            j = list(jieba.cut(t, HMM=True))
            if j == o:
                same += 1
            else:
                diffs.append((t, j, o))
        total += len(texts)
        print("%-16s %5d texts, %5d identical (%.3f%%)" % (name, len(texts), len(texts) - len(diffs),
                                                           100.0 * (len(texts) - len(diffs)) / len(texts)))
        for t, j, o in diffs[:show]:
            print("  text :", t)
            print("  jieba:", " | ".join(j))
            print("  ember:", " | ".join(o))
    pct = 100.0 * same / total
    print("all             %5d texts, %5d identical (%.3f%%)" % (total, same, pct))
    return pct


def cut_chunk(texts):
    return sum(len(list(jieba.cut(t, HMM=True))) for t in texts)


def bench(tool, repeat, py_repeat):
    path = os.path.join(DATA, "douban_reviews", "train.jsonl")
    texts = contents(path)
    chars = sum(map(len, texts))
    jieba.initialize()
    best, best_cpu = 1e30, 0
    for _ in range(py_repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n = cut_chunk(texts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    print("jieba, 1 process : %.3f s wall (%.3f s CPU), %.3f M chars/s (%d tokens)"
          % (best, best_cpu, chars / best / 1e6, n))
    best2 = 1e30
    half = len(texts) // 2
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for _ in range(py_repeat):
            t0 = time.perf_counter()
            pool.map(cut_chunk, [texts[:half], texts[half:]])
            best2 = min(best2, time.perf_counter() - t0)
    print("jieba, 2 processes: %.3f s, %.3f M chars/s" % (best2, chars / best2 / 1e6))
    sys.stdout.flush()
    subprocess.run([tool, "bench", path, os.path.join(DATA, "stopwords", "cn_stopwords.txt"), "--repeat",
                    str(repeat)], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", default=os.path.join(ROOT, "build", "text_segment"))
    ap.add_argument("--show", type=int, default=20, help="differing texts to print per data set")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each Ember timing (the minimum is shown)")
    ap.add_argument("--py-repeat", type=int, default=1, help="runs of each jieba timing")
    ap.add_argument("--opencc", action="store_true")
    args = ap.parse_args()
    jieba.setLogLevel(logging.WARNING)
    pct = parity(args.tool, ["douban_reviews", "chnsenticorp"], args.show)
    ok = pct >= 99.5
    if args.opencc:
        files = [os.path.join(DATA, d, f + ".jsonl") for d in ("douban_reviews", "chnsenticorp") for f in ("train", "test")]
        ok = subprocess.run([args.tool, "opencc"] + files).returncode == 0 and ok
    if args.bench:
        bench(args.tool, args.repeat, args.py_repeat)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
