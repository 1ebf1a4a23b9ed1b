#pragma once
/// Printing tensors the way PyTorch does, so output can be compared line by line with a notebook:
///
/// ```
///   std::cout << ember::tensor<double>({1.5, 2, 3, 4}, {2, 2});
///   // tensor([[1.5000, 2.0000],
///   //         [3.0000, 4.0000]], dtype=float64)
/// ```
/// The number format follows torch/_tensor_str.py: floats whose values are all integers print as
/// `1.`, otherwise with `precision` decimals, switching to scientific notation when the values
/// span more than 1000x, exceed 1e8 or go below 1e-4; each column is right-aligned to the widest
/// value. Tensors with more than `threshold` elements are summarised with `...`. Suffixes name
/// the device (when not the CPU), the dtype (when not float32, int64 or bool), the grad_fn or
/// requires_grad=True.
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ember/autograd/node.hpp"
#include "ember/ops/join.hpp"

namespace ember {

/// Knobs of the tensor printer (torch.set_printoptions).
struct PrintOptions {
  int precision = 4;        // digits after the decimal point
  int64_t threshold = 1000; // more elements than this are summarised
  int64_t edgeitems = 3;    // items shown at each end of a summarised dimension
  int64_t linewidth = 80;   // characters per line before a 1-d row wraps
  int sci_mode = -1;        // -1: automatic, 0: never, 1: always scientific
};

/// The process-wide print options; change fields to affect every later print.
inline PrintOptions& print_options() {
  static PrintOptions opts;
  return opts;
}

namespace detail {

/// Decides one number format for all printed values (PyTorch's _Formatter).
class TensorFormatter {
 public:
  TensorFormatter(DType dtype, const std::vector<double>& fvals, const std::vector<int64_t>& ivals)
      : floating_(is_floating(dtype)), bool_(dtype == kBool) {
    const auto& po = print_options();
    precision_ = po.precision;
    if (bool_) {
      for (int64_t v : ivals) width_ = std::max<size_t>(width_, v ? 4 : 5);
    } else if (!floating_) {
      for (int64_t v : ivals) width_ = std::max(width_, std::to_string(v).size());
    } else {
      std::vector<double> nz;
      for (double v : fvals)
        if (std::isfinite(v) && v != 0) nz.push_back(v);
      if (!nz.empty()) {
        double mn = std::abs(nz[0]), mx = mn;
        for (double v : nz) {
          mn = std::min(mn, std::abs(v));
          mx = std::max(mx, std::abs(v));
          if (v != std::ceil(v)) int_mode_ = false;
        }
        if (int_mode_) {
          sci_ = mx / mn > 1000.0 || mx > 1.0e8;
          for (double v : nz) width_ = std::max(width_, sci_ ? fmt("%.*e", v).size() : fmt("%.0f", v).size() + 1);
        } else {
          sci_ = mx / mn > 1000.0 || mx > 1.0e8 || mn < 1.0e-4;
          for (double v : nz) width_ = std::max(width_, fmt(sci_ ? "%.*e" : "%.*f", v).size());
        }
      }
      if (po.sci_mode >= 0) sci_ = po.sci_mode == 1;
    }
  }

  size_t width() const { return width_; }

  std::string format_float(double v) const {
    std::string s;
    if (std::isnan(v)) s = "nan";
    else if (std::isinf(v)) s = v > 0 ? "inf" : "-inf";
    else if (sci_) s = fmt("%.*e", v);
    else if (int_mode_) s = fmt("%.0f", v) + ".";
    else s = fmt("%.*f", v);
    return pad(s);
  }
  std::string format_int(int64_t v) const {
    return pad(bool_ ? std::string(v ? "True" : "False") : std::to_string(v));
  }

 private:
  /// printf with the precision argument when the format asks for one ("%.*f", "%.*e").
  std::string fmt(const char* f, double v) const {
    char buf[64];
    bool star = std::string_view(f).find('*') != std::string_view::npos;
    if (star) std::snprintf(buf, sizeof(buf), f, precision_, v);
    else std::snprintf(buf, sizeof(buf), f, v);
    return buf;
  }
  std::string pad(const std::string& s) const {
    return s.size() >= width_ ? s : std::string(width_ - s.size(), ' ') + s;
  }

