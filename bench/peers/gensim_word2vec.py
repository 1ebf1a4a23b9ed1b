#!/usr/bin/python3
"""gensim 4.2 peer for ember::text::Word2Vec (bench/word2vec_speed.cpp): the same corpus, options and
thread count, to put words/s and nearest neighbours side by side.

  /usr/bin/python3 bench/peers/gensim_word2vec.py tokens ../shared/data/douban_reviews/train.jsonl \
      ../shared/data/stopwords/cn_stopwords.txt OUT.txt
      # the tutorial's preprocessing minus t2s: digit runs removed, jieba.cut (HMM), stopwords and
      # whitespace tokens dropped; one space-separated sentence per line
  /usr/bin/python3 bench/peers/gensim_word2vec.py train OUT.txt [--workers 2] [--repeat 3]
      [--sg] [--corpus-file] [--query 好看 难看 导演] [--save vectors.bin] [--compare ember.bin]

`train` reads the sentences into memory (as the tutorial does), then times build_vocab and train
separately with Word2Vec(vector_size=64, window=8, min_count=1, workers=N) and gensim's defaults
otherwise; it prints raw and effective words/s of train() (gensim's own counts), best of --repeat.
--compare reads vectors saved by `word2vec_speed --save` and prints how many of each frequent word's
10 nearest neighbours Ember and gensim share, beside the same figure for two gensim seeds.
"""
import argparse
import json
import logging
import re
import sys
import time


def tokens(args):
    import jieba
    jieba.setLogLevel(60)
    stop = set(l.strip() for l in open(args.stopwords, encoding='utf8') if l.strip())
    n_lines = n_tok = 0
    with open(args.out, 'w', encoding='utf8') as out:
        for line in open(args.jsonl, encoding='utf8'):
            text = re.sub(r'\d+', '', json.loads(line)['content'])
            toks = [t for t in jieba.cut(text, HMM=True) if t.strip() and t not in stop]
            out.write(' '.join(toks) + '\n')
            n_lines += 1
            n_tok += len(toks)
    print(n_lines, 'sentences', n_tok, 'tokens ->', args.out)


def train(args):
    from gensim.models import Word2Vec
    sentences = [line.split(' ') if line.strip() else [] for line in open(args.tokens, encoding='utf8').read().split('\n')]
    if sentences and sentences[-1] == []:
        sentences.pop()
    best = None
    models = []
    for rep in range(args.repeat):
        m = Word2Vec(vector_size=64, window=8, min_count=1, workers=args.workers, sg=int(args.sg), seed=rep + 1)
        t0 = time.perf_counter()
        if args.corpus_file:
            m.build_vocab(corpus_file=args.tokens)
            t1 = time.perf_counter()
            raw_eff = m.train(corpus_file=args.tokens, total_words=m.corpus_total_words, epochs=m.epochs)
        else:
            m.build_vocab(sentences)
            t1 = time.perf_counter()
            raw_eff = m.train(sentences, total_examples=m.corpus_count, epochs=m.epochs)
        t2 = time.perf_counter()
        eff, raw = raw_eff
        print(f"gensim{' corpus_file' if args.corpus_file else ''} {'sg' if args.sg else 'cbow'} workers={args.workers}: vocab {len(m.wv)} build_vocab {t1 - t0:.3f}s "
              f"train {t2 - t1:.3f}s raw {raw} eff {eff} raw/s {raw / (t2 - t1):.0f} eff/s {eff / (t2 - t1):.0f}", flush=True)
        models.append(m)
        if best is None or t2 - t1 < best[0]:
            best = (t2 - t1, raw, eff, m)
    secs, raw, eff, m = best
    print(f"best of {args.repeat}: train {secs:.3f}s raw/s {raw / secs:.0f} eff/s {eff / secs:.0f}")
    for q in args.query:
        if q in m.wv:
            print(q + ':', ' '.join(f'{w}({s:.3f})' for w, s in m.wv.most_similar(q, topn=8)))
    if args.save:
        m.wv.save_word2vec_format(args.save, binary=args.save.endswith('.bin'))
    if args.compare:
        # Neighbourhood agreement on the most frequent words: Ember vs gensim beside gensim vs gensim
        # with another seed (the run-to-run noise of the algorithm itself).
        from gensim.models import KeyedVectors
        ember = KeyedVectors.load_word2vec_format(args.compare, binary=args.compare.endswith('.bin'))
        probe = [w for w in models[0].wv.index_to_key[:args.compare_words] if w in ember]

        def overlap(a, b, k=10):
            return sum(len({w for w, _ in a.most_similar(q, topn=k)} & {w for w, _ in b.most_similar(q, topn=k)})
                       for q in probe) / (k * len(probe))
        print(f"top-10 neighbour overlap on the {len(probe)} most frequent words:")
        if len(models) > 1:
            print(f"  gensim seed 1 vs gensim seed 2: {overlap(models[0].wv, models[1].wv):.3f}")
        for i, mm in enumerate(models[:2]):
            print(f"  gensim seed {i + 1} vs ember ({args.compare}): {overlap(mm.wv, ember):.3f}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('tokens')
    t.add_argument('jsonl')
    t.add_argument('stopwords')
    t.add_argument('out')
    r = sub.add_parser('train')
    r.add_argument('tokens')
    r.add_argument('--workers', type=int, default=2)
    r.add_argument('--repeat', type=int, default=3)
    r.add_argument('--sg', action='store_true')
    r.add_argument('--corpus-file', action='store_true',
                   help="gensim's corpus_file mode (workers read the file in Cython, no GIL): its fastest path")
    r.add_argument('--query', nargs='*', default=['好看', '难看', '导演'])
    r.add_argument('--save')
    r.add_argument('--compare', metavar='EMBER_VECTORS', help='vectors written by bench/word2vec_speed.cpp --save')
    r.add_argument('--compare-words', type=int, default=300)
    args = p.parse_args()
    tokens(args) if args.cmd == 'tokens' else train(args)


if __name__ == '__main__':
    main()
