// text_segment: Ember's jieba-compatible segmenter outside the test suite — tokens for the
// full-set parity check (scripts/jieba_parity.py) and the throughput figures of the text
// pipeline. A single file, not part of bench/CMakeLists.txt; build it by hand:
//
//   g++ -std=c++20 -O2 -fopenmp -Iinclude -isystem /usr/include/eigen3 $(pkg-config --cflags opencc) \
//       -DEMBER_HAVE_OPENCC bench/text_segment.cpp $(pkg-config --libs opencc) -o build/text_segment
//
// Usage:
//   text_segment tokens FILE.jsonl [--no-hmm]   one JSON array of jieba.cut tokens per input line
//                                               (the "content" field; whitespace tokens kept)
//   text_segment opencc FILE.jsonl...           t2s by Ember's tables vs libopencc's own conversion on
//                                               every text and on its s2t (Traditional) version
//   text_segment bench FILE.jsonl STOPWORDS [--repeat N]
//                                               load time, segmentation chars/s on 1 and 2 threads,
//                                               and the whole preprocessing (digits, t2s, segment,
//                                               stopwords) on 2 threads; min over N runs
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include "ember/text/text.hpp"

namespace {

namespace text = ember::text;

std::vector<std::string> read_contents(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ember::Error("text_segment: cannot open " + path);
  std::vector<std::string> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("content") || !j["content"].is_string())
      throw ember::Error("text_segment: " + path + " line " + std::to_string(n) + ": expected {\"content\": ...}");
    out.push_back(j["content"].get<std::string>());
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the whole process (all threads): on a shared machine the wall time says how
// much of the CPU we were given, the CPU time how much work was done.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Timing {
  double wall = 1e30, cpu = 0;  // of the fastest run
};

template <typename F>
Timing min_time(int repeat, const F& f) {
  Timing best;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_seconds();
    f();
    double wall = seconds_since(t0);
    if (wall < best.wall) best = {wall, cpu_seconds() - c0};
  }
  return best;
}

int tokens(const std::string& path, bool hmm) {
  auto texts = read_contents(path);
  text::Segmenter seg;
  text::Segmenter::Workspace ws;
  for (const auto& t : texts) {
    nlohmann::json arr = nlohmann::json::array();
    seg.for_each_token(t, [&](std::string_view tok) { arr.push_back(std::string(tok)); }, ws, hmm);
    std::cout << arr.dump() << '\n';
  }
  return 0;
}

int opencc_parity(const std::vector<std::string>& paths) {
  text::OpenCC fast("t2s.json"), lib("t2s.json", text::OpenCCBackend::kLibrary),
      s2t("s2t.json", text::OpenCCBackend::kLibrary);
  if (fast.backend() != text::OpenCCBackend::kTables) throw ember::Error("t2s.json could not be read as tables");
  size_t total = 0, same = 0, changed = 0, shown = 0;
  for (const auto& path : paths) {
    for (const auto& t : read_contents(path)) {
      std::string trad = s2t.convert(t);
      for (const std::string* s : std::initializer_list<const std::string*>{&t, &trad}) {
        std::string a = fast.convert(*s), b = lib.convert(*s);
        ++total;
        changed += a != *s;
        if (a == b) {
          ++same;
        } else if (shown++ < 20) {
          std::printf("text:    %s\nlibrary: %s\ntables:  %s\n", s->c_str(), b.c_str(), a.c_str());
        }
      }
    }
  }
  std::printf("t2s tables vs libopencc: %zu / %zu identical (%.3f%%); %zu texts changed by t2s\n", same, total,
              100.0 * same / total, changed);
  return same == total ? 0 : 1;
}

int bench(const std::string& path, const std::string& stopwords, int repeat) {
  auto texts = read_contents(path);
  size_t chars = 0;
  for (const auto& t : texts) chars += text::utf8::length(t);
  std::printf("texts: %zu, characters: %zu\n", texts.size(), chars);

  std::shared_ptr<text::Segmenter> seg;
  double load = min_time(repeat, [&] { seg = std::make_shared<text::Segmenter>(); }).wall;
  std::printf("load dict.txt + HMM tables: %.3f s (%zu prefix-dictionary entries)\n", load, seg->num_entries());

  size_t ntok = 0;
  for (int threads : {1, 2}) {
    auto [t, cpu] = min_time(repeat, [&] {
      auto out = seg->segment_many(texts, threads);
      ntok = 0;
      for (const auto& o : out) ntok += o.size();
    });
    std::printf("segment, %d thread%s: %.3f s wall (%.3f s CPU), %.2f M chars/s (%zu tokens)\n", threads,
                threads > 1 ? "s" : " ", t, cpu, chars / t / 1e6, ntok);
  }
  text::OpenCC t2s("t2s.json");
  for (auto backend : {text::OpenCCBackend::kLibrary, text::OpenCCBackend::kTables}) {
    text::OpenCC cc("t2s.json", backend);
    for (int threads : {1, 2}) {
      auto [t, cpu] = min_time(backend == text::OpenCCBackend::kLibrary ? 1 : repeat, [&] {
        text::detail::parallel_over(texts.size(), threads, 64, [&](size_t, size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) (void)cc.convert(texts[i]);
        });
      });
      std::printf("t2s only (%s), %d thread%s: %.3f s wall (%.3f s CPU)\n",
                  backend == text::OpenCCBackend::kLibrary ? "libopencc" : "Ember tables", threads,
                  threads > 1 ? "s" : " ", t, cpu);
    }
  }
  text::Preprocessor prep(seg, text::PreprocessOptions().t2s(t2s).stopwords(text::StopWords::load(stopwords)));
  for (int threads : {1, 2}) {
    auto [t, cpu] = min_time(repeat, [&] {
      auto out = prep.process_many(texts, threads);
      ntok = 0;
      for (const auto& o : out) ntok += o.size();
    });
    std::printf("preprocess (digits + t2s + segment + stopwords), %d thread%s: %.3f s wall (%.3f s CPU) (%zu tokens)\n",
                threads, threads > 1 ? "s" : " ", t, cpu, ntok);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "tokens") {
      return tokens(args[1], !(args.size() >= 3 && args[2] == "--no-hmm"));
    }
    if (args.size() >= 2 && args[0] == "opencc") {
      return opencc_parity(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    if (args.size() >= 3 && args[0] == "bench") {
      int repeat = 3;
      if (args.size() >= 5 && args[3] == "--repeat") repeat = std::max(1, std::stoi(args[4]));
      return bench(args[1], args[2], repeat);
    }
    std::fprintf(stderr,
                 "usage: text_segment tokens FILE.jsonl [--no-hmm]\n"
                 "       text_segment opencc FILE.jsonl...\n"
                 "       text_segment bench FILE.jsonl STOPWORDS [--repeat N]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "text_segment: %s\n", e.what());
    return 1;
  }
}
