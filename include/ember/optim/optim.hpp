#pragma once
/// Umbrella header for ember::optim: optimizers and learning-rate schedulers.
#include "ember/optim/adam.hpp"
#include "ember/optim/linear_warmup_decay.hpp"
#include "ember/optim/lr_scheduler.hpp"
#include "ember/optim/optimizer.hpp"
#include "ember/optim/rmsprop.hpp"
#include "ember/optim/sgd.hpp"
#include "ember/optim/weight_decay_groups.hpp"
