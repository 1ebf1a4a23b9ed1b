#pragma once
// The two networks of tutorial 4 (examples/cgan_mnist) and the original's weight initialisation, in
// a header of their own so that the benchmark suite times exactly what `cgan_mnist train` trains
// (bench/bench_models.cpp, case wgan_critic_step).
//
// Module names follow the original PyTorch script (bench/peers/torch_cgan.py), so the state-dict
// keys are the same: label_emb.weight, fc.0.weight, conv.3.weight_orig, ...
//
//   auto gan = std::make_shared<cgan_mnist::CGAN>();
//   gan->apply(cgan_mnist::weights_init);
//   Tensor fake = gan->G->forward(z, y);        // z [N, 100], y [N] -> [N, 1, 28, 28] in [-1, 1]
//   Tensor score = gan->D->forward(fake, y);    // [N, 1]
#include <cstdint>
#include <memory>

#include "ember/ember.hpp"
#include "ember/nn/batchnorm.hpp"
#include "ember/nn/spectral_norm.hpp"

namespace cgan_mnist {

using ember::Tensor;
namespace nn = ember::nn;

constexpr int64_t kNoise = 100;  // nz
constexpr int64_t kClasses = 10;

inline std::shared_ptr<nn::LeakyReLU> lrelu() { return std::make_shared<nn::LeakyReLU>(nn::LeakyReLUOptions().negative_slope(0.2)); }

/// G(z, y): the label's 10-d embedding concatenated with 100-d noise, four Linear layers up to a
/// 128 x 7 x 7 map, two stride-2 transposed convolutions to 28 x 28, a 3x3 conv and Tanh.
class DigitGenerator : public nn::Module {
 public:
  DigitGenerator() : nn::Module("Generator") {
    label_emb = register_module("label_emb", std::make_shared<nn::Embedding>(kClasses, kClasses));
    fc = register_module("fc", std::make_shared<nn::Sequential>());
    fc->push_back(std::make_shared<nn::Linear>(kNoise + kClasses, 256));
    fc->push_back(lrelu());
    fc->push_back(std::make_shared<nn::Linear>(256, 512));
    fc->push_back(lrelu());
    fc->push_back(std::make_shared<nn::Linear>(512, 1024));
    fc->push_back(lrelu());
    fc->push_back(std::make_shared<nn::Linear>(1024, 128 * 7 * 7));
    fc->push_back(std::make_shared<nn::BatchNorm1d>(128 * 7 * 7));
    fc->push_back(lrelu());
    conv = register_module("conv", std::make_shared<nn::Sequential>());
    conv->push_back(std::make_shared<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(128, 128, 4).stride(2).padding(1)));  // 14x14
    conv->push_back(std::make_shared<nn::BatchNorm2d>(128));
    conv->push_back(lrelu());
    conv->push_back(std::make_shared<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(128, 64, 4).stride(2).padding(1)));  // 28x28
    conv->push_back(std::make_shared<nn::BatchNorm2d>(64));
    conv->push_back(lrelu());
    conv->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(64, 1, 3).padding(1)));
    conv->push_back(std::make_shared<nn::Tanh>());
  }
  /// Images [N, 1, 28, 28] in [-1, 1] for noise z [N, 100] and labels y [N].
  Tensor forward(const Tensor& z, const Tensor& y) {
    Tensor h = fc->forward(ember::cat({label_emb->forward(y), z}, 1));
    return conv->forward(h.view({-1, 128, 7, 7}));
  }
  std::shared_ptr<nn::Embedding> label_emb;
  std::shared_ptr<nn::Sequential> fc, conv;
};

/// D(x, y): the label's 784-d embedding as a second image channel, three convolutions (the last
/// two spectrally normalised) and two spectrally normalised Linear layers to one score, each
/// hidden layer followed by LeakyReLU(0.2) and Dropout(0.3). No sigmoid: a Wasserstein critic.
class Critic : public nn::Module {
 public:
  Critic() : nn::Module("Critic") {
    label_emb = register_module("label_emb", std::make_shared<nn::Embedding>(kClasses, 28 * 28));
    auto drop = [] { return std::make_shared<nn::Dropout>(0.3); };
    conv = register_module("conv", std::make_shared<nn::Sequential>());
    conv->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 64, 4).stride(2).padding(1)));  // 14x14
    conv->push_back(lrelu());
    conv->push_back(drop());
    conv->push_back(nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(64, 128, 4).stride(2).padding(1))));  // 7x7
    conv->push_back(lrelu());
    conv->push_back(drop());
    conv->push_back(nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(128, 256, 3).padding(1))));
    conv->push_back(lrelu());
    conv->push_back(drop());
    fc = register_module("fc", std::make_shared<nn::Sequential>());
    fc->push_back(nn::utils::spectral_norm(std::make_shared<nn::Linear>(256 * 7 * 7, 1024)));
    fc->push_back(lrelu());
    fc->push_back(drop());
    fc->push_back(nn::utils::spectral_norm(std::make_shared<nn::Linear>(1024, 1)));
  }
  /// Scores [N, 1] of images x [N, 1, 28, 28] as digits y [N].
  Tensor forward(const Tensor& x, const Tensor& y) {
    Tensor h = conv->forward(ember::cat({x, label_emb->forward(y).view({-1, 1, 28, 28})}, 1));
    return fc->forward(h.view({h.size(0), -1}));
  }
  std::shared_ptr<nn::Embedding> label_emb;
  std::shared_ptr<nn::Sequential> conv, fc;
};

/// Both networks under one module: the checkpoint's "model." tensors are generator.* and critic.*.
class CGAN : public nn::Module {
 public:
  CGAN() : nn::Module("CGAN") {
    G = register_module("generator", std::make_shared<DigitGenerator>());
    D = register_module("critic", std::make_shared<Critic>());
  }
  std::shared_ptr<DigitGenerator> G;
  std::shared_ptr<Critic> D;
};

/// The original's weights_init: Conv/ConvTranspose and Linear weights N(0, 0.02), Linear biases 0,
/// BatchNorm weights N(1, 0.02) and biases 0 (conv biases and embeddings keep PyTorch's defaults).
/// Under spectral norm the layer's weight member is weight_orig, as in PyTorch.
inline void weights_init(nn::Module& module) {
  nn::Module& m = nn::utils::unwrap_spectral_norm(module);
  if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) {
    nn::init::normal_(c->weight, 0.0, 0.02);
  } else if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(&m)) {
    nn::init::normal_(t->weight, 0.0, 0.02);
  } else if (auto* b = dynamic_cast<nn::BatchNormBase*>(&m)) {
    nn::init::normal_(b->weight, 1.0, 0.02);
    nn::init::constant_(b->bias, 0.0);
  } else if (auto* l = dynamic_cast<nn::Linear*>(&m)) {
    nn::init::normal_(l->weight, 0.0, 0.02);
    nn::init::constant_(l->bias, 0.0);
  }
}

}  // namespace cgan_mnist
