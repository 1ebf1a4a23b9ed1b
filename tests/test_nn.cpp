#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/optim/optim.hpp"

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace ember;
namespace F = ember::nn::functional;

namespace {

TensorOptions f64() { return TensorOptions(kFloat64); }

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

/// Two linears around a Sequential, with a buffer in a nested module.
struct Block : nn::Module {
  Tensor scale, running;
  Block() : nn::Module("Block") {
    scale = register_parameter("scale", ones({3}));
    running = register_buffer("running", zeros({3}));
  }
};

struct Net : nn::UnaryModule {
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<Block> block;
  Net() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 3));
    features = register_module("features", std::make_shared<nn::Sequential>(
                                               std::make_shared<nn::Linear>(3, 5), std::make_shared<nn::ReLU>(),
                                               std::make_shared<nn::Linear>(nn::LinearOptions(5, 3).bias(false))));
    block = register_module("block", std::make_shared<Block>());
  }
  Tensor forward(const Tensor& x) override { return features->forward(fc1->forward(x)) * block->scale; }
};

double max_abs_diff(const Tensor& a, const Tensor& b) { return (a.to(kFloat64) - b.to(kFloat64)).abs().max().item<double>(); }

void check_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  auto got = t.to(kFloat64).to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
}

}  // namespace

// ---- Module --------------------------------------------------------------------------------------

TEST_CASE("nn::Module: registration, dotted names, traversal") {
  auto net = std::make_shared<Net>();
  CHECK(names_of(net->named_parameters()) == std::vector<std::string>{"fc1.weight", "fc1.bias", "features.0.weight",
                                                                       "features.0.bias", "features.2.weight", "block.scale"});
  CHECK(names_of(net->named_parameters(/*recurse=*/false)).empty());
  CHECK(names_of(net->named_buffers()) == std::vector<std::string>{"block.running"});
  CHECK(net->parameters().size() == 6);
  CHECK(net->buffers().size() == 1);
  CHECK(net->children().size() == 3);
  CHECK(net->named_children()[1].first == "features");
  std::vector<std::string> mods;
  for (auto& [n, m] : net->named_modules()) mods.push_back(n);
  CHECK(mods == std::vector<std::string>{"fc1", "features", "features.0", "features.1", "features.2", "block"});
  CHECK(net->num_parameters() == 4 * 3 + 3 + 3 * 5 + 5 + 5 * 3 + 3);
  for (auto& p : net->parameters()) CHECK(p.requires_grad());
  CHECK_FALSE(net->block->running.requires_grad());

  // The handle returned by register_parameter is the registered tensor.
  CHECK(net->fc1->weight.is_same(net->named_parameters()[0].second));

  // Name errors.
  Block b;
  CHECK_THROWS_WITH_AS(b.register_parameter("scale", ones({1})), doctest::Contains("already exists"), ember::Error);
  CHECK_THROWS_WITH_AS(b.register_buffer("a.b", ones({1})), doctest::Contains("can't contain"), ember::Error);
  CHECK_THROWS_WITH_AS(b.register_parameter("", ones({1})), doctest::Contains("empty"), ember::Error);
  CHECK_THROWS_WITH_AS(b.register_parameter("i", ones({1}, kInt64)), doctest::Contains("floating point"), ember::Error);
  CHECK_THROWS_AS(b.register_module("m", std::shared_ptr<nn::Linear>()), ember::Error);

  // A non-leaf tensor is registered as a detached leaf.
  Tensor w = randn({2}).requires_grad_(true);
  Tensor p = b.register_parameter("p", w * 2.0);
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());

  // A tensor shared by two modules is listed once.
  auto shared = std::make_shared<Net>();
  auto lin = std::make_shared<nn::Linear>(4, 3);
  lin->replace_parameter("weight", shared->fc1->weight);
  auto holder = std::make_shared<nn::Sequential>(shared->fc1, lin);
  CHECK(holder->parameters().size() == 3);
}

