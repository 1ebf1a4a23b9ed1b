#pragma once
/// Umbrella header for ember::nn: Module and Sequential, layers, init, functional (alias F),
/// losses and utils.
#include "ember/nn/activation.hpp"
#include "ember/nn/batchnorm.hpp"
#include "ember/nn/conv.hpp"
#include "ember/nn/pool.hpp"
#include "ember/nn/dropout.hpp"
#include "ember/nn/embedding.hpp"
#include "ember/nn/flatten.hpp"
#include "ember/nn/functional.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/linear.hpp"
#include "ember/nn/loss.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/nn/sequential.hpp"
#include "ember/nn/state_dict.hpp"
#include "ember/nn/utils.hpp"
