#pragma once
/// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention):
///   out = dropout(softmax(q k^T * scale + mask), dropout_p) v,   scale = 1 / sqrt(E) by default
/// for q [..., L, E], k [..., S, E], v [..., S, Ev] → out [..., L, Ev] (leading dims equal, e.g.
/// [B, heads]).
///
/// The mask is PyTorch's `attn_mask`: bool (true = this query may attend to this key) or floating
/// (added to the scores, -inf to forbid), of any shape that broadcasts to [..., L, S]. A padding
/// mask is a [B, 1, 1, S] mask (see `padding_mask_to_bias`): it is broadcast inside the add, never
/// expanded over heads or queries. `is_causal` forbids keys after the query (query i sees keys
/// <= i). A query that may attend to no key gets NaN weights, as in PyTorch.
///
/// Numerically stable: softmax subtracts the row max (ops/softmax.hpp), so scores of 1e4 give
/// exact weights. Dropout (dropout_p > 0; pass 0 in eval mode) zeroes attention weights and
/// scales the rest by 1 / (1 - p), drawing from the Philox generator like ember::dropout.
///
/// Every step is a differentiable Ember op (matmul, add, softmax, dropout), so the gradient is
/// differentiable again (gradgradcheck).
///
/// Example:
/// ```
///   auto q = ember::randn({16, 4, 128, 64}), k = q, v = q;            // [B, heads, L, head_dim]
///   auto keep = ember::ones({16, 128}, ember::kBool);                  // true = a real token
///   auto bias = ember::padding_mask_to_bias(ember::logical_not(keep), ember::kFloat32);  // [16, 1, 1, 128]
///   auto out = ember::scaled_dot_product_attention(q, k, v, bias, /*dropout_p=*/0.1);
/// ```
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "ember/ops/activation.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/pointwise.hpp"
#include "ember/ops/softmax.hpp"

