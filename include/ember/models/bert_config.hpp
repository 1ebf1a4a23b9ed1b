#pragma once
/// models::BertConfig: the hyper-parameters of a BERT model, read from and written to a Hugging
/// Face `config.json` (transformers' BertConfig fields and defaults).
///
/// The fields that fix tensor shapes (hidden_size, num_hidden_layers, num_attention_heads,
/// intermediate_size, vocab_size, max_position_embeddings, type_vocab_size) must be present; a
/// config without one of them describes no particular checkpoint, so guessing Hugging Face's
/// default would only move the error to a confusing shape mismatch. The others default as in
/// transformers (layer_norm_eps 1e-12, hidden_act "gelu", dropouts 0.1, initializer_range 0.02,
/// pad_token_id 0). Every value is checked (type, range, hidden_size divisible by the heads, a
/// known activation) and an error names the file and the field.
///
/// Example:
/// ```
///   auto cfg = ember::models::BertConfig::from_pretrained("../shared/data/bert-base-chinese");
///   cfg.num_labels = 2;
///   auto small = ember::models::BertConfig::small(21128);   // 4 layers, hidden 256, 4 heads, 1024
///   small.save("out/config.json", "BertForMaskedLM");
/// ```
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/io/atomic_file.hpp"

namespace ember::models {

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  /// "gelu" (exact erf), "gelu_new" (tanh approximation) or "relu".
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  /// Dropout before the classifier of BertForSequenceClassification; unset = hidden_dropout_prob.
  std::optional<double> classifier_dropout;
  /// Labels of a classification head: num_labels = id2label.size() (transformers' default: 2).
  std::vector<std::string> id2label = {"LABEL_0", "LABEL_1"};
  /// Whether the masked-LM decoder shares the word embeddings (always true for BERT checkpoints).
  bool tie_word_embeddings = true;

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  /// Sets num_labels with the default names LABEL_0 … LABEL_{n-1}.
  BertConfig& set_num_labels(int64_t n) {
    EMBER_CHECK(n >= 1 && n <= (int64_t{1} << 20), "BertConfig: num_labels must be in [1, 2^20], got ", n);
    id2label.clear();
    for (int64_t i = 0; i < n; ++i) id2label.push_back("LABEL_" + std::to_string(i));
    return *this;
  }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  /// The small BERT of the tutorial's pre-training: 4 layers, hidden 256, 4 heads, intermediate 1024.
  static BertConfig small(int64_t vocab_size, int64_t max_position_embeddings = 512) {
    BertConfig c;
    c.vocab_size = vocab_size;
    c.hidden_size = 256;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.intermediate_size = 1024;
    c.max_position_embeddings = max_position_embeddings;
    c.validate("BertConfig::small");
    return c;
  }

