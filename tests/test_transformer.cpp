#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "golden_json.hpp"
#include "ember/nn/layer_norm.hpp"
#include "ember/nn/multihead_attention.hpp"
#include "ember/nn/transformer.hpp"
#include "ember/ops/attention.hpp"
#include "ember/ops/layer_norm.hpp"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// layer_norm / nn::LayerNorm, scaled_dot_product_attention, nn::MultiheadAttention,
// nn::TransformerEncoderLayer / nn::TransformerEncoder: PyTorch 1.13 goldens
// (tests/golden/transformer/transformer.json, written by tests/golden/make_transformer_golden.py)
// for outputs, input and parameter gradients and state_dict names; the fused layer-norm kernels
// against the composed formula; gradcheck and gradgradcheck in float64; dropout; errors.

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using tjson = nlohmann::ordered_json;
namespace nn = ember::nn;

const tjson& transformer_golden() {
  static const tjson j = [] {
    std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/golden/transformer/transformer.json");
    return f ? tjson::parse(f) : tjson();
  }();
  return j;
}

Tensor tf_from_json(const tjson& j, ember::DType dt) { return ember_test::tensor_from_json(j, dt); }
/// A 0/1 mask stored as int64 → bool.
Tensor tf_mask(const tjson& j) { return ember::ne(ember_test::tensor_from_json(j), ember::Scalar(0)); }

/// Loads the golden parameters into `m` (converted to dt) and checks the state_dict key order.
void tf_load_params(nn::Module& m, const tjson& c, ember::DType dt, const std::string& name) {
  std::vector<std::string> golden_keys = c.at("state_dict_keys").get<std::vector<std::string>>();
  CHECK_MESSAGE(m.state_dict().keys() == golden_keys, name, ": state_dict keys differ from PyTorch's");
  m.to(dt);
  ember::NoGradGuard ng;
  for (auto& [pname, p] : m.named_parameters())
    if (c.at("params").contains(pname)) p.copy_(tf_from_json(c.at("params").at(pname), dt));
}

/// Compares outputs and the gradients of sum(out * grad_out) w.r.t. `wrt` (named as in the golden).
void tf_check(const tjson& c, const std::string& name, const std::vector<std::pair<std::string, Tensor>>& outs,
              const std::vector<std::pair<std::string, Tensor>>& wrt, ember::DType dt, double tol) {
  tensor_list o, go, w;
  for (auto& [k, t] : outs) {
    std::string msg = ember_test::compare_to_golden(t, c.at("outputs").at(k), name + " " + k,
                                                    ember_test::Tolerance::sum(tol));
    CHECK_MESSAGE(msg.empty(), msg);
    o.push_back(t);
    go.push_back(tf_from_json(c.at("grad_outputs").at(k), dt));
  }
  for (auto& [k, t] : wrt) w.push_back(t);
  tensor_list g = ember::autograd::grad(o, w, go);
  for (size_t i = 0; i < wrt.size(); ++i) {
    std::string msg = ember_test::compare_to_golden(g[i], c.at("grads").at(wrt[i].first),
                                                    name + " grad of " + wrt[i].first, ember_test::Tolerance::sum(tol));
    CHECK_MESSAGE(msg.empty(), msg);
  }
}

void tf_add_params(std::vector<std::pair<std::string, Tensor>>& wrt, nn::Module& m) {
  for (auto& [k, p] : m.named_parameters()) wrt.emplace_back(k, p);
}

