#!/usr/bin/python3
"""word2vec-format files written by Debian's gensim 4.2, for tests/test_word2vec.cpp, and a checker
that reads Ember's files with gensim.

  /usr/bin/python3 tests/golden/make_word2vec_golden.py
      writes tests/golden/word2vec/gensim.{txt,bin} and gensim_many.{txt,bin}:
      KeyedVectors.save_word2vec_format of golden_vectors() and many_vectors() in the text and
      binary formats. Ember must load both to the same float32 bits
      and write the same bytes back.
  /usr/bin/python3 tests/golden/make_word2vec_golden.py verify [--golden TEXT BIN] [TEXT BIN ...]
      loads each pair with KeyedVectors.load_word2vec_format; the two files must hold the same words
      and bit-identical vectors, and the --golden pair must equal golden_vectors(). Prints the
      nearest neighbours of each pair's first word. Exit status 1 on any mismatch.

golden_vectors() and kGoldenWords / the special rows in tests/test_word2vec.cpp must stay in sync.
"""
import os
import sys

import numpy as np
from gensim.models import KeyedVectors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'word2vec')
DIM = 6


def golden_vectors():
    # Multi-byte UTF-8, ASCII and punctuation keys; values over float32's whole range so that the
    # text format's number formatting (numpy repr: positional vs scientific, shortest digits) is
    # exercised, including its 1e-4 and 1e16 switch points, -0.0 and a subnormal.
    words = ['电影', '好看', '难看', '导演', 'hello', 'Zoë', '。', 'special', 'tiny', 'huge', 'zero']
    rng = np.random.default_rng(20240607)
    vecs = rng.normal(size=(len(words), DIM)).astype(np.float32)
    vecs[1] = vecs[0] + np.float32(0.01) * vecs[1]                       # 好看 close to 电影
    vecs[4] *= np.float32(1000.0)
    vecs[7] = np.array([1e-4, 0.0001000001, 9.99999e-05, 1e16, 9.999999e15, 0.1], dtype=np.float32)
    vecs[8] = np.array([1e-45, -2.5e-07, 1.5e-05, -1e-05, 1.2345e18, 123456789.0], dtype=np.float32)
    vecs[9] = np.array([1.0, -1.0, 0.5, 100.0, 16777216.0, -0.3333333], dtype=np.float32)
    vecs[10] = np.array([0.0, -0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
    kv = KeyedVectors(DIM, dtype=np.float32)
    kv.add_vectors(words, vecs)
    return kv


def many_vectors():
    # 150 x 8 values log-uniform over 1e-12 .. 1e20 with random signs: the number formatting on
    # every decade, not only the hand-picked edge cases.
    rng = np.random.default_rng(7)
    vals = (10.0 ** rng.uniform(-12, 20, size=(150, 8)) * rng.choice([-1, 1], size=(150, 8))).astype(np.float32)
    kv = KeyedVectors(8, dtype=np.float32)
    kv.add_vectors(['w%d' % i for i in range(150)], vals)
    return kv


def write():
    os.makedirs(OUT, exist_ok=True)
    for name, kv in (('gensim', golden_vectors()), ('gensim_many', many_vectors())):
        kv.save_word2vec_format(os.path.join(OUT, name + '.txt'), binary=False)
        kv.save_word2vec_format(os.path.join(OUT, name + '.bin'), binary=True)
        print('wrote', len(kv), 'vectors of dim', kv.vector_size, 'to', os.path.join(OUT, name + '.{txt,bin}'))


def verify_pair(text, binary, golden):
    a = KeyedVectors.load_word2vec_format(text, binary=False)
    b = KeyedVectors.load_word2vec_format(binary, binary=True)
    ok = True
    if a.index_to_key != b.index_to_key:
        print('word lists differ between', text, 'and', binary)
        ok = False
    elif a.vectors.tobytes() != b.vectors.tobytes():
        print('vectors differ between', text, 'and', binary)
        ok = False
    if golden:
        g = golden_vectors()
        if a.index_to_key != g.index_to_key or a.vectors.tobytes() != g.vectors.tobytes():
            print('files differ from golden_vectors()')
            ok = False
    print('gensim read', len(a), 'x', a.vector_size, 'from', text, 'and', binary, '' if ok else 'MISMATCH')
    w = a.index_to_key[0]
    with np.errstate(all='ignore'):
        print('most_similar(%s):' % w, a.most_similar(w, topn=min(5, len(a) - 1)))
    return ok


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == 'verify':
        import argparse
        p = argparse.ArgumentParser(prog='make_word2vec_golden.py verify')
        p.add_argument('--golden', nargs=2, metavar=('TEXT', 'BIN'), help='files that must equal golden_vectors()')
        p.add_argument('pairs', nargs='*', help='TEXT BIN ...: files that must hold the same vectors')
        args = p.parse_args(sys.argv[2:])
        if len(args.pairs) % 2:
            p.error('files come in TEXT BIN pairs')
        ok = True
        if args.golden:
            ok &= verify_pair(args.golden[0], args.golden[1], True)
        for i in range(0, len(args.pairs), 2):
            ok &= verify_pair(args.pairs[i], args.pairs[i + 1], False)
        sys.exit(0 if ok else 1)
    write()
