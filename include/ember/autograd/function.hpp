#pragma once
/// Recording an op in the graph: `needs_grad(inputs...)` tells whether to record, and `record`
/// attaches a node whose backward is a lambda over differentiable Ember ops:
///
/// ```
///   Tensor out = mul_kernel(a, b);
///   if (autograd::needs_grad(a, b))
///     autograd::record("MulBackward", out, {a, b}, {a, b},
///         [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
///           return {c.needs(0) ? g * c.saved(1) : Tensor(), c.needs(1) ? g * c.saved(0) : Tensor()};
///         });
/// ```
/// The engine reduces a broadcast gradient to each input's shape and casts it to the input's
/// dtype, so formulas may return gradients in the output's (broadcast) shape.
#include <memory>
#include <utility>
#include <vector>

#include "ember/autograd/anomaly.hpp"
#include "ember/autograd/node.hpp"

namespace ember::autograd {

/// True when grad mode is on and any of the tensors requires grad.
template <typename... Ts>
bool needs_grad(const Ts&... ts) {
  return is_grad_enabled() && (... || (ts.defined() && ts.requires_grad()));
}
inline bool needs_grad_list(const tensor_list& ts) {
  if (!is_grad_enabled()) return false;
  for (const auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

class FunctionNode;

/// What a backward formula can read: which inputs need a gradient, the saved tensors (checked
/// against in-place modification), and the op's result.
class BackwardCtx {
 public:
  explicit BackwardCtx(FunctionNode& n) : node_(n) {}
  bool needs(size_t input) const;
  const Tensor& saved(size_t i) const;
  /// The op's output. Under create_graph it is connected to this node, so formulas that use the
  /// result (exp, sigmoid, tanh, softmax) differentiate again correctly.
  Tensor result() const;

 private:
  FunctionNode& node_;
};

using BackwardFn = std::function<tensor_list(const Tensor& grad, const BackwardCtx& ctx)>;

class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn, tensor_list saved)
      : Node(std::move(name)), fn_(std::move(fn)), saved_(std::move(saved)) {
    versions_.reserve(saved_.size());
    for (const auto& s : saved_) versions_.push_back(s.defined() ? s.version() : 0);
  }
  ~FunctionNode() override { release_chain(); }

  tensor_list apply(const Tensor& grad) override {
    EMBER_CHECK(!released_, name_, ": trying to backward through the graph a second time (or to use saved "
                "tensors after they were freed). Pass retain_graph=true to the first backward if you need to.");
    BackwardCtx ctx(*this);
    return fn_(grad, ctx);
  }
  void release_saved() override {
    released_ = true;
    fn_ = nullptr;
    saved_.clear();
    result_ = Tensor();
  }
  void set_result(const Tensor& out) { result_ = out.detach(); }
  /// The op and input shapes, kept only for nodes recorded under detect_anomaly() ("" otherwise).
  const std::string& creation_site() const { return creation_site_; }
  void set_creation_site(std::string site) { creation_site_ = std::move(site); }

 private:
  friend class BackwardCtx;
  void release_chain() noexcept;

  BackwardFn fn_;
  tensor_list saved_;
  std::vector<uint32_t> versions_;
  Tensor result_;
  std::string creation_site_;
  bool released_ = false;
};

inline bool BackwardCtx::needs(size_t input) const {
  return input < node_.next_.size() && node_.next_[input].fn != nullptr;
}
inline const Tensor& BackwardCtx::saved(size_t i) const {
  EMBER_CHECK(i < node_.saved_.size(), node_.name_, ": saved tensor ", i, " does not exist");
  const Tensor& t = node_.saved_[i];
  EMBER_CHECK(!t.defined() || t.version() == node_.versions_[i],
              "one of the variables needed for gradient computation has been modified by an inplace "
              "operation: ", node_.name_, " saved a tensor of shape ", t.sizes(), " at version ",
              node_.versions_[i], ", it is now at version ", t.version());
  return t;
}
inline Tensor BackwardCtx::result() const {
  const Tensor& r = node_.result_;
  EMBER_CHECK(r.defined(), node_.name_, ": the op did not save its result");
  if (!is_grad_enabled()) return r;
  // Re-attach the result to this node so the backward formula is itself differentiable.
  Tensor alias = r.detach();
  alias.impl()->meta().grad_fn = node_.shared_from_this();
  return alias;
}

inline void FunctionNode::release_chain() noexcept {
  // Saved tensors may be the only owners of earlier parts of the graph: release them into the
  // same deferred loop as the edges.
  auto& d = detail::deferred_release();
  for (auto& s : saved_) {
    if (s.defined() && s.impl()->autograd && s.impl()->autograd->grad_fn) {
      d.pending.push_back(s.impl()->autograd->grad_fn);
    }
  }
  saved_.clear();
  fn_ = nullptr;
  release_edges();
}

/// Attaches a FunctionNode to `out` (which must be a fresh result of the op) with one edge per
/// input. Call only when needs_grad(inputs...) is true.
inline void record(const char* name, Tensor& out, const tensor_list& inputs, tensor_list saved, BackwardFn fn,
                   bool save_result = false) {
  std::string site;
  if (detail::anomaly_flag()) [[unlikely]] {  // detect_anomaly(): one thread-local test when off
    detail::check_forward(name, out, inputs);
    std::string op = name;
    if (op.size() > 8 && op.compare(op.size() - 8, 8, "Backward") == 0) op.resize(op.size() - 8);
    site = detail::creation_site(op, inputs);
  }
  auto node = std::make_shared<FunctionNode>(name, std::move(fn), std::move(saved));
  if (!site.empty()) node->set_creation_site(std::move(site));
  auto& edges = node->next_edges();
  edges.reserve(inputs.size());
  for (const auto& in : inputs) {
    Edge e;
    if (in.defined()) {
      e.fn = gradient_edge(in);
      e.shape = in.sizes();
      e.dtype = in.dtype();
      e.device = in.device();
    }
    edges.push_back(std::move(e));
  }
  if (save_result) node->set_result(out);
  out.impl()->meta().grad_fn = std::move(node);
}

}  // namespace ember::autograd