TEST_CASE("nn::Module: train/eval, zero_grad, apply") {
  auto net = std::make_shared<Net>();
  CHECK(net->is_training());
  net->eval();
  CHECK_FALSE(net->is_training());
  CHECK_FALSE((*net->features)[1]->is_training());
  net->train();
  CHECK(net->features->ptr<nn::ReLU>(1)->is_training());

  Tensor x = randn({2, 4});
  net->forward(x).sum().backward();
  for (auto& p : net->parameters()) CHECK(p.grad().defined());
  net->zero_grad();
  for (auto& p : net->parameters()) CHECK_FALSE(p.grad().defined());

  int count = 0;
  net->apply([&](nn::Module& m) {
    if (auto* l = dynamic_cast<nn::Linear*>(&m)) {
      nn::init::constant_(l->weight, 0.5);
      ++count;
    }
  });
  CHECK(count == 3);
  CHECK(net->fc1->weight.min().item<float>() == 0.5f);
}

TEST_CASE("nn::Module: repr and summary") {
  auto net = std::make_shared<Net>();
  std::string want =
      "Net(\n"
      "  (fc1): Linear(in_features=4, out_features=3, bias=True)\n"
      "  (features): Sequential(\n"
      "    (0): Linear(in_features=3, out_features=5, bias=True)\n"
      "    (1): ReLU()\n"
      "    (2): Linear(in_features=5, out_features=3, bias=False)\n"
      "  )\n"
      "  (block): Block()\n"
      ")";
  CHECK(net->repr() == want);
  std::ostringstream os;
  os << *net;
  CHECK(os.str() == want);
  CHECK(net->summary() == want + "\nTrainable parameters: 53\n");
  net->block->scale.requires_grad_(false);
  CHECK(net->summary() == want + "\nTrainable parameters: 50 (total: 53)\n");
  CHECK(nn::utils::count_parameters(*net) == 50);
  CHECK(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)).repr() == "LeakyReLU(negative_slope=0.2)");
  CHECK(nn::Dropout(0.5).repr() == "Dropout(p=0.5)");
  CHECK(nn::Flatten().repr() == "Flatten(start_dim=1, end_dim=-1)");
  CHECK(nn::Softmax(1).repr() == "Softmax(dim=1)");
  CHECK(nn::ELU().repr() == "ELU(alpha=1.0)");
}

TEST_CASE("nn::Module: state_dict round trip") {
  manual_seed(1);
  auto a = std::make_shared<Net>();
  auto b = std::make_shared<Net>();
  {
    NoGradGuard ng;
    a->block->running.fill_(7.0);
  }
  auto sd = a->state_dict();
  CHECK(sd.keys() == std::vector<std::string>{"fc1.weight", "fc1.bias", "features.0.weight", "features.0.bias",
                                               "features.2.weight", "block.scale", "block.running"});
  CHECK(max_abs_diff(a->fc1->weight, b->fc1->weight) > 0);
  Tensor b_weight = b->fc1->weight;  // a handle held before loading sees the loaded values
  b->load_state_dict(sd);
  for (auto& [k, t] : a->state_dict()) CHECK(max_abs_diff(t, b->state_dict().at(k)) == 0);
  CHECK(max_abs_diff(b_weight, a->fc1->weight) == 0);
  CHECK(b->block->running.sum().item<float>() == 21.0f);
  // Loaded values are copies.
  {
    NoGradGuard ng;
    a->fc1->weight.fill_(3.0);
  }
  CHECK(b->fc1->weight.max().item<float>() != 3.0f);
  // Loading converts dtype.
  nn::StateDict d64;
  for (auto& [k, t] : sd) d64.insert(k, t.to(kFloat64));
  b->load_state_dict(d64);
  CHECK(b->fc1->weight.dtype() == kFloat32);
}