  /// Throws ember::Error naming `source` and the field for any value no BERT can have.
  void validate(const std::string& source = "BertConfig") const {
    auto positive = [&](const char* field, int64_t v, int64_t limit) {
      EMBER_CHECK(v >= 1 && v <= limit, source, ": ", field, " must be in [1, ", limit, "], got ", v);
    };
    constexpr int64_t kBig = int64_t{1} << 24;
    positive("vocab_size", vocab_size, int64_t{1} << 26);
    positive("hidden_size", hidden_size, kBig);
    positive("num_hidden_layers", num_hidden_layers, 4096);
    positive("num_attention_heads", num_attention_heads, kBig);
    positive("intermediate_size", intermediate_size, kBig);
    positive("max_position_embeddings", max_position_embeddings, kBig);
    positive("type_vocab_size", type_vocab_size, kBig);
    EMBER_CHECK(hidden_size % num_attention_heads == 0, source, ": hidden_size (", hidden_size,
                ") is not a multiple of num_attention_heads (", num_attention_heads, ")");
    EMBER_CHECK(hidden_act == "gelu" || hidden_act == "gelu_new" || hidden_act == "relu", source,
                ": hidden_act \"", hidden_act, "\" is not supported (expected \"gelu\", \"gelu_new\" or \"relu\")");
    auto prob = [&](const char* field, double p) {
      EMBER_CHECK(std::isfinite(p) && p >= 0 && p < 1, source, ": ", field, " must be in [0, 1), got ", p);
    };
    prob("hidden_dropout_prob", hidden_dropout_prob);
    prob("attention_probs_dropout_prob", attention_probs_dropout_prob);
    if (classifier_dropout) prob("classifier_dropout", *classifier_dropout);
    EMBER_CHECK(std::isfinite(initializer_range) && initializer_range >= 0 && initializer_range <= 10, source,
                ": initializer_range must be in [0, 10], got ", initializer_range);
    EMBER_CHECK(std::isfinite(layer_norm_eps) && layer_norm_eps > 0 && layer_norm_eps < 1, source,
                ": layer_norm_eps must be in (0, 1), got ", layer_norm_eps);
    EMBER_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, source, ": pad_token_id ", pad_token_id,
                " is outside the vocabulary [0, ", vocab_size, ")");
    EMBER_CHECK(!id2label.empty(), source, ": id2label is empty (num_labels must be at least 1)");
  }

  /// Parses a config.json text; `source` (the file name) is named in every error.
  static BertConfig from_json(const nlohmann::json& j, const std::string& source) {
    EMBER_CHECK(j.is_object(), source, ": expected a JSON object, got ", j.type_name());
    if (j.contains("model_type") && j["model_type"].is_string()) {
      const std::string t = j["model_type"].get<std::string>();
      EMBER_CHECK(t == "bert", source, ": model_type is \"", t, "\", expected \"bert\"");
    }
    if (j.contains("position_embedding_type") && !j["position_embedding_type"].is_null()) {
      EMBER_CHECK(j["position_embedding_type"] == "absolute", source, ": position_embedding_type ",
                  j["position_embedding_type"].dump(), " is not supported (only \"absolute\")");
    }
    BertConfig c;
    auto get_int = [&](const char* field, int64_t& out, bool required) {
      if (!j.contains(field) || j[field].is_null()) {
        EMBER_CHECK(!required, source, ": missing field \"", field, "\" (it fixes the model's tensor shapes)");
        return;
      }
      const auto& v = j[field];
      bool integral = v.is_number_integer() ||
                      (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
                       std::abs(v.get<double>()) < 9e15);
      EMBER_CHECK(integral, source, ": field \"", field, "\" must be an integer, got ", v.dump());
      out = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
      if (v.is_number_unsigned()) EMBER_CHECK(v.get<uint64_t>() <= uint64_t{INT64_MAX}, source, ": field \"", field, "\" is too large: ", v.dump());
    };
    auto get_double = [&](const char* field, double& out) {
      if (!j.contains(field) || j[field].is_null()) return;
      EMBER_CHECK(j[field].is_number(), source, ": field \"", field, "\" must be a number, got ", j[field].dump());
      out = j[field].get<double>();
    };
    get_int("vocab_size", c.vocab_size, true);
    get_int("hidden_size", c.hidden_size, true);
    get_int("num_hidden_layers", c.num_hidden_layers, true);
    get_int("num_attention_heads", c.num_attention_heads, true);
    get_int("intermediate_size", c.intermediate_size, true);
    get_int("max_position_embeddings", c.max_position_embeddings, true);
    get_int("type_vocab_size", c.type_vocab_size, true);
    get_int("pad_token_id", c.pad_token_id, false);
    get_double("hidden_dropout_prob", c.hidden_dropout_prob);
    get_double("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
    get_double("initializer_range", c.initializer_range);
    get_double("layer_norm_eps", c.layer_norm_eps);
    if (j.contains("classifier_dropout") && !j["classifier_dropout"].is_null()) {
      double d = 0;
      get_double("classifier_dropout", d);
      c.classifier_dropout = d;
    }
    if (j.contains("hidden_act")) {
      EMBER_CHECK(j["hidden_act"].is_string(), source, ": field \"hidden_act\" must be a string, got ",
                  j["hidden_act"].dump());
      c.hidden_act = j["hidden_act"].get<std::string>();
    }
    if (j.contains("tie_word_embeddings")) {
      EMBER_CHECK(j["tie_word_embeddings"].is_boolean(), source, ": field \"tie_word_embeddings\" must be true or false");
      c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
    }
    // transformers: num_labels = len(id2label); id2label keys are the label ids as strings.
    if (j.contains("id2label") && !j["id2label"].is_null()) {
      const auto& m = j["id2label"];
      EMBER_CHECK(m.is_object() && !m.empty(), source, ": field \"id2label\" must be a non-empty object {\"0\": name, ...}");
      std::vector<std::string> names(m.size());
      std::vector<bool> set(m.size(), false);
      for (auto it = m.begin(); it != m.end(); ++it) {
        const std::string& k = it.key();
        EMBER_CHECK(!k.empty() && k.size() < 9 && k.find_first_not_of("0123456789") == std::string::npos, source,
                    ": id2label key \"", k, "\" is not a label id");
        size_t id = std::stoul(k);
        EMBER_CHECK(id < names.size() && !set[id], source, ": id2label ids must be 0 … ", names.size() - 1,
                    " each once, got \"", k, "\"");
        EMBER_CHECK(it.value().is_string(), source, ": id2label[\"", k, "\"] must be a string");
        names[id] = it.value().get<std::string>();
        set[id] = true;
      }
      c.id2label = names;
    } else if (j.contains("num_labels") && !j["num_labels"].is_null()) {
      int64_t n = 0;
      get_int("num_labels", n, false);
      EMBER_CHECK(n >= 1 && n <= (int64_t{1} << 20), source, ": num_labels must be in [1, 2^20], got ", n);
      c.set_num_labels(n);
    }
    c.validate(source);
    return c;
  }

  /// Reads `path` (a config.json).
  static BertConfig from_file(const std::string& path) {
    std::error_code ec;
    EMBER_CHECK(std::filesystem::is_regular_file(path, ec), "BertConfig: '", path, "' does not exist or is not a file");
    std::ifstream f(path, std::ios::binary);
    EMBER_CHECK(f.is_open(), "BertConfig: cannot open '", path, "'");
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    EMBER_CHECK(!j.is_discarded(), "BertConfig: '", path, "' is not valid JSON");
    return from_json(j, "BertConfig: '" + path + "'");
  }
  /// Reads `dir`/config.json.
  static BertConfig from_pretrained(const std::string& dir) {
    return from_file((std::filesystem::path(dir) / "config.json").string());
  }

  /// The config.json transformers writes (with "architectures" when given).
  nlohmann::ordered_json to_json(const std::string& architecture = "") const {
    nlohmann::ordered_json j;
    if (!architecture.empty()) j["architectures"] = {architecture};
    j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
    if (classifier_dropout) j["classifier_dropout"] = *classifier_dropout;
    else j["classifier_dropout"] = nullptr;
    j["hidden_act"] = hidden_act;
    j["hidden_dropout_prob"] = hidden_dropout_prob;
    j["hidden_size"] = hidden_size;
    nlohmann::ordered_json id2 = nlohmann::ordered_json::object(), l2i = nlohmann::ordered_json::object();
    for (size_t i = 0; i < id2label.size(); ++i) {
      id2[std::to_string(i)] = id2label[i];
      l2i[id2label[i]] = i;
    }
    j["id2label"] = id2;
    j["initializer_range"] = initializer_range;
    j["intermediate_size"] = intermediate_size;
    j["label2id"] = l2i;
    j["layer_norm_eps"] = layer_norm_eps;
    j["max_position_embeddings"] = max_position_embeddings;
    j["model_type"] = "bert";
    j["num_attention_heads"] = num_attention_heads;
    j["num_hidden_layers"] = num_hidden_layers;
    j["pad_token_id"] = pad_token_id;
    j["position_embedding_type"] = "absolute";
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["type_vocab_size"] = type_vocab_size;
    j["use_cache"] = true;
    j["vocab_size"] = vocab_size;
    return j;
  }

  /// Writes to_json(architecture) to `path` atomically.
  void save(const std::string& path, const std::string& architecture = "") const {
    validate("BertConfig::save");
    std::string text = to_json(architecture).dump(2) + "\n";
    io::write_file_atomic(path, "BertConfig::save", [&](io::FileWriter& w) { w.write(text); });
  }
};

}  // namespace ember::models
