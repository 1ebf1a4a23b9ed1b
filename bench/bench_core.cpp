// Core CPU figures for Ember, each beside a peer measured in the same run:
//   * GEMM GFLOP/s (square float32, a transposed operand, the MNIST CNN's layer shapes) against a
//     bare Eigen product on the same data with the same flags (target: Ember/Eigen >= 0.85);
//   * elementwise add bandwidth (GB/s) against an Eigen array expression;
//   * per-op overhead: `a + b` on 1-element tensors, with and without autograd (target < 1 us).
// Every kernel is validated against its peer before it is timed. Prints a Markdown table and
// writes JSON to bench/results/core-<hostname>-<date>.json.
//
//   ember_bench_core [--quick] [--threads N] [--out DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "ember/ember.hpp"
#include "compile_only.hpp"

#ifndef EMBER_BENCH_RESULTS_DIR
#define EMBER_BENCH_RESULTS_DIR "bench/results"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- harness -----------------------------------------------------------------------------------------

/// Seconds per call of one benchmark: median, min and max over `reps` repetitions, each of which
/// runs the body `inner` times (chosen so a repetition lasts at least `min_rep_s`: a 30 ns op is
/// timed over ~100k calls, a 1 s GEMM once).
struct Stats {
  double median = 0, min = 0, max = 0;
  int reps = 0;
  int64_t inner = 1;
};

template <typename F>
Stats measure(F&& f, int reps, double min_rep_s) {
  auto run = [&](int64_t n) {
    auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) f();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // Warm-up (caches, page faults, OpenMP thread pool) doubles as calibration.
  run(1);
  int64_t inner = 1;
  for (;;) {
    double dt = run(inner);
    if (dt >= min_rep_s || inner >= (int64_t{1} << 26)) break;
    double grow = dt <= 0 ? 100.0 : std::min(100.0, 1.2 * min_rep_s / dt);
    inner = std::max<int64_t>(inner + 1, static_cast<int64_t>(inner * grow));
  }
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(run(inner) / static_cast<double>(inner));
  std::sort(t.begin(), t.end());
  Stats s;
  s.median = t[t.size() / 2];
  s.min = t.front();
  s.max = t.back();
  s.reps = reps;
  s.inner = inner;
  return s;
}

/// One row of the report: Ember's timing, its metric, and the peer's (when there is one).
struct Row {
  std::string group, name, shape, unit;  // unit: GFLOP/s, GB/s or us
  Stats ember;
  double ember_value = 0;
  bool has_peer = false;
  Stats peer;
  double peer_value = 0;
  double max_rel_err = 0;
  std::string note;
};

double max_rel_err(const float* got, const float* want, int64_t n) {
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  for (int64_t i = 0; i < n; ++i) err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
  return scale > 0 ? err / scale : err;
}

struct Config {
  bool quick = false;
  int reps = 11;
  double min_rep_s = 0.05;
  std::string out_dir = EMBER_BENCH_RESULTS_DIR;
};

void fail_validation(const std::string& what, double err) {
  std::fprintf(stderr, "VALIDATION FAILED: %s (max relative error %.3g)\n", what.c_str(), err);
  std::exit(1);
}

// ---- GEMM ---------------------------------------------------------------------------------------------

