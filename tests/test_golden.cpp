#include <doctest/doctest.h>

#include "ember/ember.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// Golden values from PyTorch (tests/golden/make_golden.py → tests/golden/ops.json): for each case
// the op's output and the gradients of (out * grad_output).sum() w.r.t. every float input, all
// float64, compared with Ember's forward and autograd::grad.

#ifndef EMBER_SOURCE_DIR
#error "EMBER_SOURCE_DIR must name the repository root (tests/CMakeLists.txt defines it)"
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;
using OpFn = std::function<std::optional<Tensor>(const tensor_list&, const json&)>;

constexpr double kAtol = 1e-9;
constexpr double kRtol = 1e-9;

// The call is written inside a generic lambda, so `in` is a dependent name: an op that does not
// exist yet (or has another signature) makes the requires-expression false and the case is
// reported as skipped, instead of breaking the build while the op headers are being written.
#define GOLDEN_OP(...)                                                         \
  [](const tensor_list& in_, const json& args) -> std::optional<Tensor> {      \
    (void)args;                                                                \
    auto run = [&](const auto& in) -> std::optional<Tensor> {                  \
      (void)in;                                                                \
      if constexpr (requires { Tensor(__VA_ARGS__); }) return Tensor(__VA_ARGS__); \
      else return std::nullopt;                                                \
    };                                                                         \
    return run(in_);                                                           \
  }

ember::Shape dims_of(const json& args) { return ember::Shape(args.at("dims").get<std::vector<int64_t>>()); }
int64_t dim_of(const json& args, const char* key = "dim") { return args.at(key).get<int64_t>(); }
double num(const json& args, const char* key) { return args.at(key).get<double>(); }
/// PyTorch's unbiased flag as Ember's (and torch>=2's) correction.
double correction(const json& args) { return args.at("unbiased").get<bool>() ? 1.0 : 0.0; }

const std::map<std::string, OpFn>& golden_ops() {
  static const std::map<std::string, OpFn> ops = {
      {"add", GOLDEN_OP(add(in[0], in[1]))},
      {"sub", GOLDEN_OP(sub(in[0], in[1]))},
      {"mul", GOLDEN_OP(mul(in[0], in[1]))},
      {"div", GOLDEN_OP(div(in[0], in[1]))},
      {"pow_scalar", GOLDEN_OP(pow(in[0], ember::Scalar(num(args, "exponent"))))},
      {"pow_tensor", GOLDEN_OP(pow(in[0], in[1]))},
      {"exp", GOLDEN_OP(exp(in[0]))},
      {"log", GOLDEN_OP(log(in[0]))},
      {"sqrt", GOLDEN_OP(sqrt(in[0]))},
      {"tanh", GOLDEN_OP(tanh(in[0]))},
      {"sigmoid", GOLDEN_OP(sigmoid(in[0]))},
      {"relu", GOLDEN_OP(relu(in[0]))},
      {"leaky_relu", GOLDEN_OP(leaky_relu(in[0], num(args, "negative_slope")))},
      {"elu", GOLDEN_OP(elu(in[0], num(args, "alpha")))},
      {"gelu", GOLDEN_OP(gelu(in[0], args.at("approximate").get<std::string>()))},
      {"silu", GOLDEN_OP(silu(in[0]))},
      {"softplus", GOLDEN_OP(softplus(in[0], num(args, "beta"), num(args, "threshold")))},
      {"clamp", GOLDEN_OP(clamp(in[0], ember::Scalar(num(args, "min")), ember::Scalar(num(args, "max"))))},
      {"sum", GOLDEN_OP(sum(in[0], dims_of(args), args.at("keepdim").get<bool>()))},
      {"mean", GOLDEN_OP(mean(in[0], dims_of(args), args.at("keepdim").get<bool>()))},
      {"var", GOLDEN_OP(var(in[0], dims_of(args), correction(args), args.at("keepdim").get<bool>()))},
      {"std", GOLDEN_OP(ember::std(in[0], dims_of(args), correction(args), args.at("keepdim").get<bool>()))},
      {"norm", GOLDEN_OP(norm(in[0], num(args, "p"), dims_of(args), args.at("keepdim").get<bool>()))},
      {"logsumexp", GOLDEN_OP(logsumexp(in[0], dims_of(args), args.at("keepdim").get<bool>()))},
      {"max_dim", GOLDEN_OP(std::get<0>(max(in[0], dim_of(args), args.at("keepdim").get<bool>())))},
      {"softmax", GOLDEN_OP(softmax(in[0], dim_of(args)))},
      {"log_softmax", GOLDEN_OP(log_softmax(in[0], dim_of(args)))},
      {"matmul", GOLDEN_OP(matmul(in[0], in[1]))},
      {"linear", GOLDEN_OP(linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor()))},
      {"cat", GOLDEN_OP(cat(tensor_list(in.begin(), in.end()), dim_of(args)))},
      {"stack", GOLDEN_OP(stack(tensor_list(in.begin(), in.end()), dim_of(args)))},
      {"index_select", GOLDEN_OP(index_select(in[0], dim_of(args), in[1]))},
      {"gather", GOLDEN_OP(gather(in[0], dim_of(args), in[1]))},
      {"transpose_contiguous",
       GOLDEN_OP(in[0].transpose(dim_of(args, "dim0"), dim_of(args, "dim1")).contiguous())},
      {"where", GOLDEN_OP(where(in[0], in[1], in[2]))},
      {"mlp_tanh", GOLDEN_OP(log_softmax(matmul(tanh(linear(in[0], in[1], in[2])), in[3].t()), -1))},
  };
  return ops;
}

