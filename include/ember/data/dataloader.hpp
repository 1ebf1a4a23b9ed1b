#pragma once
/// DataLoader: batches of a dataset in a seeded order, optionally built by worker threads that
/// prefetch while the model trains (torch.utils.data.DataLoader).
///
/// Reproducibility: epoch e visits the sampler's order for (seed, e) and every random transform
/// applied while building batch b draws from a Philox stream keyed by (seed, e, b). So the same
/// seed gives the same batches with 0, 1 or 8 workers, and `set_epoch(e)` after `--resume`
/// continues exactly; `set_epoch(e, k)` continues in the middle of epoch e at batch k (a
/// checkpoint saved after k steps), building neither the skipped batches nor their augmentation.
/// Without an explicit seed one is drawn from the default generator when the loader is made, so
/// `ember::manual_seed(s)` before it makes the run reproducible too.
///
/// Workers: `num_workers` threads claim batches in order and may run at most
/// `num_workers * prefetch_factor` batches ahead of the consumer; batches come out in order. An
/// exception thrown while building a batch is rethrown by the loop when it reaches that batch, as
/// an ember::Error "DataLoader: dataset index i (batch b of epoch e): <original message>": the
/// loader finds the failing example by building the batch's examples one at a time (only on this
/// error path), or names the batch's indices when no single example fails (a collate error).
/// Leaving the loop early (break, exception) stops and joins the workers when the iterator dies.
///
/// Example:
/// ```
///   auto train = ember::data::MNIST(dir, true);
///   ember::data::DataLoader loader(train, ember::data::DataLoaderOptions().batch_size(32)
///                                             .shuffle(true).num_workers(2).seed(1));
///   for (auto& batch : loader) {                 // batch.data [32, 1, 28, 28], batch.target [32]
///     auto loss = ember::nn::F::cross_entropy(model->forward(batch.data), batch.target);
///   }
/// ```
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/philox.hpp"
#include "ember/data/dataset.hpp"
#include "ember/data/sampler.hpp"
#include "ember/nn/options.hpp"

namespace ember::data {

/// Options in the libtorch style: `DataLoaderOptions().batch_size(32).shuffle(true)`.
struct DataLoaderOptions {
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}
  /// Examples per batch.
  EMBER_ARG(int64_t, batch_size) = 1;
  /// A fresh random order each epoch (RandomSampler) instead of 0..n-1.
  EMBER_ARG(bool, shuffle) = false;
  /// Drop the last batch when it is smaller than batch_size.
  EMBER_ARG(bool, drop_last) = false;
  /// Threads that build batches ahead of the consumer; 0 builds them on the calling thread.
  EMBER_ARG(int64_t, num_workers) = 0;
  /// Batches each worker may have ready ahead of the consumer.
  EMBER_ARG(int64_t, prefetch_factor) = 2;
  /// Seed of the shuffle and of random transforms; unset draws one from the default generator.
  EMBER_ARG(std::optional<uint64_t>, seed);
};

namespace detail {

/// One pass over the data: the batch index lists, and the worker threads when there are any.
/// Owned by the iterators of that pass; its destructor stops and joins the workers.
class LoaderEpoch {
 public:
  /// Runs `batches` from index `first` on (the earlier ones are skipped, never built).
  LoaderEpoch(DatasetPtr dataset, std::vector<std::vector<int64_t>> batches, uint64_t key, int64_t epoch,
              int64_t workers, int64_t prefetch, size_t first = 0)
      : dataset_(std::move(dataset)), batches_(std::move(batches)), key_(key), epoch_(epoch),
        next_claim_(first), next_out_(first) {
    const size_t n = batches_.size();
    if (workers <= 0 || n <= first) return;
    capacity_ = static_cast<size_t>(std::max<int64_t>(1, workers * std::max<int64_t>(prefetch, 1)));
    slots_.resize(capacity_);
    const size_t threads = std::min(static_cast<size_t>(workers), n - first);
    threads_.reserve(threads);
    for (size_t t = 0; t < threads; ++t) threads_.emplace_back([this] { work(); });
  }
  ~LoaderEpoch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    can_work_.notify_all();
    for (auto& t : threads_) t.join();
  }
  LoaderEpoch(const LoaderEpoch&) = delete;
  LoaderEpoch& operator=(const LoaderEpoch&) = delete;