TEST_CASE("nn::Module: load_state_dict errors list every problem") {
  auto net = std::make_shared<Net>();
  auto sd = net->state_dict();

  auto missing = sd;
  missing.erase("fc1.bias");
  missing.erase("block.running");
  CHECK_THROWS_WITH_AS(net->load_state_dict(missing),
                       doctest::Contains("Missing key(s) in state_dict: \"fc1.bias\", \"block.running\"."), ember::Error);
  CHECK_NOTHROW(net->load_state_dict(missing, /*strict=*/false));

  auto unexpected = sd;
  unexpected.insert("fc2.weight", zeros({1}));
  CHECK_THROWS_WITH_AS(net->load_state_dict(unexpected), doctest::Contains("Unexpected key(s) in state_dict: \"fc2.weight\""),
                       ember::Error);
  CHECK_NOTHROW(net->load_state_dict(unexpected, false));

  auto mismatch = sd;
  mismatch.insert("features.0.weight", zeros({5, 4}));
  try {
    net->load_state_dict(mismatch);
    FAIL("expected an error");
  } catch (const ember::Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("size mismatch for features.0.weight") != std::string::npos);
    CHECK(msg.find("[5, 3]") != std::string::npos);  // expected
    CHECK(msg.find("[5, 4]") != std::string::npos);  // got
    CHECK(msg.find("Net") != std::string::npos);
  }
  CHECK_THROWS_AS(net->load_state_dict(mismatch, false), ember::Error);  // shapes are checked even when not strict

  // All three at once, in one message; nothing was modified.
  auto all = sd;
  all.erase("fc1.bias");
  all.insert("extra", zeros({1}));
  all.insert("fc1.weight", zeros({2, 2}));
  Tensor before = net->fc1->weight.clone();
  try {
    net->load_state_dict(all);
    FAIL("expected an error");
  } catch (const ember::Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("Missing") != std::string::npos);
    CHECK(msg.find("Unexpected") != std::string::npos);
    CHECK(msg.find("size mismatch for fc1.weight") != std::string::npos);
  }
  CHECK(max_abs_diff(before, net->fc1->weight) == 0);
  CHECK_THROWS_WITH_AS(sd.at("nope"), doctest::Contains("nope"), ember::Error);
}

TEST_CASE("nn::Module: to(dtype) converts in place") {
  auto net = std::make_shared<Net>();
  Tensor w = net->fc1->weight;
  auto before = w.to_vector<float>();
  net->to(kFloat64);
  CHECK(w.dtype() == kFloat64);
  CHECK(net->fc1->weight.dtype() == kFloat64);
  CHECK(net->block->running.dtype() == kFloat64);
  auto after = w.to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i] == static_cast<double>(before[i]));
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
  Tensor y = net->forward(randn({2, 4}, f64()));
  CHECK(y.dtype() == kFloat64);
  y.sum().backward();
  CHECK(w.grad().dtype() == kFloat64);
  // An optimizer created after .to() updates the converted tensors.
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.1));
  opt.step();
  CHECK(max_abs_diff(w, tensor(after, w.sizes())) > 0);
  CHECK_THROWS_AS(net->to(kInt64), ember::Error);
  net->to(kCPU);  // no-op on the CPU
  CHECK(w.dtype() == kFloat64);
}

// ---- layers --------------------------------------------------------------------------------------

