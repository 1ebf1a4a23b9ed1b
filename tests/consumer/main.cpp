// The README's example: fit y = w*x + b by one gradient evaluation, checked against the
// hand-derived gradient. Exits 0 only when Ember's answer matches.
#include <cmath>
#include <cstdio>

#include "ember/ember.hpp"

int main() {
  using namespace ember;
  auto opts = TensorOptions().requires_grad(true);
  Tensor x = tensor<float>({1, 2, 3, 4}, {4, 1});  // 4 samples, 1 feature
  Tensor y = tensor<float>({3, 5, 7, 9}, {4, 1});  // targets: y = 2x + 1
  Tensor w = full({1, 1}, 0.5, opts);               // parameters (leaves that require grad)
  Tensor b = zeros({1}, opts);

  Tensor err = x * w + b - y;                        // broadcasting: [4,1] * [1,1] + [1]
  Tensor loss = (err * err).sum() / 4;               // mean squared error
  loss.backward();                                   // fills w.grad() and b.grad()

  float dw = w.grad().item<float>(), db = b.grad().item<float>();
  std::printf("loss %.4f  dloss/dw %.4f  dloss/db %.4f\n", loss.item<float>(), dw, db);
  // By hand: err = {-2.5, -4, -5.5, -7}; dw = sum(err*x)/2 = -27.5, db = sum(err)/2 = -9.5.
  bool ok = std::fabs(dw + 27.5f) < 1e-4f && std::fabs(db + 9.5f) < 1e-4f;
  return ok ? 0 : 1;
}
