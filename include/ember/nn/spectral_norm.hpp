#pragma once
/// nn::utils::spectral_norm (torch.nn.utils.spectral_norm, PyTorch 1.13 semantics): rescales a
/// layer's weight by its largest singular value, estimated by power iteration, before every
/// forward. The trained parameter becomes `weight_orig`; the singular-vector estimates are the
/// buffers `weight_u` [h] and `weight_v` [w] of the weight seen as an [h, w] matrix (dim `dim`
/// moved first, the rest flattened). State-dict names are PyTorch's, so a PyTorch checkpoint of a
/// spectrally normalised layer loads as it is.
///
/// Each forward computes `weight = weight_orig / sigma` with `sigma = u · (W_mat v)`, a
/// differentiable function of weight_orig (gradients flow through sigma, also under double
/// backward, e.g. a WGAN-GP gradient penalty), u and v held constant. In training mode the
/// forward first runs `n_power_iterations` steps `v = normalize(W_mat^T u)`, `u = normalize(W_mat v)`
/// under no-grad, updating the buffers in place; in eval mode it uses the stored u and v.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto conv = nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(64, 128, 4).stride(2).padding(1)));
///   auto y = conv->forward(x);                     // conv: std::shared_ptr<nn::SpectralNorm<nn::Conv2d>>
///   conv->state_dict().keys();                     // {"bias", "weight_orig", "weight_u", "weight_v"}
///   conv->module()->options.stride();              // the wrapped Conv2d
/// ```
///
/// Why a wrapper module rather than PyTorch's forward pre-hook on the layer itself: Ember layers
/// read their weight from a member and Module has no way to rename a registered parameter. So
/// `SpectralNorm<M>` owns the layer, re-registers the layer's other parameters, buffers and
/// children under their own names (the state dict is exactly PyTorch's, with no "module."
/// prefix), and points the layer's weight member at the normalised weight only for the duration
/// of its forward. Outside a forward, `module()->weight` is `weight_orig` itself, which is what
/// PyTorch's `module.weight` is before the first forward: an init recipe writing it in place
/// initialises `weight_orig`. `Module::apply` visits the wrapper, not the wrapped layer: reach the
/// layer with `nn::utils::unwrap_spectral_norm(m)` (see there).
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "ember/core/grad_mode.hpp"
#include "ember/nn/conv.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/unary.hpp"

namespace ember::nn {

/// The type-independent part of SpectralNorm<M>: what code holding a plain Module& can ask.
class SpectralNormBase : public UnaryModule {
 public:
  using UnaryModule::UnaryModule;
  /// The layer whose weight is normalised.
  virtual Module& wrapped() = 0;
  /// The normalised weight as the next forward would compute it (with the power iteration when
  /// `do_power_iteration`, which updates weight_u/weight_v in place).
  virtual Tensor compute_weight(bool do_power_iteration) = 0;
};

/// A layer M whose parameter `name` is spectrally normalised; made by nn::utils::spectral_norm.
template <typename M>
class SpectralNorm : public SpectralNormBase {
  static_assert(std::is_base_of_v<Module, M>, "SpectralNorm: M must derive from nn::Module");

 public:
  /// Wraps `module`, whose public member `member` is its registered parameter `name`.
  SpectralNorm(std::shared_ptr<M> module, Tensor M::*member, std::string name, int64_t n_power_iterations,
               double eps, int64_t dim)
      : module_(std::move(module)), member_(member), param_name_(std::move(name)),
        n_power_iterations_(n_power_iterations), eps_(eps) {
    EMBER_CHECK(module_ != nullptr, "spectral_norm: module is null");
    EMBER_CHECK(n_power_iterations > 0, "spectral_norm: expected n_power_iterations to be positive, but got "
                "n_power_iterations=", n_power_iterations);
    Tensor w = (*module_).*member_;
    EMBER_CHECK(w.defined(), "spectral_norm: parameter '", param_name_, "' of ", module_->name(),
                " is undefined, so it cannot be normalised");
    EMBER_CHECK(w.dim() >= 1, "spectral_norm: parameter '", param_name_, "' of ", module_->name(),
                " must have at least one dimension, got shape ", w.sizes());
    dim_ = wrap_dim(dim, w.dim(), "spectral_norm");
    // Re-register the layer's state under the layer's own names; only `name` changes.
    bool found = false;
    for (auto& [n, p] : module_->named_parameters(/*recurse=*/false)) {
      if (n == param_name_) {
        EMBER_CHECK(p.impl() == w.impl(), "spectral_norm: member and parameter '", param_name_, "' of ",
                    module_->name(), " are different tensors");
        found = true;
        continue;
      }
      register_parameter(n, p, p.requires_grad());
    }
    EMBER_CHECK(found, "spectral_norm: ", module_->name(), " has no parameter named '", param_name_, "'");
    weight_orig = register_parameter(param_name_ + "_orig", w, w.requires_grad());
    // register_parameter keeps a leaf as it is, so weight_orig is the layer's tensor itself.
    for (auto& [n, b] : module_->named_buffers(/*recurse=*/false)) register_buffer(n, b);
    Tensor u, v;
    {
      NoGradGuard ng;
      Tensor mat = weight_matrix(w);
      u = normalize(empty({mat.size(0)}, w.options()).normal_(0.0, 1.0));
      v = normalize(empty({mat.size(1)}, w.options()).normal_(0.0, 1.0));
    }
    weight_u = register_buffer(param_name_ + "_u", u);
    weight_v = register_buffer(param_name_ + "_v", v);
    for (auto& [n, c] : module_->named_children()) register_module(n, c);
    train(module_->is_training());
  }

