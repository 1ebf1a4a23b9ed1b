#pragma once
/// Helpers shared by the elementwise op tests: values as doubles and an element-wise comparison
/// that treats NaN and infinities exactly and reports the failing element.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "ember/ember.hpp"

namespace {

using ember::Tensor;

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

void check_close(const Tensor& t, const std::vector<double>& expected, double eps = 1e-12) {
  auto v = vals(t);
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(expected[i])) {
      CHECK_MESSAGE(std::isnan(v[i]), "element ", i);
    } else if (std::isinf(expected[i])) {
      CHECK_MESSAGE(v[i] == expected[i], "element ", i);
    } else {
      CHECK_MESSAGE(v[i] == doctest::Approx(expected[i]).epsilon(eps), "element ", i);
    }
  }
}

}  // namespace
