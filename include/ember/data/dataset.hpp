#pragma once
/// Datasets: a size and a way to get example i (torch.utils.data.Dataset / libtorch's
/// data::Dataset). An Example is a pair {data, target}; a batch is the same pair with a leading
/// batch dimension, so `for (auto& batch : loader) model->forward(batch.data)` reads like PyTorch.
///
/// `get` is const and must be safe to call from several threads at once: the DataLoader's worker
/// threads call it concurrently. `get_batch` is the hook for fast paths (TensorDataset gathers a
/// whole batch with one index_select instead of stacking 32 slices).
///
/// Example:
/// ```
///   auto ds = ember::data::TensorDataset(ember::randn({100, 3}), ember::randint(0, 2, {100}));
///   auto train = ember::data::Subset(ds, {0, 1, 2, 3});       // the first four examples
///   auto batch = ds.get_batch({5, 7});                         // data [2, 3], target [2]
/// ```
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/tensor.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/join.hpp"

namespace ember::data {

/// One example, or a batch of them: `data` and `target` (the target may be undefined for
/// unlabelled data).
struct Example {
  Tensor data;
  Tensor target;
};

/// The base of every map-style dataset. Derive, implement size() and get(); override
/// get_batch() only for a faster way than stacking get(i).
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// Example `index` (0 <= index < size()). Called concurrently from loader threads.
  virtual Example get(int64_t index) const = 0;
  /// The examples at `indices` stacked along a new leading dimension (torch's default_collate).
  virtual Example get_batch(const std::vector<int64_t>& indices) const;
};

/// Datasets are passed around by shared pointer (a loader and a Subset keep theirs alive).
using DatasetPtr = std::shared_ptr<const Dataset>;

namespace detail {

/// Throws unless 0 <= index < size, naming the dataset kind.
inline void check_index(int64_t index, int64_t size, const char* what) {
  EMBER_CHECK(index >= 0 && index < size, what, ": index ", index, " is out of range for a dataset of size ", size);
}

/// Stacks examples into a batch; every data (and every target) must have one shape. Targets are
/// stacked only when all are defined; all undefined gives an undefined batch target.
inline Example collate(const std::vector<Example>& examples) {
  EMBER_CHECK(!examples.empty(), "collate: cannot make a batch of zero examples");
  tensor_list data, target;
  data.reserve(examples.size());
  size_t with_target = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    EMBER_CHECK(examples[i].data.defined(), "collate: example ", i, " of the batch has no data tensor");
    EMBER_CHECK(examples[i].data.sizes() == examples[0].data.sizes(), "collate: examples of one batch must have one shape, "
                "got ", examples[0].data.sizes(), " (example 0) and ", examples[i].data.sizes(), " (example ", i,
                "); resize them in a transform or use batch_size 1");
    data.push_back(examples[i].data);
    if (examples[i].target.defined()) {
      ++with_target;
      target.push_back(examples[i].target);
    }
  }
  EMBER_CHECK(with_target == 0 || with_target == examples.size(), "collate: ", with_target, " of ", examples.size(),
              " examples have a target; either all or none must");
  Example out;
  out.data = stack(data, 0);
  if (with_target) out.target = stack(target, 0);
  return out;
}

/// The stream random transforms draw from inside a DataLoader: the loader installs one per batch
/// (keyed by seed and epoch, counters by batch number) on the thread that builds the batch, so
/// augmentation is reproducible and independent of the number of worker threads. Each example of
/// the batch has its own block of kRandomPerExample counters, so a transform draws the same
/// numbers for example k whether it is applied to k alone or to the whole batch.
inline constexpr uint64_t kRandomPerExample = 4096;
struct BatchRandomStream {
  uint64_t key = 0;
  uint64_t batch = 0;
  uint64_t example = 0;         // position in the batch of the example being built
  std::vector<uint64_t> used;   // counters drawn so far per example
};
inline BatchRandomStream*& current_batch_stream() {
  thread_local BatchRandomStream* stream = nullptr;
  return stream;
}

/// SplitMix64's finaliser: a cheap bijective mix used to derive Philox keys from (seed, epoch).
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace detail

/// Reserves `n` Philox counters for a random transform and returns {key, first counter}: from
/// `gen` when given, else from the DataLoader's per-batch stream when called inside a loader
/// (`image` is the position within a batch the transform was given, 0 for a single example),
/// else from the default generator (so `manual_seed` governs transforms used on their own).
inline std::pair<uint64_t, uint64_t> reserve_random(uint64_t n, Generator* gen = nullptr, uint64_t image = 0) {
  if (gen != nullptr) return {gen->seed(), gen->reserve(n)};
  if (auto* s = detail::current_batch_stream()) {
    const uint64_t k = s->example + image;
    EMBER_CHECK(k < (uint64_t{1} << 20), "reserve_random: more than 2^20 examples in one batch");
    if (s->used.size() <= k) s->used.resize(k + 1, 0);
    EMBER_CHECK(s->used[k] + n <= detail::kRandomPerExample, "reserve_random: random transforms drew more than ",
                detail::kRandomPerExample, " Philox blocks for one example");
    uint64_t c = (s->batch << 32) | (k * detail::kRandomPerExample + s->used[k]);
    s->used[k] += n;
    return {s->key, c};
  }
  auto& g = default_generator();
  return {g.seed(), g.reserve(n)};
}