TEST_CASE("nn::Linear: forward equals x @ W^T + b, default init bounds") {
  manual_seed(3);
  nn::Linear fc(256, 128);
  CHECK(fc.weight.sizes() == Shape{128, 256});
  CHECK(fc.bias.sizes() == Shape{128});
  double bound = 1.0 / std::sqrt(256.0);
  CHECK(fc.weight.abs().max().item<float>() <= bound);
  CHECK(fc.bias.abs().max().item<float>() <= bound);
  // U(-b, b) has std b / sqrt(3) and mean 0; 32768 samples.
  double sd = ember::std(fc.weight).item<float>();
  CHECK(sd == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  CHECK(std::abs(fc.weight.mean().item<float>()) < 0.01 * bound);
  CHECK(fc.weight.abs().max().item<float>() > 0.98 * bound);

  Tensor x = randn({5, 256});
  Tensor y = fc.forward(x);
  Tensor manual = matmul(x, fc.weight.t()) + fc.bias;
  CHECK(max_abs_diff(y, manual) < 1e-5);
  // Leading dims and no bias.
  nn::Linear nb(nn::LinearOptions(3, 2).bias(false));
  CHECK_FALSE(nb.bias.defined());
  CHECK(nb.parameters().size() == 1);
  Tensor x3 = randn({2, 4, 3});
  CHECK(max_abs_diff(nb(x3), matmul(x3, nb.weight.t())) < 1e-6);
  CHECK_THROWS_WITH_AS(nb.forward(randn({2, 4})), doctest::Contains("linear"), ember::Error);
}

TEST_CASE("nn::init: kaiming, xavier, gains, fans") {
  namespace init = nn::init;
  CHECK(init::calculate_gain(init::kReLU) == doctest::Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain(init::kTanh) == doctest::Approx(5.0 / 3.0));
  CHECK(init::calculate_gain(init::kLeakyReLU) == doctest::Approx(std::sqrt(2.0 / (1 + 0.0001))));
  CHECK(init::calculate_gain(init::kLeakyReLU, std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(init::calculate_gain(init::kSigmoid) == 1.0);
  CHECK(init::calculate_gain(init::kSELU) == 0.75);
  auto [fi, fo] = init::calculate_fan_in_and_fan_out(zeros({8, 4, 3, 3}));
  CHECK(fi == 36);
  CHECK(fo == 72);
  CHECK_THROWS_WITH_AS(init::calculate_fan_in_and_fan_out(zeros({5})), doctest::Contains("fewer than 2"), ember::Error);

  manual_seed(5);
  Tensor w = zeros({64, 32, 3, 3}).requires_grad_(true);  // a leaf that requires grad: init runs under NoGradGuard
  init::kaiming_normal_(w, 0, init::kFanOut, init::kReLU);
  CHECK(ember::std(w).item<float>() == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.03));
  init::kaiming_uniform_(w, 0, init::kFanIn, init::kReLU);
  double b = std::sqrt(2.0) * std::sqrt(3.0 / (32 * 9));
  CHECK(w.abs().max().item<float>() <= b);
  CHECK(w.abs().max().item<float>() > 0.98 * b);
  Tensor m = zeros({100, 300});
  init::xavier_uniform_(m, 2.0);
  double xb = 2.0 * std::sqrt(6.0 / 400.0);
  CHECK(m.abs().max().item<float>() <= xb);
  CHECK(m.abs().max().item<float>() > 0.98 * xb);
  init::xavier_normal_(m);
  CHECK(ember::std(m).item<float>() == doctest::Approx(std::sqrt(2.0 / 400.0)).epsilon(0.03));
  init::normal_(m, 3.0, 0.5);
  CHECK(m.mean().item<float>() == doctest::Approx(3.0).epsilon(0.01));
  init::ones_(m);
  CHECK(m.sum().item<float>() == 30000.0f);
  init::zeros_(m);
  CHECK(m.abs().sum().item<float>() == 0.0f);
  CHECK_THROWS_AS(init::uniform_(zeros({2}, kInt64)), ember::Error);
}

TEST_CASE("nn: activation modules, Flatten, Sequential") {
  Tensor x = tensor<double>({-2.0, -0.5, 0.0, 0.5, 2.0, 3.0}, {2, 3});
  CHECK(max_abs_diff(nn::ReLU()(x), relu(x)) == 0);
  CHECK(max_abs_diff(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2))(x), leaky_relu(x, 0.2)) == 0);
  CHECK(max_abs_diff(nn::ELU(nn::ELUOptions().alpha(0.5))(x), elu(x, 0.5)) == 0);
  CHECK(max_abs_diff(nn::GELU(nn::GELUOptions().approximate("tanh"))(x), gelu(x, "tanh")) == 0);
  CHECK(max_abs_diff(nn::Sigmoid()(x), sigmoid(x)) == 0);
  CHECK(max_abs_diff(nn::Tanh()(x), tanh(x)) == 0);
  CHECK(max_abs_diff(nn::SiLU()(x), silu(x)) == 0);
  CHECK(max_abs_diff(nn::Softplus(nn::SoftplusOptions().beta(2))(x), softplus(x, 2)) == 0);
  CHECK(max_abs_diff(nn::Softmax(1)(x), softmax(x, 1)) == 0);
  CHECK(max_abs_diff(nn::LogSoftmax(0)(x), log_softmax(x, 0)) == 0);
  check_values(nn::ReLU()(x), {0, 0, 0, 0.5, 2, 3});

  Tensor img = randn({2, 3, 4, 5});
  CHECK(nn::Flatten()(img).sizes() == Shape{2, 60});
  CHECK(nn::Flatten(0, 1)(img).sizes() == Shape{6, 4, 5});

  nn::Sequential seq;
  CHECK(max_abs_diff(seq.forward(x), x) == 0);  // empty: identity
  seq.push_back(std::make_shared<nn::Flatten>());
  seq.push_back("act", std::make_shared<nn::Tanh>());
  CHECK(seq.size() == 2);
  CHECK(seq.named_children()[1].first == "act");
  CHECK(seq[-1]->name() == "Tanh");
  CHECK(seq(img).sizes() == Shape{2, 60});
  CHECK_THROWS_WITH_AS(seq[2], doctest::Contains("out of range"), ember::Error);
  CHECK_THROWS_WITH_AS(seq.ptr<nn::Linear>(0), doctest::Contains("Flatten"), ember::Error);
}

