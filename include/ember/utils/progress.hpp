#pragma once
/// A tqdm-style progress bar on stderr.
///
///   utils::ProgressBar bar(loader.size(), "Epoch 1/8");
///   for (auto& batch : loader) {
///     ...
///     bar.update(1, {{"loss", meter.avg()}, {"acc", acc.avg()}});
///   }
///   bar.close();
///
/// draws  `Epoch 1/8  44%|███████████▏             | 843/1875 [00:04<00:05, 190.2it/s, loss=0.3100, acc=0.9700]`
/// (the percentage rounds down, so 100 % means done).
///
/// On a terminal the line is redrawn in place (carriage return) at most every `min_interval`
/// seconds, so a training step pays only for a clock read. When stderr is a file or a pipe (a log,
/// CI) carriage returns would pile up into one huge line, so the bar prints a plain line each time
/// it crosses another 10 % instead. It never writes to stdout: a program's results stay clean
/// when its stdout is redirected.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

namespace ember::utils {

/// Options of a ProgressBar; the defaults suit a training loop. `out`, `tty` and `clock` are the
/// seams the tests use (an ostringstream, a forced mode and a fake clock).
struct ProgressOptions {
  std::ostream* out = nullptr;           ///< nullptr: std::cerr
  std::optional<bool> tty;               ///< unset: isatty(stderr) when writing to std::cerr, else false
  std::function<double()> clock;         ///< seconds, monotonic; unset: std::chrono::steady_clock
  double min_interval = 0.1;             ///< terminal mode: seconds between redraws
  int plain_step_percent = 10;           ///< non-terminal mode: one line per this many percent
  double plain_interval = 30.0;          ///< non-terminal mode, unknown total: seconds between lines
  int bar_width = 25;                    ///< cells of the bar (shrunk to fit a narrow terminal)
  int ncols = 0;                         ///< terminal width; 0: ask the terminal (ioctl), else 100
  std::string unit = "it";               ///< "it/s" or e.g. "img/s"
};

namespace detail {

/// "mm:ss", or "h:mm:ss" from one hour on (tqdm's format).
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return buf;
}

/// A metric value: four decimals like "loss=0.3100", scientific when that would hide it.
inline std::string format_metric(double v) {
  char buf[48];
  double a = std::fabs(v);
  if (std::isfinite(v) && v != 0 && (a >= 1e6 || a < 1e-3)) {
    std::snprintf(buf, sizeof buf, "%.3e", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4f", v);
  }
  return buf;
}

/// Number of terminal columns occupied by UTF-8 text (every code point is one cell here: the bar
/// uses only single-width block characters).
inline size_t display_width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

/// Truncates UTF-8 text to `cells` display cells without cutting a code point.
inline std::string truncate_display(std::string_view s, size_t cells) {
  size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == cells) break;
      ++n;
    }
  }
  return std::string(s.substr(0, i));
}

}  // namespace detail

/// A progress bar over `total` steps (0: unknown total, shows a count and a rate only).
/// Not thread-safe: update it from the thread that runs the loop.
class ProgressBar {
 public:
  using Metric = std::pair<std::string_view, double>;

  /// Starts the clock; on a terminal, draws the empty bar at once.
  explicit ProgressBar(int64_t total, std::string desc = "", ProgressOptions opts = {})
      : total_(total < 0 ? 0 : total), desc_(std::move(desc)), opts_(std::move(opts)) {
    if (opts_.out == nullptr) opts_.out = &std::cerr;
    if (!opts_.tty) opts_.tty = (opts_.out == &std::cerr) && ::isatty(STDERR_FILENO) == 1;
    if (!opts_.clock) {
      opts_.clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
    }
    if (opts_.ncols <= 0) opts_.ncols = terminal_columns();
    start_ = last_draw_ = opts_.clock();
    if (*opts_.tty) draw(start_);
  }

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Closes the bar (prints its final state) if close() was not called.
  ~ProgressBar() {
    try {
      close();
    } catch (...) {  // a destructor must not throw; a failed stream write is not worth a crash
    }
  }

  /// Advances by `n` steps and records the running metrics shown after the rate. Costs a clock
  /// read; the line is redrawn only when due (see the header comment).
  void update(int64_t n = 1, std::initializer_list<Metric> metrics = {}) {
    if (closed_) return;
    n_ += n;
    if (metrics.size() != 0) store(metrics.begin(), metrics.size());
    double now = opts_.clock();
    if (*opts_.tty) {
      if (now - last_draw_ >= opts_.min_interval) draw(now);
    } else if (total_ > 0) {
      int step = opts_.plain_step_percent > 0 ? opts_.plain_step_percent : 10;
      int64_t bucket = std::min<int64_t>(n_, total_) * 100 / total_ / step;
      if (bucket > plain_bucket_ && n_ < total_) {  // the 100 % line is close()'s
        plain_bucket_ = bucket;
        draw(now);
      }
    } else if (now - last_draw_ >= opts_.plain_interval) {
      draw(now);
    }
  }

  /// Replaces the metrics shown after the rate without advancing.
  void set_postfix(std::initializer_list<Metric> metrics) { store(metrics.begin(), metrics.size()); }
  /// Same, from a runtime list.
  void set_postfix(const std::vector<std::pair<std::string, double>>& metrics) {
    postfix_.assign(metrics.begin(), metrics.end());
  }
  /// Changes the text before the percentage (e.g. "Epoch 2/8").
  void set_description(std::string desc) { desc_ = std::move(desc); }

