#pragma once
/// optim::Optimizer: the base of SGD, Adam, AdamW and RMSprop. Parameters come in groups, each
/// with its own options (lr, momentum, ...); per-parameter state (momentum buffers, exp_avg, step
/// counts) is created lazily on the first step that sees a gradient. Updates run in place under
/// NoGradGuard with PyTorch's single-tensor formulas.
///
/// Checkpoints: `state_dict()` flattens everything into a StateDict of tensors, keyed as PyTorch
/// keys its optimizer state (parameters numbered across groups in order):
///   "state.<i>.step"                 int64 0-dim step count of parameter i (optimizers that count)
///   "state.<i>.<name>"               state tensors ("momentum_buffer", "exp_avg", ...)
///   "param_groups.<g>.params"        int64 indices of group g's parameters
///   "param_groups.<g>.<option>"      float64 0-dim option values ("lr", "momentum", "betas.0", ...)
/// so it can be saved with io/safetensors beside the model's state_dict, and `load_state_dict()`
/// on an optimizer built over the same parameters resumes training identically.
///
/// Example:
/// ```
///   ember::optim::SGD opt({ember::optim::ParamGroup(backbone->parameters(), ember::optim::SGDOptions(0.01)),
///                          ember::optim::ParamGroup(head->parameters())},
///                         ember::optim::SGDOptions(0.1).momentum(0.9));
///   opt.zero_grad(); loss.backward(); opt.step();
/// ```
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/core/grad_mode.hpp"
#include "ember/nn/options.hpp"
#include "ember/nn/state_dict.hpp"
#include "ember/ops/factory.hpp"

namespace ember::optim {

/// Hyper-parameters of one parameter group. Each optimizer's options struct derives from this.
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;
  virtual double get_lr() const = 0;
  virtual void set_lr(double lr) = 0;
  /// Every hyper-parameter as (name, value), booleans as 0/1: what state_dict saves.
  virtual std::vector<std::pair<std::string, double>> values() const = 0;
  /// Sets one hyper-parameter by the name values() used; returns false for an unknown name.
  virtual bool set_value(const std::string& name, double v) = 0;
};

/// CRTP helper: clone / get_lr / set_lr for an options struct with an EMBER_ARG `lr`.
template <typename Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
  double get_lr() const override { return static_cast<const Derived&>(*this).lr(); }
  void set_lr(double lr) override { static_cast<Derived&>(*this).lr(lr); }
};

/// A list of parameters with optional options of their own (missing options take the
/// optimizer's defaults).
class ParamGroup {
 public:
  ParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}  // NOLINT: a list of tensors is a group
  template <typename Options, std::enable_if_t<std::is_base_of_v<OptimizerOptions, Options>, int> = 0>
  ParamGroup(std::vector<Tensor> params, const Options& options)
      : params_(std::move(params)), options_(std::make_unique<Options>(options)) {}
  ParamGroup(std::vector<Tensor> params, std::unique_ptr<OptimizerOptions> options)
      : params_(std::move(params)), options_(std::move(options)) {}
  ParamGroup(const ParamGroup& o) : params_(o.params_), options_(o.options_ ? o.options_->clone() : nullptr) {}
  ParamGroup& operator=(const ParamGroup& o) {
    params_ = o.params_;
    options_ = o.options_ ? o.options_->clone() : nullptr;
    return *this;
  }
  ParamGroup(ParamGroup&&) = default;
  ParamGroup& operator=(ParamGroup&&) = default;

  const std::vector<Tensor>& params() const { return params_; }
  std::vector<Tensor>& params() { return params_; }
  bool has_options() const { return options_ != nullptr; }
  OptimizerOptions& options() {
    EMBER_CHECK(options_ != nullptr, "ParamGroup: this group has no options yet (add it to an optimizer first)");
    return *options_;
  }
  const OptimizerOptions& options() const {
    EMBER_CHECK(options_ != nullptr, "ParamGroup: this group has no options yet (add it to an optimizer first)");
    return *options_;
  }
  void set_options(std::unique_ptr<OptimizerOptions> o) { options_ = std::move(o); }

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
};

