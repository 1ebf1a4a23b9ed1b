#pragma once
/// optim::LinearWarmupDecayLR: Hugging Face's get_linear_schedule_with_warmup, the schedule BERT
/// fine-tuning and pre-training use. Stepped once per optimizer step (not per epoch):
///   factor(s) = s / max(1, warmup)                                       for s < warmup
///             = max(0, (total - s) / max(1, total - warmup))              afterwards
///   lr = base_lr * factor(s)
/// so the lr rises from 0 to base_lr over num_warmup_steps and falls linearly to 0 at
/// num_training_steps (and stays 0 after). Construction sets s = 0 (lr 0 when warmup > 0), as
/// transformers' LambdaLR does; state_dict()/load_state_dict() as every LRScheduler.
///
/// Example (with gradient accumulation: step the schedule with the optimizer):
/// ```
///   ember::optim::AdamW opt(ember::optim::weight_decay_groups(*model, ember::optim::AdamWOptions(2e-5).weight_decay(0.01)));
///   const int64_t total = epochs * (batches_per_epoch / accum);
///   ember::optim::LinearWarmupDecayLR sched(opt, /*num_warmup_steps=*/total / 10, total);
///   for (...) { loss.backward(); if (++k % accum == 0) { opt.step(); sched.step(); opt.zero_grad(); } }
/// ```
#include <algorithm>

#include "ember/optim/lr_scheduler.hpp"

namespace ember::optim {

class LinearWarmupDecayLR : public LRScheduler {
 public:
  LinearWarmupDecayLR(Optimizer& optimizer, int64_t num_warmup_steps, int64_t num_training_steps)
      : LRScheduler(optimizer, "LinearWarmupDecayLR"), warmup_(num_warmup_steps), total_(num_training_steps) {
    EMBER_CHECK(num_warmup_steps >= 0, "LinearWarmupDecayLR: num_warmup_steps must be non-negative, got ",
                num_warmup_steps);
    EMBER_CHECK(num_training_steps >= 0, "LinearWarmupDecayLR: num_training_steps must be non-negative, got ",
                num_training_steps);
    initial_step();
  }

  /// The multiplier of base_lr at optimizer step `s`.
  double factor(int64_t s) const {
    if (s < warmup_) return static_cast<double>(s) / static_cast<double>(std::max<int64_t>(1, warmup_));
    return std::max(0.0, static_cast<double>(total_ - s) / static_cast<double>(std::max<int64_t>(1, total_ - warmup_)));
  }
  int64_t num_warmup_steps() const { return warmup_; }
  int64_t num_training_steps() const { return total_; }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> lrs;
    for (double b : base_lrs_) lrs.push_back(b * factor(last_epoch_));
    return lrs;
  }

 private:
  int64_t warmup_, total_;
};

}  // namespace ember::optim
