#pragma once
/// nn::TransformerEncoderLayer and nn::TransformerEncoder (torch.nn.TransformerEncoderLayer /
/// TransformerEncoder), with PyTorch's sub-module names, so state dicts match key for key:
/// self_attn (MultiheadAttention), linear1 [d_model → dim_feedforward], dropout, linear2,
/// norm1, norm2, dropout1, dropout2; an encoder holds layers.0 … layers.{n-1} and an optional norm.
///
/// Post-norm (norm_first = false, BERT's layout):
///   x = norm1(x + dropout1(self_attn(x)));  x = norm2(x + dropout2(linear2(dropout(act(linear1(x))))))
/// Pre-norm (norm_first = true):
///   x = x + dropout1(self_attn(norm1(x)));  x = x + dropout2(linear2(dropout(act(linear1(norm2(x))))))
/// activation is "relu" or "gelu" (exact erf). Masks as in nn::MultiheadAttention: src_mask
/// [L, L] or [N * nhead, L, L], src_key_padding_mask [N, L] (bool, true = padding).
///
/// TransformerEncoder copies the given layer num_layers times, parameters included (PyTorch
/// deep-copies it, so every layer starts from the same values); the given layer itself is not
/// part of the encoder.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto layer = std::make_shared<nn::TransformerEncoderLayer>(
///       nn::TransformerEncoderLayerOptions(256, 4).dim_feedforward(1024).activation("gelu").batch_first(true));
///   auto enc = std::make_shared<nn::TransformerEncoder>(layer, 4);
///   auto h = enc->forward(x, {}, pad);   // x [16, 128, 256], pad [16, 128] bool → [16, 128, 256]
/// ```
#include <memory>
#include <sstream>
#include <string>

#include "ember/nn/dropout.hpp"
#include "ember/nn/layer_norm.hpp"
#include "ember/nn/linear.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/multihead_attention.hpp"
#include "ember/nn/options.hpp"
#include "ember/nn/sequential.hpp"
#include "ember/ops/activation.hpp"

