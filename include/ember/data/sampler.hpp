#pragma once
/// Samplers: the order in which a DataLoader visits a dataset in one epoch. A sampler is a pure
/// function of (dataset size, seed, epoch), so epoch e of a run is the same permutation whether
/// it runs first or after a `--resume`, and whatever the number of worker threads.
///
/// Example:
/// ```
///   ember::data::RandomSampler s;
///   auto order = s.indices(10, 42, 0);  // a permutation of 0..9; epoch 1 gives another
/// ```
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/philox.hpp"
#include "ember/data/dataset.hpp"

namespace ember::data {

/// Decides the order of one epoch.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// The indices to visit in epoch `epoch` of a dataset of size `n`.
  virtual std::vector<int64_t> indices(int64_t n, uint64_t seed, int64_t epoch) const = 0;
};

/// A random permutation of 0..n-1 that depends only on (seed, stream): Fisher-Yates driven by
/// Philox with a key mixed from both (torch.randperm with a generator seeded per epoch).
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  EMBER_CHECK(n >= 0, "permutation: n must be non-negative, got ", n);
  const uint64_t key = detail::mix64(detail::mix64(seed) ^ (stream * 0xD1B54A32D192ED03ull + 0x5EED));
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    auto r = philox::philox4x32(key, static_cast<uint64_t>(i));
    uint64_t v = (static_cast<uint64_t>(r.x) << 32) | r.y;  // 64 bits: modulo bias below 2^-40
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(v % static_cast<uint64_t>(i + 1))]);
  }
  return p;
}

/// 0, 1, ..., n-1 in every epoch.
class SequentialSampler : public Sampler {
 public:
  std::vector<int64_t> indices(int64_t n, uint64_t, int64_t) const override {
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
    return p;
  }
};

/// A fresh permutation each epoch, a function of (seed, epoch).
class RandomSampler : public Sampler {
 public:
  std::vector<int64_t> indices(int64_t n, uint64_t seed, int64_t epoch) const override {
    return permutation(n, seed, static_cast<uint64_t>(epoch));
  }
};

/// Visits only `indices`, in a fresh random order each epoch (torch SubsetRandomSampler), e.g.
/// a validation split of one dataset without copying it.
class SubsetRandomSampler : public Sampler {
 public:
  explicit SubsetRandomSampler(std::vector<int64_t> indices) : indices_(std::move(indices)) {}
  std::vector<int64_t> indices(int64_t n, uint64_t seed, int64_t epoch) const override {
    for (int64_t i : indices_) detail::check_index(i, n, "SubsetRandomSampler");
    auto p = permutation(static_cast<int64_t>(indices_.size()), seed, static_cast<uint64_t>(epoch));
    for (auto& v : p) v = indices_[static_cast<size_t>(v)];
    return p;
  }

 private:
  std::vector<int64_t> indices_;
};

/// Splits `dataset` into non-overlapping random subsets of the given lengths, which must add up
/// to its size (torch.utils.data.random_split); the split depends only on `seed`.
/// Example: `auto parts = random_split(std::make_shared<MNIST>(mnist), {55000, 5000}, 42);`
inline std::vector<Subset> random_split(const DatasetPtr& dataset, const std::vector<int64_t>& lengths, uint64_t seed) {
  EMBER_CHECK(dataset != nullptr, "random_split: the dataset is null");
  int64_t total = 0;
  for (int64_t l : lengths) {
    EMBER_CHECK(l >= 0, "random_split: lengths must be non-negative, got ", l);
    total += l;
  }
  EMBER_CHECK(total == dataset->size(), "random_split: the lengths add up to ", total, " but the dataset has ",
              dataset->size(), " examples");
  auto p = permutation(total, seed, ~0ull);
  std::vector<Subset> parts;
  int64_t start = 0;
  for (int64_t l : lengths) {
    parts.emplace_back(dataset, std::vector<int64_t>(p.begin() + start, p.begin() + start + l));
    start += l;
  }
  return parts;
}

}  // namespace ember::data
