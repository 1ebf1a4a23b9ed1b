#pragma once
/// The backward engine: `Tensor::backward()` and `autograd::grad()`.
///
/// It walks the graph without recursion (explicit stacks), so a 100k-step chain is fine: first a
/// discovery pass counts each node's incoming edges, then nodes run in dependency order (ties by
/// most recent op first). With `inputs` (autograd::grad), only nodes that lead to an input run,
/// and leaf gradients are returned instead of accumulated into .grad().
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ember/autograd/function.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"

namespace ember::autograd {

namespace detail {

struct NodeState {
  int deps = 0;
  bool needed = true;
  Tensor grad;
};

inline void accumulate(Tensor& slot, Tensor g) {
  if (!slot.defined()) slot = std::move(g);
  else slot = add(slot, g);
}

}  // namespace detail

/// Runs backward from `outputs` seeded with `grad_outputs` (undefined entries mean ones for a
/// one-element output). With empty `inputs` gradients accumulate into leaves' .grad(); otherwise
/// the gradients w.r.t. `inputs` are returned and no .grad() is touched.
inline tensor_list run_backward(const tensor_list& outputs, const tensor_list& grad_outputs, bool retain_graph,
                                bool create_graph, const tensor_list& inputs, bool allow_unused) {
  const char* api = inputs.empty() ? "backward" : "grad";
  EMBER_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), api, ": got ", outputs.size(),
              " outputs but ", grad_outputs.size(), " gradients");
  std::vector<std::pair<std::shared_ptr<Node>, Tensor>> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    EMBER_CHECK(out.defined() && out.requires_grad(), api, ": element ", i,
                " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      EMBER_CHECK(out.numel() == 1, api, ": grad can be implicitly created only for scalar outputs, got shape ",
                  out.sizes());
      g = ones_like(out);
    } else {
      EMBER_CHECK(g.sizes() == out.sizes(), api, ": mismatch in shape: grad_output[", i, "] has a shape of ",
                  g.sizes(), " and output[", i, "] has a shape of ", out.sizes());
    }
    roots.emplace_back(gradient_edge(out), g);
  }
  // Where to capture gradients for autograd::grad.
  std::unordered_map<Node*, std::vector<size_t>> capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    EMBER_CHECK(inputs[i].defined() && inputs[i].requires_grad(), "grad: input ", i,
                " does not require grad (call requires_grad_() on it first)");
    capture[gradient_edge(inputs[i]).get()].push_back(i);
  }

  // Discovery: every reachable node, incoming-edge counts, and a topological order.
  std::unordered_map<Node*, detail::NodeState> state;
  std::vector<Node*> order;  // discovery order
  {
    std::vector<Node*> stack;
    for (auto& [n, g] : roots)
      if (state.emplace(n.get(), detail::NodeState{}).second) stack.push_back(n.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      order.push_back(n);
      for (const auto& e : n->next_edges()) {
        if (!e.fn) continue;
        auto [it, fresh] = state.emplace(e.fn.get(), detail::NodeState{});
        ++it->second.deps;
        if (fresh) stack.push_back(e.fn.get());
      }
    }
  }
  if (!inputs.empty()) {
    // A node is needed iff an input's node is reachable from it. Process in reverse topological
    // order (Kahn on a copy of the counts), so children are decided before parents.
    std::unordered_map<Node*, int> deps;
    for (auto& [n, s] : state) deps[n] = s.deps;
    std::vector<Node*> topo, ready;
    for (auto& [n, g] : roots)
      if (deps[n.get()] == 0) ready.push_back(n.get());
    std::unordered_set<Node*> seen;
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      if (!seen.insert(n).second) continue;
      topo.push_back(n);
      for (const auto& e : n->next_edges())
        if (e.fn && --deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      Node* n = *it;
      bool need = capture.count(n) > 0;
      for (const auto& e : n->next_edges())
        if (e.fn && state[e.fn.get()].needed) need = true;
      state[n].needed = need;
    }
    for (auto& [n, s] : state) s.deps = 0;
    for (Node* n : order) {
      if (!state[n].needed) continue;
      for (const auto& e : n->next_edges())
        if (e.fn && state[e.fn.get()].needed) ++state[e.fn.get()].deps;
    }
  }

  GradModeGuard mode(create_graph);
  auto later_first = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
  for (auto& [n, g] : roots) detail::accumulate(state[n.get()].grad, g);
  {
    std::unordered_set<Node*> pushed;
    for (auto& [n, g] : roots)
      if (state[n.get()].deps == 0 && state[n.get()].needed && pushed.insert(n.get()).second) ready.push(n.get());
  }
  tensor_list result(inputs.size());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    auto& st = state[n];
    Tensor g = std::move(st.grad);
    if (g.defined()) {
      for (auto& hook : n->pre_hooks()) {
        Tensor r = hook(g);
        if (r.defined()) g = r;
      }
    }
    if (auto c = capture.find(n); c != capture.end()) {
      for (size_t i : c->second) result[i] = g;
    }
    tensor_list grads;
    bool run = g.defined() && !(n->is_accumulate_grad() && !inputs.empty());
    if (run) {
      grads = n->apply(g);
      if (detail::anomaly_flag()) [[unlikely]] {
        auto* fn = dynamic_cast<FunctionNode*>(n);
        detail::check_backward(n->name(), fn ? fn->creation_site() : std::string(), grads);
      }
      if (!retain_graph) n->release_saved();
    }
    auto& edges = n->next_edges();
    for (size_t j = 0; j < edges.size(); ++j) {
      const Edge& e = edges[j];
      if (!e.fn) continue;
      auto& cs = state[e.fn.get()];
      if (!cs.needed) continue;
      if (j < grads.size() && grads[j].defined()) {
        Tensor gj = grads[j];
        if (gj.sizes() != e.shape) gj = sum_to(gj, e.shape);
        if (gj.dtype() != e.dtype || gj.device() != e.device) gj = gj.to(e.device, e.dtype);
        detail::accumulate(cs.grad, std::move(gj));
      }
      if (--cs.deps == 0) ready.push(e.fn.get());
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    EMBER_CHECK(result[i].defined() || allow_unused, "grad: input ", i,
                " appears to not have been used in the graph; set allow_unused=true if this is the desired behavior");
  }
  return result;
}

