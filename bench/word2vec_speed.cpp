// Words/s of ember::text::Word2Vec on a tokenized corpus (one sentence per line, tokens separated by
// spaces), beside bench/peers/gensim_word2vec.py on the same file and thread count. Not part of the
// CMake bench targets; compile it by hand:
//
//   g++ -std=c++20 -O3 -march=native -fopenmp -Iinclude -isystem /usr/include/eigen3
//       bench/word2vec_speed.cpp -o /tmp/word2vec_speed        (one command line)
//   /tmp/word2vec_speed TOKENS.txt [--workers 2] [--repeat 3] [--sg] [--save vectors.bin]
//       [--query 好看 难看 导演]
//
// Options as the tutorial: vector_size=64, window=8, min_count=1, gensim's defaults otherwise
// (CBOW mean, negative=5, sample=1e-3, alpha 0.025 -> 0.0001, 5 epochs). Times build_vocab and
// train separately (train includes turning the corpus into vocabulary ids once); prints raw and
// effective words/s of train(), and the best of --repeat runs (the machine may be shared).
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "ember/text/word2vec.hpp"

int main(int argc, char** argv) {
  namespace text = ember::text;
  if (argc < 2) {
    std::cerr << "usage: word2vec_speed TOKENS.txt [--workers N] [--repeat N] [--sg] [--save PATH] [--query W...]\n";
    return 2;
  }
  std::string path = argv[1], save;
  int64_t workers = 2, repeat = 3;
  bool sg = false;
  std::vector<std::string> queries = {"好看", "难看", "导演"};
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workers" && i + 1 < argc) workers = std::atoll(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::atoll(argv[++i]);
    else if (a == "--sg") sg = true;
    else if (a == "--save" && i + 1 < argc) save = argv[++i];
    else if (a == "--query") {
      queries.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') queries.push_back(argv[++i]);
    } else {
      std::cerr << "word2vec_speed: unknown argument '" << a << "'\n";
      return 2;
    }
  }
  try {
    auto sentences = text::read_line_sentences(path);
    double best = 0;
    for (int64_t rep = 0; rep < repeat; ++rep) {
      auto options = text::Word2VecOptions().vector_size(64).window(8).min_count(1).workers(workers).sg(sg).seed(
          static_cast<uint64_t>(rep + 1));
      text::Word2Vec w2v(options);
      auto t0 = std::chrono::steady_clock::now();
      w2v.build_vocab(sentences);
      double vocab_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto st = w2v.train(sentences);
      std::printf("ember %s workers=%lld: vocab %lld build_vocab %.3fs train %.3fs raw %lld eff %lld raw/s %.0f eff/s %.0f\n",
                  sg ? "sg" : "cbow", static_cast<long long>(workers), static_cast<long long>(w2v.wv().size()), vocab_s,
                  st.seconds, static_cast<long long>(st.raw_words), static_cast<long long>(st.effective_words),
                  st.raw_words_per_second(), st.effective_words_per_second());
      std::fflush(stdout);
      if (st.raw_words_per_second() > best) best = st.raw_words_per_second();
      if (rep + 1 == repeat) {
        std::printf("best of %lld: raw/s %.0f\n", static_cast<long long>(repeat), best);
        for (const auto& q : queries) {
          if (!w2v.wv().contains(q)) continue;
          std::printf("%s:", q.c_str());
          for (auto& [w, s] : w2v.wv().most_similar(q, 8)) std::printf(" %s(%.3f)", w.c_str(), s);
          std::printf("\n");
        }
        if (!save.empty()) w2v.wv().save_word2vec_format(save, save.size() > 4 && save.substr(save.size() - 4) == ".bin");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "word2vec_speed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
