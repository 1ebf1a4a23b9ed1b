#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "ember/ember.hpp"

using namespace ember;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no ember::Error)";
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("detect_anomaly: off by default, the guard restores the previous mode") {
  CHECK_FALSE(autograd::is_anomaly_enabled());
  {
    auto guard = autograd::detect_anomaly();
    CHECK(autograd::is_anomaly_enabled());
    {
      auto off = autograd::detect_anomaly(false);
      CHECK_FALSE(autograd::is_anomaly_enabled());
    }
    CHECK(autograd::is_anomaly_enabled());
    // Per thread, like grad mode: another thread is unaffected.
    bool other = true;
    std::thread([&] { other = autograd::is_anomaly_enabled(); }).join();
    CHECK_FALSE(other);
  }
  CHECK_FALSE(autograd::is_anomaly_enabled());
}

TEST_CASE("detect_anomaly: a NaN in a forward result names the op, its inputs and 'forward'") {
  Tensor x = tensor<float>({1.f, -1.f, 4.f}, {3}, TensorOptions().requires_grad(true));
  // Without the guard, log(-1) quietly gives NaN.
  CHECK(std::isnan(log(x).data_ptr<float>()[1]));
  auto guard = autograd::detect_anomaly();
  std::string msg = error_of([&] { log(x); });
  CHECK_MESSAGE(has(msg, "forward of 'Log'"), msg);
  CHECK_MESSAGE(has(msg, "Log([3] float32)"), msg);
  CHECK_MESSAGE(has(msg, "1 NaN, 0 Inf, first at flat index 1"), msg);
  // An Inf counts too, and a binary op lists both inputs.
  Tensor y = tensor<float>({1.f, 0.f, 2.f}, {3});
  msg = error_of([&] { div(x, y); });
  CHECK_MESSAGE(has(msg, "'Div'"), msg);
  CHECK_MESSAGE(has(msg, "Div([3] float32, [3] float32)"), msg);
  CHECK_MESSAGE(has(msg, "0 NaN, 1 Inf"), msg);
  // Finite results and ops on tensors that need no grad pass.
  CHECK_NOTHROW(log(x.abs()));
  CHECK_NOTHROW(log(tensor<float>({-1.f}, {1})));
}

TEST_CASE("detect_anomaly: a non-finite gradient names the backward function and the creation site") {
  Tensor x = tensor<double>({0.0, 1.0, 4.0}, {3}, TensorOptions(kFloat64).requires_grad(true));
  {
    // sqrt(0) = 0 is fine forward; its derivative 1 / (2 sqrt(0)) is Inf.
    auto guard = autograd::detect_anomaly();
    Tensor loss = sqrt(x).sum();
    std::string msg = error_of([&] { loss.backward(); });
    CHECK_MESSAGE(has(msg, "function 'SqrtBackward'"), msg);
    CHECK_MESSAGE(has(msg, "during backward"), msg);
    CHECK_MESSAGE(has(msg, "gradient of its input 0"), msg);
    CHECK_MESSAGE(has(msg, "created by Sqrt([3] float64)"), msg);
    CHECK_MESSAGE(has(msg, "0 NaN, 1 Inf, first at flat index 0"), msg);
  }
  // The same graph without the guard trains on the Inf silently.
  Tensor loss = sqrt(x).sum();
  loss.backward();
  CHECK(std::isinf(x.grad().data_ptr<double>()[0]));
}

TEST_CASE("detect_anomaly: nodes recorded before the guard still have their gradients checked") {
  Tensor x = tensor<float>({0.f, 2.f}, {2}, TensorOptions().requires_grad(true));
  Tensor loss = sqrt(x).sum();
  auto guard = autograd::detect_anomaly();
  std::string msg = error_of([&] { loss.backward(); });
  CHECK_MESSAGE(has(msg, "SqrtBackward"), msg);
  CHECK_MESSAGE(has(msg, "recorded before anomaly detection was enabled"), msg);
}

TEST_CASE("detect_anomaly: checks gradients of autograd::grad with create_graph, and passes healthy training") {
  auto guard = autograd::detect_anomaly();
  manual_seed(0);
  auto model = std::make_shared<nn::Linear>(4, 3);
  Tensor x = randn({5, 4}), target = tensor<int64_t>({0, 1, 2, 1, 0}, {5});
  Tensor loss = nn::functional::cross_entropy(model->forward(x), target);
  CHECK_NOTHROW(loss.backward());
  CHECK(model->parameters()[0].grad().defined());
  // Second order: gradient of a gradient norm (WGAN-GP's shape) with a NaN planted in the input.
  Tensor w = tensor<float>({1.f, 2.f}, {2}, TensorOptions().requires_grad(true));
  Tensor y = (w * w).sum();
  tensor_list g = autograd::grad({y}, {w}, {}, true, true);
  CHECK_NOTHROW(g[0].pow(2).sum());
  Tensor bad = tensor<float>({std::nanf(""), 1.f}, {2});
  std::string msg = error_of([&] { mul(g[0], bad); });
  CHECK_MESSAGE(has(msg, "forward of 'Mul'"), msg);
}
