#pragma once
/// The measurement harness shared by the two model/op runners of the benchmark suite:
/// `ember_bench_models` (Ember, bench/bench_models.cpp) and `ember_bench_torch` (libtorch,
/// bench/bench_torch.cpp). Both include this header, so both parse the same command line, run the
/// same case list with the same shapes, batch order and repetition counts, and write the same
/// JSON-lines records; scripts/bench.sh runs them alternately and `ember_bench_models report`
/// turns the records into the JSON/Markdown/PNG report.
///
/// Plain C++17 with no Ember or torch header: the libtorch peer compiles it with torch's flags.
///
/// Define EMBER_BENCH_COUNT_ALLOCATIONS in exactly one translation unit of a program (each runner
/// is one TU) to replace malloc & co. with counting wrappers around glibc's allocator: that is how
/// "allocations per warm training step" is measured for both frameworks, including every tensor
/// buffer, autograd node, shared_ptr control block and std::vector the step creates.
#include <execinfo.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// ---- command line -------------------------------------------------------------------------------

/// What one runner process does: one case (`mnist_b32`, `catdog_step`, `ops`, ...), appending its
/// records to `json`. The driver runs each case in its own process so peak RSS is per model.
struct Args {
  std::string case_name;
  std::string data_dir;  // the raw MNIST dump written by `ember_bench_models dump-mnist`
  std::string json;      // JSON-lines file the records are appended to ("-": stdout)
  int threads = 2;
  int round = 0;          // which alternation round of the driver this is (recorded only)
  bool quick = false;
  std::vector<std::string> rest;  // positional arguments (report/dump subcommands)
};

inline void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s CASE [--threads N] [--data DIR] [--json FILE] [--round R] [--quick]\n"
               "cases: mnist_b32 mnist_b128 catdog_step bilstm_step bert_step wgan_critic_step ops overhead list\n",
               prog);
}

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&](const char* what) -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(std::string("missing value after ") + what);
      return argv[++i];
    };
    if (s == "--threads") {
      a.threads = std::atoi(value("--threads").c_str());
      if (a.threads < 1 || a.threads > 1024) throw std::runtime_error("--threads must be in 1..1024");
    } else if (s == "--data") {
      a.data_dir = value("--data");
    } else if (s == "--json") {
      a.json = value("--json");
    } else if (s == "--round") {
      a.round = std::atoi(value("--round").c_str());
    } else if (s == "--quick") {
      a.quick = true;
    } else if (s.size() > 1 && s[0] == '-' && s != "-") {
      throw std::runtime_error("unknown option " + s);
    } else if (a.case_name.empty()) {
      a.case_name = s;
    } else {
      a.rest.push_back(s);
    }
  }
  if (a.json.empty()) a.json = "-";
  return a;
}

// ---- statistics and clocks ------------------------------------------------------------------------

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Summary {
  double median = 0, min = 0, max = 0;
  size_t n = 0;
};

inline Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

/// Seconds per call of `f`: one warm-up call, then the calls per repetition are calibrated so a
/// repetition lasts at least `min_rep_s` (a 1 us op is timed over many calls, a 50 ms conv once);
/// returns one sample per repetition.
inline std::vector<double> time_calls(const std::function<void()>& f, int reps, double min_rep_s) {
  auto run = [&](int64_t n) {
    double t0 = now_s();
    for (int64_t i = 0; i < n; ++i) f();
    return now_s() - t0;
  };
  double first = run(1);
  int64_t inner = 1;
  if (first < min_rep_s) {
    for (;;) {
      double dt = run(inner);
      if (dt >= min_rep_s || inner >= (int64_t{1} << 24)) break;
      double grow = dt <= 0 ? 100.0 : std::min(100.0, 1.2 * min_rep_s / dt);
      inner = std::max<int64_t>(inner + 1, static_cast<int64_t>(static_cast<double>(inner) * grow));
    }
  }
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(run(inner) / static_cast<double>(inner));
  return t;
}

// ---- memory ---------------------------------------------------------------------------------------

/// Peak resident set of this process so far, in KiB (getrusage; Linux reports KiB).
inline long peak_rss_kb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/// Current resident set, in KiB (/proc/self/statm), or 0 where unavailable.
inline long current_rss_kb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  if (!(f >> pages >> resident)) return 0;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/// Allocation counters (all threads) while counting is on. "Large" means more than 4 KiB, the
/// issue's threshold: a warm training step should make none.
struct AllocCounts {
  uint64_t small = 0, large = 0, large_bytes = 0;
};

