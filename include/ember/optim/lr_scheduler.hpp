#pragma once
/// Learning-rate schedulers with torch.optim.lr_scheduler's semantics: construction sets epoch 0
/// (and the epoch-0 lr), each `step()` advances one epoch and writes the new lr into every
/// parameter group. The recursive ("chainable") forms PyTorch uses are used here too, so lr
/// sequences match torch's to rounding. ReduceLROnPlateau instead steps on a metric.
///
/// Example:
/// ```
///   ember::optim::SGD opt(model->parameters(), ember::optim::SGDOptions(0.1).momentum(0.9));
///   ember::optim::StepLR sched(opt, /*step_size=*/30, /*gamma=*/0.1);
///   for (int epoch = 0; epoch < 90; ++epoch) { train_one_epoch(); sched.step(); }
///   ember::optim::ReduceLROnPlateau plateau(opt, ember::optim::ReduceLROnPlateauOptions().patience(5));
///   plateau.step(val_loss);
/// ```
///
/// Every scheduler has state_dict()/load_state_dict() (a StateDict of float64 tensors), saved in
/// checkpoints beside the optimizer's.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

namespace detail {
inline Tensor f64(double v) { return scalar_tensor(v, kFloat64); }
inline double get_f64(const nn::StateDict& sd, const std::string& key, const char* op) {
  EMBER_CHECK(sd.contains(key), op, "::load_state_dict: missing key '", key, "'");
  return sd.at(key).to(kFloat64).item<double>();
}
}  // namespace detail

/// The base of epoch-based schedulers: subclasses give the lr of each group at `last_epoch_`
/// from the current lrs (get_lr).
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch and sets each group's lr.
  void step() {
    ++step_count_;
    ++last_epoch_;
    apply(get_lr());
  }
  /// The lrs set by the last step (or the constructor).
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  virtual nn::StateDict state_dict() const {
    nn::StateDict sd;
    sd.insert("last_epoch", detail::f64(static_cast<double>(last_epoch_)));
    sd.insert("step_count", detail::f64(static_cast<double>(step_count_)));
    sd.insert("base_lrs", tensor(base_lrs_, {static_cast<int64_t>(base_lrs_.size())}));
    sd.insert("last_lr", tensor(last_lr_, {static_cast<int64_t>(last_lr_.size())}));
    return sd;
  }
  /// Restores the schedule position (the optimizer's lrs come from the optimizer's own state_dict).
  virtual void load_state_dict(const nn::StateDict& sd) {
    last_epoch_ = static_cast<int64_t>(detail::get_f64(sd, "last_epoch", name_.c_str()));
    step_count_ = static_cast<int64_t>(detail::get_f64(sd, "step_count", name_.c_str()));
    for (const char* k : {"base_lrs", "last_lr"}) {
      EMBER_CHECK(sd.contains(k), name_, "::load_state_dict: missing key '", k, "'");
      auto v = sd.at(k).to(kFloat64).to_vector<double>();
      EMBER_CHECK(v.size() == base_lrs_.size(), name_, "::load_state_dict: '", k, "' has ", v.size(),
                  " entries but the optimizer has ", base_lrs_.size(), " parameter groups");
      (std::string(k) == "base_lrs" ? base_lrs_ : last_lr_) = v;
    }
  }

 protected:
  LRScheduler(Optimizer& optimizer, std::string name) : optimizer_(optimizer), name_(std::move(name)) {
    for (auto& g : optimizer_.param_groups()) base_lrs_.push_back(g.options().get_lr());
  }
  /// The epoch-0 step PyTorch's constructor performs; each derived constructor calls it last.
  void initial_step() { step(); }
  /// The new lr of every group at last_epoch_.
  virtual std::vector<double> get_lr() = 0;
  std::vector<double> current_lrs() const {
    std::vector<double> v;
    for (auto& g : optimizer_.param_groups()) v.push_back(g.options().get_lr());
    return v;
  }
  void apply(const std::vector<double>& lrs) {
    auto& groups = optimizer_.param_groups();
    for (size_t i = 0; i < groups.size() && i < lrs.size(); ++i) groups[i].options().set_lr(lrs[i]);
    last_lr_ = lrs;
  }

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
};

/// lr = base_lr * gamma^(epoch / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1)
      : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
    EMBER_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    auto lrs = current_lrs();
    if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
    for (auto& lr : lrs) lr *= gamma_;
    return lrs;
  }

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr multiplied by gamma at each milestone epoch (a milestone listed twice applies gamma twice).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1)
      : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    auto lrs = current_lrs();
    auto n = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
    if (n == 0) return lrs;
    for (auto& lr : lrs) lr *= std::pow(gamma_, static_cast<double>(n));
    return lrs;
  }

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

/// Cosine annealing from base_lr to eta_min over T_max epochs (then back up, periodically):
/// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0)
      : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
    EMBER_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", T_max);
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    auto lrs = current_lrs();
    if (last_epoch_ == 0) return lrs;
    const double pi = std::numbers::pi, T = static_cast<double>(T_max_), e = static_cast<double>(last_epoch_);
    for (size_t i = 0; i < lrs.size(); ++i) {
      if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0)
        lrs[i] = lrs[i] + (base_lrs_[i] - eta_min_) * (1 - std::cos(pi / T)) / 2;
      else
        lrs[i] = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lrs[i] - eta_min_) + eta_min_;
    }
    return lrs;
  }

 private:
  int64_t T_max_;
  double eta_min_;
};

