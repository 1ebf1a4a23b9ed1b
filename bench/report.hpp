#pragma once
/// The benchmark suite's report: reads the JSON-lines records that ember_bench_models and
/// ember_bench_torch appended during a run, pools the samples of each row over the alternation
/// rounds, and writes OUT.json (everything, machine-readable), OUT.md (the tables a person reads)
/// and OUT.png (a bar chart of the Ember/libtorch time ratios; needs Cairo).
///
/// Ratios are always Ember's median time over libtorch's: below 1 Ember is faster.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.hpp"

#ifdef EMBER_HAVE_CAIRO
#include "ember/utils/canvas.hpp"
#endif

namespace bench {

/// One framework's side of a row, pooled over rounds.
struct Side {
  bool present = false;
  std::string status, note;
  std::vector<double> samples;
  std::map<std::string, std::vector<double>> extra;  // one value per record (round)
  Summary summary() const { return summarize(samples); }
  std::optional<double> extra_median(const std::string& k) const {
    auto it = extra.find(k);
    if (it == extra.end() || it->second.empty()) return std::nullopt;
    return summarize(it->second).median;
  }
  bool ok() const { return present && status == "ok" && !samples.empty(); }
};

struct ReportRow {
  std::string kind, group, name, shape, unit;
  double work = 0;
  Side ember, peer;
  std::optional<double> ratio() const {
    if (!ember.ok() || !peer.ok()) return std::nullopt;
    return ember.summary().median / peer.summary().median;
  }
};

/// The targets for the time ratio Ember/libtorch, where it sets one.
inline std::optional<double> target_ratio(const ReportRow& r) {
  if (r.kind == "op") return r.group == "peak" ? std::nullopt : std::optional<double>(1.2);
  if (r.kind != "model") return std::nullopt;
  if (r.group == "mnist-cnn" && r.name.rfind("train", 0) == 0 && r.name.find("B=32") != std::string::npos) return 0.5;
  if (r.group == "catdog-cnn" || r.group == "bilstm" || r.group == "wgan-gp") return 0.5;
  if (r.group == "bert") return 0.6;
  return std::nullopt;
}

inline std::string fmt(const char* f, double v) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

inline std::string time_str(double s) {
  if (s < 1e-6) return fmt("%.0f ns", s * 1e9);
  if (s < 1e-3) return fmt("%.2f us", s * 1e6);
  if (s < 1) return fmt("%.2f ms", s * 1e3);
  return fmt("%.2f s", s);
}

inline std::string side_str(const Side& s) {
  if (!s.present) return "-";
  if (s.status == "not_implemented") return "**not yet implemented**";
  if (!s.ok()) return "failed";
  Summary m = s.summary();
  if (m.n == 1) return time_str(m.median);
  return time_str(m.median) + " [" + time_str(m.min) + " - " + time_str(m.max) + "]";
}

inline std::string rate_str(const ReportRow& r, const Side& s, double peak) {
  if (!s.ok() || r.work <= 0) return "-";
  double v = r.work / s.summary().median * 1e-9;
  std::string out = fmt(v >= 100 ? "%.0f " : "%.1f ", v) + r.unit;
  if (peak > 0) out += fmt(" (%.0f%%)", 100 * v / peak);
  return out;
}

/// Relative difference of the two frameworks' output checksums (sum and sum of absolute values),
/// or nullopt when one side has none.
inline std::optional<double> check_diff(const ReportRow& r) {
  auto es = r.ember.extra_median("check_sum"), ea = r.ember.extra_median("check_abs_sum");
  auto ps = r.peer.extra_median("check_sum"), pa = r.peer.extra_median("check_abs_sum");
  if (!es || !ea || !ps || !pa) return std::nullopt;
  double scale = std::max({std::fabs(*ea), std::fabs(*pa), 1e-30});
  return std::max(std::fabs(*es - *ps), std::fabs(*ea - *pa)) / scale;
}

inline std::vector<ReportRow> load_rows(const std::string& path, nlohmann::ordered_json& raw_meta) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("report: cannot read " + path);
  std::vector<ReportRow> rows;
  std::map<std::string, size_t> index;
  std::string line;
  int lineno = 0, bad = 0;
  std::set<std::string> blas;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "report: %s:%d: skipped an unreadable line (%s)\n", path.c_str(), lineno, e.what());
      ++bad;
      continue;
    }
    std::string key = j.value("kind", "") + "|" + j.value("group", "") + "|" + j.value("name", "") + "|" +
                      j.value("shape", "");
    auto [it, fresh] = index.emplace(key, rows.size());
    if (fresh) {
      ReportRow r;
      r.kind = j.value("kind", "");
      r.group = j.value("group", "");
      r.name = j.value("name", "");
      r.shape = j.value("shape", "");
      r.unit = j.value("unit", "s");
      r.work = j.value("work", 0.0);
      rows.push_back(r);
    }
    ReportRow& r = rows[it->second];
    std::string fw = j.value("framework", "");
    Side& s = fw == "ember" ? r.ember : r.peer;
    if (fw == "libtorch") blas.insert(j.value("openblas_threads", "default"));
    s.present = true;
    std::string status = j.value("status", "failed");
    if (s.status.empty() || s.status == "ok") s.status = status;  // a failure in any round sticks
    if (j.contains("note") && s.note.find(j["note"].get<std::string>()) == std::string::npos)
      s.note += (s.note.empty() ? "" : "; ") + j["note"].get<std::string>();
    for (const auto& v : j.value("samples_s", std::vector<double>{})) s.samples.push_back(v);
    for (const auto& [k, v] : j.items())
      if (v.is_number() && k != "work" && k != "threads" && k != "round") s.extra[k].push_back(v.get<double>());
  }
  if (bad) raw_meta["unreadable_lines"] = bad;
  std::string b;
  for (const auto& k : blas) b += (b.empty() ? "" : ",") + k;
  if (!b.empty()) raw_meta["libtorch_openblas_threads_seen"] = b;
  // Models first, then ops, then overhead; first-appearance order inside each kind.
  std::stable_sort(rows.begin(), rows.end(), [](const ReportRow& x, const ReportRow& y) {
    auto rank = [](const std::string& k) { return k == "model" ? 0 : k == "op" ? 1 : 2; };
    return rank(x.kind) < rank(y.kind);
  });
  return rows;
}

