#pragma once
/// In-place arithmetic used by optimizers and initialisers: add_ sub_ mul_ div_ addcmul_ addcdiv_.
/// Each writes into self's storage (any strides), broadcasts the other operand to self's shape,
/// and bumps the version counter so autograd notices if a saved tensor was overwritten.
#include "ember/ops/binary.hpp"

namespace ember {

namespace detail {
inline void check_inplace(const Tensor& self, const Tensor& other, const char* op) {
  EMBER_CHECK(self.defined() && other.defined(), op, ": undefined tensor argument");
  EMBER_CHECK(!(is_grad_enabled() && (self.requires_grad() || other.requires_grad())), op,
              ": in-place operations on tensors that require grad are not recorded by autograd; use the "
              "out-of-place op, or run it under NoGradGuard (as optimizers do)");
  check_same_device(op, {&self, &other});
  EMBER_CHECK(broadcast_shapes(self.sizes(), other.sizes(), op) == self.sizes(), op, ": output with shape ",
              self.sizes(), " doesn't match the broadcast shape of the operand ", other.sizes());
  EMBER_CHECK(is_floating(self.dtype()) || !is_floating(other.dtype()), op, ": result type ", other.dtype(),
              " can't be cast to the desired output type ", self.dtype());
}

inline Tensor& binary_inplace(Tensor& self, BinaryOp op, const Tensor& other, double alpha, const char* name) {
  check_inplace(self, other, name);
  Tensor o = other.dtype() == self.dtype() ? other : other.to(self.dtype());
  binary_into(op, self, self, o, alpha);
  self.storage()->bump_version();
  return self;
}
}  // namespace detail

inline Tensor& Tensor::add_(const Tensor& o, Scalar alpha) { return detail::binary_inplace(*this, BinaryOp::Add, o, alpha.to_double(), "add_"); }
inline Tensor& Tensor::sub_(const Tensor& o, Scalar alpha) { return detail::binary_inplace(*this, BinaryOp::Sub, o, alpha.to_double(), "sub_"); }
inline Tensor& Tensor::mul_(const Tensor& o) { return detail::binary_inplace(*this, BinaryOp::Mul, o, 1.0, "mul_"); }
inline Tensor& Tensor::div_(const Tensor& o) {
  EMBER_CHECK(is_floating_point(), "div_: in-place true division needs a floating point tensor, got ", dtype());
  return detail::binary_inplace(*this, BinaryOp::Div, o, 1.0, "div_");
}
inline Tensor& Tensor::add_(Scalar o) { return add_(wrap_scalar(*this, o)); }
inline Tensor& Tensor::sub_(Scalar o) { return sub_(wrap_scalar(*this, o)); }
inline Tensor& Tensor::mul_(Scalar o) { return mul_(wrap_scalar(*this, o)); }
inline Tensor& Tensor::div_(Scalar o) { return div_(wrap_scalar(*this, o)); }

/// self += value * a * b
inline Tensor& Tensor::addcmul_(const Tensor& a, const Tensor& b, Scalar value) {
  NoGradGuard ng;
  return add_(ember::mul(a, b), value);
}
/// self += value * a / b
inline Tensor& Tensor::addcdiv_(const Tensor& a, const Tensor& b, Scalar value) {
  NoGradGuard ng;
  return add_(ember::div(a, b), value);
}

}  // namespace ember
