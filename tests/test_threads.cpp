#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "ember/ember.hpp"

// What Ember promises to a program that uses it from threads of its own, as PyTorch does: modes
// are per thread, and independent graphs can be built, differentiated and optimised at the same
// time. What those threads share is the host allocator's cache, the default generator and the
// autograd engine's thread-local release lists; the TSan build (scripts/sanitize.sh tsan) runs
// this file to check that sharing.

using namespace ember;

namespace {

constexpr int kThreads = 4;

// Runs f(i) on kThreads threads at once.
template <typename F>
void on_threads(F f) {
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back([&f, i] { f(i); });
  for (auto& t : threads) t.join();
}

struct TrainResult {
  std::vector<double> losses;
  std::vector<double> params;
};

// A small MLP trained with SGD + momentum from fixed (not random) weights, so every call does the
// same arithmetic: whatever runs beside it, the result must be bitwise the same.
TrainResult train_small_mlp(int steps) {
  auto fc1 = std::make_shared<nn::Linear>(4, 16);
  auto fc2 = std::make_shared<nn::Linear>(16, 1);
  auto model = std::make_shared<nn::Sequential>(fc1, std::make_shared<nn::Tanh>(), fc2);
  {
    NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      Tensor v = arange(0, static_cast<double>(p.numel()), 1, TensorOptions(p.dtype())).reshape(p.sizes());
      p.copy_(sin(v * 0.37) * 0.3);
    }
  }
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  Tensor x = cos(arange(0, 32, 1, TensorOptions(kFloat32)) * 0.7).reshape({8, 4});
  Tensor y = x.sum({1}, true) * 0.5;
  TrainResult r;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor loss = nn::F::mse_loss(model->forward(x), y);
    loss.backward();
    opt.step();
    r.losses.push_back(loss.item<double>());
  }
  for (auto& p : model->parameters()) {
    auto v = p.to_vector<double>();
    r.params.insert(r.params.end(), v.begin(), v.end());
  }
  return r;
}

}  // namespace

TEST_CASE("threads: grad mode is per thread") {
  bool seen_in_new_thread = false;
  {
    NoGradGuard no_grad;
    std::thread([&] { seen_in_new_thread = is_grad_enabled(); }).join();
    CHECK_FALSE(is_grad_enabled());
  }
  CHECK(seen_in_new_thread);  // a thread starts with grad mode on, whatever its creator's mode

  // A thread that turns recording off does not stop this thread's graph.
  Tensor w = tensor<double>({1.0, 2.0}).requires_grad_(true);
  std::vector<bool> recorded(kThreads, true);
  on_threads([&](int i) {
    NoGradGuard no_grad;
    recorded[static_cast<size_t>(i)] = (w * 3.0).requires_grad();
  });
  for (bool r : recorded) CHECK_FALSE(r);
  Tensor y = (w * 3.0).sum();
  REQUIRE(y.requires_grad());
  y.backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3.0, 3.0});
}

TEST_CASE("threads: independent models train at the same time, bitwise as when alone") {
  const int steps = 20;
  const TrainResult alone = train_small_mlp(steps);
  REQUIRE(alone.losses.back() < alone.losses.front());  // it does train
  std::vector<TrainResult> together(kThreads);
  on_threads([&](int i) { together[static_cast<size_t>(i)] = train_small_mlp(steps); });
  for (int i = 0; i < kThreads; ++i) {
    CAPTURE(i);
    CHECK(together[static_cast<size_t>(i)].losses == alone.losses);
    CHECK(together[static_cast<size_t>(i)].params == alone.params);
  }
}

TEST_CASE("threads: random draws from several threads take disjoint counters of one stream") {
  // Each draw reserves numel() counters of the default generator under its lock, so the values
  // drawn by all threads together are exactly those of one draw of the total size.
  const int64_t n = 500;
  const int draws = 6;
  manual_seed(1234);
  std::vector<std::vector<double>> got(kThreads);
  on_threads([&](int i) {
    for (int d = 0; d < draws; ++d) {
      auto v = rand({n}, TensorOptions(kFloat64)).to_vector<double>();
      got[static_cast<size_t>(i)].insert(got[static_cast<size_t>(i)].end(), v.begin(), v.end());
    }
  });
  CHECK(default_generator().offset() == static_cast<uint64_t>(n * draws * kThreads));
  std::vector<double> all;
  for (auto& g : got) all.insert(all.end(), g.begin(), g.end());
  manual_seed(1234);
  std::vector<double> once = rand({n * draws * kThreads}, TensorOptions(kFloat64)).to_vector<double>();
  std::sort(all.begin(), all.end());
  std::sort(once.begin(), once.end());
  CHECK(all == once);
}