void tf_golden_case(const tjson& c, ember::DType dt, double tol) {
  const std::string kind = c.at("kind"), name = c.at("name").get<std::string>() + (dt == ember::kFloat32 ? " (float32)" : "");
  const tjson& o = c.at("options");
  std::vector<std::pair<std::string, Tensor>> wrt;
  auto input = [&](const char* k) {
    Tensor t = tf_from_json(c.at("inputs").at(k), dt).requires_grad_(true);
    wrt.emplace_back(k, t);
    return t;
  };
  if (kind == "layer_norm") {
    nn::LayerNorm m(nn::LayerNormOptions(o.at("normalized_shape").get<std::vector<int64_t>>())
                        .eps(o.at("eps").get<double>())
                        .elementwise_affine(o.at("elementwise_affine").get<bool>()));
    tf_load_params(m, c, dt, name);
    Tensor x = input("x");
    tf_add_params(wrt, m);
    tf_check(c, name, {{"y", m.forward(x)}}, wrt, dt, tol);
  } else if (kind == "sdpa") {
    Tensor q = input("q"), k = input("k"), v = input("v");
    Tensor mask;
    if (c.contains("key_padding_mask")) mask = ember::padding_mask_to_bias(tf_mask(c.at("key_padding_mask")), dt);
    if (c.contains("attn_mask_bool")) mask = tf_mask(c.at("attn_mask_bool"));
    Tensor out = ember::scaled_dot_product_attention(q, k, v, mask, 0.0, o.at("causal").get<bool>());
    tf_check(c, name, {{"out", out}}, wrt, dt, tol);
  } else if (kind == "mha") {
    nn::MultiheadAttention m(nn::MultiheadAttentionOptions(o.at("embed_dim"), o.at("num_heads"))
                                 .batch_first(o.at("batch_first").get<bool>())
                                 .bias(o.at("bias").get<bool>()));
    tf_load_params(m, c, dt, name);
    m.eval();
    Tensor q = input("query");
    Tensor k = o.at("self_attn").get<bool>() ? q : input("key");
    Tensor v = o.at("self_attn").get<bool>() ? q : input("value");
    Tensor kpm = c.contains("key_padding_mask") ? tf_mask(c.at("key_padding_mask")) : Tensor();
    Tensor am = c.contains("attn_mask_bool") ? tf_mask(c.at("attn_mask_bool")) : Tensor();
    tf_add_params(wrt, m);
    auto [out, w] = m.forward(q, k, v, kpm, true, am);
    tf_check(c, name, {{"out", out}, {"weights", w}}, wrt, dt, tol);
  } else {
    nn::TransformerEncoderLayerOptions lo(o.at("d_model"), o.at("nhead"));
    lo.dim_feedforward(o.at("dim_feedforward"))
        .dropout(0.0)
        .activation(o.at("activation").get<std::string>())
        .batch_first(o.at("batch_first").get<bool>())
        .norm_first(o.at("norm_first").get<bool>());
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(lo);
    std::shared_ptr<nn::UnaryModule> m = layer;
    std::shared_ptr<nn::TransformerEncoder> enc;
    if (kind == "encoder") {
      auto norm = o.at("final_norm").get<bool>() ? std::make_shared<nn::LayerNorm>(lo.d_model()) : nullptr;
      m = enc = std::make_shared<nn::TransformerEncoder>(layer, o.at("num_layers").get<int64_t>(), norm);
    }
    tf_load_params(*m, c, dt, name);
    m->eval();
    Tensor x = input("src");
    Tensor kpm = c.contains("key_padding_mask") ? tf_mask(c.at("key_padding_mask")) : Tensor();
    tf_add_params(wrt, *m);
    Tensor out = enc ? enc->forward(x, Tensor(), kpm) : layer->forward(x, Tensor(), kpm);
    tf_check(c, name, {{"out", out}}, wrt, dt, tol);
  }
}

Tensor rnd(const ember::Shape& s) { return ember::randn(s, ember::kFloat64); }

}  // namespace

TEST_CASE("transformer layers: PyTorch 1.13 goldens (outputs, input and parameter gradients, state_dict keys)") {
  const tjson& g = transformer_golden();
  if (g.is_null()) {
    MESSAGE("tests/golden/transformer/transformer.json not found (define EMBER_SOURCE_DIR); golden cases skipped");
    return;
  }
  int n = 0;
  for (const tjson& c : g.at("cases")) {
    ++n;
    tf_golden_case(c, ember::kFloat64, 1e-10);
    tf_golden_case(c, ember::kFloat32, 2e-4);
  }
  CHECK(n == 12);
}