TEST_CASE("nn::Dropout respects train/eval") {
  manual_seed(11);
  auto seq = std::make_shared<nn::Sequential>(std::make_shared<nn::Dropout>(0.5));
  Tensor x = ones({4000});
  Tensor y = seq->forward(x);
  auto v = y.to_vector<float>();
  int zeros_n = 0;
  for (float e : v) {
    CHECK((e == 0.0f || e == 2.0f));
    zeros_n += e == 0.0f;
  }
  CHECK(zeros_n > 1800);
  CHECK(zeros_n < 2200);
  seq->eval();
  CHECK(max_abs_diff(seq->forward(x), x) == 0);
  seq->train();
  CHECK(max_abs_diff(seq->forward(x), x) > 0);
  CHECK_THROWS_AS(nn::Dropout(1.5), ember::Error);
  CHECK(max_abs_diff(F::dropout(x, 0.3, false), x) == 0);
}

// ---- losses --------------------------------------------------------------------------------------

namespace {
// Values from torch.nn.functional 1.13 (float64), for these inputs.
Tensor ce_logits() {
  return tensor<double>({1.0, 2.0, 0.5, -1.0, 0.0, -0.5, 3.0, 1.5, 2.0, 2.0, -2.0, 0.1}, {3, 4});
}
Tensor ce_target() { return tensor<int64_t>({1, 2, 3}); }
Tensor ce_target_ignore() { return tensor<int64_t>({1, -100, 3}); }
Tensor ce_weight() { return tensor<double>({1.0, 2.0, 0.5, 1.5}); }
}  // namespace