namespace detail {
inline std::atomic<bool> g_counting{false};
inline std::atomic<uint64_t> g_small{0}, g_large{0}, g_large_bytes{0};
inline std::atomic<bool> g_hooks_installed{false};
inline std::atomic<int> g_trace_left{0};  // EMBER_BENCH_TRACE_ALLOCS=N: backtraces of N large allocations
inline thread_local bool t_in_trace = false;
inline void note_alloc(size_t n) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  if (n > 4096) {
    g_large.fetch_add(1, std::memory_order_relaxed);
    g_large_bytes.fetch_add(n, std::memory_order_relaxed);
    // Where a large allocation of a warm step comes from (addresses resolve with addr2line -Cfe BIN).
    if (g_trace_left.load(std::memory_order_relaxed) > 0 && !t_in_trace && g_trace_left.fetch_sub(1) > 0) {
      t_in_trace = true;  // backtrace() may allocate on first use
      void* frames[24];
      int depth = backtrace(frames, 24);
      char head[96];
      int len = std::snprintf(head, sizeof head, "--- large allocation of %zu bytes:\n", n);
      [[maybe_unused]] ssize_t w = write(2, head, static_cast<size_t>(len));
      backtrace_symbols_fd(frames, depth, 2);
      t_in_trace = false;
    }
  } else {
    g_small.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace detail

/// Starts counting (resets the counters).
inline void start_counting_allocations() {
  const char* trace = std::getenv("EMBER_BENCH_TRACE_ALLOCS");
  detail::g_trace_left = trace ? std::atoi(trace) : 0;
  detail::g_small = 0;
  detail::g_large = 0;
  detail::g_large_bytes = 0;
  detail::g_counting = true;
}
inline AllocCounts stop_counting_allocations() {
  detail::g_counting = false;
  return {detail::g_small.load(), detail::g_large.load(), detail::g_large_bytes.load()};
}
/// True when this program was built with the counting malloc (EMBER_BENCH_COUNT_ALLOCATIONS).
inline bool allocation_counting_available() { return detail::g_hooks_installed.load(); }

// ---- the shared batch order and the MNIST dump ---------------------------------------------------

/// The training order both frameworks use: a Fisher-Yates shuffle driven by splitmix64, so the
/// batches are identical in Ember and in libtorch whatever their own RNGs do.
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  uint64_t s = seed;
  auto next = [&s] {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<size_t>(i)], p[next() % static_cast<uint64_t>(i + 1)]);
  return p;
}

/// The MNIST dump written by `ember_bench_models dump-mnist` from Ember's IDX reader: per split
/// ("train", "t10k") normalised images ((x / 255 - 0.1307) / 0.3081, float32 [N, 784]) and labels
/// (int64 [N]). Each runner allocates its own tensors and reads straight into them, so peak RSS
/// counts the data once.
inline std::string mnist_dump_path(const std::string& dir, const std::string& split, const char* what) {
  return dir + "/" + split + (std::strcmp(what, "images") == 0 ? "-images.f32" : "-labels.i64");
}

inline void write_binary(const std::string& path, const void* data, size_t bytes) {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  size_t w = std::fwrite(data, 1, bytes, f);
  int rc = std::fclose(f);
  if (w != bytes || rc != 0) throw std::runtime_error("short write to " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

inline long file_size(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno) +
                             " (run `ember_bench_models dump-mnist MNIST_DIR OUT_DIR` first; scripts/bench.sh does)");
  }
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fclose(f);
  return size;
}

inline void read_binary_into(const std::string& path, void* dst, size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  size_t r = std::fread(dst, 1, bytes, f);
  std::fclose(f);
  if (r != bytes) throw std::runtime_error("short read from " + path);
}

/// Number of examples in one split of the dump (checking that images and labels agree).
inline int64_t mnist_dump_count(const std::string& dir, const std::string& split) {
  long img = file_size(mnist_dump_path(dir, split, "images"));
  long lab = file_size(mnist_dump_path(dir, split, "labels"));
  int64_t n = lab / static_cast<long>(sizeof(int64_t));
  if (n <= 0 || lab % static_cast<long>(sizeof(int64_t)) != 0 || img != n * 784 * static_cast<long>(sizeof(float)))
    throw std::runtime_error("MNIST dump in " + dir + " (" + split + ") is inconsistent: " + std::to_string(img) +
                             " image bytes for " + std::to_string(lab) + " label bytes");
  return n;
}

