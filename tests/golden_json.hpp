#pragma once
// Golden tensors as the tests/golden/*.py scripts write them in JSON ({"shape", "dtype", "data"}),
// and the one comparison the golden tests share.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace ember_test {

/// The JSON tensor, int64 or float64 (or `dtype` when given).
template <typename Json>
ember::Tensor tensor_from_json(const Json& j, std::optional<ember::DType> dtype = std::nullopt) {
  ember::Shape shape(j.at("shape").template get<std::vector<int64_t>>());
  if (j.at("dtype") == "int64") return ember::tensor(j.at("data").template get<std::vector<int64_t>>(), shape);
  ember::Tensor t = ember::tensor(j.at("data").template get<std::vector<double>>(), shape);
  return dtype ? t.to(*dtype) : t;
}

/// How close is close enough: |a - e| <= abs + rel |e|, or with `floor_one`, <= rel max(1, |e|).
struct Tolerance {
  double abs = 1e-9, rel = 1e-9;
  bool floor_one = false;
  static Tolerance sum(double tol) { return {tol, tol, false}; }
  static Tolerance relative_floor_one(double tol) { return {0, tol, true}; }
};

/// Empty when `a` matches the JSON tensor `e`; otherwise what differs (shape or first element).
template <typename Json>
std::string compare_to_golden(const ember::Tensor& a, const Json& e, const std::string& what, Tolerance tol = {}) {
  std::ostringstream os;
  os.precision(17);
  if (!a.defined()) return what + ": undefined";
  ember::Shape shape(e.at("shape").template get<std::vector<int64_t>>());
  if (a.sizes() != shape) {
    os << what << ": shape " << a.sizes() << ", PyTorch has " << shape;
    return os.str();
  }
  std::vector<double> av = a.to_vector<double>(), ev = e.at("data").template get<std::vector<double>>();
  for (size_t i = 0; i < ev.size(); ++i) {
    const double bound = tol.floor_one ? tol.rel * std::max(1.0, std::abs(ev[i])) : tol.abs + tol.rel * std::abs(ev[i]);
    if (!(std::abs(av[i] - ev[i]) <= bound)) {
      os << what << ": element " << i << " is " << av[i] << ", PyTorch gives " << ev[i];
      return os.str();
    }
  }
  return "";
}

}  // namespace ember_test