TEST_CASE("cross_entropy matches PyTorch") {
  using O = nn::CrossEntropyLossOptions;
  Tensor x = ce_logits(), t = ce_target(), ti = ce_target_ignore(), w = ce_weight();
  check_values(F::cross_entropy(x, t), {1.1445636160258612});
  check_values(F::cross_entropy(x, t, O().reduction(nn::kSum)), {3.4336908480775836});
  check_values(F::cross_entropy(x, t, O().reduction(nn::kNone)), {0.49518189808585605, 0.26475725431943276, 2.673751695672295});
  check_values(F::cross_entropy(x, ti), {1.5844667968790755});
  check_values(F::cross_entropy(x, ti, O().reduction(nn::kNone)), {0.49518189808585605, 0.0, 2.673751695672295});
  check_values(F::cross_entropy(x, t, O().label_smoothing(0.1)), {1.2428969493591948});
  check_values(F::cross_entropy(x, ti, O().label_smoothing(0.1)), {1.6319667968790754});
  check_values(F::cross_entropy(x, ti, O().label_smoothing(0.1).reduction(nn::kNone)),
               {0.6326818980858561, 0.0, 2.631251695672295});
  check_values(F::cross_entropy(x, ti, O().label_smoothing(0.3).reduction(nn::kSum)), {3.453933593758151});
  check_values(F::cross_entropy(x, t, O().weight(w)), {1.2833424917099678});
  check_values(F::cross_entropy(x, ti, O().weight(w)), {1.4288546684800443});
  check_values(F::cross_entropy(x, ti, O().weight(w).label_smoothing(0.2)), {1.392293277195332});
  check_values(F::cross_entropy(x, ti, O().weight(w).label_smoothing(0.2).reduction(nn::kNone)),
               {1.2285865114588337, 0.0, 3.6444399587248286});
  // [N, C, d] (segmentation-shaped) input.
  Tensor xs = tensor<double>({0.5, -1.0, 1.0, 0.0, -0.5, 2.0, 0.0, 0.3, 2.0, -1.0, 1.0, 1.0}, {2, 3, 2});
  Tensor ts = tensor<int64_t>({0, 2, 1, 1}, {2, 2});
  check_values(F::cross_entropy(xs, ts), {1.0428350461965195});
  check_values(F::cross_entropy(xs, ts, O().reduction(nn::kNone)),
               {1.1041306053367284, 0.16984601955628567, 0.4076059644443804, 2.4897575954486832});
  check_values(F::cross_entropy(xs, ts, O().label_smoothing(0.15)), {1.1078350461965194});
  // Class-probability targets.
  Tensor pr = tensor<double>({0.1, 0.6, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0, 0.25, 0.25, 0.25, 0.25}, {3, 4});
  check_values(F::cross_entropy(x, pr), {1.1862302826925282});
  check_values(F::cross_entropy(x, pr, O().weight(w).label_smoothing(0.1).reduction(nn::kNone)),
               {1.1568601142627744, 0.45848542123367386, 2.179689619590369});
  // Unbatched [C] input with a 0-dim target.
  check_values(F::cross_entropy(x[0], scalar_tensor(2, kInt64)), {1.995181898085856});
  // nll_loss on log-probabilities agrees.
  check_values(F::nll_loss(log_softmax(x, 1), ti, nn::NLLLossOptions().weight(w)), {1.4288546684800443});
  // Every target ignored: the mean is NaN, as in PyTorch.
  CHECK(std::isnan(F::cross_entropy(x, full({3}, -100, kInt64)).item<double>()));
  // Non-contiguous logits (a transposed view) give the same result.
  Tensor xT = ce_logits().t().contiguous().t();  // [3, 4] with strides (1, 3)
  REQUIRE_FALSE(xT.is_contiguous());
  check_values(F::cross_entropy(xT, t), {1.1445636160258612});
  // The module form, float32.
  nn::CrossEntropyLoss crit(O().weight(w.to(kFloat32)));
  CHECK(crit.named_buffers().size() == 1);
  CHECK(crit(x.to(kFloat32), t).item<float>() == doctest::Approx(1.2833424917099678).epsilon(1e-6));
}