/// Reads one split into caller-owned buffers of mnist_dump_count() examples.
inline void read_mnist_dump(const std::string& dir, const std::string& split, float* images, int64_t* labels, int64_t n) {
  read_binary_into(mnist_dump_path(dir, split, "images"), images, static_cast<size_t>(n) * 784 * sizeof(float));
  read_binary_into(mnist_dump_path(dir, split, "labels"), labels, static_cast<size_t>(n) * sizeof(int64_t));
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] > 9) throw std::runtime_error("MNIST dump in " + dir + ": label outside 0..9");
}

// ---- identical inputs and a cross-framework check ---------------------------------------------------

/// Deterministic values in [-1, 1): both runners fill their op inputs with this, so their outputs
/// can be compared through checksum() without exchanging tensors.
inline void fill_pattern(float* p, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull ^ (seed * 0xD1B54A32D192ED03ull);
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    p[i] = static_cast<float>(static_cast<double>(z >> 40) / static_cast<double>(uint64_t{1} << 23) - 1.0);
  }
}
/// Deterministic indices in [0, high).
inline void fill_indices(int64_t* p, int64_t n, int64_t high, uint64_t seed) {
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (static_cast<uint64_t>(i) + 7) * 0x9E3779B97F4A7C15ull ^ (seed * 0xD1B54A32D192ED03ull);
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    p[i] = static_cast<int64_t>((z ^ (z >> 29)) % static_cast<uint64_t>(high));
  }
}

/// Sum and sum of absolute values, accumulated over the outputs of one op call: the report
/// compares Ember's with libtorch's (relative to the absolute sum) to show both computed the same.
struct Checksum {
  double sum = 0, abs_sum = 0;
  void add(const float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      sum += p[i];
      abs_sum += std::fabs(p[i]);
    }
  }
};

// ---- the case catalogue: identical in both runners --------------------------------------------------

/// The protocol of one model case, by mode. --quick trains on a labelled subset of the epoch.
struct MnistProtocol {
  int64_t batch;
  int64_t train_images;  // 60000 = the whole epoch
  int64_t test_images;   // 10000 = the whole test set
  int64_t count_from = 20, count_steps = 10;  // warm steps over which allocations are counted
};
inline MnistProtocol mnist_protocol(int64_t batch, bool quick) {
  return quick ? MnistProtocol{batch, 6400, 2000} : MnistProtocol{batch, 60000, 10000};
}

/// Row names of the MNIST case, shared so the report pairs Ember's rows with libtorch's; a subset
/// of the data (--quick) says so in the name.
inline std::string mnist_row_name(bool train, int64_t images, int64_t batch) {
  int64_t total = train ? 60000 : 10000;
  std::string what = train ? "train" : "eval";
  std::string base = images < total ? what + " " + std::to_string(images) + "/" + std::to_string(total) +
                                          " images (quick subset)"
                                    : (train ? "train epoch" : "eval 10k");
  return base + " B=" + std::to_string(batch);
}

/// Steps of a model whose figure is the time of one training step (cat/dog CNN, BiLSTM, BERT, WGAN-GP):
/// `warmup` untimed steps, then `timed` steps; the process's sample is their median.
struct StepProtocol {
  int warmup, timed;
};
inline StepProtocol step_protocol(bool quick) { return quick ? StepProtocol{1, 1} : StepProtocol{1, 2}; }

/// Repetitions of one op timing and the minimum length of one repetition.
struct OpProtocol {
  int reps;
  double min_rep_s;
};
inline OpProtocol op_protocol(bool quick) { return quick ? OpProtocol{3, 0.02} : OpProtocol{5, 0.05}; }

/// Op rows at the tutorials' real shapes. `kind` picks the implementation in each runner; `dims`
/// are its shape parameters; `work` is FLOPs (GFLOP/s rows) or bytes (GB/s rows) per call.
struct OpSpec {
  std::string kind, group, name, shape;
  std::vector<int64_t> dims;
  std::string unit;  // GFLOP/s or GB/s
  double work;
};

inline std::string dims_str(const std::vector<int64_t>& d, const char* sep = "x") {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? sep : "") + std::to_string(d[i]);
  return s;
}