  /// Prints `line` on its own line above the bar (the bar is redrawn below it on a terminal).
  void write(std::string_view line) {
    std::ostream& os = *opts_.out;
    if (*opts_.tty && !closed_) os << '\r' << std::string(last_width_, ' ') << '\r';
    os << line << '\n';
    if (*opts_.tty && !closed_) draw(opts_.clock());
    os.flush();
  }

  /// Prints the final state and ends the line; later updates are ignored.
  void close() {
    if (closed_) return;
    closed_ = true;
    render(opts_.clock(), true);
  }

  int64_t n() const { return n_; }
  int64_t total() const { return total_; }
  /// Seconds since construction (by the bar's clock).
  double elapsed() const { return opts_.clock() - start_; }
  /// Steps per second so far (0 before the first step).
  double rate() const { return rate_at(opts_.clock()); }

  /// The line the bar shows at time `now` (no carriage return, no newline); the tests read it.
  std::string format(double now) const {
    double elapsed = now - start_;
    double rate = rate_at(now);
    std::string head = desc_.empty() ? std::string() : desc_ + " ";
    std::string tail;
    char buf[96];
    if (total_ > 0) {
      int64_t shown = std::min(n_, total_);
      std::snprintf(buf, sizeof buf, "%3d%%", static_cast<int>(100 * shown / total_));
      head += buf;
      std::snprintf(buf, sizeof buf, " %lld/%lld [", static_cast<long long>(n_), static_cast<long long>(total_));
      tail = buf;
      double remaining = rate > 0 ? static_cast<double>(total_ - shown) / rate : NAN;
      tail += detail::format_duration(elapsed) + "<" + detail::format_duration(remaining);
    } else {
      std::snprintf(buf, sizeof buf, "%lld%s [", static_cast<long long>(n_), opts_.unit.c_str());
      head += buf;
      tail = detail::format_duration(elapsed);
    }
    tail += ", " + format_rate(rate);
    for (const auto& [name, value] : postfix_) tail += ", " + name + "=" + detail::format_metric(value);
    tail += "]";
    if (total_ <= 0) return head + tail;

    // The bar takes what the terminal leaves, up to bar_width cells.
    int width = opts_.bar_width;
    int room = opts_.ncols - 1 - static_cast<int>(detail::display_width(head) + 2 + detail::display_width(tail));
    if (*opts_.tty) width = std::min(width, room);
    std::string line = head;
    if (width >= 3) line += "|" + bar(static_cast<double>(std::min(n_, total_)) / static_cast<double>(total_), width) + "|";
    line += tail;
    if (*opts_.tty && detail::display_width(line) > static_cast<size_t>(opts_.ncols - 1)) {
      line = detail::truncate_display(line, static_cast<size_t>(opts_.ncols - 1));
    }
    return line;
  }

 private:
  // Keeps the previous names' storage when the same metrics come again (the usual case), so an
  // update allocates nothing.
  void store(const Metric* m, size_t count) {
    bool same = postfix_.size() == count;
    for (size_t i = 0; same && i < count; ++i) same = postfix_[i].first == m[i].first;
    if (!same) {
      postfix_.clear();
      for (size_t i = 0; i < count; ++i) postfix_.emplace_back(std::string(m[i].first), m[i].second);
    } else {
      for (size_t i = 0; i < count; ++i) postfix_[i].second = m[i].second;
    }
  }

  double rate_at(double now) const {
    double elapsed = now - start_;
    return elapsed > 0 && n_ > 0 ? static_cast<double>(n_) / elapsed : 0.0;
  }

  std::string format_rate(double rate) const {
    char buf[48];
    if (rate <= 0) {
      std::snprintf(buf, sizeof buf, "?%s/s", opts_.unit.c_str());
    } else if (rate < 1) {
      std::snprintf(buf, sizeof buf, "%.2fs/%s", 1.0 / rate, opts_.unit.c_str());
    } else if (rate < 100) {
      std::snprintf(buf, sizeof buf, "%.2f%s/s", rate, opts_.unit.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "%.1f%s/s", rate, opts_.unit.c_str());
    }
    return buf;
  }

  // Full blocks, then one partial block in eighths (tqdm's look), padded with spaces.
  static std::string bar(double frac, int width) {
    static constexpr const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    frac = std::clamp(frac, 0.0, 1.0);
    int eighths = static_cast<int>(frac * width * 8);
    int full = eighths / 8, part = eighths % 8;
    std::string s;
    for (int i = 0; i < full; ++i) s += "█";
    int used = full;
    if (part > 0 && used < width) {
      s += kEighths[part];
      ++used;
    }
    s.append(static_cast<size_t>(width - used), ' ');
    return s;
  }

  void draw(double now) { render(now, false); }

  void render(double now, bool final) {
    last_draw_ = now;
    std::string line = format(now);
    std::ostream& os = *opts_.out;
    if (*opts_.tty) {
      size_t w = detail::display_width(line);
      os << '\r' << line;
      if (w < last_width_) os << std::string(last_width_ - w, ' ');  // erase a longer previous line
      last_width_ = w;
      if (final) os << '\n';
    } else {
      os << line << '\n';
    }
    os.flush();
  }

  static int terminal_columns() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 100;
  }

  int64_t total_;
  int64_t n_ = 0;
  std::string desc_;
  ProgressOptions opts_;
  std::vector<std::pair<std::string, double>> postfix_;
  double start_ = 0, last_draw_ = 0;
  int64_t plain_bucket_ = 0;
  size_t last_width_ = 0;
  bool closed_ = false;
};

}  // namespace ember::utils
