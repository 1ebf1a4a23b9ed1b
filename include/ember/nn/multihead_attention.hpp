#pragma once
/// nn::MultiheadAttention (torch.nn.MultiheadAttention, kdim = vdim = embed_dim): the query, key
/// and value are projected by one packed [3E, E] matrix, split into `num_heads` heads of
/// E / num_heads, attended with ember::scaled_dot_product_attention and projected back by
/// `out_proj`. Parameters, in PyTorch's order and names: in_proj_weight [3E, E] (xavier_uniform),
/// in_proj_bias [3E] (zeros), out_proj.weight [E, E] (Linear's default), out_proj.bias [E] (zeros),
/// so a PyTorch state dict loads unchanged.
///
/// forward(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights):
/// - query [L, N, E], key/value [S, N, E] ([N, L, E] / [N, S, E] with batch_first; unbatched [L, E]).
/// - key_padding_mask [N, S] (unbatched [S]): bool, true = padding (ignored), or floating, added.
///   It reaches the attention as a [N, 1, 1, S] bias, broadcast over heads and queries.
/// - attn_mask [L, S] or [N * num_heads, L, S]: bool, true = NOT allowed (PyTorch's MHA
///   convention, the opposite of scaled_dot_product_attention's), or floating, added.
/// - returns (output like query, weights): weights (after dropout, as PyTorch) averaged over heads
///   [N, L, S], or per head [N, num_heads, L, S] with average_attn_weights = false; undefined
///   when need_weights is false.
/// Dropout on the attention weights applies in training mode only.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto mha = std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(256, 4).batch_first(true));
///   auto [y, w] = mha->forward(x, x, x, /*key_padding_mask=*/pad);   // x [16, 128, 256], pad [16, 128] bool
/// ```
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include "ember/nn/init.hpp"
#include "ember/nn/linear.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/attention.hpp"

namespace ember::nn {

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  EMBER_ARG(int64_t, embed_dim);
  EMBER_ARG(int64_t, num_heads);
  /// Dropout probability on the attention weights (training mode only).
  EMBER_ARG(double, dropout) = 0.0;
  /// Whether in_proj and out_proj have biases.
  EMBER_ARG(bool, bias) = true;
  /// Inputs and output as [N, L, E] instead of [L, N, E].
  EMBER_ARG(bool, batch_first) = false;
};