inline std::vector<OpSpec> op_specs(bool quick) {
  std::vector<OpSpec> v;
  // -- peaks: the machine's measured GEMM and memory-copy rates, best of both frameworks
  int64_t g = quick ? 1024 : 2048;
  v.push_back({"gemm", "peak", "sgemm (machine GEMM peak)", dims_str({g, g, g}), {g, g, g}, "GFLOP/s", 2.0 * g * g * g});
  int64_t cn = int64_t{16} << 20;  // 64 MiB of float32
  v.push_back({"copy", "peak", "copy (machine bandwidth peak)", "[" + std::to_string(cn) + "]", {cn}, "GB/s", 2.0 * 4 * cn});
  // -- GEMM: the fully connected layers of the tutorials, x @ W^T + b
  auto linear = [&](const std::string& group, const std::string& name, int64_t m, int64_t k, int64_t n) {
    v.push_back({"linear", group, name, "[" + std::to_string(m) + "," + std::to_string(k) + "]x[" + std::to_string(n) +
                 "," + std::to_string(k) + "]^T", {m, k, n}, "GFLOP/s", 2.0 * m * k * n});
  };
  linear("gemm", "mnist fc1 linear B=32", 32, 1600, 50);
  linear("gemm", "mnist fc1 linear B=128", 128, 1600, 50);
  linear("gemm", "catdog fc1 linear B=32", 32, 20736, 512);
  linear("gemm", "bert FFN linear B=16xL=128", 2048, 256, 1024);
  // -- conv2d forward and backward: N, C, H, W, O, k, pad
  auto conv = [&](const std::string& name, std::vector<int64_t> d, bool input_grad) {
    int64_t n = d[0], c = d[1], h = d[2], w = d[3], o = d[4], k = d[5], p = d[6];
    int64_t oh = h + 2 * p - k + 1, ow = w + 2 * p - k + 1;
    double f = 2.0 * n * o * oh * ow * c * k * k;
    std::string shape = "x[" + dims_str({n, c, h, w}, ",") + "] w[" + dims_str({o, c, k, k}, ",") + "] pad " + std::to_string(p);
    v.push_back({"conv_fwd", "conv2d", name + " fwd", shape, d, "GFLOP/s", f});
    d.push_back(input_grad ? 1 : 0);
    v.push_back({"conv_bwd", "conv2d", name + (input_grad ? " bwd (input+weight)" : " bwd (weight only)"), shape, d,
                 "GFLOP/s", f * (input_grad ? 2 : 1)});
  };
  conv("mnist conv1 B=32", {32, 1, 28, 28, 32, 3, 0}, false);
  conv("mnist conv1 B=128", {128, 1, 28, 28, 32, 3, 0}, false);
  conv("mnist conv2 B=32", {32, 32, 13, 13, 64, 3, 0}, true);
  conv("mnist conv2 B=128", {128, 32, 13, 13, 64, 3, 0}, true);
  conv("catdog conv2 B=32", {32, 32, 75, 75, 64, 3, 1}, true);
  // -- max-pool 2x2 forward / backward: bytes = input read + output written (forward),
  //    output-gradient read + input-gradient written (backward)
  auto pool = [&](const std::string& name, std::vector<int64_t> d) {
    double in = 4.0 * d[0] * d[1] * d[2] * d[3], out = in / 4;
    std::string shape = "[" + dims_str(d, ",") + "] k2";
    v.push_back({"maxpool_fwd", "pool", name + " fwd", shape, d, "GB/s", in + out});
    v.push_back({"maxpool_bwd", "pool", name + " bwd", shape, d, "GB/s", in + out});
  };
  pool("mnist pool1 B=32", {32, 32, 26, 26});
  pool("mnist pool1 B=128", {128, 32, 26, 26});
  pool("catdog pool1 B=32", {32, 32, 150, 150});
  // -- batch-norm in training mode: forward reads x (twice in a two-pass kernel; counted once) and
  //    writes y; backward reads x and the output gradient and writes the input gradient
  auto bn = [&](const std::string& name, std::vector<int64_t> d) {
    double bytes = 4.0 * d[0] * d[1] * d[2] * d[3];
    std::string shape = "[" + dims_str(d, ",") + "]";
    v.push_back({"bn_fwd", "batch-norm", name + " train fwd", shape, d, "GB/s", 2 * bytes});
    v.push_back({"bn_bwd", "batch-norm", name + " train bwd", shape, d, "GB/s", 3 * bytes});
  };
  bn("catdog bn1 B=32", {32, 32, 150, 150});
  bn("catdog bn2 B=32", {32, 64, 75, 75});
  // -- softmax + cross-entropy, forward + backward: logits read twice, gradient written
  auto ce = [&](const std::string& name, int64_t rows, int64_t cls) {
    v.push_back({"xent", "softmax+xent", name, "[" + std::to_string(rows) + "," + std::to_string(cls) + "]", {rows, cls},
                 "GB/s", 3.0 * 4 * rows * cls});
  };
  ce("mnist logits B=32 fwd+bwd", 32, 10);
  ce("mnist logits B=128 fwd+bwd", 128, 10);
  ce("bert MLM head (15% of 16x128 tokens) fwd+bwd", 308, 21128);
  // -- embedding lookups: rows gathered (bytes read + written); backward scatters them back
  auto emb = [&](const std::string& name, int64_t b, int64_t l, int64_t vocab, int64_t dim) {
    double bytes = 2.0 * 4 * b * l * dim;
    std::string shape = "idx[" + std::to_string(b) + "," + std::to_string(l) + "] w[" + std::to_string(vocab) + "," +
                        std::to_string(dim) + "]";
    v.push_back({"emb_fwd", "embedding", name + " fwd", shape, {b, l, vocab, dim}, "GB/s", bytes});
    v.push_back({"emb_bwd", "embedding", name + " bwd", shape, {b, l, vocab, dim}, "GB/s", bytes});
  };
  emb("bilstm words B=32 L=100", 32, 100, 50000, 64);
  emb("bert words B=16 L=128", 16, 128, 21128, 256);
  // -- recurrent cell and attention. LSTM: one step of one direction (torch::lstm_cell; Ember:
  //    rnn_layer over a 1-step sequence), gradients of h and c w.r.t. x, h0, c0 and the weights.
  //    Attention: scaled_dot_product_attention on [B, heads, L, d] (no mask, no dropout), gradients
  //    w.r.t. q, k, v. Work: forward 2 GEMMs (QK^T, PV), backward twice that.
  v.push_back({"lstm_cell", "lstm", "LSTM cell step fwd+bwd (BiLSTM layer 1)", "B=32 in 64 hidden 64", {32, 64, 64},
               "GFLOP/s", 3 * 2.0 * 32 * 4 * 64 * (64 + 64)});
  v.push_back({"attention", "attention", "self-attention softmax(QK^T/sqrt d)V fwd+bwd", "B=16 heads 4 L=128 d=64",
               {16, 4, 128, 64}, "GFLOP/s", 3 * 2 * 2.0 * 16 * 4 * 128 * 128 * 64});
  return v;
}

