#pragma once
/// nn::Module: the base of every layer and model. A module owns named parameters (leaf tensors
/// that require grad), named buffers (state that is saved but not trained, e.g. running means) and
/// named sub-modules, all in registration order. Modules are held by std::shared_ptr and have one
/// name each (no Impl/holder split): `auto fc = std::make_shared<nn::Linear>(784, 10);`.
///
/// Example:
/// ```
///   struct Net : ember::nn::Module {
///     std::shared_ptr<ember::nn::Linear> fc1, fc2;
///     Net() {
///       fc1 = register_module("fc1", std::make_shared<ember::nn::Linear>(2, 8));
///       fc2 = register_module("fc2", std::make_shared<ember::nn::Linear>(8, 1));
///     }
///     ember::Tensor forward(const ember::Tensor& x) { return fc2->forward(ember::relu(fc1->forward(x))); }
///   };
///   auto net = std::make_shared<Net>();
///   net->to(ember::kCUDA);                         // before creating the optimizer
///   ember::optim::Adam opt(net->parameters(), ember::optim::AdamOptions(1e-3));
///   std::cout << net->summary();                   // repr + trainable parameter count
/// ```
///
/// `to(device)` / `to(dtype)` convert every parameter and buffer *in place of the same tensor*
/// (the TensorImpl keeps its identity and receives new storage, like PyTorch's `param.data = ...`),
/// so the module's own members and anything holding the parameter handles see the moved tensors.
/// Optimizers must still be created after `.to()`: state they already allocated (momentum,
/// exp_avg) stays on the old device/dtype.
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#include <cstdlib>
#define EMBER_HAS_CXXABI 1
#endif

#include "ember/core/grad_mode.hpp"
#include "ember/nn/state_dict.hpp"
#include "ember/ops/copy.hpp"

namespace ember::nn {

namespace detail {

/// "ember::nn::Linear" → "Linear": the unqualified class name of a dynamic type, for reprs.
inline std::string short_type_name(const std::type_info& ti) {
  std::string n = ti.name();
#ifdef EMBER_HAS_CXXABI
  int status = 0;
  char* d = abi::__cxa_demangle(ti.name(), nullptr, nullptr, &status);
  if (status == 0 && d) n = d;
  std::free(d);
#endif
  // Drop template arguments, then any namespace qualification.
  if (auto lt = n.find('<'); lt != std::string::npos) n = n.substr(0, lt);
  if (auto c = n.rfind("::"); c != std::string::npos) n = n.substr(c + 2);
  return n;
}

/// Indents every line after the first by two spaces (PyTorch's _addindent).
inline std::string add_indent(const std::string& s) {
  std::string out;
  for (char ch : s) {
    out += ch;
    if (ch == '\n') out += "  ";
  }
  return out;
}

/// Gives `t`'s TensorImpl new storage holding its values on `device` with `dtype`, so every
/// handle to the tensor sees the move. Autograd metadata (requires_grad, hooks) is kept; a
/// defined .grad() is moved the same way.
inline void move_in_place(const Tensor& t, Device device, DType dtype) {
  if (t.device() == device && t.dtype() == dtype) return;
  NoGradGuard ng;
  Tensor moved = t.detach().to(device, dtype).contiguous();
  if (moved.storage() == t.storage()) moved = moved.clone();
  TensorImpl* impl = t.impl();
  Tensor g = t.grad();
  impl->storage = moved.storage();
  impl->sizes = moved.sizes();
  impl->strides = moved.strides();
  impl->offset = moved.storage_offset();
  impl->dtype = dtype;
  if (g.defined()) impl->meta().grad = g.detach().to(device, dtype).contiguous();
}

}  // namespace detail

class Module : public std::enable_shared_from_this<Module> {
 public:
  /// `name` is the type name shown by repr(); empty means the demangled class name.
  explicit Module(std::string name = "") : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The type name shown in reprs ("Linear", "Sequential", or your class name).
  virtual std::string name() const { return name_.empty() ? detail::short_type_name(typeid(*this)) : name_; }

  // ---- registration --------------------------------------------------------------------------