namespace ember {

/// A key padding mask [B, S] → an additive bias [B, 1, 1, S] of `dtype` for
/// scaled_dot_product_attention: -inf where the mask marks padding, 0 elsewhere. The mask is
/// bool (true = padding, ignore this key: nn::MultiheadAttention's key_padding_mask convention)
/// or floating (already additive, only reshaped and converted).
inline Tensor padding_mask_to_bias(const Tensor& key_padding_mask, DType dtype) {
  EMBER_CHECK(key_padding_mask.defined() && key_padding_mask.dim() == 2,
              "padding_mask_to_bias: expected a key_padding_mask of shape [batch, source length], got ",
              key_padding_mask.defined() ? key_padding_mask.sizes() : Shape{});
  const int64_t B = key_padding_mask.size(0), S = key_padding_mask.size(1);
  Tensor bias;
  if (key_padding_mask.dtype() == kBool) {
    bias = masked_fill(zeros({B, S}, TensorOptions(dtype).device(key_padding_mask.device())), key_padding_mask,
                       Scalar(-std::numeric_limits<double>::infinity()));
  } else {
    EMBER_CHECK(key_padding_mask.is_floating_point(), "padding_mask_to_bias: expected a bool or floating mask, got ",
                key_padding_mask.dtype());
    bias = key_padding_mask.to(dtype);
  }
  return bias.view({B, 1, 1, S});
}

namespace detail {

/// attn_mask (bool: true = attend; floating: additive) → an additive bias in `dtype`, same shape.
inline Tensor attn_mask_to_bias(const Tensor& mask, DType dtype) {
  if (mask.dtype() == kBool)
    return masked_fill(zeros(mask.sizes(), TensorOptions(dtype).device(mask.device())), logical_not(mask),
                       Scalar(-std::numeric_limits<double>::infinity()));
  return mask.dtype() == dtype ? mask : mask.to(dtype);
}

/// The causal bias [L, S]: 0 where key j <= query i, -inf after.
inline Tensor causal_bias(int64_t L, int64_t S, DType dtype, Device device) {
  Tensor i = arange(Scalar(L), TensorOptions(kInt64).device(device)).view({L, 1});
  Tensor j = arange(Scalar(S), TensorOptions(kInt64).device(device)).view({1, S});
  return masked_fill(zeros({L, S}, TensorOptions(dtype).device(device)), gt(j, i),
                     Scalar(-std::numeric_limits<double>::infinity()));
}

/// Checks q, k, v and the mask of scaled_dot_product_attention (op = the caller's name).
inline void check_attention_args(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  EMBER_CHECK(q.defined() && k.defined() && v.defined(), op, ": undefined query, key or value");
  EMBER_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
              ": expected query [..., L, E], key [..., S, E] and value [..., S, Ev] with the same number of dims "
              "(at least 2), got ", q.sizes(), ", ", k.sizes(), " and ", v.sizes());
  EMBER_CHECK(q.is_floating_point() && k.dtype() == q.dtype() && v.dtype() == q.dtype(), op,
              ": expected floating query, key and value of one dtype, got ", q.dtype(), ", ", k.dtype(), " and ",
              v.dtype());
  for (int64_t d = 0; d + 2 < q.dim(); ++d)
    EMBER_CHECK(k.size(d) == q.size(d) && v.size(d) == q.size(d), op, ": the leading (batch) dims of query ",
                q.sizes(), ", key ", k.sizes(), " and value ", v.sizes(), " must be equal");
  EMBER_CHECK(k.size(-1) == q.size(-1), op, ": query ", q.sizes(), " and key ", k.sizes(),
              " must have the same last dim (embedding size E)");
  EMBER_CHECK(v.size(-2) == k.size(-2), op, ": key ", k.sizes(), " and value ", v.sizes(),
              " must have the same source length S (dim -2)");
  check_same_device(op, {&q, &k, &v, &mask});
  if (!mask.defined()) return;
  Shape target(q.sizes().begin(), q.sizes().end() - 1);
  target.push_back(k.size(-2));
  bool fits = mask.dim() <= target.size();
  for (int64_t d = 0; fits && d < mask.dim(); ++d) {
    const int64_t m = mask.size(mask.dim() - 1 - d), t = target[target.size() - 1 - d];
    fits = m == 1 || m == t;
  }
  EMBER_CHECK(fits, op, ": attn_mask of shape ", mask.sizes(), " cannot be broadcast to the attention scores' shape ",
              target, " (query ", q.sizes(), ", key ", k.sizes(), "); a padding mask is [B, 1, 1, S]");
  EMBER_CHECK(mask.dtype() == kBool || mask.is_floating_point(), op, ": expected a bool or floating attn_mask, got ",
              mask.dtype());
}

/// The attention itself, on checked arguments with an additive bias (undefined: none):
/// returns (output, attention weights after dropout).
inline std::pair<Tensor, Tensor> attention_composite(const Tensor& q, const Tensor& k, const Tensor& v,
                                                     const Tensor& bias, double dropout_p, double scale) {
  // Scaling q ([L, E]) is cheaper than scaling the scores ([L, S]) when E < S.
  Tensor scores = matmul(mul(q, Scalar(scale)), k.transpose(-2, -1));
  if (bias.defined()) scores = add(scores, bias);
  Tensor w = softmax(scores, -1);
  if (dropout_p > 0) w = dropout(w, dropout_p, true);
  return {matmul(w, v), w};
}

/// Checks, builds the additive bias (mask + causal) and runs the attention; see
/// scaled_dot_product_attention.
inline std::pair<Tensor, Tensor> attention_forward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                                   const Tensor& attn_mask, double dropout_p, bool is_causal,
                                                   std::optional<double> scale) {
  check_attention_args(op, q, k, v, attn_mask);
  EMBER_CHECK(dropout_p >= 0 && dropout_p <= 1, op, ": dropout_p has to be between 0 and 1, but got ", dropout_p);
  EMBER_CHECK(!(is_causal && attn_mask.defined()), op, ": give either attn_mask or is_causal=true, not both");
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(q.size(-1), 1)));
  Tensor bias;
  if (attn_mask.defined()) bias = attn_mask_to_bias(attn_mask, q.dtype());
  if (is_causal) bias = causal_bias(q.size(-2), k.size(-2), q.dtype(), q.device());
  return attention_composite(q, k, v, bias, dropout_p, s);
}

}  // namespace detail

/// softmax(q k^T * scale + attn_mask) v with dropout on the weights (see the header comment).
/// q [..., L, E], k [..., S, E], v [..., S, Ev] → [..., L, Ev].
inline Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                           bool is_causal = false, std::optional<double> scale = std::nullopt) {
  return detail::attention_forward("scaled_dot_product_attention", q, k, v, attn_mask, dropout_p, is_causal, scale)
      .first;
}

}  // namespace ember