namespace ember::nn {

struct TransformerEncoderLayerOptions {
  TransformerEncoderLayerOptions(int64_t d_model, int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  EMBER_ARG(int64_t, d_model);
  EMBER_ARG(int64_t, nhead);
  EMBER_ARG(int64_t, dim_feedforward) = 2048;
  EMBER_ARG(double, dropout) = 0.1;
  /// "relu" or "gelu".
  EMBER_ARG(std::string, activation) = "relu";
  EMBER_ARG(double, layer_norm_eps) = 1e-5;
  EMBER_ARG(bool, batch_first) = false;
  EMBER_ARG(bool, norm_first) = false;
};

class TransformerEncoderLayer : public UnaryModule {
 public:
  explicit TransformerEncoderLayer(const TransformerEncoderLayerOptions& options)
      : UnaryModule("TransformerEncoderLayer"), options(options) {
    const char* op = "TransformerEncoderLayer";
    EMBER_CHECK(options.activation() == "relu" || options.activation() == "gelu", op,
                ": activation should be \"relu\" or \"gelu\", not \"", options.activation(), "\"");
    EMBER_CHECK(options.dim_feedforward() > 0, op, ": dim_feedforward must be positive, got ",
                options.dim_feedforward());
    const int64_t d = options.d_model();
    self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                                 MultiheadAttentionOptions(d, options.nhead())
                                                     .dropout(options.dropout())
                                                     .batch_first(options.batch_first())));
    linear1 = register_module("linear1", std::make_shared<Linear>(d, options.dim_feedforward()));
    dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout()));
    linear2 = register_module("linear2", std::make_shared<Linear>(options.dim_feedforward(), d));
    norm1 = register_module("norm1", std::make_shared<LayerNorm>(LayerNormOptions({d}).eps(options.layer_norm_eps())));
    norm2 = register_module("norm2", std::make_shared<LayerNorm>(LayerNormOptions({d}).eps(options.layer_norm_eps())));
    dropout1 = register_module("dropout1", std::make_shared<Dropout>(options.dropout()));
    dropout2 = register_module("dropout2", std::make_shared<Dropout>(options.dropout()));
  }
  TransformerEncoderLayer(int64_t d_model, int64_t nhead)
      : TransformerEncoderLayer(TransformerEncoderLayerOptions(d_model, nhead)) {}

  /// src [L, N, E] ([N, L, E] with batch_first; unbatched [L, E]) → same shape.
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask) {
    EMBER_CHECK(src.defined() && (src.dim() == 3 || src.dim() == 2), "TransformerEncoderLayer: expected src of shape ",
                options.batch_first() ? "[N, L, E]" : "[L, N, E]", " (or unbatched [L, E]), got ",
                src.defined() ? src.sizes() : Shape{});
    Tensor x = src;
    if (options.norm_first()) {
      x = add(x, sa_block(norm1->forward(x), src_mask, src_key_padding_mask));
      x = add(x, ff_block(norm2->forward(x)));
    } else {
      x = norm1->forward(add(x, sa_block(x, src_mask, src_key_padding_mask)));
      x = norm2->forward(add(x, ff_block(x)));
    }
    return x;
  }
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << "activation=" << options.activation();
    if (options.norm_first()) os << ", norm_first=True";
    return os.str();
  }

  TransformerEncoderLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout1, dropout2;

 private:
  Tensor sa_block(const Tensor& x, const Tensor& mask, const Tensor& key_padding_mask) {
    Tensor a = std::get<0>(self_attn->forward(x, x, x, key_padding_mask, /*need_weights=*/false, mask));
    return dropout1->forward(a);
  }
  Tensor ff_block(const Tensor& x) {
    Tensor h = linear1->forward(x);
    h = options.activation() == "gelu" ? gelu(h) : relu(h);
    return dropout2->forward(linear2->forward(dropout->forward(h)));
  }
};

class TransformerEncoder : public UnaryModule {
 public:
  /// num_layers copies of `encoder_layer` (same options, same parameter values), then `norm`
  /// (optional) on the output.
  TransformerEncoder(const std::shared_ptr<TransformerEncoderLayer>& encoder_layer, int64_t num_layers,
                     std::shared_ptr<LayerNorm> norm = nullptr)
      : UnaryModule("TransformerEncoder") {
    EMBER_CHECK(encoder_layer != nullptr, "TransformerEncoder: encoder_layer is null");
    EMBER_CHECK(num_layers >= 1, "TransformerEncoder: num_layers must be at least 1, got ", num_layers);
    layers = register_module("layers", std::make_shared<Sequential>());
    const StateDict proto = encoder_layer->state_dict();
    for (int64_t i = 0; i < num_layers; ++i) {
      auto l = std::make_shared<TransformerEncoderLayer>(encoder_layer->options);
      // Device and dtype first, so float64 values are not rounded through float32.
      l->to(encoder_layer->self_attn->in_proj_weight.device(), encoder_layer->self_attn->in_proj_weight.dtype());
      l->load_state_dict(proto);
      l->train(encoder_layer->is_training());
      layers->push_back(l);
    }
    if (norm) this->norm = register_module("norm", std::move(norm));
  }

  size_t num_layers() const { return layers->size(); }
  /// Layer i as its type.
  std::shared_ptr<TransformerEncoderLayer> layer(int64_t i) const { return layers->ptr<TransformerEncoderLayer>(i); }

  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask) {
    Tensor x = src;
    for (size_t i = 0; i < layers->size(); ++i)
      x = layer(static_cast<int64_t>(i))->forward(x, mask, src_key_padding_mask);
    return norm ? norm->forward(x) : x;
  }
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }

  std::shared_ptr<Sequential> layers;
  std::shared_ptr<LayerNorm> norm;  // null when not given
};

}  // namespace ember::nn
