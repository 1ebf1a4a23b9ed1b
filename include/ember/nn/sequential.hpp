#pragma once
/// nn::Sequential: unary modules applied one after another. Children are named "0", "1", ... (or
/// the names given to push_back), so parameters are "0.weight", "2.bias" as in PyTorch.
///
/// Example:
/// ```
///   auto mlp = std::make_shared<ember::nn::Sequential>(
///       std::make_shared<ember::nn::Linear>(2, 8), std::make_shared<ember::nn::Tanh>(),
///       std::make_shared<ember::nn::Linear>(8, 1));
///   auto y = mlp->forward(x);              // or (*mlp)(x)
///   auto first = mlp->ptr<ember::nn::Linear>(0);
/// ```
#include <memory>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"

namespace ember::nn {

class Sequential : public UnaryModule {
 public:
  Sequential() : UnaryModule("Sequential") {}
  /// From any number of unary modules: `make_shared<Sequential>(lin1, relu, lin2)`.
  template <typename... Ms>
  explicit Sequential(std::shared_ptr<Ms>... modules) : UnaryModule("Sequential") {
    (push_back(std::move(modules)), ...);
  }
  explicit Sequential(const std::vector<std::shared_ptr<UnaryModule>>& modules) : UnaryModule("Sequential") {
    for (const auto& m : modules) push_back(m);
  }

  /// Appends `module` under the name of its index.
  template <typename M>
  void push_back(std::shared_ptr<M> module) {
    push_back(std::to_string(modules_.size()), std::move(module));
  }
  /// Appends `module` under `name`.
  template <typename M>
  void push_back(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<UnaryModule, M>,
                  "Sequential::push_back: the module must derive from nn::UnaryModule (Tensor forward(const Tensor&))");
    modules_.push_back(register_module(name, std::static_pointer_cast<UnaryModule>(std::move(module))));
  }

  /// Runs the modules in order; an empty Sequential is the identity.
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& m : modules_) y = m->forward(y);
    return y;
  }

  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  /// The i-th module (negative i counts from the end).
  const std::shared_ptr<UnaryModule>& operator[](int64_t i) const { return modules_[checked_index(i)]; }
  /// The i-th module as its concrete type; throws if it has another type.
  template <typename M>
  std::shared_ptr<M> ptr(int64_t i) const {
    auto p = std::dynamic_pointer_cast<M>(modules_[checked_index(i)]);
    EMBER_CHECK(p != nullptr, "Sequential::ptr: module ", i, " is a ", modules_[checked_index(i)]->name(),
                ", not the requested type");
    return p;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  size_t checked_index(int64_t i) const {
    int64_t n = static_cast<int64_t>(modules_.size());
    EMBER_CHECK(i >= -n && i < n, "Sequential: index ", i, " is out of range for a Sequential of ", n, " modules");
    return static_cast<size_t>(i < 0 ? i + n : i);
  }
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

}  // namespace ember::nn
