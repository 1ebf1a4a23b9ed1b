#pragma once
/// nn::functional (alias nn::F): the stateless functions beside the modules, spelled as in
/// torch.nn.functional. Activations, linear, dropout and softmax are Ember's ops re-exported;
/// the losses are defined in nn/loss.hpp.
///
/// Example:
/// ```
///   namespace F = ember::nn::functional;
///   auto h = F::relu(F::linear(x, w, b));
///   h = F::dropout(h, 0.5, model->is_training());
///   auto loss = F::cross_entropy(h, y);
/// ```
#include "ember/nn/loss.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/softmax.hpp"
#include "ember/ops/unary.hpp"

namespace ember::nn {
namespace functional {
using ember::dropout;
using ember::elu;
using ember::embedding;
using ember::gelu;
using ember::hardtanh;
using ember::leaky_relu;
using ember::linear;
using ember::log_softmax;
using ember::logsumexp;
using ember::one_hot;
using ember::relu;
using ember::sigmoid;
using ember::silu;
using ember::softmax;
using ember::softplus;
using ember::tanh;
}  // namespace functional
namespace F = functional;
}  // namespace ember::nn