  /// Registers `t` as parameter `name` and returns the handle to keep as a member
  /// (`weight = register_parameter("weight", w)`). A non-leaf `t` is detached first, so the
  /// parameter is always a leaf; it requires grad unless `requires_grad` is false.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true) {
    check_new_name(name, "register_parameter");
    EMBER_CHECK(t.defined(), "register_parameter: parameter '", name, "' of ", this->name(), " is undefined");
    EMBER_CHECK(!requires_grad || t.is_floating_point(), "register_parameter: parameter '", name,
                "' must have a floating point dtype to require grad, got ", t.dtype());
    Tensor p = t.is_leaf() ? t : t.detach();
    p.requires_grad_(requires_grad);
    parameters_.emplace_back(name, p);
    return p;
  }
  /// Registers `t` as buffer `name` (saved in state_dict, moved by to(), never trained).
  Tensor register_buffer(const std::string& name, Tensor t) {
    check_new_name(name, "register_buffer");
    EMBER_CHECK(t.defined(), "register_buffer: buffer '", name, "' of ", this->name(), " is undefined");
    Tensor b = t.detach();
    buffers_.emplace_back(name, b);
    return b;
  }
  /// Registers sub-module `name` and returns it with its own type, so it can be kept as a member.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module");
    check_new_name(name, "register_module");
    EMBER_CHECK(module != nullptr, "register_module: sub-module '", name, "' of ", this->name(), " is null");
    EMBER_CHECK(module.get() != this, "register_module: a module cannot be its own child ('", name, "')");
    children_.emplace_back(name, std::static_pointer_cast<Module>(module));
    return module;
  }
  /// Replaces the value of an existing parameter slot (e.g. weight tying); same rules as registering.
  void replace_parameter(const std::string& name, const Tensor& t) {
    for (auto& [n, p] : parameters_) {
      if (n == name) {
        EMBER_CHECK(t.defined(), "replace_parameter: new value for '", name, "' is undefined");
        p = t;
        return;
      }
    }
    EMBER_FAIL("replace_parameter: ", this->name(), " has no parameter named '", name, "'");
  }

  // ---- traversal -----------------------------------------------------------------------------

  /// Parameters of this module and (if `recurse`) all descendants, in registration order; a
  /// tensor shared by two modules appears once.
  std::vector<Tensor> parameters(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& [n, p] : named_parameters(recurse)) out.push_back(p);
    return out;
  }
  /// (dotted name, parameter) pairs: "features.0.weight". Shared tensors appear once (first name).
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const {
    std::vector<std::pair<std::string, Tensor>> out;
    std::unordered_set<const TensorImpl*> seen;
    collect(out, seen, "", recurse, /*buffers=*/false);
    return out;
  }
  std::vector<Tensor> buffers(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& [n, b] : named_buffers(recurse)) out.push_back(b);
    return out;
  }
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const {
    std::vector<std::pair<std::string, Tensor>> out;
    std::unordered_set<const TensorImpl*> seen;
    collect(out, seen, "", recurse, /*buffers=*/true);
    return out;
  }
  /// Direct sub-modules in registration order.
  std::vector<std::shared_ptr<Module>> children() const {
    std::vector<std::shared_ptr<Module>> out;
    for (auto& [n, m] : children_) out.push_back(m);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  /// All descendants (not this module), depth first, with dotted names.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
    for (auto& [n, m] : children_) {
      out.emplace_back(n, m);
      for (auto& [cn, cm] : m->named_modules()) out.emplace_back(n + "." + cn, cm);
    }
    return out;
  }
  /// Calls `fn` on every descendant and then on this module (init recipes: `net->apply(init_fn)`).
  void apply(const std::function<void(Module&)>& fn) {
    for (auto& [n, m] : children_) m->apply(fn);
    fn(*this);
  }

  // ---- modes and gradients -------------------------------------------------------------------

  /// Sets training mode here and in every descendant (Dropout and BatchNorm read it).
  virtual void train(bool on = true) {
    training_ = on;
    for (auto& [n, m] : children_) m->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Sets every parameter's gradient to undefined (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() {
    for (auto& p : parameters()) p.set_grad(Tensor());
  }

  /// Number of parameter elements; only those that require grad when `trainable_only`.
  int64_t num_parameters(bool trainable_only = true) const {
    int64_t n = 0;
    for (auto& p : parameters())
      if (!trainable_only || p.requires_grad()) n += p.numel();
    return n;
  }

  // ---- device and dtype ----------------------------------------------------------------------

  /// Moves every parameter and buffer to `device`, in place (see the header comment: create
  /// optimizers after this call).
  void to(Device device) {
    for (auto& t : all_tensors()) detail::move_in_place(t, device, t.dtype());
  }
  /// Converts floating-point parameters and buffers to `dtype` (integer buffers are kept), in place.
  void to(DType dtype) {
    EMBER_CHECK(is_floating(dtype), "Module::to: expected a floating point dtype, got ", dtype);
    for (auto& t : all_tensors())
      if (t.is_floating_point()) detail::move_in_place(t, t.device(), dtype);
  }
  void to(Device device, DType dtype) {
    to(dtype);
    to(device);
  }

  // ---- state dict ----------------------------------------------------------------------------

  /// Every parameter and buffer under its dotted name, parameters first within each module,
  /// in registration order. Values share storage with the module (detached).
  StateDict state_dict() const {
    StateDict sd;
    add_state(sd, "");
    return sd;
  }

  /// Copies values from `sd` into the parameters and buffers (converting dtype and device as
  /// needed). With `strict`, keys must match exactly; any missing key, unexpected key or shape
  /// mismatch throws one ember::Error listing all of them. Without `strict`, missing and
  /// unexpected keys are skipped but shape mismatches still throw.
  void load_state_dict(const StateDict& sd, bool strict = true) {
    StateDict own = state_dict();
    std::vector<std::string> missing, unexpected, mismatched;
    for (const auto& [name, t] : own) {
      if (!sd.contains(name)) {
        missing.push_back(name);
        continue;
      }
      const Tensor& src = sd.at(name);
      if (!src.defined() || src.sizes() != t.sizes()) {
        std::ostringstream os;
        os << name << ": the shape in the current model is " << t.sizes() << ", the state_dict has "
           << (src.defined() ? detail_shape_str(src) : std::string("an undefined tensor"));
        mismatched.push_back(os.str());
      }
    }
    for (const auto& [name, t] : sd)
      if (!own.contains(name)) unexpected.push_back(name);
    bool fail = !mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()));
    if (fail) {
      std::ostringstream os;
      os << "load_state_dict: error(s) in loading state_dict for " << name() << ":";
      auto list = [&os](const char* what, const std::vector<std::string>& v) {
        if (v.empty()) return;
        os << "\n  " << what << ": ";
        for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << '"' << v[i] << '"';
        os << ".";
      };
      if (strict) list("Missing key(s) in state_dict", missing);
      if (strict) list("Unexpected key(s) in state_dict", unexpected);
      for (const auto& m : mismatched) os << "\n  size mismatch for " << m << ".";
      throw Error(os.str());
    }
    NoGradGuard ng;
    for (const auto& [name, t] : own) {
      if (!sd.contains(name)) continue;
      Tensor dst = t;  // a detached view sharing the parameter's storage
      dst.copy_(sd.at(name));
    }
  }

  // ---- printing ------------------------------------------------------------------------------

  /// The part inside the parentheses of this module's repr, e.g. "in_features=2, out_features=8, bias=True".
  virtual std::string extra_repr() const { return ""; }

  /// PyTorch's module repr: `Name(extra)` or, with children, one indented `(name): child` per line.
  std::string repr() const {
    std::vector<std::string> lines;
    std::string extra = extra_repr();
    if (!extra.empty()) {
      std::istringstream is(extra);
      for (std::string l; std::getline(is, l);) lines.push_back(l);
    }
    for (auto& [n, m] : children_) lines.push_back("(" + n + "): " + detail::add_indent(m->repr()));
    std::string s = name() + "(";
    if (!lines.empty()) {
      if (extra.find('\n') == std::string::npos && children_.empty()) {
        s += extra;
      } else {
        s += "\n";
        for (auto& l : lines) s += "  " + l + "\n";
      }
    }
    return s + ")";
  }

  /// repr() followed by the parameter counts (the tutorials' count_parameters):
  /// "Trainable parameters: 33" (and the total when some parameters are frozen).
  std::string summary() const {
    std::ostringstream os;
    os << repr() << "\nTrainable parameters: " << num_parameters(true);
    int64_t total = num_parameters(false);
    if (total != num_parameters(true)) os << " (total: " << total << ")";
    os << "\n";
    return os.str();
  }

 protected:
  /// Direct parameters (name, tensor) in registration order; layers read their own here.
  const std::vector<std::pair<std::string, Tensor>>& own_parameters() const { return parameters_; }
  const std::vector<std::pair<std::string, Tensor>>& own_buffers() const { return buffers_; }

 private:
  static std::string detail_shape_str(const Tensor& t) {
    std::ostringstream os;
    os << t.sizes();
    return os.str();
  }

  void check_new_name(const std::string& n, const char* op) const {
    EMBER_CHECK(!n.empty(), op, ": name can't be empty (in ", name(), ")");
    EMBER_CHECK(n.find('.') == std::string::npos, op, ": name can't contain \".\", got '", n, "' (in ", name(), ")");
    auto taken = [&n](const auto& v) {
      for (auto& [k, x] : v)
        if (k == n) return true;
      return false;
    };
    EMBER_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), op, ": attribute '", n,
                "' already exists in ", name());
  }

  void collect(std::vector<std::pair<std::string, Tensor>>& out, std::unordered_set<const TensorImpl*>& seen,
               const std::string& prefix, bool recurse, bool buffers) const {
    for (auto& [n, t] : buffers ? buffers_ : parameters_)
      if (seen.insert(t.impl()).second) out.emplace_back(prefix + n, t);
    if (!recurse) return;
    for (auto& [n, m] : children_) m->collect(out, seen, prefix + n + ".", true, buffers);
  }

  void add_state(StateDict& sd, const std::string& prefix) const {
    for (auto& [n, p] : parameters_) sd.insert(prefix + n, p.detach());
    for (auto& [n, b] : buffers_) sd.insert(prefix + n, b.detach());
    for (auto& [n, m] : children_) m->add_state(sd, prefix + n + ".");
  }

  /// Every distinct parameter and buffer in the tree (for to()).
  std::vector<Tensor> all_tensors() const {
    std::vector<Tensor> out = parameters();
    for (auto& b : buffers()) out.push_back(b);
    return out;
  }

  std::string name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

/// Prints the module's repr (like Python's print(model)); use summary() for parameter counts.
inline std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

/// A module with one tensor in and one tensor out: what Sequential holds. Call it as `m(x)`.
class UnaryModule : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace ember::nn
