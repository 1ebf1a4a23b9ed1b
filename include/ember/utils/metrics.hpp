#pragma once
/// Training metrics: running averages, accuracy, a confusion matrix, and a per-epoch log written
/// as CSV and JSON.
///
///   utils::AverageMeter loss;                      // inside the epoch
///   loss.update(l.item<float>(), batch_size);
///   correct += utils::count_correct(logits, y);
///
///   utils::MetricsLog log(out_dir / "metrics");    // once per epoch: metrics.csv + metrics.json
///   log.append({{"epoch", 1}, {"train_loss", loss.avg()}, {"test_acc", 0.991}});
///
/// Tensors (logits, predictions, targets) may live on any device and have any real dtype; they
/// are copied to the host once per call, which is cheap next to the forward pass that made them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iomanip>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/tensor.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/reduce.hpp"

namespace ember::utils {

// ---------------------------------------------------------------------------------------------
// Host copies of small tensors
// ---------------------------------------------------------------------------------------------

/// The elements of `t` (any device, any real dtype) as a host vector of T, in row-major order.
template <typename T>
std::vector<T> to_vector(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor h = t.detach().to(kCPU, dtype_v<T>).contiguous();
  const T* p = h.data_ptr<T>();
  return std::vector<T>(p, p + h.numel());
}

// ---------------------------------------------------------------------------------------------
// AverageMeter
// ---------------------------------------------------------------------------------------------

/// A running (weighted) average: `update(batch_loss, batch_size)` then `avg()` is the mean over
/// samples, the figure the per-epoch line prints.
class AverageMeter {
 public:
  /// Adds `value` with weight `n` (usually the batch size).
  void update(double value, int64_t n = 1) {
    last_ = value;
    sum_ += value * static_cast<double>(n);
    count_ += n;
  }
  /// Mean so far; 0 before the first update.
  double avg() const { return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0; }
  double sum() const { return sum_; }
  int64_t count() const { return count_; }
  /// The most recent value given to update().
  double val() const { return last_; }
  void reset() { *this = AverageMeter(); }

 private:
  double sum_ = 0, last_ = 0;
  int64_t count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Accuracy
// ---------------------------------------------------------------------------------------------

/// Predicted classes of `logits` [N, C] (argmax over dim 1), as host int64.
inline std::vector<int64_t> predicted_classes(const Tensor& logits) {
  EMBER_CHECK(logits.dim() == 2, "predicted_classes: expected logits of shape [N, C], got ", logits.sizes());
  NoGradGuard no_grad;
  return to_vector<int64_t>(argmax(logits.detach(), 1));
}

/// Number of rows of `logits` [N, C] whose argmax equals `targets` [N] (class indices).
inline int64_t count_correct(const Tensor& logits, const Tensor& targets) {
  EMBER_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0),
              "count_correct: expected logits [N, C] and targets [N], got ", logits.sizes(), " and ",
              targets.sizes());
  auto pred = predicted_classes(logits);
  auto tgt = to_vector<int64_t>(targets);
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == tgt[i];
  return correct;
}

/// Fraction (0..1) of rows of `logits` [N, C] whose argmax equals `targets` [N]; 0 when N == 0.
inline double accuracy(const Tensor& logits, const Tensor& targets) {
  int64_t n = targets.dim() == 1 ? targets.size(0) : 0;
  int64_t c = count_correct(logits, targets);
  return n > 0 ? static_cast<double>(c) / static_cast<double>(n) : 0.0;
}

// ---------------------------------------------------------------------------------------------
// ConfusionMatrix
// ---------------------------------------------------------------------------------------------

