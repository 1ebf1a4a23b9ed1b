#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "ember/ember.hpp"

using namespace ember;

// Every expected string below is what PyTorch 2.x prints for the same tensor, with `torch.`
// dropped from dtype names.

TEST_CASE("print: floats with decimals, int-valued floats, dtype suffix") {
  CHECK(tensor<double>({1.5, 2, 3, 4}, {2, 2}).str() ==
        "tensor([[1.5000, 2.0000],\n"
        "        [3.0000, 4.0000]], dtype=float64)");
  CHECK(tensor<float>({1, 2, 3}).str() == "tensor([1., 2., 3.])");
  CHECK(tensor<double>({1, 2, 3, 4}, {2, 2}).str() ==
        "tensor([[1., 2.],\n"
        "        [3., 4.]], dtype=float64)");
  CHECK(zeros({2}).str() == "tensor([0., 0.])");
  CHECK(tensor<float>({1.5f, -10.25f}).str() == "tensor([  1.5000, -10.2500])");
  CHECK(scalar_tensor(3.5f).str() == "tensor(3.5000)");
  CHECK(scalar_tensor(7, kInt64).str() == "tensor(7)");
  CHECK(tensor<float>({1.5f}).to(kFloat16).str() == "tensor([1.5000], dtype=float16)");
  CHECK(tensor<float>({2.f}).to(kBFloat16).str() == "tensor([2.], dtype=bfloat16)");
}

TEST_CASE("print: scientific notation and non-finite values") {
  CHECK(tensor<float>({1e-5f, 1.f}).str() == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(tensor<float>({1.f, 1e5f}).str() == "tensor([1.0000e+00, 1.0000e+05])");
  CHECK(tensor<double>({2e9, 1.5}).str() == "tensor([2.0000e+09, 1.5000e+00], dtype=float64)");
  float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  CHECK(tensor<float>({nan, inf, 1.5f}).str() == "tensor([   nan,    inf, 1.5000])");
  CHECK(tensor<float>({-inf, 2.f}).str() == "tensor([-inf, 2.])");
}

TEST_CASE("print: integer and bool dtypes") {
  CHECK(arange(3).str() == "tensor([0, 1, 2])");
  CHECK(arange(3).to(kInt32).str() == "tensor([0, 1, 2], dtype=int32)");
  CHECK(tensor<int64_t>({-5, 120}).str() == "tensor([ -5, 120])");
  CHECK(tensor<uint8_t>({1, 200}).str() == "tensor([  1, 200], dtype=uint8)");
  // (tensor<bool>({...}) does not compile yet: std::vector<bool> has no data(); see the report.)
  CHECK((tensor<int64_t>({1, 0}) == int64_t{1}).str() == "tensor([ True, False])");
  CHECK((tensor<int64_t>({1, 1}) == int64_t{1}).str() == "tensor([True, True])");
}

TEST_CASE("print: higher dims, non-contiguous views") {
  CHECK(arange(8).view({2, 2, 2}).str() ==
        "tensor([[[0, 1],\n"
        "         [2, 3]],\n"
        "\n"
        "        [[4, 5],\n"
        "         [6, 7]]])");
  CHECK(arange(6).view({2, 3}).t().str() ==
        "tensor([[0, 3],\n"
        "        [1, 4],\n"
        "        [2, 5]])");
  CHECK(zeros({1, 1, 1, 1}).str() == "tensor([[[[0.]]]])");
}

TEST_CASE("print: empty tensors") {
  CHECK(zeros({0}).str() == "tensor([])");
  CHECK(zeros({0, 3}).str() == "tensor([], size=(0, 3))");
  CHECK(zeros({0}, kInt64).str() == "tensor([], dtype=int64)");
  CHECK(Tensor().str() == "tensor(undefined)");
}

TEST_CASE("print: long rows wrap at 80 columns") {
  CHECK(arange(30).to(kFloat32).str() ==
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
        "        28., 29.])");
  auto x = arange(14).to(kFloat64).requires_grad_();
  CHECK(x.str() ==
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
        "       dtype=float64, requires_grad=True)");
}

TEST_CASE("print: summarising more than 1000 elements") {
  CHECK(arange(2000).str() == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  CHECK(arange(1100).view({100, 11}).str() ==
        "tensor([[   0,    1,    2,  ...,    8,    9,   10],\n"
        "        [  11,   12,   13,  ...,   19,   20,   21],\n"
        "        [  22,   23,   24,  ...,   30,   31,   32],\n"
        "        ...,\n"
        "        [1067, 1068, 1069,  ..., 1075, 1076, 1077],\n"
        "        [1078, 1079, 1080,  ..., 1086, 1087, 1088],\n"
        "        [1089, 1090, 1091,  ..., 1097, 1098, 1099]])");
  // 1000 elements exactly is printed in full.
  CHECK(arange(1000).str().find("...") == std::string::npos);
  // The format is chosen from the shown values only: the hidden 0.5 does not force decimals.
  auto v = ones({1001});
  {
    NoGradGuard ng;
    v.narrow(0, 500, 1).fill_(0.5);
  }
  CHECK(v.str() == "tensor([1., 1., 1.,  ..., 1., 1., 1.])");
}

TEST_CASE("print: autograd suffixes and operator<<") {
  auto x = tensor<float>({1, 2}).requires_grad_();
  CHECK(x.str() == "tensor([1., 2.], requires_grad=True)");
  auto y = x * 2.0f;
  CHECK(y.str() == "tensor([2., 4.], grad_fn=<MulBackward>)");
  CHECK(y.detach().str() == "tensor([2., 4.])");
  std::ostringstream os;
  os << tensor<double>({0.25}) << " " << Shape{2, 3};
  CHECK(os.str() == "tensor([0.2500], dtype=float64) [2, 3]");
}

TEST_CASE("print: print options") {
  auto& po = print_options();
  PrintOptions saved = po;
  po.precision = 2;
  CHECK(tensor<float>({1.25f, 2.f}).str() == "tensor([1.25, 2.00])");
  po.sci_mode = 1;
  CHECK(tensor<float>({1.5f}).str() == "tensor([1.50e+00])");
  po = saved;
  CHECK(tensor<float>({1.25f}).str() == "tensor([1.2500])");
}