/// C[m, n] = A[m, k] @ op(B), where Ember computes `ember_op(a, b)` and Eigen the same product
/// on row-major copies of the same data. `b_is_weight`: b is [n, k] and the product is A @ B^T
/// (ember::linear), otherwise b is [k, n].
Row bench_gemm(const Config& cfg, const std::string& group, const std::string& name, int64_t m, int64_t k, int64_t n,
               bool b_is_weight, const std::function<ember::Tensor(const ember::Tensor&, const ember::Tensor&)>& ember_op) {
  ember::Tensor a = ember::randn({m, k});
  ember::Tensor b = b_is_weight ? ember::randn({n, k}) : ember::randn({k, n});
  RowMatrixF ea = Eigen::Map<const RowMatrixF>(a.data_ptr<float>(), m, k);
  RowMatrixF eb = Eigen::Map<const RowMatrixF>(b.data_ptr<float>(), b.size(0), b.size(1));
  RowMatrixF ec(m, n);
  auto eigen_op = [&] {
    if (b_is_weight) ec.noalias() = ea * eb.transpose();
    else ec.noalias() = ea * eb;
  };

  Row row;
  row.group = group;
  row.name = name;
  row.shape = "[" + std::to_string(m) + "," + std::to_string(k) + "]x" +
              (b_is_weight ? "[" + std::to_string(n) + "," + std::to_string(k) + "]^T"
                           : "[" + std::to_string(k) + "," + std::to_string(n) + "]");
  row.unit = "GFLOP/s";
  eigen_op();
  ember::Tensor c = ember_op(a, b);
  row.max_rel_err = max_rel_err(c.contiguous().data_ptr<float>(), ec.data(), m * n);
  if (row.max_rel_err > 1e-4) fail_validation(name, row.max_rel_err);

  double flops = 2.0 * static_cast<double>(m) * n * k;
  int reps = cfg.reps;
  row.ember = measure([&] { c = ember_op(a, b); }, reps, cfg.min_rep_s);
  row.peer = measure(eigen_op, reps, cfg.min_rep_s);
  row.has_peer = true;
  row.ember_value = flops / row.ember.median * 1e-9;
  row.peer_value = flops / row.peer.median * 1e-9;
  return row;
}

// ---- elementwise ----------------------------------------------------------------------------------

Row bench_add(const Config& cfg, int64_t n) {
  ember::Tensor a = ember::randn({n}), b = ember::randn({n});
  Eigen::ArrayXf ea = Eigen::Map<const Eigen::ArrayXf>(a.data_ptr<float>(), n);
  Eigen::ArrayXf eb = Eigen::Map<const Eigen::ArrayXf>(b.data_ptr<float>(), n);
  Eigen::ArrayXf ec(n);
  Row row;
  row.group = "elementwise";
  row.name = "add float32";
  row.shape = "[" + std::to_string(n) + "]";
  row.unit = "GB/s";
  ember::Tensor c = a + b;
  ec = ea + eb;
  row.max_rel_err = max_rel_err(c.data_ptr<float>(), ec.data(), n);
  if (row.max_rel_err > 0) fail_validation("add", row.max_rel_err);
  double bytes = 3.0 * static_cast<double>(n) * sizeof(float);
  row.ember = measure([&] { c = a + b; }, cfg.reps, cfg.min_rep_s);
  // The peer writes into a preallocated array (no allocation) and runs on one thread: Eigen does
  // not parallelise coefficient-wise expressions.
  row.peer = measure([&] { ec = ea + eb; }, cfg.reps, cfg.min_rep_s);
  row.has_peer = true;
  row.ember_value = bytes / row.ember.median * 1e-9;
  row.peer_value = bytes / row.peer.median * 1e-9;
  row.note = "peer: Eigen array, preallocated output, 1 thread";
  return row;
}

/// The same loop without the allocation: `a.add_(b)` writes into existing storage, so the gap
/// to bench_add is what allocating (and first-touching) a fresh output costs.
Row bench_add_inplace(const Config& cfg, int64_t n) {
  ember::Tensor a = ember::randn({n}), b = ember::randn({n});
  Eigen::ArrayXf ea = Eigen::Map<const Eigen::ArrayXf>(a.data_ptr<float>(), n);
  Eigen::ArrayXf eb = Eigen::Map<const Eigen::ArrayXf>(b.data_ptr<float>(), n);
  Row row;
  row.group = "elementwise";
  row.name = "add_ float32 (in place)";
  row.shape = "[" + std::to_string(n) + "]";
  row.unit = "GB/s";
  a.add_(b);
  ea += eb;
  row.max_rel_err = max_rel_err(a.data_ptr<float>(), ea.data(), n);
  if (row.max_rel_err > 0) fail_validation("add_", row.max_rel_err);
  double bytes = 3.0 * static_cast<double>(n) * sizeof(float);
  row.ember = measure([&] { a.add_(b); }, cfg.reps, cfg.min_rep_s);
  row.peer = measure([&] { ea += eb; }, cfg.reps, cfg.min_rep_s);
  row.has_peer = true;
  row.ember_value = bytes / row.ember.median * 1e-9;
  row.peer_value = bytes / row.peer.median * 1e-9;
  row.note = "peer: Eigen array +=, 1 thread";
  return row;
}

// ---- per-op overhead ------------------------------------------------------------------------------