TEST_CASE("cross_entropy validates targets") {
  Tensor x = ce_logits();
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, tensor<int64_t>({1, 4, 0})),
                       doctest::Contains("target 4 is out of bounds for 4 classes"), ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, tensor<int64_t>({1, -1, 0})), doctest::Contains("target -1"), ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, tensor<int32_t>({1, 2, 0})), doctest::Contains("int64"), ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, tensor<int64_t>({1, 2})), doctest::Contains("expects a target of shape [3]"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, zeros({3, 3}, kFloat64)), doctest::Contains("probability target"), ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, ce_target(), nn::CrossEntropyLossOptions().weight(ones({3}, kFloat64))),
                       doctest::Contains("weight"), ember::Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(x, ce_target(), nn::CrossEntropyLossOptions().label_smoothing(1.5)),
                       doctest::Contains("label_smoothing"), ember::Error);
  CHECK_THROWS_WITH_AS(F::nll_loss(x, tensor<int64_t>({7, 0, 0})), doctest::Contains("nll_loss"), ember::Error);
  CHECK_THROWS_WITH_AS(F::mse_loss(zeros({4, 1}), zeros({4})), doctest::Contains("same shape"), ember::Error);
}

TEST_CASE("mse, l1, binary cross entropy match PyTorch") {
  Tensor a = tensor<double>({1.0, 2.0, -1.0, 0.5}), b = tensor<double>({0.5, 2.5, 1.0, 0.5});
  check_values(F::mse_loss(a, b), {(0.25 + 0.25 + 4.0) / 4});
  check_values(F::mse_loss(a, b, nn::kSum), {4.5});
  check_values(F::l1_loss(a, b, nn::kNone), {0.5, 0.5, 2.0, 0.0});
  CHECK(nn::MSELoss()(a, b).item<double>() == doctest::Approx(1.125));
  CHECK(nn::L1Loss()(a, b).item<double>() == doctest::Approx(0.75));

  using BO = nn::BCEWithLogitsLossOptions;
  Tensor z = tensor<double>({-1.5, 0.0, 2.0, 50.0, -50.0}), y = tensor<double>({0.0, 1.0, 1.0, 0.0, 1.0});
  check_values(F::binary_cross_entropy_with_logits(z, y, BO().reduction(nn::kNone)),
               {0.20141327798275246, 0.6931471805599453, 0.1269280110429726, 50.0, 50.0});
  check_values(F::binary_cross_entropy_with_logits(z, y, BO().pos_weight(scalar_tensor(3.0, kFloat64))),
               {40.532327770558304});
  Tensor z2 = tensor<double>({0.3, -0.2, 1.0, -2.0, 0.5, 0.0}, {2, 3}), y2 = tensor<double>({1.0, 0.0, 0.5, 0.0, 1.0, 1.0}, {2, 3});
  nn::BCEWithLogitsLoss crit(BO().pos_weight(tensor<double>({1.0, 2.0, 0.5})).weight(tensor<double>({2.0, 1.0, 1.0})).reduction(nn::kSum));
  check_values(crit(z2, y2), {3.990379204683445});
  // The gradient at a zero logit is sigmoid(0) - t, exactly.
  Tensor g0 = zeros({1}, f64()).requires_grad_(true);
  F::binary_cross_entropy_with_logits(g0, full({1}, 0.25, f64())).backward();
  CHECK(g0.grad().item<double>() == doctest::Approx(0.25).epsilon(1e-15));

  Tensor p = tensor<double>({0.0, 0.5, 1.0, 0.9}), t = tensor<double>({0.0, 1.0, 1.0, 0.0});
  check_values(F::binary_cross_entropy(p, t), {0.7489330683884978});
  check_values(F::binary_cross_entropy(p, t, nn::BCELossOptions().reduction(nn::kNone)), {0.0, 0.6931471805599453, 0.0, 2.302585092994046});
  CHECK(F::binary_cross_entropy(tensor<double>({0.0}), tensor<double>({1.0})).item<double>() == 100.0);  // log clamped
  CHECK_THROWS_WITH_AS(F::binary_cross_entropy(tensor<double>({1.5}), tensor<double>({1.0})),
                       doctest::Contains("between 0 and 1"), ember::Error);
}