// ---- records ---------------------------------------------------------------------------------------

/// One measurement, written as one JSON line. Times are in seconds per call (per epoch for epoch
/// rows, per step for step rows); `work` turns them into GFLOP/s or GB/s.
struct Record {
  std::string framework;  // "ember" | "libtorch"
  std::string case_name, kind, group, name, shape;
  std::string unit = "s";  // s (time only), GFLOP/s, GB/s, us (overhead rows)
  double work = 0;
  std::vector<double> samples;
  std::string status = "ok";  // ok | not_implemented | failed
  std::string note;
  std::map<std::string, double> extra;  // peak_rss_kb, allocs per step, accuracy, ...
};

inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o;
}

inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// Appends `r` to a.json as one line (one write call with O_APPEND semantics, so concurrent
/// runners never interleave lines), with the thread settings of this process.
inline void emit(const Args& a, const Record& r) {
  std::string s = "{\"framework\": \"" + json_escape(r.framework) + "\", \"case\": \"" + json_escape(r.case_name) +
                  "\", \"kind\": \"" + json_escape(r.kind) + "\", \"group\": \"" + json_escape(r.group) +
                  "\", \"name\": \"" + json_escape(r.name) + "\", \"shape\": \"" + json_escape(r.shape) +
                  "\", \"unit\": \"" + json_escape(r.unit) + "\", \"work\": " + json_number(r.work) +
                  ", \"status\": \"" + json_escape(r.status) + "\", \"threads\": " + std::to_string(a.threads) +
                  ", \"round\": " + std::to_string(a.round) + ", \"quick\": " + (a.quick ? "true" : "false");
  const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
  s += ", \"openblas_threads\": \"" + json_escape(blas ? blas : "default") + "\"";
  s += ", \"samples_s\": [";
  for (size_t i = 0; i < r.samples.size(); ++i) s += (i ? ", " : "") + json_number(r.samples[i]);
  s += "]";
  for (const auto& [k, v] : r.extra) s += ", \"" + json_escape(k) + "\": " + json_number(v);
  if (!r.note.empty()) s += ", \"note\": \"" + json_escape(r.note) + "\"";
  s += "}\n";
  if (a.json == "-") {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return;
  }
  std::FILE* f = std::fopen(a.json.c_str(), "a");
  if (!f) throw std::runtime_error("cannot append to " + a.json + ": " + std::strerror(errno));
  std::fwrite(s.data(), 1, s.size(), f);
  if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + a.json);
  Summary su = summarize(r.samples);
  std::fprintf(stderr, "  %-9s %-44s %-10s median %.6g s (n=%zu)%s\n", r.framework.c_str(), r.name.c_str(),
               r.status.c_str(), su.median, su.n, r.note.empty() ? "" : (" [" + r.note + "]").c_str());
}