class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options)
      : Module("MultiheadAttention"), options(options) {
    const int64_t E = options.embed_dim(), H = options.num_heads();
    EMBER_CHECK(E > 0 && H > 0, "MultiheadAttention: embed_dim and num_heads must be positive, got embed_dim=", E,
                " num_heads=", H);
    EMBER_CHECK(E % H == 0, "MultiheadAttention: embed_dim must be divisible by num_heads, got embed_dim=", E,
                " num_heads=", H);
    EMBER_CHECK(options.dropout() >= 0 && options.dropout() <= 1,
                "MultiheadAttention: dropout has to be between 0 and 1, but got ", options.dropout());
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * E, E}, TensorOptions()));
    if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", empty({3 * E}, TensorOptions()));
    out_proj = register_module("out_proj", std::make_shared<Linear>(LinearOptions(E, E).bias(options.bias())));
    reset_parameters();
  }
  MultiheadAttention(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}

  /// PyTorch's _reset_parameters: xavier_uniform_ in_proj_weight, zero biases (out_proj.weight
  /// keeps Linear's initialisation).
  void reset_parameters() {
    init::xavier_uniform_(in_proj_weight);
    if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
    if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
  }

  int64_t head_dim() const { return options.embed_dim() / options.num_heads(); }

  std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& key_padding_mask = {}, bool need_weights = true,
                                     const Tensor& attn_mask = {}, bool average_attn_weights = true) {
    const char* op = "MultiheadAttention";
    const int64_t E = options.embed_dim(), H = options.num_heads(), D = head_dim();
    EMBER_CHECK(query.defined() && key.defined() && value.defined(), op, ": undefined query, key or value");
    const bool batched = query.dim() == 3;
    const char* layout = options.batch_first() ? "[N, L, E]" : "[L, N, E]";
    EMBER_CHECK(query.dim() == 3 || query.dim() == 2, op, ": expected query of shape ", layout,
                " (or unbatched [L, E]), got ", query.sizes());
    EMBER_CHECK(key.dim() == query.dim() && value.dim() == query.dim(), op, ": query ", query.sizes(), ", key ",
                key.sizes(), " and value ", value.sizes(), " must all be 3-D (batched) or all 2-D (unbatched)");
    EMBER_CHECK(query.size(-1) == E && key.size(-1) == E && value.size(-1) == E, op, ": expected embed_dim ", E,
                " as the last dim of query ", query.sizes(), ", key ", key.sizes(), " and value ", value.sizes());
    EMBER_CHECK(key.sizes() == value.sizes(), op, ": key ", key.sizes(), " and value ", value.sizes(),
                " must have the same shape");
    // Everything below works on [N, L, E].
    auto to_nle = [&](const Tensor& t) {
      if (!batched) return t.unsqueeze(0);
      return options.batch_first() ? t : t.transpose(0, 1);
    };
    const bool self = query.impl() == key.impl() && key.impl() == value.impl();
    Tensor q = to_nle(query), k = self ? q : to_nle(key), v = self ? q : to_nle(value);
    const int64_t N = q.size(0), L = q.size(1), S = k.size(1);
    EMBER_CHECK(k.size(0) == N, op, ": query ", query.sizes(), " and key ", key.sizes(),
                " have different batch sizes (", N, " and ", k.size(0), ")");

    // Projections: one GEMM for self-attention, three row blocks of in_proj_weight otherwise.
    auto heads = [&](const Tensor& t, int64_t len) { return t.reshape({N, len, H, D}).permute({0, 2, 1, 3}); };
    Tensor qh, kh, vh;
    if (self) {
      Tensor qkv = linear(q, in_proj_weight, in_proj_bias).view({N, L, 3, H, D}).permute({2, 0, 3, 1, 4});
      qh = qkv.select(0, 0), kh = qkv.select(0, 1), vh = qkv.select(0, 2);
    } else {
      auto proj = [&](const Tensor& t, int64_t i) {
        Tensor b = in_proj_bias.defined() ? in_proj_bias.narrow(0, i * E, E) : Tensor();
        return linear(t, in_proj_weight.narrow(0, i * E, E), b);
      };
      qh = heads(proj(q, 0), L), kh = heads(proj(k, 1), S), vh = heads(proj(v, 2), S);
    }

    Tensor bias = make_bias(key_padding_mask, attn_mask, batched, N, L, S, q.dtype());
    const double p = is_training() ? options.dropout() : 0.0;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    Tensor out, weights;
    if (need_weights) {
      std::tie(out, weights) = ember::detail::attention_composite(qh, kh, vh, bias, p, scale);
    } else {
      ember::detail::check_attention_args(op, qh, kh, vh, bias);
      out = scaled_dot_product_attention(qh, kh, vh, bias, p, false, scale);
    }
    out = out_proj->forward(out.permute({0, 2, 1, 3}).reshape({N, L, E}));
    if (!batched) out = out.squeeze(0);
    else if (!options.batch_first()) out = out.transpose(0, 1);
    if (weights.defined()) {
      if (average_attn_weights) weights = ember::mean(weights, Shape{1});
      if (!batched) weights = weights.squeeze(0);
    }
    return {out, weights};
  }

  std::string extra_repr() const override {
    // PyTorch prints only the out_proj child; the sizes are stated here for readability.
    std::ostringstream os;
    os << "embed_dim=" << options.embed_dim() << ", num_heads=" << options.num_heads();
    if (options.dropout() != 0) os << ", dropout=" << detail::fmt_double(options.dropout());
    if (options.batch_first()) os << ", batch_first=True";
    return os.str();
  }

  MultiheadAttentionOptions options;
  Tensor in_proj_weight;
  Tensor in_proj_bias;  // undefined without bias
  std::shared_ptr<Linear> out_proj;

 private:
  /// key_padding_mask [N, S] and attn_mask [L, S] / [N * H, L, S] (MHA conventions: bool true =
  /// not allowed) → one additive bias broadcastable to [N, H, L, S]: [N, 1, 1, S], [L, S],
  /// [N, H, L, S] or their sum; never expanded over heads.
  Tensor make_bias(const Tensor& key_padding_mask, const Tensor& attn_mask, bool batched, int64_t N, int64_t L,
                   int64_t S, DType dtype) const {
    const char* op = "MultiheadAttention";
    const int64_t H = options.num_heads();
    Tensor bias;
    if (key_padding_mask.defined()) {
      Tensor kpm = batched ? key_padding_mask : key_padding_mask.unsqueeze(0);
      EMBER_CHECK(kpm.dim() == 2 && kpm.size(0) == N && kpm.size(1) == S, op, ": expected key_padding_mask of shape [",
                  N, ", ", S, "] ([batch, source length])", batched ? "" : " or [S] unbatched", ", got ",
                  key_padding_mask.sizes());
      EMBER_CHECK(kpm.dtype() == kBool || kpm.is_floating_point(), op,
                  ": expected a bool or floating key_padding_mask, got ", kpm.dtype());
      bias = padding_mask_to_bias(kpm, dtype);
    }
    if (attn_mask.defined()) {
      const bool ok2 = attn_mask.dim() == 2 && attn_mask.size(0) == L && attn_mask.size(1) == S;
      const bool ok3 = attn_mask.dim() == 3 && attn_mask.size(0) == N * H && attn_mask.size(1) == L &&
                       attn_mask.size(2) == S;
      EMBER_CHECK(ok2 || ok3, op, ": expected attn_mask of shape [", L, ", ", S, "] or [", N * H, ", ", L, ", ", S,
                  "] (batch * num_heads, target length, source length), got ", attn_mask.sizes());
      EMBER_CHECK(attn_mask.dtype() == kBool || attn_mask.is_floating_point(), op,
                  ": expected a bool or floating attn_mask, got ", attn_mask.dtype());
      Tensor m = attn_mask.dtype() == kBool
                     ? masked_fill(zeros(attn_mask.sizes(), TensorOptions(dtype).device(attn_mask.device())),
                                   attn_mask, Scalar(-std::numeric_limits<double>::infinity()))
                     : attn_mask.to(dtype);
      if (ok3) m = m.view({N, H, L, S});
      bias = bias.defined() ? add(bias, m) : m;
    }
    return bias;
  }
};

}  // namespace ember::nn
