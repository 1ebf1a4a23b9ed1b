#pragma once
/// text::DataCollatorForLanguageModeling: masked-language-model inputs and labels from a batch
/// of token ids, as Hugging Face's DataCollatorForLanguageModeling(mlm=True) makes them:
///   - each token that is not special ([CLS] [SEP] [PAD] [UNK] [MASK], i.e. the tokenizer's
///     all_special_ids) and not padding (attention_mask 0) is chosen with mlm_probability (0.15),
///     independently (a Bernoulli draw per token, so a batch holds about, not exactly, 15%);
///   - a chosen token becomes [MASK] with mask_replace_prob (0.8), a uniformly random vocabulary
///     id with random_replace_prob (0.1), and stays itself otherwise (0.1);
///   - labels hold the original id at chosen positions and -100 everywhere else (the ignore_index
///     of cross_entropy and BertForMaskedLM).
/// Draws come from the collator's own ember::Generator (Philox, seeded by the options): the same
/// seed and call sequence give the same masks on any machine and thread count; get_state() /
/// set_state() put the stream in a checkpoint. Copies continue from the same state independently.
///
/// Example:
/// ```
///   auto tok = ember::text::BertTokenizer::from_pretrained(dir);
///   ember::text::DataCollatorForLanguageModeling collate(tok, ember::text::MlmCollatorOptions().seed(7));
///   auto b = tok.encode_batch(texts, ember::text::BertEncodeOptions().max_length(128).padding(ember::text::Padding::kLongest));
///   ember::text::MlmBatch m = collate(b.input_ids, b.attention_mask);   // m.input_ids, m.labels [B, L]
/// ```
#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/philox.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/text/bert_tokenizer.hpp"

namespace ember::text {

struct MlmCollatorOptions {
  /// Share of (non-special, non-padding) tokens chosen for prediction.
  EMBER_ARG(double, mlm_probability) = 0.15;
  /// Of the chosen tokens: share replaced by [MASK] …
  EMBER_ARG(double, mask_replace_prob) = 0.8;
  /// … and share replaced by a random id (the rest stay unchanged).
  EMBER_ARG(double, random_replace_prob) = 0.1;
  EMBER_ARG(uint64_t, seed) = 42;
};

/// A masked batch: the corrupted inputs and the labels (-100 = no loss), int64 [B, L].
struct MlmBatch {
  Tensor input_ids;
  Tensor labels;
};

class DataCollatorForLanguageModeling {
 public:
  /// The ids come from a BERT tokenizer: its vocabulary size, [MASK] and the special ids.
  explicit DataCollatorForLanguageModeling(const BertTokenizer& tok, const MlmCollatorOptions& options = {})
      : DataCollatorForLanguageModeling(tok.vocab_size(), tok.mask_token_id(),
                                        {tok.pad_token_id(), tok.unk_token_id(), tok.cls_token_id(),
                                         tok.sep_token_id(), tok.mask_token_id()},
                                        options) {}
  DataCollatorForLanguageModeling(int64_t vocab_size, int64_t mask_token_id, std::vector<int64_t> special_ids,
                                  const MlmCollatorOptions& options = {})
      : options_(options), vocab_size_(vocab_size), mask_id_(mask_token_id),
        special_(special_ids.begin(), special_ids.end()), gen_(std::make_unique<Generator>(options.seed())) {
    const char* op = "DataCollatorForLanguageModeling";
    EMBER_CHECK(vocab_size >= 1, op, ": vocab_size must be positive, got ", vocab_size);
    EMBER_CHECK(mask_token_id >= 0 && mask_token_id < vocab_size, op, ": mask_token_id ", mask_token_id,
                " is outside the vocabulary [0, ", vocab_size, ")");
    auto prob = [&](const char* name, double p) {
      EMBER_CHECK(p >= 0 && p <= 1, op, ": ", name, " must be in [0, 1], got ", p);
    };
    prob("mlm_probability", options.mlm_probability());
    prob("mask_replace_prob", options.mask_replace_prob());
    prob("random_replace_prob", options.random_replace_prob());
    EMBER_CHECK(options.mask_replace_prob() + options.random_replace_prob() <= 1 + 1e-12, op,
                ": mask_replace_prob + random_replace_prob must be at most 1, got ",
                options.mask_replace_prob() + options.random_replace_prob());
  }
  DataCollatorForLanguageModeling(const DataCollatorForLanguageModeling& o)
      : options_(o.options_), vocab_size_(o.vocab_size_), mask_id_(o.mask_id_), special_(o.special_),
        gen_(std::make_unique<Generator>(o.options_.seed())) {
    gen_->set_state(o.gen_->get_state());
  }
  DataCollatorForLanguageModeling& operator=(const DataCollatorForLanguageModeling& o) {
    if (this != &o) {
      options_ = o.options_, vocab_size_ = o.vocab_size_, mask_id_ = o.mask_id_, special_ = o.special_;
      gen_->set_state(o.gen_->get_state());
    }
    return *this;
  }

  /// input_ids [B, L] (or [L]) int64; attention_mask of the same shape (0 = padding; optional).
  MlmBatch operator()(const Tensor& input_ids, const Tensor& attention_mask = {}) {
    const char* op = "DataCollatorForLanguageModeling";
    EMBER_CHECK(input_ids.defined() && !input_ids.is_floating_point() && input_ids.dtype() != kBool, op,
                ": expected integer input_ids, got ", input_ids.defined() ? input_ids.dtype() : kFloat32);
    EMBER_CHECK(!attention_mask.defined() || attention_mask.sizes() == input_ids.sizes(), op, ": attention_mask ",
                attention_mask.defined() ? attention_mask.sizes() : Shape{}, " must have input_ids' shape ",
                input_ids.sizes());
    std::vector<int64_t> ids = input_ids.to(kCPU).to(kInt64).contiguous().to_vector<int64_t>();
    std::vector<int64_t> keep;
    if (attention_mask.defined()) keep = attention_mask.to(kCPU).to(kInt64).contiguous().to_vector<int64_t>();
    std::vector<int64_t> labels(ids.size(), -100);
    const uint64_t seed = gen_->seed(), offset = gen_->reserve(ids.size());
    const double p = options_.mlm_probability(), pm = options_.mask_replace_prob();
    const double pr = pm + options_.random_replace_prob();
    constexpr double k2p32 = 4294967296.0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      if (special_.count(id) || (!keep.empty() && keep[i] == 0)) continue;
      const auto r = philox::philox4x32(seed, offset + i);
      if (static_cast<double>(r.x) / k2p32 >= p) continue;
      labels[i] = id;
      const double u = static_cast<double>(r.y) / k2p32;
      if (u < pm) ids[i] = mask_id_;
      else if (u < pr) ids[i] = static_cast<int64_t>(((static_cast<uint64_t>(r.z) << 32) | r.w) % static_cast<uint64_t>(vocab_size_));
    }
    MlmBatch out;
    out.input_ids = tensor(ids, input_ids.sizes()).to(input_ids.device());
    out.labels = tensor(labels, input_ids.sizes()).to(input_ids.device());
    return out;
  }

  const MlmCollatorOptions& options() const { return options_; }
  Generator::State get_state() const { return gen_->get_state(); }
  void set_state(Generator::State s) { gen_->set_state(s); }

 private:
  MlmCollatorOptions options_;
  int64_t vocab_size_;
  int64_t mask_id_;
  std::unordered_set<int64_t> special_;
  std::unique_ptr<Generator> gen_;  // a unique_ptr: Generator holds a mutex
};

}  // namespace ember::text
