#pragma once
/// models::BertForSequenceClassification: Hugging Face's BERT classifier — BertModel (with the
/// pooler) under the prefix "bert.", dropout (classifier_dropout, else hidden_dropout_prob) and
/// `classifier` = Linear(hidden, num_labels) on the pooled [CLS] output. Keys: bert.* as BertModel,
/// classifier.weight [num_labels, H], classifier.bias.
///
/// The loss follows transformers' problem types: num_labels == 1 → mean squared error on the
/// single logit (regression, float labels); int64 labels → cross entropy; float labels [B,
/// num_labels] → binary cross entropy with logits (multi-label).
///
/// from_pretrained(dir) loads any BERT folder: a checkpoint of this class, a bare BertModel or a
/// pre-training / masked-LM checkpoint (the cls.* keys are reported as unused and the missing
/// classifier is created and reported, as transformers does).
///
/// Example:
/// ```
///   namespace models = ember::models;
///   auto model = models::BertForSequenceClassification::from_pretrained(
///       "../shared/data/bert-base-chinese", models::PretrainedOptions().num_labels(2));
///   auto out = model->forward(b.input_ids, b.attention_mask, b.token_type_ids, labels);
///   out.loss.backward();                       // out.logits [B, 2]
///   model->save_pretrained("runs/bert_sentiment");   // loads in transformers as it is
/// ```
#include <memory>
#include <string>

#include "ember/models/bert_model.hpp"
#include "ember/nn/loss.hpp"

namespace ember::models {

struct SequenceClassifierOutput {
  Tensor loss;    ///< undefined without labels
  Tensor logits;  ///< [B, num_labels]
};

class BertForSequenceClassification : public nn::Module {
 public:
  explicit BertForSequenceClassification(const BertConfig& c) : nn::Module("BertForSequenceClassification"), config(c) {
    config.validate("BertForSequenceClassification");
    bert = register_module("bert", std::make_shared<BertModel>(config));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(config.classifier_dropout.value_or(config.hidden_dropout_prob)));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(config.hidden_size, config.num_labels()));
    detail::init_bert_module(*classifier, config.initializer_range);
  }

  int64_t num_labels() const { return config.num_labels(); }

  /// input_ids [B, L] int64, attention_mask / token_type_ids [B, L] (optional), labels [B]
  /// int64 (or float, see the header comment; optional).
  SequenceClassifierOutput forward(const Tensor& input_ids, const Tensor& attention_mask = {},
                                   const Tensor& token_type_ids = {}, const Tensor& labels = {}) {
    BertModelOutput h = bert->forward(input_ids, attention_mask, token_type_ids);
    SequenceClassifierOutput out;
    out.logits = classifier->forward(dropout->forward(h.pooler_output));
    if (labels.defined()) out.loss = loss(out.logits, labels);
    return out;
  }

  /// transformers' loss for these logits and labels.
  Tensor loss(const Tensor& logits, const Tensor& labels) const {
    const char* op = "BertForSequenceClassification";
    const int64_t B = logits.size(0), C = num_labels();
    if (C == 1) {
      EMBER_CHECK(labels.numel() == B, op, ": regression (num_labels 1) expects labels [", B, "], got ", labels.sizes());
      return nn::functional::mse_loss(logits.view({B}), labels.reshape({B}).to(logits.dtype()));
    }
    if (!labels.is_floating_point()) {
      EMBER_CHECK(labels.dim() == 1 && labels.size(0) == B, op, ": expected class labels [", B, "], got ",
                  labels.sizes());
      return nn::functional::cross_entropy(logits, labels.to(kInt64));
    }
    EMBER_CHECK(labels.sizes() == logits.sizes(), op, ": multi-label targets must be [", B, ", ", C, "], got ",
                labels.sizes());
    return nn::functional::binary_cross_entropy_with_logits(logits, labels.to(logits.dtype()));
  }

  /// See the header comment; PretrainedOptions::num_labels overrides config.json's labels.
  static std::shared_ptr<BertForSequenceClassification> from_pretrained(const std::string& dir,
                                                                        const PretrainedOptions& o = {}) {
    return load_pretrained(dir, o, key_rules(), [&] {
      BertConfig c = BertConfig::from_pretrained(dir);
      if (o.num_labels() && *o.num_labels() != c.num_labels()) c.set_num_labels(*o.num_labels());
      return std::make_shared<BertForSequenceClassification>(c);
    });
  }
  void save_pretrained(const std::string& dir) const {
    save_hf_weights(dir, state_dict(), key_rules());
    config.save((std::filesystem::path(dir) / "config.json").string(), "BertForSequenceClassification");
  }
  static KeyRules key_rules() { return {"bert", {}, {}}; }

  BertConfig config;
  std::shared_ptr<BertModel> bert;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> classifier;
};

}  // namespace ember::models
