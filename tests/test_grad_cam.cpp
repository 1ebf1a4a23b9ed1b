// utils::grad_cam: the Grad-CAM map on a network whose answer is known by construction.
#include <doctest/doctest.h>

#include <memory>

#include "ember/ember.hpp"
#include "ember/utils/grad_cam.hpp"

using namespace ember;

namespace {
/// conv (1x1, weight 1: the features are the input itself) -> flatten -> fc, where class 0 adds up
/// every feature and class 1 subtracts them.
std::shared_ptr<nn::Sequential> known_net() {
  auto net = std::make_shared<nn::Sequential>();
  auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 1, 1));
  auto fc = std::make_shared<nn::Linear>(64, 2);
  {
    NoGradGuard ng;
    conv->weight.fill_(Scalar(1.0));
    conv->bias.fill_(Scalar(0.0));
    fc->weight.select(0, 0).fill_(Scalar(1.0));
    fc->weight.select(0, 1).fill_(Scalar(-1.0));
    fc->bias.fill_(Scalar(0.0));
  }
  net->push_back("conv", conv);
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  net->push_back("fc", fc);
  return net;
}
}  // namespace

TEST_CASE("grad_cam: the map is hot where the evidence for the class is, cold elsewhere") {
  auto net = known_net();
  net->eval();
  Tensor x = zeros({1, 1, 8, 8});
  x.narrow(2, 0, 3).narrow(3, 0, 3).fill_(Scalar(1.0));  // a bright 3x3 blob, top left
  auto cam = utils::grad_cam(*net, x, "conv");
  CHECK(cam.target == 0);  // class 0 sums the features: it wins
  CHECK(cam.probability > 0.99);
  REQUIRE(cam.height == 8);
  REQUIRE(cam.width == 8);
  CHECK(cam.map[0 * 8 + 0] > 0.9f);   // on the blob
  CHECK(cam.map[7 * 8 + 7] < 0.05f);  // far from it
  CHECK(cam.map[1 * 8 + 1] > cam.map[5 * 8 + 5]);
  // Class 1's gradient is negative everywhere: ReLU leaves nothing.
  auto cold = utils::grad_cam(*net, x, "conv", 1);
  for (float v : cold.map) CHECK(v == 0.0f);
  // The overlay has the photo's size and reddens the hot corner.
  io::Image photo = io::Image::filled(16, 16, 3, 128);
  io::Image over = utils::overlay_heatmap(photo, cam);
  CHECK(over.width == 16);
  CHECK(over.at(0, 0, 0) > over.at(0, 0, 2));    // hot: red over blue
  CHECK(over.at(15, 15, 2) > over.at(15, 15, 0));  // cold: blue over red
}

TEST_CASE("grad_cam: bad arguments") {
  auto net = known_net();
  Tensor x = zeros({1, 1, 8, 8});
  CHECK_THROWS_WITH_AS(utils::grad_cam(*net, x, "conv9"), doctest::Contains("no layer named 'conv9'"), Error);
  CHECK_THROWS_WITH_AS(utils::grad_cam(*net, x, "conv", 5), doctest::Contains("out of range for 2 classes"), Error);
  CHECK_THROWS_WITH_AS(utils::grad_cam(*net, zeros({2, 1, 8, 8}), "conv"), doctest::Contains("expected one input"), Error);
  CHECK_THROWS_WITH_AS(utils::grad_cam(*net, x, "fc"), doctest::Contains("expected [1, K, h, w]"), Error);
}
