#pragma once
/// Loading and saving Hugging Face model folders (config.json + model.safetensors) with
/// transformers' key rules, for any model whose state_dict uses Hugging Face's names:
///   - legacy LayerNorm names: a last key component "gamma" reads as "weight", "beta" as "bias";
///   - the base-model prefix ("bert."): a head model (BertForSequenceClassification) loads a
///     bare base-model file by adding it, a base model (BertModel) loads a head model's file by
///     dropping it; keys of other heads then count as unexpected;
///   - aliases (a second spelling of a key) and tied keys (a key that shares its tensor with
///     another, e.g. the masked-LM decoder and the word embeddings) are accepted and not reported;
///   - buffers transformers never saves any more ("…position_ids") are ignored silently;
///   - a parameter missing from the file keeps its fresh initialisation and is reported
///     (transformers' "newly initialized" warning); a key the model does not have is reported
///     as unused; a shape mismatch is an error naming every mismatched key; a file that
///     matches no parameter at all is an error (it is not a checkpoint of this model).
/// Tensors stored as F16/BF16/F64 are converted to the parameters' dtype on copy. A sharded
/// folder (model.safetensors.index.json + shards) loads too; pytorch_model.bin does not (pickle),
/// and the error says how to convert it.
///
/// Writing: config.json plus one model.safetensors whose header metadata holds {"format": "pt"}
/// (transformers refuses a safetensors file whose metadata lacks it) beside Ember's checksum
/// entry; tied keys are left out as transformers' save_pretrained leaves them out.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/grad_mode.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"

namespace ember::models {

/// What from_pretrained did with the file's keys.
struct LoadReport {
  std::vector<std::string> missing_keys;     ///< model parameters not in the file: newly initialised
  std::vector<std::string> unexpected_keys;  ///< file keys the model has no use for
  std::vector<std::string> renamed_keys;     ///< "old -> new" (gamma/beta, prefix, aliases)
  int64_t loaded = 0;                        ///< tensors copied into the model

  /// Hugging Face's two warnings, as text (empty when there is nothing to say).
  std::string warnings(const std::string& model_name, const std::string& path) const {
    std::ostringstream os;
    auto list = [&os](const std::vector<std::string>& v) {
      os << "[";
      for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << "'" << v[i] << "'";
      os << "]";
    };
    if (!unexpected_keys.empty()) {
      os << "Some weights of the model checkpoint at " << path << " were not used when initializing " << model_name
         << ": ";
      list(unexpected_keys);
      os << "\n";
    }
    if (!missing_keys.empty()) {
      os << "Some weights of " << model_name << " were not initialized from the model checkpoint at " << path
         << " and are newly initialized: ";
      list(missing_keys);
      os << "\nYou should probably TRAIN this model on a down-stream task to be able to use it for predictions and "
            "inference.\n";
    }
    return os.str();
  }
};

/// How a model's keys relate to the keys of files Hugging Face writes.
struct KeyRules {
  std::string base_prefix;                        ///< e.g. "bert"
  std::map<std::string, std::string> aliases;     ///< file key → model key, used when the model key is absent
  std::set<std::string> tied;                     ///< model keys that share another key's tensor
};

namespace detail {

inline bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

/// The weight files of a folder: model.safetensors, or the shards of model.safetensors.index.json.
inline std::vector<std::string> weight_files(const std::string& dir, const char* op) {
  namespace fs = std::filesystem;
  std::error_code ec;
  EMBER_CHECK(fs::is_directory(dir, ec), op, ": '", dir, "' is not a directory");
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(single, ec)) return {single.string()};
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    std::ifstream f(index);
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    EMBER_CHECK(!j.is_discarded() && j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), op,
                ": '", index.string(), "' is not a safetensors index (expected {\"weight_map\": {...}})");
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      EMBER_CHECK(it.value().is_string(), op, ": '", index.string(), "': weight_map[\"", it.key(), "\"] is not a file name");
      std::string s = it.value().get<std::string>();
      EMBER_CHECK(s.find('/') == std::string::npos && s.find("..") == std::string::npos, op, ": '", index.string(),
                  "': shard name '", s, "' must be a file in the same folder");
      shards.insert((fs::path(dir) / s).string());
    }
    EMBER_CHECK(!shards.empty(), op, ": '", index.string(), "' lists no shards");
    return {shards.begin(), shards.end()};
  }
  if (fs::exists(fs::path(dir) / "pytorch_model.bin", ec))
    EMBER_FAIL(op, ": '", dir, "' has pytorch_model.bin but no model.safetensors; Ember reads safetensors only. "
               "Convert it once in Python: `from transformers import AutoModel; "
               "AutoModel.from_pretrained(d).save_pretrained(d, safe_serialization=True)` (or use the Hub's "
               "model.safetensors)");
  EMBER_FAIL(op, ": '", dir, "' has no model.safetensors (nor model.safetensors.index.json)");
}

}  // namespace detail

/// Reads every tensor of the folder's weight file(s), in file order.
inline nn::StateDict read_pretrained_weights(const std::string& dir, const char* op = "from_pretrained") {
  nn::StateDict sd;
  for (const auto& f : detail::weight_files(dir, op))
    for (const auto& [k, t] : io::load_safetensors(f)) {
      EMBER_CHECK(!sd.contains(k), op, ": tensor '", k, "' appears in more than one shard of '", dir, "'");
      sd.insert(k, t);
    }
  return sd;
}