/// A K×K count matrix: row = true class, column = predicted class (scikit-learn's convention).
///
///   utils::ConfusionMatrix cm(10);
///   cm.update(logits, y);          // logits [N, 10] or predicted indices [N]
///   std::cout << cm.to_string();   // table with per-class precision and recall
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes) : k_(num_classes) {
    EMBER_CHECK(num_classes > 0, "ConfusionMatrix: num_classes must be positive, got ", num_classes);
    counts_.assign(static_cast<size_t>(k_ * k_), 0);
  }

  /// Adds one sample.
  void update(int64_t pred, int64_t target) {
    EMBER_CHECK(pred >= 0 && pred < k_ && target >= 0 && target < k_, "ConfusionMatrix::update: class out of range [0, ",
                k_, "): prediction ", pred, ", target ", target);
    ++counts_[static_cast<size_t>(target * k_ + pred)];
  }

  /// Adds a batch: `preds` is either class indices [N] or logits/probabilities [N, K] (argmax is
  /// taken), `targets` class indices [N].
  void update(const Tensor& preds, const Tensor& targets) {
    EMBER_CHECK(targets.dim() == 1, "ConfusionMatrix::update: expected targets [N], got ", targets.sizes());
    std::vector<int64_t> p;
    if (preds.dim() == 2) {
      EMBER_CHECK(preds.size(1) == k_, "ConfusionMatrix::update: logits ", preds.sizes(), " do not have ", k_,
                  " classes");
      p = predicted_classes(preds);
    } else {
      EMBER_CHECK(preds.dim() == 1, "ConfusionMatrix::update: expected predictions [N] or logits [N, ", k_, "], got ",
                  preds.sizes());
      p = to_vector<int64_t>(preds);
    }
    auto t = to_vector<int64_t>(targets);
    EMBER_CHECK(p.size() == t.size(), "ConfusionMatrix::update: ", p.size(), " predictions but ", t.size(),
                " targets");
    for (size_t i = 0; i < p.size(); ++i) update(p[i], t[i]);
  }

  int64_t num_classes() const { return k_; }
  /// Samples of true class `target` predicted as `pred`.
  int64_t at(int64_t target, int64_t pred) const {
    EMBER_CHECK(pred >= 0 && pred < k_ && target >= 0 && target < k_, "ConfusionMatrix::at: class out of range");
    return counts_[static_cast<size_t>(target * k_ + pred)];
  }
  /// Row-major K×K counts (rows: true class).
  const std::vector<int64_t>& counts() const { return counts_; }
  /// The counts as an int64 tensor [K, K].
  Tensor to_tensor() const { return tensor<int64_t>(counts_, Shape{k_, k_}); }

  int64_t total() const {
    int64_t s = 0;
    for (auto c : counts_) s += c;
    return s;
  }
  /// Fraction of samples on the diagonal; 0 when empty.
  double accuracy() const {
    int64_t d = 0;
    for (int64_t i = 0; i < k_; ++i) d += counts_[static_cast<size_t>(i * k_ + i)];
    int64_t t = total();
    return t > 0 ? static_cast<double>(d) / static_cast<double>(t) : 0.0;
  }
  /// Of the samples predicted as class c, the fraction that are c (0 if none was predicted c).
  double precision(int64_t c) const {
    int64_t col = 0;
    for (int64_t r = 0; r < k_; ++r) col += at(r, c);
    return col > 0 ? static_cast<double>(at(c, c)) / static_cast<double>(col) : 0.0;
  }
  /// Of the samples of class c, the fraction predicted as c (0 if there were none).
  double recall(int64_t c) const {
    int64_t row = 0;
    for (int64_t p = 0; p < k_; ++p) row += at(c, p);
    return row > 0 ? static_cast<double>(at(c, c)) / static_cast<double>(row) : 0.0;
  }
  /// Harmonic mean of precision and recall of class c.
  double f1(int64_t c) const {
    double p = precision(c), r = recall(c);
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
  void reset() { std::fill(counts_.begin(), counts_.end(), 0); }

  /// A text table: counts, then each row's recall and each column's precision, then accuracy.
  /// `class_names` (optional) label rows and columns; default "0".."K-1".
  std::string to_string(const std::vector<std::string>& class_names = {}) const {
    EMBER_CHECK(class_names.empty() || static_cast<int64_t>(class_names.size()) == k_, "ConfusionMatrix::to_string: ",
                class_names.size(), " class names for ", k_, " classes");
    auto name = [&](int64_t i) { return class_names.empty() ? std::to_string(i) : class_names[static_cast<size_t>(i)]; };
    size_t w = std::to_string(std::max<int64_t>(total(), 0)).size();
    size_t label_w = std::string("precision").size();
    for (int64_t i = 0; i < k_; ++i) {
      w = std::max(w, name(i).size());
      label_w = std::max(label_w, name(i).size());
    }
    w = std::max<size_t>(w, 5);  // room for "0.998"
    std::ostringstream os;
    os << std::setw(static_cast<int>(label_w)) << std::left << "true\\pred" << std::right;
    for (int64_t p = 0; p < k_; ++p) os << ' ' << std::setw(static_cast<int>(w)) << name(p);
    os << "  recall\n";
    for (int64_t t = 0; t < k_; ++t) {
      os << std::setw(static_cast<int>(label_w)) << std::left << name(t) << std::right;
      for (int64_t p = 0; p < k_; ++p) os << ' ' << std::setw(static_cast<int>(w)) << at(t, p);
      os << "  " << std::fixed << std::setprecision(3) << recall(t) << '\n';
    }
    os << std::setw(static_cast<int>(label_w)) << std::left << "precision" << std::right;
    for (int64_t p = 0; p < k_; ++p) {
      os << ' ' << std::setw(static_cast<int>(w)) << std::fixed << std::setprecision(3) << precision(p);
    }
    os << "\naccuracy " << std::fixed << std::setprecision(4) << accuracy() << " (" << total() << " samples)\n";
    return os.str();
  }

 private:
  int64_t k_;
  std::vector<int64_t> counts_;
};