Tensor from_json(const json& j) {
  ember::Shape shape(j.at("shape").get<std::vector<int64_t>>());
  const std::string dtype = j.at("dtype").get<std::string>();
  if (dtype == "float64") return ember::tensor(j.at("data").get<std::vector<double>>(), shape);
  if (dtype == "int64") return ember::tensor(j.at("data").get<std::vector<int64_t>>(), shape);
  REQUIRE(dtype == "bool");
  std::vector<int64_t> v;
  for (bool b : j.at("data").get<std::vector<bool>>()) v.push_back(b ? 1 : 0);
  return ember::tensor(v, shape).to(ember::kBool);
}

/// Empty string when `actual` matches the expected JSON tensor; otherwise what differs.
std::string compare(const Tensor& actual, const json& expected, const std::string& what) {
  std::vector<int64_t> shape = expected.at("shape").get<std::vector<int64_t>>();
  std::ostringstream os;
  os.precision(17);
  if (!actual.defined()) return what + ": undefined";
  if (actual.sizes() != ember::Shape(shape)) {
    os << what << ": shape " << actual.sizes() << ", expected " << ember::Shape(shape);
    return os.str();
  }
  if (actual.dtype() != ember::kFloat64) {
    os << what << ": dtype " << actual.dtype() << ", expected float64";
    return os.str();
  }
  std::vector<double> a = actual.to_vector<double>();
  std::vector<double> e = expected.at("data").get<std::vector<double>>();
  for (size_t i = 0; i < e.size(); ++i) {
    if (!(std::abs(a[i] - e[i]) <= kAtol + kRtol * std::abs(e[i]))) {
      os << what << ": element " << i << " is " << a[i] << ", PyTorch gives " << e[i] << " (|diff| "
         << std::abs(a[i] - e[i]) << ")";
      return os.str();
    }
  }
  return "";
}

const json& golden() {
  static const json j = [] {
    std::string path = std::string(EMBER_SOURCE_DIR) + "/tests/golden/ops.json";
    std::ifstream f(path);
    REQUIRE_MESSAGE(f.good(), "cannot open " << path << " (regenerate with tests/golden/make_golden.py)");
    return json::parse(f);
  }();
  return j;
}

}  // namespace

TEST_CASE("golden: ops.json is present and every op it names has a mapping") {
  const json& g = golden();
  REQUIRE(g.at("cases").size() > 40);
  for (const auto& c : g.at("cases")) {
    INFO("case ", c.at("name").get<std::string>());
    CHECK(golden_ops().count(c.at("op").get<std::string>()) == 1);
  }
}

TEST_CASE("golden: outputs and gradients match PyTorch") {
  std::vector<std::string> skipped;
  int checked = 0;
  for (const auto& c : golden().at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const std::string op = c.at("op").get<std::string>();
    auto it = golden_ops().find(op);
    if (it == golden_ops().end()) continue;  // reported by the test above
    INFO("golden case '", name, "' (op ", op, ", args ", c.at("args").dump(), ")");
    tensor_list inputs, float_inputs;
    for (const auto& j : c.at("inputs")) {
      Tensor t = from_json(j);
      if (t.is_floating_point()) {
        t.requires_grad_(true);
        float_inputs.push_back(t);
      }
      inputs.push_back(t);
    }
    std::optional<Tensor> out;
    try {
      out = it->second(inputs, c.at("args"));
    } catch (const ember::Error& e) {
      FAIL_CHECK("threw: ", e.what());
      continue;
    }
    if (!out) {
      skipped.push_back(op);
      continue;
    }
    ++checked;
    std::string err = compare(*out, c.at("output"), "output");
    CHECK_MESSAGE(err.empty(), err);
    if (!err.empty()) continue;
    REQUIRE_MESSAGE(out->requires_grad(), "the output does not require grad");
    tensor_list grads;
    try {
      grads = ember::autograd::grad({*out}, float_inputs, {from_json(c.at("grad_output"))}, false, false, true);
    } catch (const ember::Error& e) {
      FAIL_CHECK("backward threw: ", e.what());
      continue;
    }
    size_t k = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].is_floating_point()) continue;
      const json& expected = c.at("grads").at(i);
      const Tensor& g = grads[k++];
      if (expected.is_null()) {
        CHECK_MESSAGE(!g.defined(), "input ", i, ": PyTorch has no gradient, Ember returned one");
        continue;
      }
      std::string gerr = compare(g, expected, "grad of input " + std::to_string(i));
      CHECK_MESSAGE(gerr.empty(), gerr);
    }
  }
  std::sort(skipped.begin(), skipped.end());
  skipped.erase(std::unique(skipped.begin(), skipped.end()), skipped.end());
  std::string list;
  for (const auto& s : skipped) list += " " + s;
  if (!skipped.empty()) MESSAGE("golden: ops not available in Ember yet (cases skipped):", list);
  MESSAGE("golden: checked ", checked, " cases against PyTorch");
  CHECK(checked > 0);
}
