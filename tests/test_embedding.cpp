#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/nn/embedding.hpp"
#include "ember/ops/index.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// nn::Embedding (padding_idx, from_pretrained): hand-checked values,
// PyTorch goldens (tests/golden/layers.json), gradcheck + gradgradcheck in float64, errors, reprs.

#include "layer_golden.hpp"

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;

}  // namespace

TEST_CASE("nn::Embedding: lookup, padding_idx row zero and without gradient") {
  namespace nn = ember::nn;
  nn::Embedding e(nn::EmbeddingOptions(10, 3).padding_idx(0));
  CHECK(e.weight.sizes() == ember::Shape{10, 3});
  CHECK(e.weight.select(0, 0).to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(e.repr() == "Embedding(10, 3, padding_idx=0)");
  CHECK(e.state_dict().keys() == std::vector<std::string>{"weight"});
  Tensor idx = ember::tensor<int64_t>({0, 4, 4, 0, 9, 1}, {2, 3});
  Tensor out = e.forward(idx);
  CHECK(out.sizes() == ember::Shape{2, 3, 3});
  CHECK(out.select(0, 0).select(0, 1).to_vector<float>() == e.weight.select(0, 4).to_vector<float>());
  out.sum().backward();
  Tensor g = e.weight.grad();
  CHECK(g.select(0, 0).to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(g.select(0, 4).to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK(g.select(0, 1).to_vector<float>() == std::vector<float>{1, 1, 1});
  // Negative padding_idx counts from the end; out of range is an error.
  nn::Embedding neg(nn::EmbeddingOptions(5, 2).padding_idx(-1));
  CHECK(*neg.options.padding_idx() == 4);
  CHECK(nn::Embedding(4, 2).repr() == "Embedding(4, 2)");
  CHECK_THROWS_WITH_AS(nn::Embedding(nn::EmbeddingOptions(5, 2).padding_idx(5)),
                       doctest::Contains("Embedding: padding_idx must be within num_embeddings"), ember::Error);
  CHECK_THROWS_WITH_AS(e.forward(ember::tensor<int64_t>({10})), doctest::Contains("index"), ember::Error);
  CHECK_THROWS_WITH_AS(e.forward(ember::tensor<float>({1.f})), doctest::Contains("embedding: expected int64 or int32"),
                       ember::Error);
}

TEST_CASE("nn::Embedding::from_pretrained: frozen by default, keeps values and dtype") {
  namespace nn = ember::nn;
  Tensor table = ember::randn({4, 2}, ember::kFloat64);
  auto e = nn::Embedding::from_pretrained(table);
  CHECK_FALSE(e->weight.requires_grad());
  CHECK(e->weight.dtype() == ember::kFloat64);
  CHECK(e->weight.to_vector<double>() == table.to_vector<double>());
  CHECK(e->num_parameters() == 0);
  CHECK(e->num_parameters(false) == 8);
  auto t = nn::Embedding::from_pretrained(table, false, 1);
  CHECK(t->weight.requires_grad());
  CHECK(t->weight.select(0, 1).to_vector<double>() == table.select(0, 1).to_vector<double>());  // not zeroed
  t->forward(ember::tensor<int64_t>({1, 2})).sum().backward();
  CHECK(t->weight.grad().select(0, 1).to_vector<double>() == std::vector<double>{0, 0});
  CHECK(t->weight.grad().select(0, 2).to_vector<double>() == std::vector<double>{1, 1});
}

TEST_CASE("nn::Embedding: matches PyTorch (goldens) and double backward") {
  namespace nn = ember::nn;
  int n = run_golden("embedding", [](const tensor_list& in, const json& a) {
    std::optional<int64_t> pad;
    if (!a.at("padding_idx").is_null()) pad = a.at("padding_idx").get<int64_t>();
    auto e = nn::Embedding::from_pretrained(in[0].detach(), false, pad);
    // Route the golden input through the module's weight so its gradient is the input's.
    e->replace_parameter("weight", in[0]);
    e->weight = in[0];
    return e->forward(in[1]);
  });
  CHECK(n == 2);
  // Second order: the gradient of a squared lookup is differentiable again. (The padding row is
  // not looked up here: by design it gets no gradient, which finite differences would contradict.)
  Tensor w = ember::randn({5, 3}, f64g());
  Tensor idx = ember::tensor<int64_t>({0, 1, 1, 4});
  auto f = [idx](const tensor_list& in) {
    nn::Embedding e(nn::EmbeddingOptions(5, 3).padding_idx(2));
    e.weight = in[0];
    Tensor o = e.forward(idx);
    return o * o;
  };
  CHECK_GRADS(f, {w});
}