/// The machine's measured peak for `unit`. GFLOP/s: the best rate any row of either framework
/// reached in this run (normally the sgemm `peak` row, but a oneDNN convolution can beat a BLAS
/// sgemm, and a "peak" below an achieved rate would be no peak). GB/s: the 64 MiB copy, i.e. DRAM
/// bandwidth; ops whose data stays in cache can exceed it (shown as > 100%).
inline double measured_peak(const std::vector<ReportRow>& rows, const std::string& unit) {
  double best = 0;
  for (const auto& r : rows) {
    if (r.unit != unit || r.work <= 0 || (unit == "GB/s" && r.group != "peak")) continue;
    for (const Side* s : {&r.ember, &r.peer})
      if (s->ok()) best = std::max(best, r.work / s->summary().median * 1e-9);
  }
  return best;
}

inline nlohmann::ordered_json side_json(const Side& s, double work) {
  nlohmann::ordered_json j;
  j["status"] = s.present ? s.status : "absent";
  if (!s.note.empty()) j["note"] = s.note;
  if (s.ok()) {
    Summary m = s.summary();
    j["median_s"] = m.median;
    j["min_s"] = m.min;
    j["max_s"] = m.max;
    j["samples"] = m.n;
    if (work > 0) j["rate"] = work / m.median * 1e-9;
  }
  for (const auto& [k, v] : s.extra)
    if (k != "check_sum" && k != "check_abs_sum") j[k] = summarize(v).median;
  return j;
}