TEST_CASE("layer_norm: the fused CPU kernels equal the composed formula (forward and every gradient)") {
  ember::manual_seed(21);
  // 300 rows x 70: enough rows for several threads and chunks; an offset mean tests the centring.
  for (bool affine : {true, false}) {
    CAPTURE(affine);
    Tensor x = ember::add(rnd({3, 100, 70}), ember::Scalar(50.0)).requires_grad_(true);
    Tensor w = affine ? rnd({70}).requires_grad_(true) : Tensor();
    Tensor b = affine ? rnd({70}).requires_grad_(true) : Tensor();
    Tensor y = ember::layer_norm(x, {70}, w, b, 1e-5);
    Tensor xc = ember::sub(x, ember::mean(x, {2}, true));
    Tensor ref = ember::mul(xc, ember::rsqrt(ember::add(ember::mean(ember::mul(xc, xc), {2}, true), ember::Scalar(1e-5))));
    if (affine) ref = ember::add(ember::mul(ref, w), b);
    CHECK(ember::sub(y, ref).abs().max().item<double>() < 1e-12);
    Tensor gy = rnd(y.sizes());
    tensor_list wrt{x};
    if (affine) wrt.push_back(w), wrt.push_back(b);
    tensor_list ga = ember::autograd::grad({y}, wrt, {gy}), gb = ember::autograd::grad({ref}, wrt, {gy});
    for (size_t i = 0; i < ga.size(); ++i) {
      CAPTURE(i);
      CHECK(ember::sub(ga[i], gb[i]).abs().max().item<double>() < 1e-10 * (1 + gb[i].abs().max().item<double>()));
    }
  }
  // float32 keeps the digits of a row whose mean is far from 0.
  Tensor x32 = ember::add(ember::randn({4, 64}), ember::Scalar(1000.0));
  Tensor y32 = ember::layer_norm(x32, {64});
  CHECK(ember::mean(y32, {1}).abs().max().item<double>() < 1e-4);
  CHECK(ember::sub(ember::var(y32, {1}, 0), ember::Scalar(1.0)).abs().max().item<double>() < 1e-3);
}

TEST_CASE("layer_norm / nn::LayerNorm: gradcheck and gradgradcheck in float64") {
  ember::manual_seed(22);
  Tensor x = rnd({2, 3, 4}).requires_grad_(true), w = rnd({3, 4}).requires_grad_(true), b = rnd({3, 4}).requires_grad_(true);
  auto f = [](const tensor_list& t) { return ember::layer_norm(t[0], {3, 4}, t[1], t[2], 1e-5); };
  CHECK_GRADS(f, {x, w, b});
  Tensor x2 = rnd({3, 5}).requires_grad_(true);
  auto f2 = [](const tensor_list& t) { return ember::layer_norm(t[0], {5}); };
  CHECK_GRADS(f2, {x2});
  nn::LayerNorm m(4);
  m.to(ember::kFloat64);
  CHECK(m.state_dict().keys() == std::vector<std::string>{"weight", "bias"});
  CHECK(ember::sub(m.weight, ember::Scalar(1.0)).abs().max().item<double>() == 0.0);  // PyTorch's init
  CHECK(m.bias.abs().max().item<double>() == 0.0);
  CHECK(m.repr() == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)");
  CHECK(nn::LayerNorm(nn::LayerNormOptions({2, 3}).elementwise_affine(false)).repr() ==
        "LayerNorm((2, 3), eps=1e-05, elementwise_affine=False)");
  auto fm = [&](const tensor_list& t) { return m.forward(t[0]); };
  CHECK_GRADS(fm, {rnd({3, 4}).requires_grad_(true), m.weight, m.bias});
}

TEST_CASE("scaled_dot_product_attention: gradcheck and gradgradcheck with a padding mask; stability") {
  ember::manual_seed(23);
  Tensor q = rnd({2, 2, 3, 2}).requires_grad_(true), k = rnd({2, 2, 4, 2}).requires_grad_(true),
         v = rnd({2, 2, 4, 3}).requires_grad_(true);
  Tensor pad = ember::tensor<int64_t>({0, 0, 1, 1, 0, 0, 0, 1}, {2, 4});
  Tensor bias = ember::padding_mask_to_bias(ember::ne(pad, ember::Scalar(0)), ember::kFloat64);
  CHECK(bias.sizes() == ember::Shape{2, 1, 1, 4});  // broadcast over heads and queries, not expanded
  auto f = [&](const tensor_list& t) { return ember::scaled_dot_product_attention(t[0], t[1], t[2], bias); };
  CHECK_GRADS(f, {q, k, v});
  auto fc = [&](const tensor_list& t) { return ember::scaled_dot_product_attention(t[0], t[1], t[2], {}, 0.0, true); };
  CHECK_GRADS(fc, {rnd({1, 3, 2}).requires_grad_(true), rnd({1, 3, 2}).requires_grad_(true),
                   rnd({1, 3, 2}).requires_grad_(true)});
  // Padded keys get exactly zero weight: changing their values changes nothing.
  Tensor out = ember::scaled_dot_product_attention(q, k, v, bias);
  Tensor v2 = v.detach().clone();
  {
    ember::NoGradGuard ng;
    v2.select(0, 0).narrow(1, 2, 2).fill_(ember::Scalar(1e6));
  }
  Tensor out2 = ember::scaled_dot_product_attention(q.detach(), k.detach(), v2, bias);
  CHECK(ember::sub(out.detach(), out2).abs().max().item<double>() < 1e-12);
  // Scores of 1e4 (float32) still give finite, exact weights: the row max is subtracted.
  Tensor big = ember::mul(ember::ones({1, 2, 1}), ember::Scalar(100.0));
  Tensor kb = ember::tensor<float>({100.0f, 99.0f}, {1, 2, 1});
  Tensor vb = ember::tensor<float>({1.0f, 0.0f}, {1, 2, 1});
  Tensor ob = ember::scaled_dot_product_attention(big, kb, vb, {}, 0.0, false, 1.0);
  const double p0 = 1.0 / (1.0 + std::exp(-100.0));
  CHECK(std::abs(ob.select(1, 0).item<double>() - p0) < 1e-6);
}