  bool floating_, bool_;
  bool int_mode_ = true, sci_ = false;
  int precision_ = 4;
  size_t width_ = 1;
};

/// The printed values on the host: the tensor itself, or only the edge items of each dimension
/// when summarising (so printing a huge tensor copies a few dozen elements, not all of them).
struct PrintData {
  Shape full;                 // the original sizes
  Shape shown;                // sizes of the fetched data
  std::vector<double> f;      // floating dtypes
  std::vector<int64_t> i;     // integral and bool dtypes
  bool summarize = false;
};

inline PrintData fetch_print_data(const Tensor& t) {
  const auto& po = print_options();
  PrintData p;
  p.full = t.sizes();
  p.summarize = t.numel() > po.threshold;
  NoGradGuard ng;
  Tensor s = t.detach();
  if (p.summarize) {
    for (int64_t d = 0; d < s.dim(); ++d) {
      int64_t n = s.size(d);
      if (n > 2 * po.edgeitems) s = cat({s.narrow(d, 0, po.edgeitems), s.narrow(d, n - po.edgeitems, po.edgeitems)}, d);
    }
  }
  p.shown = s.sizes();
  if (is_floating(t.dtype())) p.f = s.to_vector<double>();
  else p.i = s.to_vector<int64_t>();
  return p;
}

class TensorPrinter {
 public:
  TensorPrinter(const PrintData& p, const TensorFormatter& f) : p_(p), f_(f) {}

  std::string value(int64_t k) const { return p_.i.empty() ? f_.format_float(p_.f[k]) : f_.format_int(p_.i[k]); }

  /// Dimension d starting at flat offset `off` of the shown data (PyTorch's _tensor_str_with_formatter).
  std::string render(int64_t d, int64_t off, int64_t indent) const {
    const auto& po = print_options();
    int64_t ndim = p_.full.size();
    int64_t n = p_.shown[d];
    bool cut = p_.summarize && p_.full[d] > 2 * po.edgeitems;
    int64_t stride = 1;
    for (int64_t k = d + 1; k < ndim; ++k) stride *= p_.shown[k];
    if (d == ndim - 1) {
      std::vector<std::string> items;
      for (int64_t j = 0; j < n; ++j) {
        if (cut && j == po.edgeitems) items.push_back(" ...");
        items.push_back(value(off + j));
      }
      int64_t per_line = std::max<int64_t>(1, (po.linewidth - indent) / static_cast<int64_t>(f_.width() + 2));
      std::string s = "[";
      for (size_t j = 0; j < items.size(); ++j) {
        if (j > 0) s += (static_cast<int64_t>(j) % per_line == 0) ? ",\n" + std::string(indent + 1, ' ') : ", ";
        s += items[j];
      }
      return s + "]";
    }
    std::string sep = "," + std::string(ndim - d - 1, '\n') + std::string(indent + 1, ' ');
    std::string s = "[";
    for (int64_t j = 0; j < n; ++j) {
      if (j > 0) s += sep;
      if (cut && j == po.edgeitems) s += "..." + sep;
      s += render(d + 1, off + j * stride, indent + 1);
    }
    return s + "]";
  }

 private:
  const PrintData& p_;
  const TensorFormatter& f_;
};

/// Appends suffixes, wrapping onto a new line past the line width (PyTorch's _add_suffixes).
inline std::string add_suffixes(std::string s, const std::vector<std::string>& suffixes, int64_t indent) {
  const auto& po = print_options();
  size_t nl = s.rfind('\n');
  // Same arithmetic as PyTorch (rfind returns -1 without a newline there).
  int64_t last = static_cast<int64_t>(s.size()) - (nl == std::string::npos ? -1 : static_cast<int64_t>(nl)) + 1;
  for (const auto& suf : suffixes) {
    int64_t len = suf.size();
    if (last + len + 2 > po.linewidth) {
      s += ",\n" + std::string(indent, ' ') + suf;
      last = indent + len;
    } else {
      s += ", " + suf;
      last += len + 2;
    }
  }
  return s + ")";
}

}  // namespace detail

inline std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const int64_t indent = 7;  // strlen("tensor(")
  std::vector<std::string> suffixes;
  if (device().is_cuda()) suffixes.push_back("device='" + device().str() + "'");
  std::string body;
  DType dt = dtype();
  if (numel() == 0) {
    if (dim() != 1) {
      std::ostringstream os;
      os << "size=(";
      for (int64_t d = 0; d < dim(); ++d) os << (d ? ", " : "") << size(d);
      os << ")";
      suffixes.push_back(os.str());
    }
    if (dt != kFloat32) suffixes.push_back(std::string("dtype=") + dtype_name(dt));
    body = "[]";
  } else {
    if (dt != kFloat32 && dt != kInt64 && dt != kBool) suffixes.push_back(std::string("dtype=") + dtype_name(dt));
    detail::PrintData p = detail::fetch_print_data(*this);
    detail::TensorFormatter f(dt, p.f, p.i);
    if (dim() == 0) body = is_floating(dt) ? f.format_float(p.f[0]) : f.format_int(p.i[0]);
    else body = detail::TensorPrinter(p, f).render(0, 0, indent);
  }
  if (grad_fn()) suffixes.push_back("grad_fn=<" + grad_fn()->name() + ">");
  else if (requires_grad()) suffixes.push_back("requires_grad=True");
  return detail::add_suffixes("tensor(" + body, suffixes, indent);
}

/// Prints like PyTorch's repr: `tensor([1.5000, 2.0000])`.
inline std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
