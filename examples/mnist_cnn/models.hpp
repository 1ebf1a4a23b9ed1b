#pragma once
// The two networks of tutorial 1 (examples/mnist_cnn) and the input normalisation they were trained
// with, in a header of their own so that other programs can load an mnist_cnn checkpoint:
// tutorial 4 (examples/cgan_mnist evaluate) measures its generated digits with this classifier.
//
//   auto net = mnist_cnn::make_model(meta["model"]);   // "original" or "improved"
//   net->load_state_dict(checkpoint.model);
//   net->forward((images01 - mnist_cnn::kMean) / mnist_cnn::kStd);   // [N, 1, 28, 28] -> logits [N, 10]
//
// `mnist_cnn train --reject-class` trains the same networks with an 11th output, kNotOneDigit
// ("this crop is not one digit": half a digit, two touching digits), for `read`'s splitting
// search; such checkpoints record "classes": 11 in their metadata.
#include <cstdint>
#include <memory>
#include <string>

#include "ember/ember.hpp"
#include "ember/nn/batchnorm.hpp"

namespace mnist_cnn {

namespace nn = ember::nn;

// MNIST's pixel mean and standard deviation (torchvision's Normalize((0.1307,), (0.3081,))).
constexpr double kMean = 0.1307;
constexpr double kStd = 0.3081;

/// The original tutorial's network, layer for layer (note: no activation between the two
/// Linear layers, as in the original). 2.4 M multiply-adds per image, 99,376 parameters.
class Net : public nn::Sequential {
 public:
  explicit Net(int64_t classes = 10) {
    push_back("conv1", std::make_shared<nn::Conv2d>(1, 32, 3));   // [N, 32, 26, 26]
    push_back("relu1", std::make_shared<nn::ReLU>());
    push_back("pool1", std::make_shared<nn::MaxPool2d>(2));       // [N, 32, 13, 13]
    push_back("conv2", std::make_shared<nn::Conv2d>(32, 64, 3));  // [N, 64, 11, 11]
    push_back("relu2", std::make_shared<nn::ReLU>());
    push_back("pool2", std::make_shared<nn::MaxPool2d>(2));       // [N, 64, 5, 5]
    push_back("flatten", std::make_shared<nn::Flatten>());        // [N, 1600]
    push_back("fc1", std::make_shared<nn::Linear>(1600, 50));
    push_back("fc2", std::make_shared<nn::Linear>(50, classes));
  }
  std::string name() const override { return "Net"; }
};

/// Our network for >= 99.4 %: three conv-BatchNorm-ReLU-pool blocks (padding keeps the borders,
/// where MNIST strokes often end), dropout before a small classifier. About 3x the original's
/// multiply-adds; trained with augmentation (RandomAffine) and AdamW with a cosine schedule.
class ImprovedNet : public nn::Sequential {
 public:
  explicit ImprovedNet(int64_t classes = 10) {
    block("1", 1, 32);    // [N, 32, 14, 14]
    block("2", 32, 64);   // [N, 64, 7, 7]
    block("3", 64, 128);  // [N, 128, 3, 3]
    push_back("flatten", std::make_shared<nn::Flatten>());  // [N, 1152]
    push_back("drop1", std::make_shared<nn::Dropout>(0.3));
    push_back("fc1", std::make_shared<nn::Linear>(1152, 128));
    push_back("relu", std::make_shared<nn::ReLU>());
    push_back("drop2", std::make_shared<nn::Dropout>(0.3));
    push_back("fc2", std::make_shared<nn::Linear>(128, classes));
  }
  std::string name() const override { return "ImprovedNet"; }

 private:
  void block(const std::string& i, int64_t in, int64_t out) {
    // No conv bias: the BatchNorm right after it has its own shift.
    push_back("conv" + i, std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
    push_back("bn" + i, std::make_shared<nn::BatchNorm2d>(out));
    push_back("relu" + i, std::make_shared<nn::ReLU>());
    push_back("pool" + i, std::make_shared<nn::MaxPool2d>(2));
  }
};

/// "original" or "improved"; `classes` 10 (the digits) or 11 (the digits and kNotOneDigit).
inline std::shared_ptr<nn::Sequential> make_model(const std::string& name, int64_t classes = 10) {
  EMBER_CHECK(classes == 10 || classes == 11, "mnist_cnn: a network has 10 or 11 classes, got ", classes);
  if (name == "original") return std::make_shared<Net>(classes);
  if (name == "improved") return std::make_shared<ImprovedNet>(classes);
  EMBER_FAIL("unknown model '", name, "' (expected original or improved)");
}

}  // namespace mnist_cnn