/// Lazily created per-parameter state: a step count and named tensors.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient.
  virtual void step() = 0;

  /// Clears gradients; `set_to_none` (the default, as in PyTorch 2) makes them undefined,
  /// otherwise they are zeroed in place.
  void zero_grad(bool set_to_none = true) {
    NoGradGuard ng;
    for (auto& g : groups_)
      for (auto& p : g.params()) {
        Tensor gr = p.grad();
        if (!gr.defined()) continue;
        if (set_to_none) p.set_grad(Tensor());
        else gr.zero_();
      }
  }

  /// Adds a group; options default to the optimizer's. A parameter may belong to one group only.
  void add_param_group(ParamGroup group) {
    std::unordered_set<const TensorImpl*> seen;
    for (auto& g : groups_)
      for (auto& p : g.params()) seen.insert(p.impl());
    for (size_t i = 0; i < group.params().size(); ++i) {
      const Tensor& p = group.params()[i];
      EMBER_CHECK(p.defined(), name_, ": parameter ", i, " of the new group is undefined");
      EMBER_CHECK(p.is_leaf(), name_, ": can't optimize a non-leaf tensor (parameter ", i, " of the new group)");
      EMBER_CHECK(p.is_floating_point(), name_, ": parameters must be floating point, got ", p.dtype());
      EMBER_CHECK(seen.insert(p.impl()).second, name_, ": some parameters appear in more than one parameter group");
    }
    if (!group.has_options()) group.set_options(defaults_->clone());
    check_options(group.options());
    groups_.push_back(std::move(group));
  }

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const OptimizerOptions& defaults() const { return *defaults_; }
  /// The state of `p` (created empty if it has none yet).
  ParamState& state(const Tensor& p) { return state_[p.impl()]; }
  bool has_state(const Tensor& p) const { return state_.count(p.impl()) != 0; }
  /// Number of parameters across all groups.
  size_t size() const {
    size_t n = 0;
    for (auto& g : groups_) n += g.params().size();
    return n;
  }

  /// The checkpointable state (see the header comment for the keys).
  nn::StateDict state_dict() const {
    nn::StateDict sd;
    int64_t index = 0;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const auto& g = groups_[gi];
      std::vector<int64_t> ids;
      for (const auto& p : g.params()) {
        int64_t i = index++;
        ids.push_back(i);
        auto it = state_.find(p.impl());
        if (it == state_.end()) continue;
        std::string pre = "state." + std::to_string(i) + ".";
        if (counts_steps_) sd.insert(pre + "step", scalar_tensor(it->second.step, kInt64));
        for (const auto& [k, t] : it->second.tensors) sd.insert(pre + k, t.detach());
      }
      std::string pre = "param_groups." + std::to_string(gi) + ".";
      sd.insert(pre + "params", tensor(ids, {static_cast<int64_t>(ids.size())}));
      for (const auto& [k, v] : g.options().values()) sd.insert(pre + k, scalar_tensor(v, kFloat64));
    }
    return sd;
  }

  /// Restores options and state saved by state_dict() from an optimizer over parameters of the
  /// same shapes in the same groups. State tensors are copied (to each parameter's device, and
  /// floating ones to its dtype), so the source optimizer is left untouched.
  void load_state_dict(const nn::StateDict& sd) {
    const std::string op = name_ + "::load_state_dict";
    std::vector<Tensor> flat;
    for (auto& g : groups_)
      for (auto& p : g.params()) flat.push_back(p);
    // Validate everything before changing anything.
    size_t saved_groups = 0;
    while (sd.contains("param_groups." + std::to_string(saved_groups) + ".params")) ++saved_groups;
    EMBER_CHECK(saved_groups == groups_.size(), op, ": loaded state dict has ", saved_groups,
                " parameter group(s), but the optimizer has ", groups_.size());
    int64_t index = 0;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const Tensor& ids = sd.at("param_groups." + std::to_string(gi) + ".params");
      EMBER_CHECK(ids.numel() == static_cast<int64_t>(groups_[gi].params().size()), op,
                  ": loaded state dict contains a parameter group ", gi, " of ", ids.numel(),
                  " parameters that doesn't match the size of the optimizer's group (", groups_[gi].params().size(), ")");
      index += ids.numel();
    }
    std::map<int64_t, ParamState> loaded;
    for (const auto& [key, t] : sd) {
      if (key.rfind("param_groups.", 0) == 0) {
        auto dot = key.find('.', 13);
        EMBER_CHECK(dot != std::string::npos, op, ": malformed key '", key, "'");
        auto gi = static_cast<size_t>(parse_index(key.substr(13, dot - 13), key, op));
        EMBER_CHECK(gi < groups_.size(), op, ": key '", key, "' names a group the optimizer doesn't have");
        std::string opt = key.substr(dot + 1);
        if (opt == "params") continue;
        auto probe = groups_[gi].options().clone();
        EMBER_CHECK(probe->set_value(opt, 0.0), op, ": unexpected option '", opt, "' in key '", key, "' for ", name_);
        continue;
      }
      EMBER_CHECK(key.rfind("state.", 0) == 0, op, ": unexpected key '", key, "'");
      auto dot = key.find('.', 6);
      EMBER_CHECK(dot != std::string::npos, op, ": malformed key '", key, "'");
      int64_t i = parse_index(key.substr(6, dot - 6), key, op);
      EMBER_CHECK(i >= 0 && i < index, op, ": state for parameter ", i, " but the optimizer has ", index, " parameters");
      std::string name = key.substr(dot + 1);
      const Tensor& p = flat[static_cast<size_t>(i)];
      if (name == "step") {
        loaded[i].step = t.to(kInt64).item<int64_t>();
        continue;
      }
      EMBER_CHECK(t.sizes() == p.sizes(), op, ": state '", name, "' of parameter ", i, " has shape ", t.sizes(),
                  " but the parameter has shape ", p.sizes());
      NoGradGuard ng;
      Tensor v = t.detach().to(p.device(), t.is_floating_point() ? p.dtype() : t.dtype());
      loaded[i].tensors[name] = v.storage() == t.storage() ? v.clone() : v;
    }
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      std::string pre = "param_groups." + std::to_string(gi) + ".";
      auto& o = groups_[gi].options();
      for (const auto& [k, v] : o.values())
        if (sd.contains(pre + k)) o.set_value(k, sd.at(pre + k).to(kFloat64).item<double>());
    }
    state_.clear();
    for (auto& [i, st] : loaded) state_[flat[static_cast<size_t>(i)].impl()] = std::move(st);
  }

 protected:
  Optimizer(std::string name, std::vector<ParamGroup> groups, std::unique_ptr<OptimizerOptions> defaults,
            bool counts_steps)
      : name_(std::move(name)), defaults_(std::move(defaults)), counts_steps_(counts_steps) {
    pending_ = std::move(groups);
  }
  /// Validates the defaults and adds the constructor's groups; each derived constructor calls it
  /// last, when its check_options() override is in place.
  void init_groups() {
    check_options(*defaults_);
    auto groups = std::move(pending_);
    size_t n = 0;
    for (auto& g : groups) n += g.params().size();
    EMBER_CHECK(n > 0, name_, ": got an empty parameter list");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  /// The group's options as the optimizer's own type.
  template <typename Options>
  static Options& options_as(ParamGroup& g, const std::string& name) {
    auto* o = dynamic_cast<Options*>(&g.options());
    EMBER_CHECK(o != nullptr, name, ": a parameter group has options of another optimizer");
    return *o;
  }
  /// Rejects invalid hyper-parameters (lr < 0, betas outside [0, 1), ...).
  virtual void check_options(const OptimizerOptions& o) const { EMBER_CHECK(o.get_lr() >= 0, name_, ": invalid learning rate: ", o.get_lr()); }

  std::string name_;
  std::vector<ParamGroup> groups_;
  std::unique_ptr<OptimizerOptions> defaults_;
  std::unordered_map<const TensorImpl*, ParamState> state_;
  bool counts_steps_;

 private:
  /// A non-negative decimal index inside a state_dict key.
  static int64_t parse_index(const std::string& s, const std::string& key, const std::string& op) {
    EMBER_CHECK(!s.empty() && s.size() < 18 && s.find_first_not_of("0123456789") == std::string::npos, op,
                ": malformed key '", key, "' (expected a parameter or group index)");
    return std::stoll(s);
  }
  std::vector<ParamGroup> pending_;
};

}  // namespace ember::optim