  /// Moves the next batch in order into `out`; false after the last. Rethrows a worker's
  /// exception (the batch is then consumed: the following call returns the one after it).
  bool next(Example& out) {
    if (next_out_ >= batches_.size()) return false;
    if (threads_.empty()) {
      out = make_batch(next_out_++);
      return true;
    }
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mu_);
      Slot& s = slots_[next_out_ % capacity_];
      can_consume_.wait(lock, [&] { return s.ready; });
      slot = std::move(s);
      s = Slot();
      ++next_out_;
    }
    can_work_.notify_all();  // a slot is free: a worker may claim the next batch
    if (slot.error) std::rethrow_exception(slot.error);
    out = std::move(slot.batch);
    return true;
  }

 private:
  struct Slot {
    Example batch;
    std::exception_ptr error;
    bool ready = false;
  };

  Example make_batch(size_t b) const {
    NoGradGuard no_grad;  // loading never records a graph
    try {
      BatchRandomScope rng(key_, static_cast<uint64_t>(b));
      return dataset_->get_batch(batches_[b]);
    } catch (const std::exception& e) {
      throw_located(b, e.what());
    } catch (...) {
      throw_located(b, "an exception that is not a std::exception");
    }
  }

  /// Rethrows a failure of batch `b` naming the dataset index it came from. The batch's examples
  /// are built again one at a time (each with a fresh random stream) until one throws; the
  /// first to throw is the index, and its own message is kept.
  [[noreturn]] void throw_located(size_t b, const std::string& what) const {
    const auto& idx = batches_[b];
    for (int64_t i : idx) {
      std::string err;
      try {
        BatchRandomScope rng(key_, static_cast<uint64_t>(b));
        (void)dataset_->get(i);
      } catch (const std::exception& e) {
        err = e.what();
      } catch (...) {
        err = what;
      }
      if (!err.empty())
        EMBER_FAIL("DataLoader: dataset index ", i, " (batch ", b, " of epoch ", epoch_, "): ", err);
    }
    std::ostringstream list;
    for (size_t k = 0; k < idx.size() && k < 8; ++k) list << (k ? ", " : "") << idx[k];
    if (idx.size() > 8) list << ", ... (" << idx.size() << " in all)";
    EMBER_FAIL("DataLoader: batch ", b, " of epoch ", epoch_, " (dataset indices ", list.str(), "): ", what);
  }

  void work() {
    for (;;) {
      size_t b;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // Claim the next batch only when its slot is free: batch b - capacity was consumed.
        can_work_.wait(lock, [&] { return stop_ || next_claim_ >= batches_.size() || next_claim_ < next_out_ + capacity_; });
        if (stop_ || next_claim_ >= batches_.size()) return;
        b = next_claim_++;
      }
      Slot s;
      try {
        s.batch = make_batch(b);
      } catch (...) {
        s.error = std::current_exception();
      }
      s.ready = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        slots_[b % capacity_] = std::move(s);
      }
      can_consume_.notify_all();
    }
  }

  DatasetPtr dataset_;
  std::vector<std::vector<int64_t>> batches_;
  uint64_t key_;
  int64_t epoch_;
  size_t capacity_ = 0;
  std::vector<Slot> slots_;
  size_t next_claim_;  // next batch a worker will build
  size_t next_out_;    // next batch the consumer takes
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable can_work_, can_consume_;
  std::vector<std::thread> threads_;
};

}  // namespace detail

/// Input iterator over the batches of one epoch; copies share the epoch. Compare with
/// `loader.end()` (a std::default_sentinel_t).
class DataLoaderIterator {
 public:
  using value_type = Example;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::input_iterator_tag;

  DataLoaderIterator() = default;
  explicit DataLoaderIterator(std::shared_ptr<detail::LoaderEpoch> epoch) : epoch_(std::move(epoch)) { ++*this; }

  Example& operator*() { return current_; }
  Example* operator->() { return &current_; }
  DataLoaderIterator& operator++() {
    valid_ = false;  // if next() throws, the loop is at its end rather than on a stale batch
    current_ = Example();
    if (!epoch_) return *this;
    valid_ = epoch_->next(current_);
    if (!valid_) epoch_.reset();  // the last batch is out: join the workers now
    return *this;
  }
  void operator++(int) { ++*this; }
  bool operator==(std::default_sentinel_t) const { return !valid_; }

 private:
  // (Example + flag rather than std::optional<Example>: GCC 12 warns spuriously on the latter.)
  std::shared_ptr<detail::LoaderEpoch> epoch_;
  Example current_;
  bool valid_ = false;
};