/// Copies `file` (a Hugging Face state dict read from `source`) into `model` with the rules of
/// the header comment; returns what was missing, unused and renamed.
inline LoadReport load_hf_state_dict(nn::Module& model, const nn::StateDict& file, const KeyRules& rules,
                                     const std::string& source) {
  const std::string op = model.name() + "::from_pretrained";
  LoadReport rep;
  nn::StateDict own_all = model.state_dict();
  nn::StateDict own;
  for (const auto& [k, t] : own_all)
    if (!rules.tied.count(k)) own.insert(k, t);

  const std::string pre = rules.base_prefix.empty() ? "" : rules.base_prefix + ".";
  bool model_prefixed = false, file_prefixed = false;
  if (!pre.empty()) {
    for (const auto& [k, t] : own) model_prefixed = model_prefixed || detail::starts_with(k, pre);
    for (const auto& [k, t] : file) file_prefixed = file_prefixed || detail::starts_with(k, pre);
  }

  std::map<std::string, Tensor> mapped;  // model key → tensor
  std::map<std::string, std::string> origin;
  std::vector<std::string> unexpected;
  for (const auto& [orig, t] : file) {
    std::string k = orig;
    // Legacy TF-era LayerNorm names.
    auto dot = k.rfind('.');
    std::string last = dot == std::string::npos ? k : k.substr(dot + 1);
    std::string head = dot == std::string::npos ? "" : k.substr(0, dot + 1);
    if (last == "gamma") k = head + "weight";
    else if (last == "beta") k = head + "bias";
    if (!pre.empty()) {
      if (model_prefixed && !file_prefixed && own.contains(pre + k)) k = pre + k;
      else if (!model_prefixed && file_prefixed && detail::starts_with(k, pre)) k = k.substr(pre.size());
    }
    if (k.size() >= 12 && k.compare(k.size() - 12, 12, "position_ids") == 0) continue;  // never saved any more
    if (rules.tied.count(k)) continue;  // its tensor comes from the key it is tied to
    if (!own.contains(k)) {
      auto a = rules.aliases.find(k);
      if (a != rules.aliases.end()) {
        if (file.contains(a->second) || mapped.count(a->second)) continue;  // both spellings: the main one wins
        k = a->second;
      }
    }
    if (!own.contains(k)) {
      unexpected.push_back(orig);
      continue;
    }
    EMBER_CHECK(!mapped.count(k), op, ": '", source, "' holds two tensors for '", k, "' ('", origin[k], "' and '", orig,
                "')");
    if (k != orig) rep.renamed_keys.push_back(orig + " -> " + k);
    mapped[k] = t;
    origin[k] = orig;
  }

  std::vector<std::string> mismatched;
  for (const auto& [k, t] : own) {
    auto it = mapped.find(k);
    if (it == mapped.end()) {
      rep.missing_keys.push_back(k);
      continue;
    }
    const Tensor& src = it->second;
    if (src.sizes() != t.sizes()) {
      std::ostringstream os;
      os << "size mismatch for " << k << ": copying a param with shape " << src.sizes() << " from checkpoint, the shape in "
         << "current model is " << t.sizes();
      mismatched.push_back(os.str());
    } else if (!src.is_floating_point() && t.is_floating_point()) {
      std::ostringstream os;
      os << k << ": the checkpoint stores it as " << src.dtype() << ", expected a floating point tensor";
      mismatched.push_back(os.str());
    }
  }
  if (!mismatched.empty()) {
    std::ostringstream os;
    os << op << ": error(s) in loading '" << source << "' (does config.json describe this checkpoint?):";
    for (const auto& m : mismatched) os << "\n  " << m << ".";
    throw Error(os.str());
  }
  EMBER_CHECK(!mapped.empty(), op, ": none of the ", file.size(), " tensors in '", source, "' is a parameter of ",
              model.name(), " (first key: '", file.empty() ? std::string() : file.keys().front(),
              "'); is this a checkpoint of another model?");
  {
    NoGradGuard ng;
    for (const auto& [k, t] : own) {
      auto it = mapped.find(k);
      if (it == mapped.end()) continue;
      Tensor dst = t;
      dst.copy_(it->second);
      ++rep.loaded;
    }
  }
  rep.unexpected_keys = std::move(unexpected);
  return rep;
}

using LoadReportPtr = LoadReport*;  // EMBER_ARG pastes its type after `const`

/// from_pretrained's options.
struct PretrainedOptions {
  /// Classification heads: the number of labels (default: config.json's id2label, else 2).
  EMBER_ARG(std::optional<int64_t>, num_labels) = std::nullopt;
  /// Print Hugging Face's warnings about unused and newly initialised weights on stderr.
  EMBER_ARG(bool, verbose) = true;
  /// Where to store the LoadReport (may be null).
  EMBER_ARG(LoadReportPtr, report) = nullptr;
};

/// Builds the model with `make()` and loads the folder's weights into it (the from_pretrained of
/// every model family).
template <typename Make>
auto load_pretrained(const std::string& dir, const PretrainedOptions& o, const KeyRules& rules, Make make) {
  auto model = make();
  nn::StateDict sd = read_pretrained_weights(dir, "from_pretrained");
  LoadReport rep = load_hf_state_dict(*model, sd, rules, dir);
  if (o.verbose()) std::cerr << rep.warnings(model->name(), dir) << std::flush;
  if (o.report()) *o.report() = rep;
  return model;
}

/// Writes `state` (without the tied keys) to `dir`/model.safetensors with {"format": "pt"}.
inline void save_hf_weights(const std::string& dir, const nn::StateDict& state, const KeyRules& rules) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  EMBER_CHECK(!ec && std::filesystem::is_directory(dir), "save_pretrained: cannot create the folder '", dir, "': ",
              ec.message());
  nn::StateDict out;
  for (const auto& [k, t] : state)
    if (!rules.tied.count(k)) out.insert(k, t.contiguous());
  io::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), out, {{"format", "pt"}});
}

}  // namespace ember::models