/// Linear warmup (torch's LinearLR): the lr factor goes linearly from start_factor to end_factor
/// over total_iters epochs, then stays.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3.0, double end_factor = 1.0, int64_t total_iters = 5)
      : LRScheduler(optimizer, "LinearLR"), start_(start_factor), end_(end_factor), total_(total_iters) {
    EMBER_CHECK(start_factor > 0 && start_factor <= 1, "LinearLR: start_factor expected in (0, 1], got ", start_factor);
    EMBER_CHECK(end_factor >= 0 && end_factor <= 1, "LinearLR: end_factor expected in [0, 1], got ", end_factor);
    EMBER_CHECK(total_iters > 0, "LinearLR: total_iters must be positive, got ", total_iters);
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    auto lrs = current_lrs();
    if (last_epoch_ == 0) {
      for (auto& lr : lrs) lr *= start_;
      return lrs;
    }
    if (last_epoch_ > total_) return lrs;
    double f = 1.0 + (end_ - start_) / (static_cast<double>(total_) * start_ +
                                        static_cast<double>(last_epoch_ - 1) * (end_ - start_));
    for (auto& lr : lrs) lr *= f;
    return lrs;
  }

 private:
  double start_, end_;
  int64_t total_;
};
/// A linear warmup is LinearLR under the name recipes use.
using LinearWarmup = LinearLR;

/// lr = base_lr * lr_lambda(epoch) (the same function for every group).
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> lr_lambda)
      : LRScheduler(optimizer, "LambdaLR"), fn_(std::move(lr_lambda)) {
    EMBER_CHECK(fn_ != nullptr, "LambdaLR: lr_lambda is empty");
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> lrs;
    for (double b : base_lrs_) lrs.push_back(b * fn_(last_epoch_));
    return lrs;
  }

 private:
  std::function<double(int64_t)> fn_;
};

struct ReduceLROnPlateauOptions {
  enum class Mode { Min, Max };
  enum class ThresholdMode { Rel, Abs };
  /// Min: the metric should decrease (a loss); Max: increase (an accuracy).
  EMBER_ARG(Mode, mode) = Mode::Min;
  /// new_lr = lr * factor.
  EMBER_ARG(double, factor) = 0.1;
  /// Epochs without improvement tolerated before the lr is reduced.
  EMBER_ARG(int64_t, patience) = 10;
  /// What counts as an improvement: relative (best * (1 -/+ threshold)) or absolute.
  EMBER_ARG(double, threshold) = 1e-4;
  EMBER_ARG(ThresholdMode, threshold_mode) = ThresholdMode::Rel;
  /// Epochs to wait after a reduction before counting bad epochs again.
  EMBER_ARG(int64_t, cooldown) = 0;
  /// Lower bound on every group's lr.
  EMBER_ARG(double, min_lr) = 0.0;
  /// Reductions smaller than eps are skipped.
  EMBER_ARG(double, eps) = 1e-8;
};

/// Divides the lr by 1/factor when a metric has stopped improving for `patience` epochs.
class ReduceLROnPlateau {
 public:
  using Options = ReduceLROnPlateauOptions;
  explicit ReduceLROnPlateau(Optimizer& optimizer, const Options& options = {})
      : optimizer_(optimizer), o_(options) {
    EMBER_CHECK(options.factor() < 1.0, "ReduceLROnPlateau: factor should be < 1.0, got ", options.factor());
    best_ = worse();
    for (auto& g : optimizer_.param_groups()) last_lr_.push_back(g.options().get_lr());
  }

  /// Records one epoch's metric, reducing the lr when it has plateaued.
  void step(double metric) {
    ++last_epoch_;
    if (is_better(metric)) {
      best_ = metric;
      num_bad_epochs_ = 0;
    } else {
      ++num_bad_epochs_;
    }
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      num_bad_epochs_ = 0;
    }
    if (num_bad_epochs_ > o_.patience()) {
      for (auto& g : optimizer_.param_groups()) {
        double old_lr = g.options().get_lr();
        double new_lr = std::max(old_lr * o_.factor(), o_.min_lr());
        if (old_lr - new_lr > o_.eps()) g.options().set_lr(new_lr);
      }
      cooldown_counter_ = o_.cooldown();
      num_bad_epochs_ = 0;
    }
    last_lr_.clear();
    for (auto& g : optimizer_.param_groups()) last_lr_.push_back(g.options().get_lr());
  }

  const std::vector<double>& get_last_lr() const { return last_lr_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }

  nn::StateDict state_dict() const {
    nn::StateDict sd;
    sd.insert("best", detail::f64(best_));
    sd.insert("num_bad_epochs", detail::f64(static_cast<double>(num_bad_epochs_)));
    sd.insert("cooldown_counter", detail::f64(static_cast<double>(cooldown_counter_)));
    sd.insert("last_epoch", detail::f64(static_cast<double>(last_epoch_)));
    return sd;
  }
  void load_state_dict(const nn::StateDict& sd) {
    const char* op = "ReduceLROnPlateau";
    best_ = detail::get_f64(sd, "best", op);
    num_bad_epochs_ = static_cast<int64_t>(detail::get_f64(sd, "num_bad_epochs", op));
    cooldown_counter_ = static_cast<int64_t>(detail::get_f64(sd, "cooldown_counter", op));
    last_epoch_ = static_cast<int64_t>(detail::get_f64(sd, "last_epoch", op));
  }

 private:
  double worse() const {
    return o_.mode() == Options::Mode::Min ? std::numeric_limits<double>::infinity()
                                           : -std::numeric_limits<double>::infinity();
  }
  bool is_better(double a) const {
    bool rel = o_.threshold_mode() == Options::ThresholdMode::Rel;
    if (o_.mode() == Options::Mode::Min)
      return rel ? a < best_ * (1.0 - o_.threshold()) : a < best_ - o_.threshold();
    return rel ? a > best_ * (o_.threshold() + 1.0) : a > best_ + o_.threshold();
  }

  Optimizer& optimizer_;
  Options o_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace ember::optim