Row bench_overhead(const Config& cfg, const std::string& name, bool requires_grad,
                   const std::function<ember::Tensor(const ember::Tensor&, const ember::Tensor&)>& op,
                   const ember::Shape& shape) {
  auto opts = ember::TensorOptions().requires_grad(requires_grad);
  ember::Tensor a = ember::randn(shape, opts), b = ember::randn(shape, opts);
  ember::Tensor c = op(a, b);
  if (c.requires_grad() != requires_grad) fail_validation(name + ": autograd recording", 1);
  Row row;
  row.group = "overhead";
  row.name = name;
  row.shape = "[" + std::to_string(shape.numel()) + "]";
  row.unit = "us";
  // The result (and with autograd its graph node) is released inside the loop, as in a real step.
  row.ember = measure([&] { c = op(a, b); }, cfg.reps, cfg.min_rep_s);
  row.ember_value = row.ember.median * 1e6;
  return row;
}

// ---- output -------------------------------------------------------------------------------------------

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string time_str(double s) {
  if (s < 1e-6) return fmt("%.1f ns", s * 1e9);
  if (s < 1e-3) return fmt("%.2f us", s * 1e6);
  if (s < 1) return fmt("%.3f ms", s * 1e3);
  return fmt("%.3f s", s);
}

void print_markdown(const std::vector<Row>& rows) {
  std::printf("| group | benchmark | shape | median | min | max | Ember | peer (Eigen) | Ember/peer |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    std::string val = r.unit == "us" ? fmt("%.3f us", r.ember_value) : fmt("%.1f ", r.ember_value) + r.unit;
    std::string peer = r.has_peer ? fmt("%.1f ", r.peer_value) + r.unit : "-";
    std::string ratio = r.has_peer ? fmt("%.2f", r.ember_value / r.peer_value) : "-";
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.group.c_str(), r.name.c_str(), r.shape.c_str(),
                time_str(r.ember.median).c_str(), time_str(r.ember.min).c_str(), time_str(r.ember.max).c_str(),
                val.c_str(), peer.c_str(), ratio.c_str());
  }
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

std::string stats_json(const Stats& s) {
  return "{\"median_s\": " + fmt("%.9g", s.median) + ", \"min_s\": " + fmt("%.9g", s.min) +
         ", \"max_s\": " + fmt("%.9g", s.max) + ", \"reps\": " + std::to_string(s.reps) +
         ", \"calls_per_rep\": " + std::to_string(s.inner) + "}";
}