inline std::ostream& operator<<(std::ostream& os, const ConfusionMatrix& cm) { return os << cm.to_string(); }

// ---------------------------------------------------------------------------------------------
// Atomic file writes
// ---------------------------------------------------------------------------------------------

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or a crash) never sees a half-written file. Creates missing parent directories.
inline void write_file_atomic(const std::filesystem::path& path, const std::string& contents) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    EMBER_CHECK(f.good(), "write_file_atomic: cannot open '", tmp.string(), "' for writing");
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    f.flush();
    EMBER_CHECK(f.good(), "write_file_atomic: writing '", tmp.string(), "' failed (disk full?)");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    EMBER_CHECK(false, "write_file_atomic: cannot rename the temporary file to '", path.string(), "'");
  }
}

// ---------------------------------------------------------------------------------------------
// MetricsLog
// ---------------------------------------------------------------------------------------------

/// One row per epoch of named numbers, written as CSV and JSON.
///
///   utils::MetricsLog log("runs/mnist/metrics");   // writes metrics.csv and metrics.json
///   log.append({{"epoch", 1}, {"train_loss", 0.31}, {"test_acc", 0.987}});   // saves both files
///   auto curve = log.column("test_acc");
///
/// Columns are the union of the rows' names in first-seen order; a row without a column leaves an
/// empty CSV cell and a JSON null (so does a NaN or an infinity in JSON, which has no such
/// numbers). Integral values print without decimals ("epoch": 3).
class MetricsLog {
 public:
  using Row = std::vector<std::pair<std::string, double>>;

  /// An in-memory log; call write_csv/write_json yourself.
  MetricsLog() = default;
  /// A log saved to `<base>.csv` and `<base>.json` after every append.
  explicit MetricsLog(std::filesystem::path base) : base_(std::move(base)) {}

  /// Appends a row (and saves, if the log has a base path).
  void append(Row row) {
    for (const auto& [name, value] : row) {
      if (std::find(columns_.begin(), columns_.end(), name) == columns_.end()) columns_.push_back(name);
    }
    rows_.push_back(std::move(row));
    if (!base_.empty()) save();
  }

  /// Writes `<base>.csv` and `<base>.json`.
  void save() const {
    EMBER_CHECK(!base_.empty(), "MetricsLog::save: the log was created without a path");
    auto csv = base_, json = base_;
    csv += ".csv";
    json += ".json";
    write_csv(csv);
    write_json(json);
  }

  const std::vector<std::string>& columns() const { return columns_; }
  size_t size() const { return rows_.size(); }
  const std::vector<Row>& rows() const { return rows_; }

  /// A column's values in row order (NaN where a row lacks it): the y values of a curve.
  std::vector<double> column(const std::string& name) const {
    EMBER_CHECK(std::find(columns_.begin(), columns_.end(), name) != columns_.end(), "MetricsLog::column: no column '",
                name, "'");
    std::vector<double> out;
    for (const auto& row : rows_) out.push_back(lookup(row, name).value_or(NAN));
    return out;
  }

  /// The CSV text: a header line, then one line per row.
  std::string to_csv() const {
    std::string s;
    for (size_t c = 0; c < columns_.size(); ++c) s += (c ? "," : "") + csv_field(columns_[c]);
    s += '\n';
    for (const auto& row : rows_) {
      for (size_t c = 0; c < columns_.size(); ++c) {
        if (c) s += ',';
        if (auto v = lookup(row, columns_[c])) s += format_number(*v, false);
      }
      s += '\n';
    }
    return s;
  }

