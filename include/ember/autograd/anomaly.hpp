#pragma once
/// Anomaly detection (torch.autograd.detect_anomaly): while a guard is alive on this thread, every
/// op recorded in the graph has its forward result checked for NaN/Inf, and every backward
/// formula its gradients; the first non-finite value throws ember::Error naming the op, whether it
/// happened in forward or backward, and the node's creation site (the op and its input shapes,
/// dtypes and devices).
///
/// ```
///   {
///     auto guard = ember::autograd::detect_anomaly();
///     Tensor loss = model->forward(x).log().sum();   // throws at the first NaN/Inf, naming "log"
///     loss.backward();                                // or in backward: "LogBackward ... backward"
///   }
/// ```
/// Off (the default) it costs one thread-local bool test per recorded op and per backward node.
/// On it copies each checked tensor to the host and scans it: a debugging tool, as in PyTorch.
#include <cmath>
#include <sstream>
#include <string>

#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/tensor.hpp"

namespace ember::autograd {

namespace detail {
inline bool& anomaly_flag() {
  thread_local bool enabled = false;
  return enabled;
}
}  // namespace detail

/// Whether anomaly detection is on for this thread.
inline bool is_anomaly_enabled() { return detail::anomaly_flag(); }
/// Turns anomaly detection on or off for this thread (prefer the detect_anomaly() guard).
inline void set_detect_anomaly(bool enabled) { detail::anomaly_flag() = enabled; }

/// RAII guard: anomaly detection on (or `enabled`) for its scope, the previous mode restored after.
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true) : prev_(is_anomaly_enabled()) { set_detect_anomaly(enabled); }
  ~DetectAnomalyGuard() { set_detect_anomaly(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

/// `auto guard = detect_anomaly();` (torch.autograd.detect_anomaly). The result must be kept:
/// a discarded guard would switch detection off again at once.
[[nodiscard]] inline DetectAnomalyGuard detect_anomaly(bool enabled = true) { return DetectAnomalyGuard(enabled); }

namespace detail {

/// Counts of NaN and ±Inf elements (only floating dtypes can hold them).
struct NonFinite {
  int64_t nan = 0, inf = 0;
  int64_t first = -1;  // flat index (row-major) of the first one
  bool any() const { return nan + inf > 0; }
};

inline NonFinite count_non_finite(const Tensor& t) {
  NonFinite r;
  if (!t.defined() || !t.is_floating_point() || t.numel() == 0) return r;
  NoGradGuard no_grad;
  // The scan runs in float64 on the host: half types widen exactly, and a debugging check need
  // not be fast.
  Tensor h = t.to(kCPU, kFloat64).contiguous();
  const double* p = h.data_ptr<double>();
  for (int64_t i = 0, n = h.numel(); i < n; ++i) {
    if (std::isnan(p[i])) ++r.nan;
    else if (std::isinf(p[i])) ++r.inf;
    else continue;
    if (r.first < 0) r.first = i;
  }
  return r;
}

inline std::string describe_non_finite(const Tensor& t, const NonFinite& r) {
  std::ostringstream os;
  os << (r.nan ? "NaN" : "Inf") << " values (" << r.nan << " NaN, " << r.inf << " Inf, first at flat index "
     << r.first << ") in a tensor of shape " << t.sizes() << " (" << t.dtype() << ", " << t.device() << ")";
  return os.str();
}

/// The creation site saved on a node while anomaly mode is on: the op and its inputs.
inline std::string creation_site(const std::string& op, const tensor_list& inputs) {
  std::ostringstream os;
  os << op << "(";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) os << ", ";
    const Tensor& in = inputs[i];
    if (!in.defined()) {
      os << "undefined";
      continue;
    }
    os << in.sizes() << " " << in.dtype();
    if (!in.device().is_cpu()) os << " on " << in.device();
  }
  os << ")";
  return os.str();
}

/// Forward check of one recorded op's result.
inline void check_forward(const std::string& node_name, const Tensor& out, const tensor_list& inputs) {
  NonFinite r = count_non_finite(out);
  if (!r.any()) return;
  std::string op = node_name;
  if (op.size() > 8 && op.compare(op.size() - 8, 8, "Backward") == 0) op.resize(op.size() - 8);
  EMBER_FAIL("detect_anomaly: the forward of '", op, "' (recorded as ", node_name, ", created as ",
             creation_site(op, inputs), ") produced ", describe_non_finite(out, r));
}

/// Backward check of the gradients a node returned for its inputs.
inline void check_backward(const std::string& node_name, const std::string& site, const tensor_list& grads) {
  for (size_t j = 0; j < grads.size(); ++j) {
    NonFinite r = count_non_finite(grads[j]);
    if (!r.any()) continue;
    EMBER_FAIL("detect_anomaly: function '", node_name, "' returned ", describe_non_finite(grads[j], r),
               " as the gradient of its input ", j, " during backward; the node was created by ",
               site.empty() ? std::string("an op recorded before anomaly detection was enabled") : site);
  }
}

}  // namespace detail

}  // namespace ember::autograd