/// A row the framework cannot run yet: kept in the report, clearly marked, never silently dropped.
inline Record not_implemented(const std::string& framework, const std::string& case_name, const std::string& kind,
                              const std::string& group, const std::string& name, const std::string& shape,
                              const std::string& missing) {
  Record r;
  r.framework = framework;
  r.case_name = case_name;
  r.kind = kind;
  r.group = group;
  r.name = name;
  r.shape = shape;
  r.status = "not_implemented";
  r.note = "not yet implemented in " + framework + ": " + missing;
  return r;
}

/// The fixed rows of the model cases (names shared by both runners).
inline const char* kCatdogShape = "B=32 3x150x150, 4x(conv3x3-BN-ReLU-pool) 32/64/128/256, fc 20736-512-2, Adam";
inline const char* kBilstmShape = "B=32 L=100, Embedding(50000,64) frozen, LSTM(64,64,2 layers,bidir), fc 128-64-2, Adam";
/// BERT: what is timed is zero_grad + forward + cross-entropy + backward + AdamW step.
inline const char* kBertShape =
    "B=16 L=128; timed: zero_grad, fwd (word 21128 + pos 512 + type 2 emb, LN; 4 post-norm layers hidden 256 heads 4 "
    "FFN 1024 GELU, dropout 0.1; tanh pooler, dropout, fc 256-2), CE, bwd, AdamW step";
/// WGAN-GP: one critic update of examples/cgan_mnist (fixed real and fake batches, no generator).
inline const char* kWganShape =
    "B=128; timed: D(real), D(fake), GP at x_hat via double backward (x10), bwd, Adam step; critic emb 10x784 + "
    "conv 2-64, SN conv 64-128-256, SN fc 12544-1024-1, LeakyReLU+Dropout 0.3; SN 1 power iteration per fwd";

}  // namespace bench

// ---- the counting allocator -------------------------------------------------------------------------

#ifdef EMBER_BENCH_COUNT_ALLOCATIONS
#include <malloc.h>
// glibc's own entry points: the wrappers below count, then forward to them, so the heap, its
// statistics and malloc_usable_size are glibc's unchanged. __THROW matches glibc's declarations. Defined in the executable, these symbols
// interpose malloc for every library of the process (libgomp, libstdc++'s operator new, libtorch).
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

void* malloc(size_t n) __THROW {
  bench::detail::note_alloc(n);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) __THROW {
  bench::detail::note_alloc(n * m);
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) __THROW {
  bench::detail::note_alloc(n);
  return __libc_realloc(p, n);
}
void free(void* p) __THROW { __libc_free(p); }
void* memalign(size_t align, size_t n) __THROW {
  bench::detail::note_alloc(n);
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) __THROW {
  bench::detail::note_alloc(n);
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) __THROW {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  bench::detail::note_alloc(n);
  void* p = __libc_memalign(align, n);
  if (p == nullptr && n != 0) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t n) __THROW {
  bench::detail::note_alloc(n);
  return __libc_memalign(static_cast<size_t>(sysconf(_SC_PAGESIZE)), n);
}
}
namespace bench::detail {
/// Marks the hooks as present (a static initialiser of the one TU that defines them).
inline const bool g_mark_hooks = (g_hooks_installed = true, true);
}  // namespace bench::detail
#endif
