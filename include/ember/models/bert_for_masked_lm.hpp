#pragma once
/// models::BertForMaskedLM: Hugging Face's masked-language-model BERT — BertModel without the
/// pooler under "bert.", then cls.predictions: transform (dense, hidden_act, LayerNorm) and a
/// decoder to the vocabulary whose weight IS the word-embedding table (tied, as transformers
/// ties it) plus its own bias. Keys: bert.* (no pooler), cls.predictions.transform.dense.*,
/// cls.predictions.transform.LayerNorm.*, cls.predictions.bias [vocab]; state_dict() also lists
/// cls.predictions.decoder.weight (the tied table, as in PyTorch). save_pretrained leaves the
/// tied key out, as transformers does; from_pretrained accepts both spellings transformers has
/// written for the bias (cls.predictions.bias and cls.predictions.decoder.bias) and ignores a
/// stored decoder.weight (it is the embedding table again). Pre-training checkpoints
/// (BertForPreTraining: bert.pooler.*, cls.seq_relationship.*) load with those keys reported unused.
///
/// Loss: cross entropy over positions whose label is not -100 (the collator's convention).
/// masked_lm() computes the same loss while projecting only the labelled positions to the
/// vocabulary (about 15% of them): the decoder is the largest GEMM of a small BERT.
///
/// Example:
/// ```
///   namespace models = ember::models;
///   auto mlm = std::make_shared<models::BertForMaskedLM>(models::BertConfig::small(tok.vocab_size()));
///   ember::text::DataCollatorForLanguageModeling collate(tok);
///   auto m = collate(batch.input_ids, batch.attention_mask);
///   auto out = mlm->masked_lm(m.input_ids, batch.attention_mask, {}, m.labels);  // out.loss, out.logits [n, V]
/// ```
#include <memory>
#include <string>
#include <vector>

#include "ember/models/bert_model.hpp"
#include "ember/nn/loss.hpp"
#include "ember/ops/index.hpp"

namespace ember::models {

struct MaskedLMOutput {
  Tensor loss;    ///< undefined without labels
  Tensor logits;  ///< [B, L, vocab] from forward; [labelled positions, vocab] from masked_lm
  Tensor targets;  ///< masked_lm only: the labels of those rows [n] (accuracy = argmax(logits) == targets)
};

class BertPredictionHeadTransform : public nn::Module {
 public:
  explicit BertPredictionHeadTransform(const BertConfig& c) : nn::Module("BertPredictionHeadTransform"), act(c.hidden_act) {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", detail::bert_layer_norm(c));
  }
  Tensor forward(const Tensor& x) { return LayerNorm->forward(detail::bert_activation(act, dense->forward(x))); }
  std::string act;
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
};

class BertLMPredictionHead : public nn::Module {
 public:
  /// `word_embeddings`: the [vocab, H] table the decoder shares.
  BertLMPredictionHead(const BertConfig& c, const Tensor& word_embeddings) : nn::Module("BertLMPredictionHead") {
    transform = register_module("transform", std::make_shared<BertPredictionHeadTransform>(c));
    // A Linear without its own table: created 0 x 0, then given the embedding tensor.
    decoder = register_module("decoder", std::make_shared<nn::Linear>(nn::LinearOptions(0, 0).bias(false)));
    decoder->options.in_features(c.hidden_size).out_features(c.vocab_size);
    decoder->replace_parameter("weight", word_embeddings);
    decoder->weight = word_embeddings;
    bias = register_parameter("bias", zeros({c.vocab_size}, TensorOptions(word_embeddings.dtype())));
  }
  Tensor forward(const Tensor& h) { return linear(transform->forward(h), decoder->weight, bias); }
  std::shared_ptr<BertPredictionHeadTransform> transform;
  std::shared_ptr<nn::Linear> decoder;
  Tensor bias;
};

class BertOnlyMLMHead : public nn::Module {
 public:
  BertOnlyMLMHead(const BertConfig& c, const Tensor& word_embeddings) : nn::Module("BertOnlyMLMHead") {
    predictions = register_module("predictions", std::make_shared<BertLMPredictionHead>(c, word_embeddings));
  }
  std::shared_ptr<BertLMPredictionHead> predictions;
};

class BertForMaskedLM : public nn::Module {
 public:
  explicit BertForMaskedLM(const BertConfig& c) : nn::Module("BertForMaskedLM"), config(c) {
    config.validate("BertForMaskedLM");
    EMBER_CHECK(config.tie_word_embeddings, "BertForMaskedLM: tie_word_embeddings = false is not supported");
    bert = register_module("bert", std::make_shared<BertModel>(config, /*add_pooling_layer=*/false));
    cls = register_module("cls", std::make_shared<BertOnlyMLMHead>(config, bert->embeddings->word_embeddings->weight));
    cls->predictions->transform->apply([&](nn::Module& m) { detail::init_bert_module(m, config.initializer_range); });
  }

