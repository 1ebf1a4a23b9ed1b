#pragma once
/// optim::weight_decay_groups: the two parameter groups of the BERT recipe (and transformers'
/// Trainer): weights with weight decay, and without it the biases and every LayerNorm parameter.
/// A parameter is "no decay" when it belongs to an nn::LayerNorm, when its name's last component
/// contains "bias" (cls.predictions.bias included), or when its name mentions "LayerNorm" /
/// "layer_norm" (norm layers of other types). Parameters that do not require grad are left out;
/// a tied parameter (the masked-LM decoder) appears once, under its first name.
///
/// Example:
/// ```
///   auto groups = ember::optim::weight_decay_groups(*model, ember::optim::AdamWOptions(2e-5).weight_decay(0.01));
///   ember::optim::AdamW opt(groups, ember::optim::AdamWOptions(2e-5));
///   // groups[0]: decay 0.01 (weights, embeddings); groups[1]: decay 0 (biases, LayerNorm)
/// ```
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/nn/layer_norm.hpp"
#include "ember/nn/module.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::optim {

/// Names and tensors of the parameters with and without weight decay (see the header comment).
struct DecaySplit {
  std::vector<std::pair<std::string, Tensor>> decay, no_decay;
};

inline DecaySplit split_weight_decay(const nn::Module& model) {
  std::unordered_set<const TensorImpl*> norm_params;
  for (const auto& [name, m] : model.named_modules())
    if (dynamic_cast<const nn::LayerNorm*>(m.get()))
      for (const auto& p : m->parameters()) norm_params.insert(p.impl());
  DecaySplit s;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    const auto dot = name.rfind('.');
    const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
    const bool no = norm_params.count(p.impl()) || last.find("bias") != std::string::npos ||
                    name.find("LayerNorm") != std::string::npos || name.find("layer_norm") != std::string::npos;
    (no ? s.no_decay : s.decay).emplace_back(name, p);
  }
  return s;
}

/// {decay group with `options`, no-decay group with `options` and weight_decay 0}; a group
/// with no parameters is left out.
template <typename Options>
std::vector<ParamGroup> weight_decay_groups(const nn::Module& model, const Options& options) {
  DecaySplit s = split_weight_decay(model);
  auto tensors = [](const auto& v) {
    std::vector<Tensor> t;
    for (const auto& [n, p] : v) t.push_back(p);
    return t;
  };
  std::vector<ParamGroup> groups;
  if (!s.decay.empty()) groups.emplace_back(tensors(s.decay), options);
  if (!s.no_decay.empty()) {
    Options none = options;
    none.weight_decay(0.0);
    groups.emplace_back(tensors(s.no_decay), none);
  }
  return groups;
}

}  // namespace ember::optim
