#pragma once
/// Shared by the layer tests: loads tests/golden/layers.json (written by make_layer_golden.py with
/// PyTorch 1.13) and compares an op's output and input gradients with PyTorch's within 1e-9.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "golden_json.hpp"

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;

ember::TensorOptions f64g() { return ember::TensorOptions(ember::kFloat64).requires_grad(true); }

Tensor from_json(const json& j) { return ember_test::tensor_from_json(j); }

/// Empty when `a` matches the JSON tensor within 1e-9; otherwise what differs.
std::string compare(const Tensor& a, const json& e, const std::string& what) {
  return ember_test::compare_to_golden(a, e, what);
}

const json& golden() {
  static const json j = [] {
    std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/golden/layers.json");
    return f ? json::parse(f) : json();
  }();
  return j;
}

/// Runs `fn` on every golden case of `op` and compares output and input gradients.
int run_golden(const std::string& op, const std::function<Tensor(const tensor_list&, const json&)>& fn) {
  const json& g = golden();
  if (g.is_null()) {
    MESSAGE("tests/golden/layers.json not found (define EMBER_SOURCE_DIR); golden cases skipped");
    return 0;
  }
  int n = 0;
  for (const json& c : g.at("cases")) {
    if (c.at("op") != op) continue;
    ++n;
    std::string name = c.at("name");
    tensor_list in;
    for (const json& t : c.at("inputs")) in.push_back(from_json(t));
    tensor_list diff;
    for (size_t i = 0; i < in.size(); ++i)
      if (!c.at("grads").at(i).is_null()) {
        in[i].requires_grad_(true);
        diff.push_back(in[i]);
      }
    Tensor out = fn(in, c.at("args"));
    CHECK_MESSAGE(compare(out, c.at("output"), name + " output") == "", compare(out, c.at("output"), name + " output"));
    tensor_list grads = ember::autograd::grad({out}, diff, {from_json(c.at("grad_output"))});
    size_t k = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (c.at("grads").at(i).is_null()) continue;
      std::string what = name + " grad of input " + std::to_string(i);
      std::string msg = compare(grads[k++], c.at("grads").at(i), what);
      CHECK_MESSAGE(msg == "", msg);
    }
  }
  return n;
}

}  // namespace