#ifdef EMBER_HAVE_CAIRO
/// Horizontal bars of log2(Ember/libtorch) around the parity line: green left (Ember faster), red
/// right (slower); the target for the row as a tick.
inline void write_chart(const std::string& path, const std::vector<ReportRow>& rows, const std::string& title) {
  std::vector<const ReportRow*> bars;
  for (const auto& r : rows)
    if (r.ratio() && r.group != "peak") bars.push_back(&r);
  if (bars.empty()) return;
  const int row_h = 22, top = 60, bottom = 50, left = 430, right = 90, width = 1100;
  const int height = top + bottom + row_h * static_cast<int>(bars.size());
  ember::utils::Canvas canvas(width, height);
  cairo_t* cr = canvas.cr();
  double lo = -3, hi = 3;  // log2 range: 1/8x .. 8x, widened to fit
  for (const ReportRow* r : bars) {
    double l = std::log2(*r->ratio());
    lo = std::min(lo, std::floor(l));
    hi = std::max(hi, std::ceil(l));
  }
  lo = std::max(lo, -7.0);
  hi = std::min(hi, 7.0);
  auto X = [&](double l) { return left + (std::clamp(l, lo, hi) - lo) / (hi - lo) * (width - left - right); };
  ember::utils::Font font{12, false}, bold{14, true};
  ember::utils::draw_text(cr, 20, 28, title, bold, ember::utils::kBlack);
  ember::utils::draw_text(cr, 20, 46, "Ember time / libtorch time (log scale; left of 1 = Ember faster; | = target)",
                          font, ember::utils::Color::hex(0x555555));
  for (double t = lo; t <= hi; t += 1) {  // grid
    double x = X(t);
    ember::utils::set_color(cr, ember::utils::Color::hex(t == 0 ? 0x000000 : 0xdddddd));
    cairo_set_line_width(cr, t == 0 ? 1.5 : 1);
    cairo_move_to(cr, x, top - 6);
    cairo_line_to(cr, x, height - bottom + 4);
    cairo_stroke(cr);
    std::string label = t >= 0 ? fmt("%gx", std::pow(2.0, t)) : "1/" + fmt("%gx", std::pow(2.0, -t));
    ember::utils::draw_text(cr, x, height - bottom + 20, label, font, ember::utils::kBlack, ember::utils::HAlign::Center);
  }
  for (size_t i = 0; i < bars.size(); ++i) {
    const ReportRow& r = *bars[i];
    double y = top + static_cast<double>(i) * row_h;
    double ratio = *r.ratio(), l = std::log2(ratio);
    auto target = target_ratio(r);
    bool good = target ? ratio <= *target : ratio <= 1;
    ember::utils::set_color(cr, ember::utils::Color::hex(good ? 0x2ca02c : ratio <= 1 ? 0xbcbd22 : 0xd62728));
    double x0 = X(0), x1 = X(l);
    cairo_rectangle(cr, std::min(x0, x1), y + 3, std::max(1.0, std::fabs(x1 - x0)), row_h - 6);
    cairo_fill(cr);
    if (target) {
      ember::utils::set_color(cr, ember::utils::kBlack);
      double xt = X(std::log2(*target));
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, xt, y + 1);
      cairo_line_to(cr, xt, y + row_h - 1);
      cairo_stroke(cr);
    }
    std::string label = r.group + ": " + r.name;
    if (label.size() > 62) label = label.substr(0, 59) + "...";
    ember::utils::draw_text(cr, left - 8, y + row_h / 2.0, label, font, ember::utils::kBlack, ember::utils::HAlign::Right,
                            ember::utils::VAlign::Middle);
    double xt = target ? X(std::log2(*target)) : x0;  // the value goes right of the bar and the target tick
    ember::utils::draw_text(cr, std::max({x0, x1, xt}) + 5, y + row_h / 2.0, fmt("%.2f", ratio), font, ember::utils::kBlack,
                            ember::utils::HAlign::Left, ember::utils::VAlign::Middle);
  }
  canvas.save_png(path);
}
#endif

/// The driver's choice of OPENBLAS_NUM_THREADS for libtorch: reads the calibration records (the
/// same quick cases run with "default" and "1") and prints "<setting> <why>" on stdout. "1" wins
/// only when it is faster by more than 3% (geometric mean over the rows both settings ran).
inline int pick_blas(const std::string& calibration_path) {
  std::ifstream in(calibration_path);
  std::map<std::string, std::map<std::string, std::vector<double>>> t;  // row -> setting -> times
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("status", "") != "ok" || j.value("kind", "") != "model" || j.value("name", "").rfind("eval", 0) == 0)
        continue;
      for (double v : j.value("samples_s", std::vector<double>{}))
        t[j.value("name", "")][j.value("openblas_threads", "default")].push_back(v);
    } catch (const std::exception&) {
    }
  }
  double log_sum = 0;
  int n = 0;
  std::string detail;
  for (const auto& [name, by] : t) {
    auto d = by.find("default"), one = by.find("1");
    if (d == by.end() || one == by.end()) continue;
    double td = summarize(d->second).median, t1 = summarize(one->second).median;
    log_sum += std::log(t1 / td);
    ++n;
    detail += (detail.empty() ? "" : "; ") + name + ": " + time_str(t1) + " with 1 vs " + time_str(td) + " default";
  }
  if (n == 0) {
    std::printf("default calibration produced no comparable runs; kept the default\n");
    return 0;
  }
  double ratio = std::exp(log_sum / n);
  bool one = ratio < 0.97;
  std::printf("%s %s (calibration, quick runs: %s)\n", one ? "1" : "default",
              one ? fmt("OPENBLAS_NUM_THREADS=1 was %.0f%% faster", 100 * (1 - ratio)).c_str()
                  : fmt("OPENBLAS_NUM_THREADS=1 was not faster (time ratio %.2f)", ratio).c_str(),
              detail.c_str());
  return 0;
}