/// Installs the per-batch random stream of batch `batch` on this thread for its lifetime (used
/// by the DataLoader).
class BatchRandomScope {
 public:
  BatchRandomScope(uint64_t key, uint64_t batch) : prev_(detail::current_batch_stream()) {
    stream_.key = key;
    stream_.batch = batch;
    detail::current_batch_stream() = &stream_;
  }
  ~BatchRandomScope() { detail::current_batch_stream() = prev_; }
  BatchRandomScope(const BatchRandomScope&) = delete;
  BatchRandomScope& operator=(const BatchRandomScope&) = delete;

 private:
  detail::BatchRandomStream stream_;
  detail::BatchRandomStream* prev_;
};

inline Example Dataset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<Example> examples;
  examples.reserve(indices.size());
  // Example k of the batch draws from its own block of the loader's random stream (if any).
  auto* stream = detail::current_batch_stream();
  const uint64_t base = stream ? stream->example : 0;
  for (size_t k = 0; k < indices.size(); ++k) {
    if (stream) stream->example = base + k;
    examples.push_back(get(indices[k]));
  }
  if (stream) stream->example = base;
  return detail::collate(examples);
}

/// Examples are the slices along dimension 0 of `data` and `targets` (torch TensorDataset).
/// Batches are gathered with one index_select per tensor, the fast path for in-memory data.
class TensorDataset : public Dataset {
 public:
  TensorDataset() = default;
  /// `targets` may be undefined (unlabelled data); otherwise its first dimension must match.
  explicit TensorDataset(Tensor data, Tensor targets = Tensor()) : data_(std::move(data)), targets_(std::move(targets)) {
    EMBER_CHECK(data_.defined() && data_.dim() >= 1, "TensorDataset: data must be a tensor with at least one dimension",
                data_.defined() ? ember::detail::str_cat(", got shape ", data_.sizes()) : std::string(", got an undefined tensor"));
    if (targets_.defined()) {
      EMBER_CHECK(targets_.dim() >= 1 && targets_.size(0) == data_.size(0), "TensorDataset: data has ", data_.size(0),
                  " examples (shape ", data_.sizes(), ") but targets has shape ", targets_.sizes(),
                  "; the first dimensions must match");
    }
  }
  int64_t size() const override { return data_.size(0); }
  Example get(int64_t index) const override {
    detail::check_index(index, size(), "TensorDataset");
    return {data_.select(0, index), targets_.defined() ? targets_.select(0, index) : Tensor()};
  }
  Example get_batch(const std::vector<int64_t>& indices) const override {
    EMBER_CHECK(!indices.empty(), "TensorDataset: cannot make a batch of zero examples");
    for (int64_t i : indices) detail::check_index(i, size(), "TensorDataset");
    Tensor idx = tensor(indices, {static_cast<int64_t>(indices.size())}).to(data_.device());
    Example b;
    b.data = index_select(data_, 0, idx);
    if (targets_.defined()) b.target = index_select(targets_, 0, idx.to(targets_.device()));
    return b;
  }
  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 protected:
  Tensor data_, targets_;
};

/// The examples of `dataset` at `indices`, in that order (torch.utils.data.Subset). Batches are
/// forwarded to the base's get_batch, so fast paths survive.
class Subset : public Dataset {
 public:
  Subset(DatasetPtr dataset, std::vector<int64_t> indices) : dataset_(std::move(dataset)), indices_(std::move(indices)) {
    EMBER_CHECK(dataset_ != nullptr, "Subset: the dataset is null");
    for (int64_t i : indices_) detail::check_index(i, dataset_->size(), "Subset");
  }
  /// Copies `dataset` (datasets are cheap handles to their tensors).
  template <typename D, typename = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>>>>
  Subset(D&& dataset, std::vector<int64_t> indices)
      : Subset(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset)), std::move(indices)) {}

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override {
    detail::check_index(index, size(), "Subset");
    return dataset_->get(indices_[static_cast<size_t>(index)]);
  }
  Example get_batch(const std::vector<int64_t>& indices) const override {
    std::vector<int64_t> mapped;
    mapped.reserve(indices.size());
    for (int64_t i : indices) {
      detail::check_index(i, size(), "Subset");
      mapped.push_back(indices_[static_cast<size_t>(i)]);
    }
    return dataset_->get_batch(mapped);
  }
  const std::vector<int64_t>& indices() const { return indices_; }
  const DatasetPtr& dataset() const { return dataset_; }

 private:
  DatasetPtr dataset_;
  std::vector<int64_t> indices_;
};

/// Two datasets one after the other (torch.utils.data.ConcatDataset of two): indices [0, a.size())
/// are a's, the rest b's. The examples must have one shape for a batch to stack across the seam.
class ConcatDataset : public Dataset {
 public:
  ConcatDataset(DatasetPtr a, DatasetPtr b) : a_(std::move(a)), b_(std::move(b)) {
    EMBER_CHECK(a_ != nullptr && b_ != nullptr, "ConcatDataset: a dataset is null");
  }
  int64_t size() const override { return a_->size() + b_->size(); }
  Example get(int64_t index) const override {
    detail::check_index(index, size(), "ConcatDataset");
    return index < a_->size() ? a_->get(index) : b_->get(index - a_->size());
  }

 private:
  DatasetPtr a_, b_;
};

}  // namespace ember::data
