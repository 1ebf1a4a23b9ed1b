#pragma once
/// StateDict: an insertion-ordered name → Tensor map, what `Module::state_dict()` and
/// `Optimizer::state_dict()` return and what checkpoints (io/safetensors) store. Keys are dotted
/// paths ("features.0.weight", "state.3.exp_avg"); iteration follows insertion order, as Python's
/// OrderedDict does, so a saved file lists tensors in registration order.
///
/// Example:
/// ```
///   ember::nn::StateDict sd = model->state_dict();
///   for (const auto& [name, t] : sd) std::cout << name << " " << t.sizes() << "\n";
///   model->load_state_dict(sd);
/// ```
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"

namespace ember::nn {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;
  using const_iterator = std::vector<Item>::const_iterator;

  StateDict() = default;
  StateDict(std::initializer_list<Item> items) {
    for (const auto& [k, v] : items) insert(k, v);
  }

  /// Adds `key`, or replaces its value in place (keeping its position).
  void insert(const std::string& key, Tensor value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      items_[it->second].second = std::move(value);
      return;
    }
    index_.emplace(key, items_.size());
    items_.emplace_back(key, std::move(value));
  }
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  /// The value of `key`; throws ember::Error naming the key when it is absent.
  const Tensor& at(const std::string& key) const {
    auto it = index_.find(key);
    EMBER_CHECK(it != index_.end(), "StateDict: no entry named '", key, "'");
    return items_[it->second].second;
  }
  Tensor& at(const std::string& key) {
    auto it = index_.find(key);
    EMBER_CHECK(it != index_.end(), "StateDict: no entry named '", key, "'");
    return items_[it->second].second;
  }
  const Tensor& operator[](const std::string& key) const { return at(key); }
  /// Removes `key`; returns whether it was present.
  bool erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(it->second));
    rebuild_index();
    return true;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    k.reserve(items_.size());
    for (const auto& it : items_) k.push_back(it.first);
    return k;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  void rebuild_index() {
    index_.clear();
    for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  }
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace ember::nn