  /// Logits for every position [B, L, vocab]; loss over labels != -100 when labels [B, L] are given.
  MaskedLMOutput forward(const Tensor& input_ids, const Tensor& attention_mask = {}, const Tensor& token_type_ids = {},
                         const Tensor& labels = {}) {
    Tensor h = bert->forward(input_ids, attention_mask, token_type_ids).last_hidden_state;
    MaskedLMOutput out;
    out.logits = cls->predictions->forward(h);
    if (labels.defined()) {
      check_labels(labels, input_ids);
      const int64_t V = config.vocab_size;
      out.loss = nn::functional::cross_entropy(out.logits.reshape({-1, V}), labels.reshape({-1}));
    }
    return out;
  }

  /// The loss forward() gives, with logits only for the labelled positions ([n, vocab], in
  /// row-major order of labels != -100). Without any labelled position the loss is 0 (not
  /// NaN as the mean over nothing would be), still connected to the graph.
  MaskedLMOutput masked_lm(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& token_type_ids,
                           const Tensor& labels) {
    check_labels(labels, input_ids);
    Tensor h = bert->forward(input_ids, attention_mask, token_type_ids).last_hidden_state;
    const int64_t H = config.hidden_size;
    std::vector<int64_t> lab = labels.to(kInt64).contiguous().to_vector<int64_t>(), pos, target;
    for (size_t i = 0; i < lab.size(); ++i)
      if (lab[i] != -100) pos.push_back(static_cast<int64_t>(i)), target.push_back(lab[i]);
    MaskedLMOutput out;
    if (pos.empty()) {
      out.logits = zeros({0, config.vocab_size}, TensorOptions(h.dtype()));
      out.targets = zeros({0}, TensorOptions(kInt64));
      out.loss = mul(sum(h), Scalar(0.0));
      return out;
    }
    const auto n = static_cast<int64_t>(pos.size());
    Tensor picked = index_select(h.reshape({-1, H}), 0, tensor(pos, {n}).to(h.device()));
    out.logits = cls->predictions->forward(picked);
    out.targets = tensor(target, {n}).to(h.device());
    out.loss = nn::functional::cross_entropy(out.logits, out.targets);
    return out;
  }

  /// See the header comment.
  static std::shared_ptr<BertForMaskedLM> from_pretrained(const std::string& dir, const PretrainedOptions& o = {}) {
    return load_pretrained(dir, o, key_rules(), [&] { return std::make_shared<BertForMaskedLM>(BertConfig::from_pretrained(dir)); });
  }
  void save_pretrained(const std::string& dir) const {
    save_hf_weights(dir, state_dict(), key_rules());
    config.save((std::filesystem::path(dir) / "config.json").string(), "BertForMaskedLM");
  }
  static KeyRules key_rules() {
    return {"bert",
            {{"cls.predictions.decoder.bias", "cls.predictions.bias"}},
            {"cls.predictions.decoder.weight"}};
  }

  BertConfig config;
  std::shared_ptr<BertModel> bert;
  std::shared_ptr<BertOnlyMLMHead> cls;

 private:
  void check_labels(const Tensor& labels, const Tensor& input_ids) const {
    EMBER_CHECK(labels.defined() && labels.sizes() == input_ids.sizes() && !labels.is_floating_point(),
                "BertForMaskedLM: labels must be integer [B, L] like input_ids ", input_ids.sizes(), " (-100 = no loss), got ",
                labels.defined() ? labels.sizes() : Shape{});
  }
};

}  // namespace ember::models