  /// The JSON text: an array with one object per row.
  std::string to_json() const {
    std::string s = "[";
    for (size_t r = 0; r < rows_.size(); ++r) {
      s += r ? ",\n  {" : "\n  {";
      bool first = true;
      for (const auto& name : columns_) {
        auto v = lookup(rows_[r], name);
        if (!v) continue;
        s += (first ? "" : ", ") + json_string(name) + ": " + format_number(*v, true);
        first = false;
      }
      s += "}";
    }
    s += rows_.empty() ? "]\n" : "\n]\n";
    return s;
  }

  void write_csv(const std::filesystem::path& path) const { write_file_atomic(path, to_csv()); }
  void write_json(const std::filesystem::path& path) const { write_file_atomic(path, to_json()); }

  /// Reads a CSV written by write_csv (to continue a log after `--resume`). Empty cells are
  /// missing values; a malformed file gives an ember::Error naming it and the line.
  static MetricsLog read_csv(const std::filesystem::path& path) {
    std::ifstream f(path);
    EMBER_CHECK(f.good(), "MetricsLog::read_csv: cannot open '", path.string(), "'");
    MetricsLog log;
    std::string line;
    EMBER_CHECK(static_cast<bool>(std::getline(f, line)), "MetricsLog::read_csv: '", path.string(), "' is empty");
    std::vector<std::string> header = split_csv(line);
    size_t lineno = 1;
    while (std::getline(f, line)) {
      ++lineno;
      if (line.empty()) continue;
      auto cells = split_csv(line);
      EMBER_CHECK(cells.size() == header.size(), "MetricsLog::read_csv: '", path.string(), "' line ", lineno, " has ",
                  cells.size(), " fields, the header has ", header.size());
      Row row;
      for (size_t c = 0; c < cells.size(); ++c) {
        if (cells[c].empty()) continue;
        char* end = nullptr;
        double v = std::strtod(cells[c].c_str(), &end);
        EMBER_CHECK(end && *end == '\0', "MetricsLog::read_csv: '", path.string(), "' line ", lineno,
                    ": not a number: '", cells[c], "'");
        row.emplace_back(header[c], v);
      }
      log.append(std::move(row));
    }
    for (const auto& h : header) {  // keep columns that were empty in every row
      if (std::find(log.columns_.begin(), log.columns_.end(), h) == log.columns_.end()) log.columns_.push_back(h);
    }
    return log;
  }

  /// Sets the path the log saves to after each append (e.g. after read_csv).
  void set_path(std::filesystem::path base) { base_ = std::move(base); }

  /// The log at `<base>.csv` as a run resumed after `epochs_done` epochs continues it: rows of
  /// later epochs (written after the checkpoint, before a crash) are dropped, since they are about
  /// to be trained again; rows without an "epoch" column are kept. No file yet: an empty log.
  static MetricsLog resume(const std::filesystem::path& base, int64_t epochs_done) {
    auto csv = base;
    csv += ".csv";
    MetricsLog log(base);
    if (!std::filesystem::exists(csv)) return log;
    for (auto& row : read_csv(csv).rows_) {
      std::optional<double> epoch = lookup(row, "epoch");
      if (!epoch || *epoch <= static_cast<double>(epochs_done)) {
        for (const auto& [name, value] : row) {
          if (std::find(log.columns_.begin(), log.columns_.end(), name) == log.columns_.end()) log.columns_.push_back(name);
        }
        log.rows_.push_back(std::move(row));
      }
    }
    return log;
  }

 private:
  static std::optional<double> lookup(const Row& row, const std::string& name) {
    for (const auto& [n, v] : row) {
      if (n == name) return v;
    }
    return std::nullopt;
  }

  static std::string format_number(double v, bool json) {
    if (!std::isfinite(v)) {
      if (json) return "null";
      return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    }
    char buf[40];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    } else {
      std::snprintf(buf, sizeof buf, "%.10g", v);
    }
    return buf;
  }

  static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }

  static std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          out.back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          out.back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        out.emplace_back();
      } else if (c != '\r') {
        out.back() += c;
      }
    }
    return out;
  }

  static std::string json_string(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      switch (c) {
        case '"': q += "\\\""; break;
        case '\\': q += "\\\\"; break;
        case '\n': q += "\\n"; break;
        case '\t': q += "\\t"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            q += buf;
          } else {
            q += c;
          }
      }
    }
    return q + "\"";
  }

  std::filesystem::path base_;
  std::vector<std::string> columns_;
  std::vector<Row> rows_;
};

}  // namespace ember::utils