/// Reads `runs_path`, writes `<out_prefix>.json`, `.md` and (with Cairo) `.png`. `meta` holds
/// key=value pairs the driver knows (machine, date, load, the libtorch BLAS setting it chose).
inline int write_report(const std::string& runs_path, const std::string& out_prefix, const std::vector<std::string>& meta) {
  nlohmann::ordered_json j;
  j["bench"] = "ember-vs-libtorch";
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  for (const auto& kv : meta) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) m[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<ReportRow> rows = load_rows(runs_path, m);
  double gflops_peak = measured_peak(rows, "GFLOP/s"), gbs_peak = measured_peak(rows, "GB/s");
  m["gemm_peak_gflops"] = gflops_peak;
  m["copy_peak_gbs"] = gbs_peak;
  j["meta"] = m;
  auto peak_of = [&](const ReportRow& r) { return r.unit == "GFLOP/s" ? gflops_peak : r.unit == "GB/s" ? gbs_peak : 0.0; };

  nlohmann::ordered_json out_rows = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    nlohmann::ordered_json o;
    o["kind"] = r.kind;
    o["group"] = r.group;
    o["name"] = r.name;
    o["shape"] = r.shape;
    o["unit"] = r.unit;
    if (r.work > 0) o["work_per_call"] = r.work;
    o["ember"] = side_json(r.ember, r.work);
    o["libtorch"] = side_json(r.peer, r.work);
    if (auto q = r.ratio()) o["ratio_ember_over_libtorch"] = *q;
    if (auto t = target_ratio(r)) o["target_ratio"] = *t;
    if (double p = peak_of(r); p > 0 && r.work > 0) {
      if (r.ember.ok()) o["ember_fraction_of_peak"] = r.work / r.ember.summary().median * 1e-9 / p;
      if (r.peer.ok()) o["libtorch_fraction_of_peak"] = r.work / r.peer.summary().median * 1e-9 / p;
    }
    if (auto d = check_diff(r)) o["check_rel_diff"] = *d;
    out_rows.push_back(o);
  }
  j["rows"] = out_rows;

  std::filesystem::path prefix(out_prefix);
  if (prefix.has_parent_path()) std::filesystem::create_directories(prefix.parent_path());
  auto write_atomic = [](const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    {
      std::ofstream os(tmp);
      os << text;
      if (!os) throw std::runtime_error("report: cannot write " + tmp);
    }
    std::filesystem::rename(tmp, path);
  };
  write_atomic(out_prefix + ".json", j.dump(2) + "\n");

  // ---- Markdown ----
  std::string md;
  auto meta_str = [&](const char* k) { return m.contains(k) ? m[k].get<std::string>() : std::string("?"); };
  md += "# Ember vs libtorch: " + meta_str("machine") + ", " + meta_str("date") + "\n\n";
  md += "CPU: " + meta_str("cpu") + "; threads " + meta_str("threads") + " (both frameworks); libtorch " +
        meta_str("torch_version") + " with OPENBLAS_NUM_THREADS=" + meta_str("libtorch_openblas") + " (" +
        meta_str("libtorch_openblas_why") + "); Ember " + meta_str("git") + "; mode " + meta_str("mode") +
        "; load average at start " + meta_str("load") + ".\n\n";
  if (gflops_peak <= 0) {
    md += "Peaks not measured (the `ops` case was not run). ";
  } else {
    md += fmt("Measured peaks: compute %.1f GFLOP/s (the best rate any row of either framework reached in this run, "
              "normally the sgemm `peak` row), ", gflops_peak) +
          fmt("memory %.1f GB/s (the 64 MiB copy; ops on cache-resident data exceed it). ", gbs_peak);
  }
  md += "Times are median [min - max] over all repetitions; ratio = Ember / libtorch (below 1: Ember faster); "
        "target from issue 4 and the tutorial issues, met = yes/no.\n\n";
  auto ratio_cells = [&](const ReportRow& r) {
    std::string q = r.ratio() ? fmt("%.2f", *r.ratio()) : "-";
    std::string t = "-";
    if (auto tg = target_ratio(r)) t = fmt("<= %.1f", *tg) + (r.ratio() ? (*r.ratio() <= *tg ? " yes" : " **no**") : "");
    return "| " + q + " | " + t + " ";
  };
  md += "## Models (one process per model and framework, alternating)\n\n";
  md += "| model | benchmark | setup | Ember | libtorch | Ember/libtorch | target | check |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (r.kind != "model") continue;
    std::string check;
    if (auto e = r.ember.extra_median("test_acc"), p = r.peer.extra_median("test_acc"); e || p)
      check = "test acc " + (e ? fmt("%.4f", *e) : "-") + " / " + (p ? fmt("%.4f", *p) : "-");
    else if (auto e2 = r.ember.extra_median("last_loss"), p2 = r.peer.extra_median("last_loss"); e2 || p2)
      check = "loss " + (e2 ? fmt("%.3f", *e2) : "-") + " / " + (p2 ? fmt("%.3f", *p2) : "-");
    md += "| " + r.group + " | " + r.name + " | " + r.shape + " | " + side_str(r.ember) + " | " + side_str(r.peer) + " " +
          ratio_cells(r) + "| " + check + " |\n";
  }
  md += "\n## Ops at the tutorials' shapes (rate and % of the measured peak)\n\n";
  md += "| group | op | shape | Ember | libtorch | Ember/libtorch | target | Ember rate | libtorch rate | check |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (r.kind != "op") continue;
    std::string check = "-";
    if (auto d = check_diff(r)) check = *d < 1e-3 ? fmt("ok (%.0e)", *d) : fmt("**MISMATCH %.2g**", *d);
    md += "| " + r.group + " | " + r.name + " | " + r.shape + " | " + side_str(r.ember) + " | " + side_str(r.peer) + " " +
          ratio_cells(r) + "| " + rate_str(r, r.ember, peak_of(r)) + " | " + rate_str(r, r.peer, peak_of(r)) + " | " +
          check + " |\n";
  }
  md += "\n## Overhead: time per tiny op (dispatch + autograd bookkeeping, result freed every call)\n\n";
  md += "| op | shape | Ember | libtorch | Ember/libtorch |\n|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (r.kind != "overhead") continue;
    md += "| " + r.name + " | " + r.shape + " | " + side_str(r.ember) + " | " + side_str(r.peer) + " | " +
          (r.ratio() ? fmt("%.2f", *r.ratio()) : "-") + " |\n";
  }
  md += "\n## Memory (peak RSS of the model's own process; allocations per warm training step, all threads)\n\n";
  md += "| model | benchmark | framework | peak RSS | RSS above data | allocs/step <= 4 KiB | allocs/step > 4 KiB (target 0) |"
        " MB/step in > 4 KiB allocs | Ember storage allocs from the system/step |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (r.kind != "model" || r.name.rfind("eval", 0) == 0) continue;
    for (const auto* s : {&r.ember, &r.peer}) {
      if (!s->ok()) continue;
      auto g = [&](const char* k, const char* f, double scale = 1) {
        auto v = s->extra_median(k);
        return v ? fmt(f, *v * scale) : std::string("-");
      };
      auto peak = s->extra_median("peak_rss_kb"), base = s->extra_median("base_rss_kb");
      md += "| " + r.group + " | " + r.name + " | " + (s == &r.ember ? "Ember" : "libtorch") + " | " +
            g("peak_rss_kb", "%.0f MB", 1.0 / 1024) + " | " +
            (peak && base ? fmt("%.0f MB", (*peak - *base) / 1024) : std::string("-")) + " | " +
            g("allocs_small_per_step", "%.1f") + " | " + g("allocs_large_per_step", "%.1f") + " | " +
            g("large_bytes_per_step", "%.2f", 1e-6) + " | " +
            (s == &r.ember ? g("storage_system_allocs_per_step", "%.1f") : std::string("n/a")) + " |\n";
    }
  }
  md += "\nNotes: \"not yet implemented\" rows are kept on purpose (the layer is missing in Ember today; "
        "libtorch's figure is the target to beat). Op outputs are checked across frameworks on identical inputs "
        "(relative difference of output checksums). RSS includes the framework's libraries and the resident "
        "data (MNIST: 220 MB of normalised floats); \"above data\" subtracts the RSS measured once the data was "
        "loaded.\n";
  for (const auto& r : rows) {
    for (const auto* s : {&r.ember, &r.peer})
      if (s->present && s->status == "failed") md += "\nFAILED: " + r.group + " / " + r.name + ": " + s->note + "\n";
  }
  write_atomic(out_prefix + ".md", md);
#ifdef EMBER_HAVE_CAIRO
  write_chart(out_prefix + ".png", rows, "Ember vs libtorch, " + meta_str("machine") + " " + meta_str("date") + " (" +
                                             meta_str("threads") + " threads, " + meta_str("mode") + ")");
  std::fprintf(stderr, "report: wrote %s.{json,md,png}\n", out_prefix.c_str());
#else
  std::fprintf(stderr, "report: wrote %s.{json,md} (no PNG: built without Cairo)\n", out_prefix.c_str());
#endif
  return 0;
}

}  // namespace bench
