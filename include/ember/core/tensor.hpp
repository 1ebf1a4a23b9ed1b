#pragma once
/// Tensor: a cheap handle (one shared pointer) to sizes, strides, offset, storage, dtype, device
/// and autograd metadata. Copying a Tensor shares everything, as in PyTorch; views share storage.
///
/// The member functions below are thin spellings of the free functions in ember/ops/*; each is
/// defined next to its op (the header named in the comment), so this header stays the map of the
/// API rather than its implementation.
///
/// Example:
/// ```
///   auto x = ember::randn({4, 3}, ember::TensorOptions().requires_grad(true));
///   auto loss = (x * x).sum();
///   loss.backward();          // x.grad() == 2 * x
/// ```
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "ember/core/device.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/scalar.hpp"
#include "ember/core/shape.hpp"
#include "ember/core/storage.hpp"

namespace ember {

class Tensor;
struct TensorImpl;
namespace autograd {
struct Node;
}
using tensor_list = std::vector<Tensor>;

/// dtype, device and requires_grad for factories: `zeros({2, 3}, TensorOptions().dtype(kFloat64))`.
/// A DType or Device converts implicitly, so `zeros({2, 3}, kFloat64)` works too.
struct TensorOptions {
  TensorOptions() = default;
  TensorOptions(DType t) : dtype_(t) {}   // NOLINT
  TensorOptions(Device d) : device_(d) {}  // NOLINT
  TensorOptions(DeviceType d) : device_(d) {}  // NOLINT
  TensorOptions dtype(DType t) const { auto o = *this; o.dtype_ = t; return o; }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r) const { auto o = *this; o.requires_grad_ = r; return o; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool requires_grad() const { return requires_grad_; }

 private:
  DType dtype_ = kFloat32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata (core/tensor.hpp) -------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const;
  const Shape& shape() const { return sizes(); }
  const Shape& strides() const;
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  TensorOptions options() const;
  int64_t storage_offset() const;
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  bool is_cuda() const { return device().is_cuda(); }
  const std::shared_ptr<Storage>& storage() const;
  /// Pointer to the first element; checks that T matches the dtype.
  template <typename T> T* data_ptr() const;
  void* raw_data() const;
  size_t element_size() const { return ember::element_size(dtype()); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  /// Number of in-place modifications of the storage (autograd uses it to detect stale saves).
  uint32_t version() const;
  std::string str() const;  // core/print.hpp

  /// The value of a one-element tensor (copied to the host if needed).
  template <typename T> T item() const;  // ops/copy.hpp
  /// All elements in row-major order, on the host, as T (converted).
  template <typename T> std::vector<T> to_vector() const;  // ops/copy.hpp

  // ---- autograd (autograd/*.hpp) ----------------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);
  /// The accumulated gradient of a leaf (undefined until backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  bool is_leaf() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  /// Keep .grad() for a non-leaf tensor after backward.
  void retain_grad() const;
  /// Runs `hook(grad)` when this tensor's gradient is computed; a defined return value replaces it.
  void register_hook(std::function<Tensor(const Tensor&)> hook) const;
  /// A tensor sharing storage with no autograd history.
  Tensor detach() const;
  Tensor& detach_();

  // ---- conversion and copies (ops/copy.hpp) -----------------------------------------------------
  Tensor to(DType t) const;
  Tensor to(Device d) const;
  Tensor to(Device d, DType t) const;
  Tensor cpu() const { return to(kCPU); }
  Tensor cuda(int index = 0) const { return to(Device(DeviceType::CUDA, index)); }
  Tensor clone() const;
  Tensor contiguous() const;
  Tensor& copy_(const Tensor& src);

  // ---- views and shape (ops/shape.hpp) ----------------------------------------------------------
  Tensor view(const Shape& sizes) const;
  Tensor reshape(const Shape& sizes) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t index) const { return select(0, index); }
  Tensor expand(const Shape& sizes) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  tensor_list split(int64_t split_size, int64_t dim = 0) const;
  tensor_list chunk(int64_t chunks, int64_t dim = 0) const;

  // ---- indexing (ops/index.hpp) -----------------------------------------------------------------
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor masked_fill(const Tensor& mask, Scalar value) const;

  // ---- elementwise (ops/unary.hpp, ops/binary.hpp, ops/activation.hpp) ---------------------------
  Tensor add(const Tensor& o, Scalar alpha = 1) const;
  Tensor sub(const Tensor& o, Scalar alpha = 1) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;
  Tensor pow(Scalar exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor abs() const;
  Tensor sign() const;
  Tensor square() const;
  Tensor reciprocal() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt) const;

  // ---- reductions (ops/reduce.hpp) --------------------------------------------------------------
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;

  // ---- linear algebra (ops/linalg.hpp) ----------------------------------------------------------
  Tensor matmul(const Tensor& o) const;
  Tensor mm(const Tensor& o) const;

  // ---- in place (ops/inplace.hpp); each bumps the version counter -------------------------------
  Tensor& add_(const Tensor& o, Scalar alpha = 1);
  Tensor& add_(Scalar o);
  Tensor& sub_(const Tensor& o, Scalar alpha = 1);
  Tensor& sub_(Scalar o);
  Tensor& mul_(const Tensor& o);
  Tensor& mul_(Scalar o);
  Tensor& div_(const Tensor& o);
  Tensor& div_(Scalar o);
  Tensor& zero_();
  Tensor& fill_(Scalar v);
  Tensor& clamp_(std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt);
  Tensor& addcmul_(const Tensor& a, const Tensor& b, Scalar value = 1);
  Tensor& addcdiv_(const Tensor& a, const Tensor& b, Scalar value = 1);
  Tensor& uniform_(double from = 0, double to = 1);
  Tensor& normal_(double mean = 0, double std = 1);

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// Autograd state of one tensor; allocated only for tensors that take part in autograd.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;              // set for non-leaf results of recorded ops
  std::weak_ptr<autograd::Node> grad_accumulator;       // leaves: created on first use
  std::vector<std::function<Tensor(const Tensor&)>> hooks;  // leaves; non-leaf hooks live on grad_fn
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = kFloat32;
  std::unique_ptr<AutogradMeta> autograd;

  AutogradMeta& meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
  bool requires_grad() const { return autograd && (autograd->requires_grad || autograd->grad_fn); }
};

// ---- construction helpers used by every op -------------------------------------------------------

/// A new tensor with fresh (uninitialised) contiguous storage.
/// Throws ember::Error for a negative size, an element count or byte size that overflows, or a
/// byte size above max_allocation_bytes(); the message names the shape and dtype.
inline size_t checked_nbytes(const Shape& sizes, DType dtype, const char* op = "empty") {
  for (int64_t s : sizes) EMBER_CHECK(s >= 0, op, ": negative dimension in size ", sizes, " (", dtype, ")");
  int64_t n = 0;
  EMBER_CHECK(sizes.checked_numel(n), op, ": a tensor of shape ", sizes, " (", dtype,
              ") has more elements than int64 can count");
  const auto esize = static_cast<int64_t>(element_size(dtype));
  EMBER_CHECK(n <= INT64_MAX / esize, op, ": a tensor of shape ", sizes, " (", dtype, ") has ", n,
              " elements, whose byte size overflows int64");
  const auto nbytes = static_cast<size_t>(n * esize);
  EMBER_CHECK(nbytes <= max_allocation_bytes(), op, ": a tensor of shape ", sizes, " (", dtype, ") needs ",
              format_bytes(nbytes), ", above the limit of ", format_bytes(max_allocation_bytes()),
              " per tensor (raise it with set_max_allocation_bytes or EMBER_MAX_ALLOC_BYTES)");
  return nbytes;
}

/// A new tensor with fresh (uninitialised) contiguous storage.
inline Tensor make_tensor(const Shape& sizes, DType dtype, Device device) {
  const size_t nbytes = checked_nbytes(sizes, dtype);
  try {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(nbytes, device);
    impl->sizes = sizes;
    impl->strides = contiguous_strides(sizes);
    impl->dtype = dtype;
    return Tensor(std::move(impl));
  } catch (const std::bad_alloc&) {  // the small control blocks; the data buffer reports itself
    EMBER_FAIL("out of memory: allocating a tensor of shape ", sizes, " (", dtype, ", ", format_bytes(nbytes),
               ") on ", device);
  }
}

/// A view of `base`'s storage with new geometry (no autograd: ops/shape.hpp records the view).
inline Tensor make_view(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->sizes = sizes;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- metadata definitions ------------------------------------------------------------------------

namespace detail {
inline TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  EMBER_CHECK(p != nullptr, "use of an undefined tensor");
  return *p;
}
}  // namespace detail

inline const Shape& Tensor::sizes() const { return detail::checked(impl_).sizes; }
inline const Shape& Tensor::strides() const { return detail::checked(impl_).strides; }
inline int64_t Tensor::dim() const { return detail::checked(impl_).sizes.size(); }
inline int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
inline int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
inline int64_t Tensor::numel() const { return sizes().numel(); }
inline DType Tensor::dtype() const { return detail::checked(impl_).dtype; }
inline Device Tensor::device() const { return detail::checked(impl_).storage->device(); }
inline TensorOptions Tensor::options() const { return TensorOptions(dtype()).device(device()); }
inline int64_t Tensor::storage_offset() const { return detail::checked(impl_).offset; }
inline const std::shared_ptr<Storage>& Tensor::storage() const { return detail::checked(impl_).storage; }
inline uint32_t Tensor::version() const { return storage()->version(); }
inline void* Tensor::raw_data() const {
  auto& i = detail::checked(impl_);
  return static_cast<char*>(i.storage->data()) + i.offset * static_cast<int64_t>(ember::element_size(i.dtype));
}
template <typename T>
T* Tensor::data_ptr() const {
  EMBER_CHECK(dtype() == dtype_v<T>, "data_ptr: tensor has dtype ", dtype(), " but ", dtype_v<T>, " was requested");
  return static_cast<T*>(raw_data());
}
inline bool Tensor::is_contiguous() const {
  const auto& i = detail::checked(impl_);
  int64_t expected = 1;
  for (int64_t d = i.sizes.size() - 1; d >= 0; --d) {
    if (i.sizes[d] == 1) continue;
    if (i.strides[d] != expected) return false;
    expected *= i.sizes[d];
  }
  return true;
}

inline bool Tensor::requires_grad() const { return detail::checked(impl_).requires_grad(); }
inline Tensor& Tensor::requires_grad_(bool on) {
  auto& i = detail::checked(impl_);
  EMBER_CHECK(!(i.autograd && i.autograd->grad_fn) || on,
              "requires_grad_: you can only change requires_grad flags of leaf tensors");
  EMBER_CHECK(!on || is_floating(i.dtype), "requires_grad_: only floating point tensors can require "
              "gradients, got dtype ", i.dtype);
  if (on || i.autograd) i.meta().requires_grad = on;
  return *this;
}
inline Tensor Tensor::grad() const {
  auto& i = detail::checked(impl_);
  return i.autograd ? i.autograd->grad : Tensor();
}
inline void Tensor::set_grad(const Tensor& g) const {
  auto& i = detail::checked(impl_);
  if (g.defined()) {
    EMBER_CHECK(g.sizes() == i.sizes, "set_grad: gradient of shape ", g.sizes(), " for a tensor of shape ", i.sizes);
  }
  i.meta().grad = g;
}
inline const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> kNone;
  auto& i = detail::checked(impl_);
  return i.autograd ? i.autograd->grad_fn : kNone;
}
inline bool Tensor::is_leaf() const { return grad_fn() == nullptr; }
inline Tensor Tensor::detach() const {
  auto& i = detail::checked(impl_);
  return make_view(*this, i.sizes, i.strides, i.offset);
}
inline Tensor& Tensor::detach_() {
  auto& i = detail::checked(impl_);
  if (i.autograd) {
    i.autograd->grad_fn.reset();
    i.autograd->requires_grad = false;
  }
  return *this;
}

}  // namespace ember