TEST_CASE("nn::MultiheadAttention / nn::TransformerEncoderLayer: gradcheck and gradgradcheck in float64") {
  ember::manual_seed(24);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2).batch_first(true));
  mha.to(ember::kFloat64);
  Tensor kpm = ember::ne(ember::tensor<int64_t>({0, 0, 1, 0, 0, 0}, {2, 3}), ember::Scalar(0));
  tensor_list in{rnd({2, 3, 4}).requires_grad_(true)};
  for (auto& p : mha.parameters()) in.push_back(p);
  auto f = [&](const tensor_list& t) {
    auto [out, w] = mha.forward(t[0], t[0], t[0], kpm, true);
    return ember::cat({out.reshape({-1}), w.reshape({-1})}, 0);
  };
  CHECK_GRADS(f, in);

  for (bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(4, 2)
                                          .dim_feedforward(3)
                                          .dropout(0.0)
                                          .activation(norm_first ? "gelu" : "relu")
                                          .batch_first(true)
                                          .norm_first(norm_first));
    layer.to(ember::kFloat64);
    tensor_list li{rnd({2, 3, 4}).requires_grad_(true)};
    for (auto& p : layer.parameters()) li.push_back(p);
    auto fl = [&](const tensor_list& t) { return layer.forward(t[0], Tensor(), kpm); };
    CHECK_GRADCHECK(fl, li);
    // Second order on the input, the attention and the norms (ReLU's kink is avoided by gelu).
    if (norm_first) {
      tensor_list l2{rnd({1, 2, 4}).requires_grad_(true), layer.self_attn->in_proj_weight, layer.norm1->weight,
                     layer.linear1->weight};
      auto f2 = [&](const tensor_list& t) { return layer.forward(t[0]); };
      auto r = ember::autograd::gradgradcheck(f2, l2);
      CHECK_MESSAGE(r.ok, r.message);
    }
  }
}

TEST_CASE("transformer layers: dropout in training mode, deterministic in eval mode") {
  ember::manual_seed(25);
  Tensor x = ember::randn({2, 6, 8});
  Tensor kpm = ember::ne(ember::tensor<int64_t>({0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0}, {2, 6}), ember::Scalar(0));
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).dropout(0.5).batch_first(true));
  auto [a1, w1] = mha.forward(x, x, x, kpm);
  auto [a2, w2] = mha.forward(x, x, x, kpm);
  CHECK(ember::sub(a1, a2).abs().max().item<double>() > 1e-4);
  // Dropped weights are zero, kept ones scaled by 2: some per-head weight is 0 where the
  // eval-mode weight is not, and padded keys stay at 0.
  auto [h1, pw] = mha.forward(x, x, x, kpm, true, {}, false);
  CHECK(pw.sizes() == ember::Shape{2, 2, 6, 6});
  CHECK(ember::eq(pw, ember::Scalar(0.0)).to(ember::kFloat32).sum().item<double>() > 20);
  CHECK(pw.select(0, 0).narrow(2, 4, 2).abs().max().item<double>() == 0.0);
  mha.eval();
  auto [e1, ew1] = mha.forward(x, x, x, kpm);
  auto [e2, ew2] = mha.forward(x, x, x, kpm);
  CHECK(ember::sub(e1, e2).abs().max().item<double>() == 0.0);
  CHECK(ew1.sizes() == ember::Shape{2, 6, 6});
  CHECK(ember::sub(ember::sum(ew1, {2}), ember::Scalar(1.0)).abs().max().item<double>() < 1e-6);
  // need_weights = false gives the same output and no weights.
  auto [e3, ew3] = mha.forward(x, x, x, kpm, false);
  CHECK(!ew3.defined());
  CHECK(ember::sub(e1, e3).abs().max().item<double>() < 1e-6);

  auto layer = std::make_shared<nn::TransformerEncoderLayer>(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.3).batch_first(true));
  nn::TransformerEncoder enc(layer, 2);
  Tensor t1 = enc.forward(x, Tensor(), kpm), t2 = enc.forward(x, Tensor(), kpm);
  CHECK(ember::sub(t1, t2).abs().max().item<double>() > 1e-4);
  enc.eval();
  CHECK(ember::sub(enc.forward(x, Tensor(), kpm), enc.forward(x, Tensor(), kpm)).abs().max().item<double>() == 0.0);
  // The clones start from the prototype's values (PyTorch deep-copies the layer).
  CHECK(ember::sub(enc.layer(0)->linear1->weight, layer->linear1->weight).abs().max().item<double>() == 0.0);
  CHECK(ember::sub(enc.layer(1)->self_attn->in_proj_weight, layer->self_attn->in_proj_weight).abs().max().item<double>() == 0.0);
  CHECK(enc.layer(1)->self_attn->in_proj_weight.impl() != layer->self_attn->in_proj_weight.impl());
}

