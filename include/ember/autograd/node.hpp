#pragma once
/// autograd::Node: one recorded op in the define-by-run graph. Every node has exactly one output
/// (multi-output ops such as split are recorded as several single-output views), so a node receives
/// one gradient and returns one per input edge.
///
/// Backward formulas are lambdas over Ember's own differentiable ops (see `record` in
/// autograd/function.hpp), so running them with grad mode on records the backward pass itself:
/// that is what makes gradients of gradients work.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ember/core/tensor.hpp"

namespace ember::autograd {

struct Node;

/// Where the gradient for one input goes, with the input's metadata so the engine can reduce a
/// broadcast gradient and cast it back to the input's dtype.
struct Edge {
  std::shared_ptr<Node> fn;  // null when that input needs no gradient
  Shape shape;
  DType dtype = kFloat32;
  Device device = kCPU;
};

namespace detail {
inline uint64_t next_sequence_nr() {
  thread_local uint64_t n = 0;
  return n++;
}
/// Destroying a node may destroy a long chain (a 100k-step graph): edges are released from a loop
/// instead of recursively, so the stack depth stays constant.
struct DeferredRelease {
  std::vector<std::shared_ptr<Node>> pending;
  bool draining = false;
};
inline DeferredRelease& deferred_release() {
  thread_local DeferredRelease d;
  return d;
}
}  // namespace detail

struct Node : std::enable_shared_from_this<Node> {
  explicit Node(std::string name) : name_(std::move(name)), sequence_nr_(detail::next_sequence_nr()) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  virtual ~Node() { release_edges(); }

  /// Gradients for each input edge, given the gradient of the output.
  virtual tensor_list apply(const Tensor& grad) = 0;
  /// Frees what backward saved (called after use unless retain_graph).
  virtual void release_saved() {}
  virtual bool is_accumulate_grad() const { return false; }

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  std::vector<Edge>& next_edges() { return next_; }
  const std::vector<Edge>& next_edges() const { return next_; }
  /// Hooks run on the incoming gradient before apply (non-leaf hooks and retain_grad).
  std::vector<std::function<Tensor(const Tensor&)>>& pre_hooks() { return pre_hooks_; }

 protected:
  void release_edges() noexcept {
    auto& d = detail::deferred_release();
    for (auto& e : next_) {
      if (e.fn) d.pending.push_back(std::move(e.fn));
    }
    next_.clear();
    if (d.draining) return;
    d.draining = true;
    while (!d.pending.empty()) {
      auto n = std::move(d.pending.back());
      d.pending.pop_back();
      n.reset();  // may run ~Node, which only appends to `pending`
    }
    d.draining = false;
  }

  std::string name_;
  uint64_t sequence_nr_;
  std::vector<Edge> next_;
  std::vector<std::function<Tensor(const Tensor&)>> pre_hooks_;
};

/// Accumulates into a leaf's .grad(). Holds the leaf weakly: the leaf owns the graph, not the reverse.
struct AccumulateGrad final : Node {
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : Node("AccumulateGrad"), leaf_(leaf) {}
  tensor_list apply(const Tensor& grad) override;  // autograd/engine.hpp
  bool is_accumulate_grad() const override { return true; }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

/// The node a leaf's gradient flows into, created on first use and shared by all uses.
inline std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  auto& meta = leaf.impl()->meta();
  if (auto n = meta.grad_accumulator.lock()) return n;
  auto n = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
  meta.grad_accumulator = n;
  return n;
}

/// The node that receives `t`'s gradient: its grad_fn, or the accumulator of a leaf that requires grad.
inline std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  if (t.grad_fn()) return t.grad_fn();
  return grad_accumulator(t);
}

}  // namespace ember::autograd