/// Batches of a dataset: `for (auto& batch : loader)` runs one epoch; each loop is the next epoch.
class DataLoader {
 public:
  /// Shares `dataset`; `sampler` overrides the order chosen by `options.shuffle()`.
  DataLoader(DatasetPtr dataset, DataLoaderOptions options = {}, std::shared_ptr<const Sampler> sampler = nullptr)
      : dataset_(std::move(dataset)), options_(std::move(options)), sampler_(std::move(sampler)) {
    EMBER_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
    EMBER_CHECK(options_.batch_size() >= 1, "DataLoader: batch_size must be at least 1, got ", options_.batch_size());
    EMBER_CHECK(options_.num_workers() >= 0, "DataLoader: num_workers must be non-negative, got ", options_.num_workers());
    EMBER_CHECK(options_.prefetch_factor() >= 1, "DataLoader: prefetch_factor must be at least 1, got ",
                options_.prefetch_factor());
    if (!sampler_) {
      if (options_.shuffle()) sampler_ = std::make_shared<RandomSampler>();
      else sampler_ = std::make_shared<SequentialSampler>();
    }
    if (options_.seed()) {
      seed_ = *options_.seed();
    } else {
      auto [key, counter] = reserve_random(1, &default_generator());
      auto r = philox::philox4x32(key, counter);
      seed_ = (static_cast<uint64_t>(r.x) << 32) | r.y;
    }
  }
  /// Copies `dataset` into the loader (datasets are cheap handles to their tensors).
  template <typename D, typename = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>>>>
  DataLoader(D&& dataset, DataLoaderOptions options = {}, std::shared_ptr<const Sampler> sampler = nullptr)
      : DataLoader(DatasetPtr(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset))), std::move(options),
                   std::move(sampler)) {}

  /// Batches per epoch (with the default samplers; a custom sampler may visit fewer examples).
  int64_t size() const {
    int64_t n = dataset_->size(), b = options_.batch_size();
    return options_.drop_last() ? n / b : (n + b - 1) / b;
  }
  /// Starts the next epoch (stopping nothing: an earlier epoch's iterators keep their own state).
  DataLoaderIterator begin() {
    auto order = sampler_->indices(dataset_->size(), seed_, epoch_);
    const size_t bs = static_cast<size_t>(options_.batch_size());
    std::vector<std::vector<int64_t>> batches;
    batches.reserve(order.size() / bs + 1);
    for (size_t start = 0; start < order.size(); start += bs) {
      size_t end = std::min(order.size(), start + bs);
      if (end - start < bs && options_.drop_last()) break;
      batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start), order.begin() + static_cast<std::ptrdiff_t>(end));
    }
    uint64_t key = detail::mix64(detail::mix64(seed_ ^ 0xA5A5A5A5A5A5A5A5ull) + static_cast<uint64_t>(epoch_));
    const size_t first = static_cast<size_t>(start_batch_);
    EMBER_CHECK(first <= batches.size(), "DataLoader: set_epoch asked to start epoch ", epoch_, " at batch ", first,
                " but the epoch has only ", batches.size(), " batches (a different data set or batch size than the",
                " checkpoint's?)");
    start_batch_ = 0;
    const int64_t e = epoch_++;
    return DataLoaderIterator(std::make_shared<detail::LoaderEpoch>(dataset_, std::move(batches), key, e,
                                                                    options_.num_workers(), options_.prefetch_factor(),
                                                                    first));
  }
  std::default_sentinel_t end() const { return {}; }

  /// The epoch the next loop will run (0 for the first).
  int64_t epoch() const { return epoch_; }
  /// Makes the next loop run epoch `e`: its order and augmentation, as when resuming a run. With
  /// `start_batch` k > 0 that loop starts at batch k of the epoch (resuming after k steps): the
  /// same batches, in the same order and with the same augmentation, as batches k, k+1, ... of a
  /// full pass; batches 0..k-1 are not built. Later loops start at batch 0 again.
  void set_epoch(int64_t e, int64_t start_batch = 0) {
    EMBER_CHECK(e >= 0, "DataLoader::set_epoch: epoch must be non-negative, got ", e);
    EMBER_CHECK(start_batch >= 0 && start_batch <= size(), "DataLoader::set_epoch: start_batch must be in [0, ", size(),
                "] (the batches per epoch), got ", start_batch);
    epoch_ = e;
    start_batch_ = start_batch;
  }
  /// The batch the next loop starts at (0 unless set_epoch said otherwise).
  int64_t start_batch() const { return start_batch_; }
  /// The seed in use (the explicit one, or the one drawn at construction).
  uint64_t seed() const { return seed_; }
  const DataLoaderOptions& options() const { return options_; }
  const DatasetPtr& dataset() const { return dataset_; }

 private:
  DatasetPtr dataset_;
  DataLoaderOptions options_;
  std::shared_ptr<const Sampler> sampler_;
  uint64_t seed_ = 0;
  int64_t epoch_ = 0;
  int64_t start_batch_ = 0;
};

}  // namespace ember::data
