#pragma once
/// models::BertModel: Hugging Face's BertModel (transformers 4.x, absolute positions, post-norm),
/// module for module, so its state_dict keys are Hugging Face's:
///   embeddings.word_embeddings.weight [vocab, H]      embeddings.position_embeddings.weight [max_pos, H]
///   embeddings.token_type_embeddings.weight [types, H] embeddings.LayerNorm.weight / .bias
///   encoder.layer.{i}.attention.self.query|key|value.weight [H, H] / .bias
///   encoder.layer.{i}.attention.output.dense.*          encoder.layer.{i}.attention.output.LayerNorm.*
///   encoder.layer.{i}.intermediate.dense.* [I, H]       encoder.layer.{i}.output.dense.* [H, I]
///   encoder.layer.{i}.output.LayerNorm.*                pooler.dense.* (unless add_pooling_layer = false)
///
/// forward(input_ids, attention_mask, token_type_ids, position_ids):
///   input_ids [B, L] int64; attention_mask [B, L] (1/true = token, 0/false = padding; undefined =
///   no padding); token_type_ids [B, L] (undefined = zeros); position_ids [B, L] or [L] (undefined =
///   0 … L-1). Returns last_hidden_state [B, L, H] and pooler_output [B, H] (tanh(dense(h[:, 0]))).
/// The padding mask becomes Hugging Face's additive bias (1 - mask) * finfo(dtype).min, broadcast
/// as [B, 1, 1, L] inside ember::scaled_dot_product_attention (never expanded over heads), so
/// even a row of only padding gives what transformers gives (uniform weights, not NaN).
///
/// Initialisation is Hugging Face's _init_weights: Linear and Embedding weights ~ N(0,
/// initializer_range), biases 0, the pad_token_id row 0, LayerNorm 1 / 0; draws come from
/// ember::default_generator() (manual_seed makes them reproducible, not equal to PyTorch's).
///
/// Example:
/// ```
///   namespace models = ember::models;
///   auto bert = std::make_shared<models::BertModel>(models::BertConfig::small(21128));
///   auto out = bert->forward(batch.input_ids, batch.attention_mask, batch.token_type_ids);
///   // out.last_hidden_state [B, L, 256], out.pooler_output [B, 256]
/// ```
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "ember/models/bert_config.hpp"
#include "ember/models/pretrained.hpp"
#include "ember/nn/dropout.hpp"
#include "ember/nn/embedding.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/layer_norm.hpp"
#include "ember/nn/linear.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/attention.hpp"
#include "ember/ops/join.hpp"
#include "ember/ops/unary.hpp"