  /// Normalises the weight (power iteration first in training mode), runs the layer with it.
  Tensor forward(const Tensor& x) override {
    Tensor w = compute_weight(is_training());
    // The layer reads its weight member; point it at the normalised weight for this call only,
    // even if forward throws, so outside a forward the member is weight_orig again.
    struct Restore {
      M& m;
      Tensor M::*member;
      Tensor orig;
      ~Restore() { m.*member = orig; }
    } restore{*module_, member_, weight_orig};
    (*module_).*member_ = w;
    return module_->forward(x);
  }

  Tensor compute_weight(bool do_power_iteration) override {
    Tensor mat = weight_matrix(weight_orig);
    if (do_power_iteration) {
      NoGradGuard ng;
      Tensor m = mat.detach();
      for (int64_t i = 0; i < n_power_iterations_; ++i) {
        weight_v.copy_(normalize(matmul(m.t(), weight_u)));
        weight_u.copy_(normalize(matmul(m, weight_v)));
      }
    }
    // Copies: the next training forward updates the buffers in place, while this forward's
    // backward (e.g. of D(real) after D(fake) ran) still needs the values it used.
    Tensor u = weight_u.detach().clone(), v = weight_v.detach().clone();
    Tensor sigma = dot(u, matmul(mat, v));
    return div(weight_orig, sigma);
  }

  /// Trains or evaluates the wrapped layer along with this module.
  void train(bool on = true) override {
    Module::train(on);
    module_->train(on);
  }

  Module& wrapped() override { return *module_; }
  /// The wrapped layer (its weight member is weight_orig outside a forward).
  const std::shared_ptr<M>& module() const { return module_; }

  /// The wrapped layer's repr, as PyTorch prints a spectrally normalised layer.
  std::string name() const override { return module_->name(); }
  std::string extra_repr() const override { return module_->extra_repr(); }

  int64_t n_power_iterations() const { return n_power_iterations_; }
  double eps() const { return eps_; }
  int64_t dim() const { return dim_; }

  Tensor weight_orig;  // the trained parameter (the layer's original weight tensor)
  Tensor weight_u;     // [h] left singular vector estimate (buffer)
  Tensor weight_v;     // [w] right singular vector estimate (buffer)

 private:
  /// The weight as an [h, w] matrix: `dim_` moved to the front, the other dims flattened.
  Tensor weight_matrix(const Tensor& w) const {
    Tensor m = w;
    if (dim_ != 0) {
      Shape perm{dim_};
      for (int64_t d = 0; d < w.dim(); ++d)
        if (d != dim_) perm.push_back(d);
      m = m.permute(perm);
    }
    int64_t h = m.size(0);
    return m.reshape({h, h == 0 ? 0 : m.numel() / h});
  }

  /// x / max(||x||_2, eps) (torch.nn.functional.normalize over the only dim).
  Tensor normalize(const Tensor& x) const { return div(x, clamp(norm(x), Scalar(eps_))); }

  std::shared_ptr<M> module_;
  Tensor M::*member_;
  std::string param_name_;
  int64_t n_power_iterations_;
  double eps_;
  int64_t dim_ = 0;
};

namespace utils {

/// Spectral normalisation of `module`'s parameter `param_name`, held in its public member
/// `member` (for layers whose weight is not called `weight`). `dim` defaults to 0, or 1 for
/// ConvTranspose2d (its weight is [in, out, kh, kw]).
template <typename M>
std::shared_ptr<SpectralNorm<M>> spectral_norm(std::shared_ptr<M> module, Tensor M::*member,
                                               const std::string& param_name, int64_t n_power_iterations = 1,
                                               double eps = 1e-12, std::optional<int64_t> dim = std::nullopt) {
  int64_t d = dim.value_or(std::is_base_of_v<ConvTranspose2d, M> ? 1 : 0);
  return std::make_shared<SpectralNorm<M>>(std::move(module), member, param_name, n_power_iterations, eps, d);
}

/// Spectral normalisation of `module.weight` (Linear, Conv2d, ConvTranspose2d, Embedding, ...),
/// with torch.nn.utils.spectral_norm's arguments; `name` must be "weight" here (use the
/// member-pointer overload for another parameter). Returns the wrapper to use in the layer's
/// place; the wrapped layer is `->module()`.
template <typename M>
std::shared_ptr<SpectralNorm<M>> spectral_norm(std::shared_ptr<M> module, const std::string& name = "weight",
                                               int64_t n_power_iterations = 1, double eps = 1e-12,
                                               std::optional<int64_t> dim = std::nullopt) {
  static_assert(requires { &M::weight; }, "spectral_norm: this layer has no public `weight` member; use "
                "spectral_norm(module, &Layer::member, \"name\", ...)");
  EMBER_CHECK(name == "weight", "spectral_norm: parameter '", name, "' is not the `weight` member; pass the member "
              "as well: spectral_norm(module, &Layer::", name, ", \"", name, "\", ...)");
  return spectral_norm(std::move(module), &M::weight, name, n_power_iterations, eps, dim);
}

/// The layer a spectral-norm wrapper holds, or `m` itself: for init recipes run through
/// Module::apply, which visits the wrapper rather than the layer inside it:
/// ```
///   net->apply([](nn::Module& m) {
///     if (auto* c = dynamic_cast<nn::Conv2d*>(&nn::utils::unwrap_spectral_norm(m)))
///       nn::init::normal_(c->weight, 0.0, 0.02);   // c->weight is weight_orig outside a forward
///   });
/// ```
inline Module& unwrap_spectral_norm(Module& m) {
  if (auto* sn = dynamic_cast<SpectralNormBase*>(&m)) return sn->wrapped();
  return m;
}

}  // namespace utils
}  // namespace ember::nn