/// Gradients of `outputs` with respect to `inputs` (torch.autograd.grad). With create_graph the
/// returned gradients are themselves differentiable (gradient penalties, Hessian-vector products).
inline tensor_list grad(const tensor_list& outputs, const tensor_list& inputs, const tensor_list& grad_outputs = {},
                        std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                        bool allow_unused = false) {
  EMBER_CHECK(!inputs.empty(), "grad: expected at least one input");
  return run_backward(outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, inputs, allow_unused);
}

inline tensor_list AccumulateGrad::apply(const Tensor& grad) {
  auto impl = leaf_.lock();
  if (!impl) return {};
  Tensor leaf(impl);
  Tensor g = grad;
  for (auto& hook : impl->meta().hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  Tensor& slot = impl->meta().grad;
  if (!slot.defined()) {
    // Own the buffer unless nobody else can see it (then steal it), so an in-place update of one
    // leaf's .grad() never changes another's.
    if (is_grad_enabled()) slot = g;
    else if (g.impl_ptr().use_count() <= 2 && g.storage().use_count() == 1 && g.is_contiguous()) slot = g.detach();
    else slot = g.detach().clone();
  } else if (is_grad_enabled()) {
    slot = add(slot, g);
  } else {
    NoGradGuard ng;
    slot.add_(g);
  }
  return {};
}

}  // namespace ember::autograd

namespace ember {

inline void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::run_backward({*this}, {gradient}, retain_graph || create_graph, create_graph, {}, false);
}

inline void Tensor::retain_grad() const {
  EMBER_CHECK(requires_grad(), "retain_grad: can't retain_grad on a tensor that doesn't require gradients");
  if (is_leaf()) return;
  std::weak_ptr<TensorImpl> w = impl_ptr();
  grad_fn()->pre_hooks().push_back([w](const Tensor& g) -> Tensor {
    if (auto p = w.lock()) {
      auto& slot = p->meta().grad;
      slot = slot.defined() ? ember::add(slot, g.detach()) : g.detach().clone();
    }
    return Tensor();
  });
}

inline void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  EMBER_CHECK(requires_grad(), "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  if (is_leaf()) impl()->meta().hooks.push_back(std::move(hook));
  else grad_fn()->pre_hooks().push_back(std::move(hook));
}

}  // namespace ember