TEST_CASE("losses: gradcheck and gradgradcheck (float64)") {
  manual_seed(21);
  Tensor x = randn({4, 5}, f64()).requires_grad_(true);
  Tensor t = tensor<int64_t>({0, 4, -100, 2});
  Tensor w = tensor<double>({1.0, 0.5, 2.0, 1.5, 0.7});
  using O = nn::CrossEntropyLossOptions;
  CHECK_GRADS([&](const tensor_list& in) { return F::cross_entropy(in[0], t); }, {x});
  CHECK_GRADS([&](const tensor_list& in) { return F::cross_entropy(in[0], t, O().weight(w).label_smoothing(0.2)); }, {x});
  CHECK_GRADS([&](const tensor_list& in) { return F::cross_entropy(in[0], t, O().label_smoothing(0.1).reduction(nn::kNone)); }, {x});
  Tensor xs = randn({2, 3, 4}, f64()).requires_grad_(true);
  Tensor ts = tensor<int64_t>({0, 1, 2, 1, 2, 2, 0, -100}, {2, 4});
  CHECK_GRADS([&](const tensor_list& in) { return F::cross_entropy(in[0], ts, O().reduction(nn::kSum)); }, {xs});
  Tensor probs = softmax(randn({4, 5}, f64()), 1);
  CHECK_GRADS([&](const tensor_list& in) { return F::cross_entropy(in[0], probs, O().weight(w)); }, {x});
  CHECK_GRADS([&](const tensor_list& in) { return F::nll_loss(in[0], t, nn::NLLLossOptions().weight(w)); }, {x});

  Tensor a = randn({3, 4}, f64()).requires_grad_(true), b = randn({3, 4}, f64()).requires_grad_(true);
  CHECK_GRADS([](const tensor_list& in) { return F::mse_loss(in[0], in[1]); }, {a, b});
  CHECK_GRADCHECK([](const tensor_list& in) { return F::l1_loss(in[0], in[1]); }, {a, b});
  Tensor y = rand({3, 4}, f64()).requires_grad_(true);
  Tensor pw = tensor<double>({0.5, 1.0, 2.0, 3.0});
  CHECK_GRADS([&](const tensor_list& in) {
    return F::binary_cross_entropy_with_logits(in[0], in[1], nn::BCEWithLogitsLossOptions().pos_weight(pw));
  }, {a, y});
  Tensor p = (rand({3, 4}, f64()) * 0.8 + 0.1).requires_grad_(true);
  CHECK_GRADS([&](const tensor_list& in) { return F::binary_cross_entropy(in[0], in[1]); }, {p, y});
}

// ---- convergence ---------------------------------------------------------------------------------

TEST_CASE("XOR: a 2-8-1 MLP trained with Adam reaches 100% accuracy") {
  manual_seed(0);
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(2, 8), std::make_shared<nn::Tanh>(),
                                                std::make_shared<nn::Linear>(8, 1));
  Tensor x = tensor<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  Tensor y = tensor<float>({0, 1, 1, 0}, {4, 1});
  optim::Adam opt(model->parameters(), optim::AdamOptions(0.05));
  nn::BCEWithLogitsLoss criterion;
  int steps = 0;
  double loss = 1e9;
  auto accuracy = [&] {
    NoGradGuard ng;
    auto pred = (model->forward(x) > 0.0).to(kFloat32);
    return (pred == y).to(kFloat32).mean().item<float>();
  };
  for (; steps < 400; ++steps) {
    opt.zero_grad();
    Tensor l = criterion(model->forward(x), y);
    l.backward();
    opt.step();
    loss = l.item<float>();
    if (loss < 0.05 && accuracy() == 1.0f) break;
  }
  MESSAGE("XOR converged after ", steps, " steps, loss ", loss);
  CHECK(accuracy() == 1.0f);
  CHECK(loss < 0.05);
  CHECK(steps < 400);
}