namespace ember::models {

namespace detail {

/// torch.finfo(dtype).min: the additive bias Hugging Face puts on padded keys.
inline double finfo_min(DType dt) {
  switch (dt) {
    case kFloat16: return -65504.0;
    case kBFloat16: return -3.3895313892515355e38;
    case kFloat64: return std::numeric_limits<double>::lowest();
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

/// The activation named by BertConfig::hidden_act.
inline Tensor bert_activation(const std::string& act, const Tensor& x) {
  if (act == "gelu") return gelu(x);
  if (act == "gelu_new") return gelu(x, "tanh");
  if (act == "relu") return relu(x);
  EMBER_FAIL("BERT: hidden_act \"", act, "\" is not supported (expected \"gelu\", \"gelu_new\" or \"relu\")");
}

/// HF's _init_weights on one module (Linear, Embedding, LayerNorm; others untouched).
inline void init_bert_module(nn::Module& m, double std) {
  if (auto* l = dynamic_cast<nn::Linear*>(&m)) {
    nn::init::normal_(l->weight, 0.0, std);
    if (l->bias.defined()) nn::init::zeros_(l->bias);
  } else if (auto* e = dynamic_cast<nn::Embedding*>(&m)) {
    nn::init::normal_(e->weight, 0.0, std);
    if (e->options.padding_idx()) {
      NoGradGuard ng;
      e->weight.select(0, *e->options.padding_idx()).zero_();
    }
  } else if (auto* n = dynamic_cast<nn::LayerNorm*>(&m)) {
    if (n->weight.defined()) nn::init::ones_(n->weight);
    if (n->bias.defined()) nn::init::zeros_(n->bias);
  }
}

inline std::shared_ptr<nn::LayerNorm> bert_layer_norm(const BertConfig& c) {
  return std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

}  // namespace detail

/// word + position + token-type embeddings, then LayerNorm and dropout.
class BertEmbeddings : public nn::Module {
 public:
  explicit BertEmbeddings(const BertConfig& c) : nn::Module("BertEmbeddings"), config(c) {
    word_embeddings = register_module(
        "word_embeddings",
        std::make_shared<nn::Embedding>(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
    position_embeddings =
        register_module("position_embeddings", std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
    token_type_embeddings =
        register_module("token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", detail::bert_layer_norm(c));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
  }

  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& position_ids) {
    const int64_t L = input_ids.size(1);
    Tensor pos = position_ids.defined() ? position_ids : arange(Scalar(L), TensorOptions(kInt64).device(input_ids.device()));
    Tensor x = word_embeddings->forward(input_ids);
    if (token_type_ids.defined()) x = add(x, token_type_embeddings->forward(token_type_ids));
    else x = add(x, token_type_embeddings->weight.select(0, 0));  // all type 0: one row, broadcast
    Tensor p = position_embeddings->forward(pos);
    x = add(x, pos.dim() == 1 ? p.unsqueeze(0) : p);
    return dropout->forward(LayerNorm->forward(x));
  }

  BertConfig config;
  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // Hugging Face's attribute name, kept for the state_dict keys
  std::shared_ptr<nn::Dropout> dropout;
};

/// Multi-head self-attention with separate query/key/value projections (HF BertSelfAttention);
/// the three are applied as one GEMM over their concatenated weights.
class BertSelfAttention : public nn::Module {
 public:
  explicit BertSelfAttention(const BertConfig& c) : nn::Module("BertSelfAttention"), config(c) {
    query = register_module("query", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    key = register_module("key", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    value = register_module("value", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.attention_probs_dropout_prob));
  }

  /// x [B, L, H], bias [B, 1, 1, L] additive (undefined: none) → context [B, L, H].
  Tensor forward(const Tensor& x, const Tensor& bias) {
    const int64_t B = x.size(0), L = x.size(1), H = config.num_attention_heads, D = config.head_dim();
    Tensor w = cat({query->weight, key->weight, value->weight}, 0);
    Tensor b = cat({query->bias, key->bias, value->bias}, 0);
    Tensor qkv = linear(x, w, b).view({B, L, 3, H, D}).permute({2, 0, 3, 1, 4});
    const double p = is_training() ? dropout->options.p() : 0.0;
    Tensor ctx = scaled_dot_product_attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), bias, p, false,
                                              1.0 / std::sqrt(static_cast<double>(D)));
    return ctx.permute({0, 2, 1, 3}).reshape({B, L, H * D});
  }

  BertConfig config;
  std::shared_ptr<nn::Linear> query, key, value;
  std::shared_ptr<nn::Dropout> dropout;
};

/// dense, dropout, residual, LayerNorm (HF BertSelfOutput and BertOutput share this shape).
class BertResidualOutput : public nn::Module {
 public:
  BertResidualOutput(const BertConfig& c, int64_t in_features, const char* name) : nn::Module(name) {
    dense = register_module("dense", std::make_shared<nn::Linear>(in_features, c.hidden_size));
    LayerNorm = register_module("LayerNorm", detail::bert_layer_norm(c));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
  }
  Tensor forward(const Tensor& h, const Tensor& residual) {
    return LayerNorm->forward(add(dropout->forward(dense->forward(h)), residual));
  }
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
  std::shared_ptr<nn::Dropout> dropout;
};

class BertAttention : public nn::Module {
 public:
  explicit BertAttention(const BertConfig& c) : nn::Module("BertAttention") {
    self = register_module("self", std::make_shared<BertSelfAttention>(c));
    output = register_module("output", std::make_shared<BertResidualOutput>(c, c.hidden_size, "BertSelfOutput"));
  }
  Tensor forward(const Tensor& x, const Tensor& bias) { return output->forward(self->forward(x, bias), x); }
  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertResidualOutput> output;
};

class BertIntermediate : public nn::Module {
 public:
  explicit BertIntermediate(const BertConfig& c) : nn::Module("BertIntermediate"), act(c.hidden_act) {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size));
  }
  Tensor forward(const Tensor& x) { return detail::bert_activation(act, dense->forward(x)); }
  std::string extra_repr() const override { return "act=" + act; }
  std::string act;
  std::shared_ptr<nn::Linear> dense;
};

/// One encoder layer: attention, then the feed-forward block, each post-norm with a residual.
class BertLayer : public nn::Module {
 public:
  explicit BertLayer(const BertConfig& c) : nn::Module("BertLayer") {
    attention = register_module("attention", std::make_shared<BertAttention>(c));
    intermediate = register_module("intermediate", std::make_shared<BertIntermediate>(c));
    output = register_module("output", std::make_shared<BertResidualOutput>(c, c.intermediate_size, "BertOutput"));
  }
  Tensor forward(const Tensor& x, const Tensor& bias) {
    Tensor a = attention->forward(x, bias);
    return output->forward(intermediate->forward(a), a);
  }
  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<BertIntermediate> intermediate;
  std::shared_ptr<BertResidualOutput> output;
};

/// encoder.layer.0 … encoder.layer.{n-1}.
class BertEncoder : public nn::Module {
 public:
  explicit BertEncoder(const BertConfig& c) : nn::Module("BertEncoder") {
    list_ = register_module("layer", std::make_shared<LayerList>());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      layers.push_back(list_->register_module(std::to_string(i), std::make_shared<BertLayer>(c)));
  }
  Tensor forward(const Tensor& x, const Tensor& bias) {
    Tensor h = x;
    for (auto& l : layers) h = l->forward(h, bias);
    return h;
  }
  std::vector<std::shared_ptr<BertLayer>> layers;

 private:
  struct LayerList : nn::Module {
    LayerList() : nn::Module("ModuleList") {}
  };
  std::shared_ptr<LayerList> list_;
};

/// tanh(dense(h[:, 0])): the [CLS] summary the classifier reads.
class BertPooler : public nn::Module {
 public:
  explicit BertPooler(const BertConfig& c) : nn::Module("BertPooler") {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  }
  Tensor forward(const Tensor& h) { return ember::tanh(dense->forward(h.select(1, 0))); }
  std::shared_ptr<nn::Linear> dense;
};

struct BertModelOutput {
  Tensor last_hidden_state;  ///< [B, L, H]
  Tensor pooler_output;      ///< [B, H]; undefined without the pooler
};

class BertModel : public nn::Module {
 public:
  explicit BertModel(const BertConfig& c, bool add_pooling_layer = true) : nn::Module("BertModel"), config(c) {
    config.validate("BertModel");
    embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(config));
    encoder = register_module("encoder", std::make_shared<BertEncoder>(config));
    if (add_pooling_layer) pooler = register_module("pooler", std::make_shared<BertPooler>(config));
    init_weights();
  }

  /// A Hugging Face folder: config.json + model.safetensors (a BertModel's keys, or any BERT head
  /// model's: the "bert." prefix is dropped and the head's keys are reported as unused).
  static std::shared_ptr<BertModel> from_pretrained(const std::string& dir, const PretrainedOptions& o = {}) {
    return load_pretrained(dir, o, key_rules(), [&] { return std::make_shared<BertModel>(BertConfig::from_pretrained(dir)); });
  }
  /// Writes config.json and model.safetensors in Hugging Face's layout.
  void save_pretrained(const std::string& dir) const {
    save_hf_weights(dir, state_dict(), key_rules());
    config.save((std::filesystem::path(dir) / "config.json").string(), "BertModel");
  }
  static KeyRules key_rules() { return {"bert", {}, {}}; }

  /// Hugging Face's initialisation of every sub-module (see the header comment).
  void init_weights() {
    const double sd = config.initializer_range;
    apply([sd](nn::Module& m) { detail::init_bert_module(m, sd); });
  }

  BertModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask = {}, const Tensor& token_type_ids = {},
                          const Tensor& position_ids = {}) {
    check_inputs(input_ids, attention_mask, token_type_ids, position_ids);
    Tensor h = embeddings->forward(input_ids, token_type_ids, position_ids);
    Tensor bias;
    if (attention_mask.defined()) {
      // (1 - mask) * finfo.min as transformers 4.x builds its extended attention mask.
      Tensor pad = attention_mask.dtype() == kBool ? logical_not(attention_mask) : eq(attention_mask, Scalar(0));
      Tensor f = masked_fill(zeros(attention_mask.sizes(), TensorOptions(h.dtype()).device(h.device())), pad,
                             Scalar(detail::finfo_min(h.dtype())));
      bias = padding_mask_to_bias(f, h.dtype());
    }
    BertModelOutput out;
    out.last_hidden_state = encoder->forward(h, bias);
    if (pooler) out.pooler_output = pooler->forward(out.last_hidden_state);
    return out;
  }