TEST_CASE("nn::MultiheadAttention: PyTorch's initialisation and parameter shapes") {
  ember::manual_seed(26);
  nn::MultiheadAttention m(12, 3);
  CHECK(m.state_dict().keys() ==
        std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  CHECK(m.in_proj_weight.sizes() == ember::Shape{36, 12});
  const double xb = std::sqrt(6.0 / (12 + 36));  // xavier_uniform on [3E, E]
  CHECK(m.in_proj_weight.abs().max().item<double>() <= xb);
  CHECK(m.in_proj_weight.abs().max().item<double>() > 0.8 * xb);
  CHECK(m.in_proj_bias.abs().max().item<double>() == 0.0);
  CHECK(m.out_proj->bias.abs().max().item<double>() == 0.0);
  CHECK(m.out_proj->weight.abs().max().item<double>() <= 1.0 / std::sqrt(12.0));
  CHECK(m.head_dim() == 4);
}

TEST_CASE("transformer layers: clear errors for bad shapes and options") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(nn::MultiheadAttention(10, 3), Contains("embed_dim must be divisible by num_heads, got embed_dim=10 num_heads=3"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(nn::TransformerEncoderLayer(nn::TransformerEncoderLayerOptions(8, 2).activation("tanh")),
                       Contains("activation should be \"relu\" or \"gelu\""), ember::Error);
  nn::MultiheadAttention m(nn::MultiheadAttentionOptions(8, 2).batch_first(true));
  Tensor x = ember::randn({2, 5, 8});
  CHECK_THROWS_WITH_AS(m.forward(ember::randn({2, 5, 8, 1}), x, x), Contains("MultiheadAttention: expected query of shape [N, L, E]"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(m.forward(ember::randn({2, 5, 6}), ember::randn({2, 5, 6}), ember::randn({2, 5, 6})),
                       Contains("expected embed_dim 8"), ember::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, ember::ones({2, 4}, ember::kBool)),
                       Contains("expected key_padding_mask of shape [2, 5]"), ember::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, {}, true, ember::ones({5, 4}, ember::kBool)),
                       Contains("expected attn_mask of shape [5, 5] or [4, 5, 5]"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::scaled_dot_product_attention(ember::randn({2, 3, 4}), ember::randn({2, 5, 4}),
                                                           ember::randn({2, 5, 4}), ember::ones({3, 1, 5}, ember::kBool)),
                       Contains("scaled_dot_product_attention: attn_mask of shape [3, 1, 5] cannot be broadcast"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::scaled_dot_product_attention(ember::randn({2, 3, 4}), ember::randn({2, 5, 3}),
                                                           ember::randn({2, 5, 4})),
                       Contains("must have the same last dim"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::scaled_dot_product_attention(ember::randn({4}), ember::randn({4}), ember::randn({4})),
                       Contains("at least 2"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::layer_norm(ember::randn({2, 3}), {4}),
                       Contains("layer_norm: given normalized_shape=[4], expected input with shape [*, [4]], but got input of size [2, 3]"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::layer_norm(ember::randn({2, 3}), {3}, ember::ones({4})),
                       Contains("layer_norm: expected weight of shape [3], got [4]"), ember::Error);
  nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(8, 2).batch_first(true));
  CHECK_THROWS_WITH_AS(layer.forward(ember::randn({8})), Contains("TransformerEncoderLayer: expected src of shape [N, L, E]"),
                       ember::Error);
}