void write_json(const std::string& path, const std::vector<Row>& rows, const std::string& host, const std::string& date,
                const Config& cfg) {
  std::ofstream os(path + ".tmp");
  os << "{\n  \"bench\": \"core\",\n  \"host\": \"" << json_escape(host) << "\",\n  \"date\": \"" << date
     << "\",\n  \"threads\": " << ember::get_num_threads() << ",\n  \"eigen_threads\": " << Eigen::nbThreads()
     << ",\n  \"quick\": " << (cfg.quick ? "true" : "false") << ",\n  \"compiler\": \"" << json_escape(__VERSION__)
     << "\",\n  \"eigen\": \"" << EIGEN_WORLD_VERSION << "." << EIGEN_MAJOR_VERSION << "." << EIGEN_MINOR_VERSION
     << "\",\n  \"results\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    os << "    {\"group\": \"" << json_escape(r.group) << "\", \"name\": \"" << json_escape(r.name) << "\", \"shape\": \""
       << json_escape(r.shape) << "\", \"unit\": \"" << r.unit << "\", \"ember\": " << stats_json(r.ember)
       << ", \"ember_value\": " << fmt("%.6g", r.ember_value);
    if (r.has_peer) {
      os << ", \"peer\": \"eigen\", \"peer_stats\": " << stats_json(r.peer) << ", \"peer_value\": "
         << fmt("%.6g", r.peer_value) << ", \"ratio\": " << fmt("%.4f", r.ember_value / r.peer_value);
    }
    if (r.max_rel_err > 0) os << ", \"max_rel_err\": " << fmt("%.3g", r.max_rel_err);
    if (!r.note.empty()) os << ", \"note\": \"" << json_escape(r.note) << "\"";
    os << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  os << "  ]\n}\n";
  os.close();
  std::filesystem::rename(path + ".tmp", path);  // never leave a half-written result
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::compile_only_build("bench_core")) return 2;
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      cfg.quick = true;
    } else if (arg == "--threads" && i + 1 < argc) {
      ember::set_num_threads(std::atoi(argv[++i]));
    } else if (arg == "--out" && i + 1 < argc) {
      cfg.out_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--threads N] [--out DIR]\n", argv[0]);
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  if (cfg.quick) {
    cfg.reps = 5;
    cfg.min_rep_s = 0.02;
  }

  char hostbuf[256] = "unknown";
  gethostname(hostbuf, sizeof hostbuf - 1);
  std::string host = hostbuf;
  char datebuf[32];
  std::time_t now = std::time(nullptr);
  std::strftime(datebuf, sizeof datebuf, "%Y-%m-%d", std::localtime(&now));
  std::string date = datebuf;
  std::fprintf(stderr, "ember_bench_core on %s, %d threads (Eigen %d)%s\n", host.c_str(), ember::get_num_threads(),
               Eigen::nbThreads(), cfg.quick ? ", quick" : "");

  auto mm = [](const ember::Tensor& a, const ember::Tensor& b) { return ember::mm(a, b); };
  auto lin = [](const ember::Tensor& x, const ember::Tensor& w) { return ember::linear(x, w); };
  std::vector<Row> rows;

  std::vector<int64_t> sizes = {256, 512, 1024, 2048};
  if (cfg.quick) sizes.pop_back();
  for (int64_t s : sizes) {
    rows.push_back(bench_gemm(cfg, "gemm", "mm float32", s, s, s, false, mm));
    std::fprintf(stderr, "  gemm %lld done\n", static_cast<long long>(s));
  }
  // A transposed operand is a column-major map: it must cost (almost) nothing.
  rows.push_back(bench_gemm(cfg, "gemm", "mm a @ b.t() (no copy)", 512, 512, 512, true,
                            [](const ember::Tensor& a, const ember::Tensor& b) { return ember::mm(a, b.t()); }));

  // The MNIST CNN tutorial (conv 1->32 3x3, pool, conv 32->64 3x3, pool, flatten 1600, fc 128, fc 10):
  // fully connected layers through ember::linear, convolutions as their im2col GEMMs
  // (weight [Cout, Cin*9] @ columns [Cin*9, B*H*W]).
  for (int64_t batch : {int64_t{32}, int64_t{128}}) {
    std::string bs = "B=" + std::to_string(batch);
    rows.push_back(bench_gemm(cfg, "mnist-cnn", "fc1 linear 1600->128 " + bs, batch, 1600, 128, true, lin));
    rows.push_back(bench_gemm(cfg, "mnist-cnn", "fc2 linear 128->10 " + bs, batch, 128, 10, true, lin));
    rows.push_back(bench_gemm(cfg, "mnist-cnn", "conv1 im2col 1->32 26x26 " + bs, 32, 9, batch * 26 * 26, false, mm));
    rows.push_back(bench_gemm(cfg, "mnist-cnn", "conv2 im2col 32->64 11x11 " + bs, 64, 288, batch * 11 * 11, false, mm));
  }
  std::fprintf(stderr, "  mnist shapes done\n");

  for (int64_t n : {int64_t{1} << 20, int64_t{1} << 24}) {
    rows.push_back(bench_add(cfg, n));
    rows.push_back(bench_add_inplace(cfg, n));
  }
  std::fprintf(stderr, "  elementwise done\n");

  auto add = [](const ember::Tensor& a, const ember::Tensor& b) { return a + b; };
  rows.push_back(bench_overhead(cfg, "a + b (no autograd)", false, add, {1}));
  rows.push_back(bench_overhead(cfg, "a + b (requires_grad)", true, add, {1}));
  rows.push_back(bench_overhead(cfg, "mm 1x1 (no autograd)", false, mm, {1, 1}));
  rows.push_back(bench_overhead(cfg, "mm 1x1 (requires_grad)", true, mm, {1, 1}));

  print_markdown(rows);
  std::error_code ec;
  std::filesystem::create_directories(cfg.out_dir, ec);
  std::string path = cfg.out_dir + "/core-" + host + "-" + date + ".json";
  write_json(path, rows, host, date, cfg);
  std::fprintf(stderr, "wrote %s\n", path.c_str());
  return 0;
}