  BertConfig config;
  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<BertEncoder> encoder;
  std::shared_ptr<BertPooler> pooler;  // null without the pooling layer

 private:
  void check_inputs(const Tensor& ids, const Tensor& mask, const Tensor& types, const Tensor& pos) const {
    const char* op = "BertModel";
    EMBER_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == kInt64, op,
                ": expected input_ids of shape [batch, length] and dtype int64, got ",
                ids.defined() ? ids.sizes() : Shape{}, " ", ids.defined() ? ids.dtype() : kInt64);
    const int64_t B = ids.size(0), L = ids.size(1);
    EMBER_CHECK(L >= 1, op, ": input_ids has no tokens (length 0)");
    EMBER_CHECK(pos.defined() || L <= config.max_position_embeddings, op, ": sequence length ", L,
                " exceeds max_position_embeddings (", config.max_position_embeddings, "); truncate the inputs");
    auto same = [&](const Tensor& t, const char* what) {
      if (!t.defined()) return;
      EMBER_CHECK(t.dim() == 2 && t.size(0) == B && t.size(1) == L, op, ": ", what, " must have input_ids' shape [", B,
                  ", ", L, "], got ", t.sizes());
    };
    same(mask, "attention_mask");
    same(types, "token_type_ids");
    if (types.defined()) EMBER_CHECK(types.dtype() == kInt64, op, ": token_type_ids must be int64, got ", types.dtype());
    if (pos.defined())
      EMBER_CHECK((pos.dim() == 1 && pos.size(0) == L) || (pos.dim() == 2 && pos.size(0) == B && pos.size(1) == L), op,
                  ": position_ids must be [", L, "] or [", B, ", ", L, "], got ", pos.sizes());
  }
};

}  // namespace ember::models
