#pragma once
/// Linear algebra: mm, bmm, matmul (PyTorch semantics), addmm, linear, dot, outer.
///
/// One dispatch point serves every product: `gemm_into(out, a, b, batch, alpha, beta)` computes
/// out[i] = alpha * a[i] @ b[i] + beta * out[i] over a (broadcast) batch. On the CPU each matrix is
/// one `cpu::gemm` call (ops/cpu_gemm.hpp) on Ember's buffer: a row-major operand (stride[-1] == 1)
/// is passed as is, a transposed view (stride[-2] == 1) as a transposed operand, so `x.t()` costs
/// nothing; only other layouts are copied. On CUDA the same layouts become cuBLAS trans flags and
/// leading dimensions.
///
/// Example:
/// ```
///   auto x = ember::randn({32, 1600});
///   auto w = ember::randn({128, 1600});
///   auto y = ember::linear(x, w, b);      // [32, 128] = x @ w^T + b, one GEMM
///   auto z = ember::matmul(ember::randn({8, 4, 5}), ember::randn({5, 6}));  // [8, 4, 6]
/// ```
#include <vector>

#include "ember/ops/cpu_gemm.hpp"
#include "ember/ops/reduce.hpp"

namespace ember {

namespace detail {

// ---- operand layout ------------------------------------------------------------------------------

/// How one operand's matrices (its last two dims) look to a BLAS: row- or column-major with a
/// leading dimension, plus the tensor that owns the memory (a contiguous copy if needed).
struct GemmOperand {
  Tensor t;
  bool col_major = false;
  int64_t ld = 1;
};

/// Picks a copy-free layout for the last two dims of `t` (detached) when one exists: stride[-1] == 1
/// is row-major with ld = stride[-2]; stride[-2] == 1 is column-major with ld = stride[-1]. A size-1
/// dim's stride is irrelevant. Anything else (e.g. a doubly strided slice) is made contiguous.
inline GemmOperand gemm_operand(const Tensor& t) {
  int64_t r = t.size(-2), c = t.size(-1), rs = t.stride(-2), cs = t.stride(-1);
  int64_t rmin = std::max<int64_t>(r, 1), cmin = std::max<int64_t>(c, 1);
  if ((cs == 1 || c == 1) && (r == 1 || rs >= cmin)) return {t, false, r == 1 ? cmin : rs};
  if ((rs == 1 || r == 1) && (c == 1 || cs >= rmin)) return {t, true, c == 1 ? rmin : cs};
  return {t.contiguous(), false, cmin};
}

/// Element offset of each matrix of `t` (dims before the last two) for every index of the
/// broadcast batch shape `batch`; size-1 (or missing) batch dims repeat the same matrix.
inline std::vector<int64_t> batch_offsets(const Tensor& t, const Shape& batch) {
  int64_t nb = batch.numel();
  std::vector<int64_t> off(static_cast<size_t>(nb), 0);
  int64_t tb = t.dim() - 2, lead = batch.size() - tb;
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, o = 0;
    for (int64_t d = batch.size() - 1; d >= 0; --d) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      int64_t td = d - lead;
      if (td >= 0 && t.size(td) != 1) o += idx * t.stride(td);
    }
    off[static_cast<size_t>(i)] = o;
  }
  return off;
}

/// Floating dtypes a product supports: float32/float64 on the CPU, also float16/bfloat16 on CUDA.
inline void check_gemm_dtypes(const char* name, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), name, ": expected both operands to have the same dtype, got ", a.dtype(),
              " and ", b.dtype(), " (convert one with .to(dtype))");
  bool ok = a.dtype() == kFloat32 || a.dtype() == kFloat64 ||
            (a.is_cuda() && (a.dtype() == kFloat16 || a.dtype() == kBFloat16));
  EMBER_CHECK(ok, name, ": expected float32 or float64 operands", a.is_cuda() ? " (or float16/bfloat16)" : "",
              ", got ", a.dtype(), " on ", a.device(), "; integer matrix products are not supported (as in CUDA PyTorch)");
}

// ---- CPU kernel ------------------------------------------------------------------------------------

/// Below this many multiply-adds per matrix, a batch is spread over threads one matrix each;
/// above it Eigen threads each product itself (its blocking needs a few hundred rows per thread).
inline constexpr int64_t kSmallGemmWork = int64_t{1} << 18;

template <typename T>
void gemm_cpu(const GemmOperand& A, const std::vector<int64_t>& offa, const GemmOperand& B,
              const std::vector<int64_t>& offb, T* c, int64_t m, int64_t n, int64_t k, T alpha, T beta) {
  const T* pa = A.t.template data_ptr<T>();
  const T* pb = B.t.template data_ptr<T>();
  // A column-major operand is the transpose of a row-major one with the same leading dimension.
  auto one = [&](int64_t i) {
    cpu::gemm<T>(A.col_major, B.col_major, m, n, k, alpha, pa + offa[static_cast<size_t>(i)], A.ld,
                 pb + offb[static_cast<size_t>(i)], B.ld, beta, c + i * m * n, std::max<int64_t>(n, 1));
  };
  int64_t nb = static_cast<int64_t>(offa.size());
  int64_t work = std::max<int64_t>(m * n * std::max<int64_t>(k, 1), 1);
  if (nb > 1 && work < kSmallGemmWork) {
    // Small matrices: one product per thread (Eigen runs serially inside an OpenMP region).
    parallel_for(0, nb, std::max<int64_t>(1, kSmallGemmWork / work), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < nb; ++i) one(i);
  }
}

#ifdef EMBER_WITH_CUDA
/// The single batch stride of `off` if the offsets are evenly spaced (cuBLAS strided batches).
inline std::optional<int64_t> uniform_stride(const std::vector<int64_t>& off) {
  if (off.size() <= 1) return int64_t{0};
  int64_t s = off[1] - off[0];
  for (size_t i = 1; i < off.size(); ++i)
    if (off[i] - off[i - 1] != s) return std::nullopt;
  return s;
}
#endif

}  // namespace detail

/// The dispatch point for every matrix product (no autograd): for each index i of the broadcast
/// batch shape `batch`, out[i] = alpha * a[i] @ b[i] + beta * out[i], where a is [..., m, k], b is
/// [..., k, n] and `out` is a fresh contiguous [batch..., m, n] tensor (holding the addend when
/// beta != 0; with beta == 0 its contents are ignored, as in BLAS). Shapes are checked by callers.
inline void gemm_into(const char* name, const Tensor& out, const Tensor& a_in, const Tensor& b_in, const Shape& batch,
                      double alpha, double beta) {
  int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  if (out.numel() == 0) return;
  detail::GemmOperand A = detail::gemm_operand(a_in.detach());
  detail::GemmOperand B = detail::gemm_operand(b_in.detach());
  std::vector<int64_t> offa = detail::batch_offsets(A.t, batch);
  std::vector<int64_t> offb = detail::batch_offsets(B.t, batch);
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    // cuBLAS wants one stride per operand; an irregular broadcast batch is materialised first.
    auto sa = detail::uniform_stride(offa), sb = detail::uniform_stride(offb);
    auto full = [&](const Tensor& t, int64_t r, int64_t c) {
      Shape s = batch;
      s.push_back(r);
      s.push_back(c);
      return t.expand(s).contiguous();
    };
    if (!sa) {
      A = {full(A.t, m, k), false, std::max<int64_t>(k, 1)};
      sa = m * k;
    }
    if (!sb) {
      B = {full(B.t, k, n), false, std::max<int64_t>(n, 1)};
      sb = k * n;
    }
    // Offsets are relative to each operand's first element, so batch 0 starts at raw_data().
    const void* pa = A.t.raw_data();
    const void* pb = B.t.raw_data();
    // Row-major C = op(A) @ op(B): a column-major operand is the transpose of a row-major one.
    cuda::gemm(out.dtype(), A.col_major, B.col_major, m, n, k, alpha, pa, A.ld, *sa, pb, B.ld, *sb, beta,
               out.raw_data(), std::max<int64_t>(n, 1), m * n, batch.numel());
#else
    fail_no_cuda(name);
#endif
    return;
  }
  visit_floating(out.dtype(), name, [&]<typename T>() {
    detail::gemm_cpu<T>(A, offa, B, offb, out.data_ptr<T>(), m, n, k, static_cast<T>(alpha), static_cast<T>(beta));
  });
}

// ---- mm, bmm ---------------------------------------------------------------------------------------

/// Matrix product of two 2-D tensors: [m, k] @ [k, n] -> [m, n] (torch.mm).
inline Tensor mm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "mm: undefined tensor argument");
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, "mm: expected 2-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  EMBER_CHECK(a.size(1) == b.size(0), "mm: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(1), " != ", b.size(0), ")");
  check_same_device("mm", {&a, &b});
  detail::check_gemm_dtypes("mm", a, b);
  Tensor out = make_tensor({a.size(0), b.size(1)}, a.dtype(), a.device());
  gemm_into("mm", out, a, b, Shape{}, 1.0, 0.0);
  if (autograd::needs_grad(a, b)) {
    // Save only what the other gradient needs.
    tensor_list saved = {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()};
    autograd::record("MmBackward", out, {a, b}, std::move(saved),
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? mm(g, c.saved(1).t()) : Tensor(),
                               c.needs(1) ? mm(c.saved(0).t(), g) : Tensor()};
                     });
  }
  return out;
}

/// Batched matrix product of two 3-D tensors: [B, m, k] @ [B, k, n] -> [B, m, n] (torch.bmm).
inline Tensor bmm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "bmm: undefined tensor argument");
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  EMBER_CHECK(a.size(0) == b.size(0), "bmm: batch sizes of shapes ", a.sizes(), " and ", b.sizes(), " differ (",
              a.size(0), " != ", b.size(0), ")");
  EMBER_CHECK(a.size(2) == b.size(1), "bmm: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(2), " != ", b.size(1), ")");
  check_same_device("bmm", {&a, &b});
  detail::check_gemm_dtypes("bmm", a, b);
  Tensor out = make_tensor({a.size(0), a.size(1), b.size(2)}, a.dtype(), a.device());
  gemm_into("bmm", out, a, b, Shape{a.size(0)}, 1.0, 0.0);
  if (autograd::needs_grad(a, b)) {
    tensor_list saved = {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()};
    autograd::record("BmmBackward", out, {a, b}, std::move(saved),
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? bmm(g, c.saved(1).transpose(1, 2)) : Tensor(),
                               c.needs(1) ? bmm(c.saved(0).transpose(1, 2), g) : Tensor()};
                     });
  }
  return out;
}

// ---- dot, outer --------------------------------------------------------------------------------------

/// Inner product of two 1-D tensors of equal length; a 0-dim result (torch.dot).
inline Tensor dot(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "dot: undefined tensor argument");
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, "dot: expected 1-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  EMBER_CHECK(a.size(0) == b.size(0), "dot: shapes ", a.sizes(), " and ", b.sizes(),
              " cannot be multiplied (inconsistent tensor sizes ", a.size(0), " and ", b.size(0), ")");
  check_same_device("dot", {&a, &b});
  detail::check_gemm_dtypes("dot", a, b);
  // A [1, k] @ [k, 1] product through the one dispatch point (a strided vector maps as a matrix
  // whose other dim has size 1, so no copy is made).
  Tensor out2 = make_tensor({1, 1}, a.dtype(), a.device());
  gemm_into("dot", out2, a.detach().unsqueeze(0), b.detach().unsqueeze(1), Shape{}, 1.0, 0.0);
  Tensor out = out2.view(Shape{});
  if (autograd::needs_grad(a, b)) {
    tensor_list saved = {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()};
    autograd::record("DotBackward", out, {a, b}, std::move(saved),
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? mul(g, c.saved(1)) : Tensor(), c.needs(1) ? mul(g, c.saved(0)) : Tensor()};
                     });
  }
  return out;
}

/// Outer product of two 1-D tensors: [n] x [m] -> [n, m] (torch.outer).
inline Tensor outer(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "outer: undefined tensor argument");
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, "outer: expected 1-D tensors, got shapes ", a.sizes(), " and ", b.sizes());
  return mul(a.unsqueeze(1), b.unsqueeze(0));
}

// ---- matmul ------------------------------------------------------------------------------------------

inline Tensor matmul(const Tensor& a, const Tensor& b);

namespace detail {

/// [..., m, k] @ [..., k, n] with broadcast batch dims (both operands at least 2-D); records its
/// own node, whose broadcast gradients the engine sums back to each operand's shape.
inline Tensor matmul_batched(const Tensor& a, const Tensor& b, const Shape& orig_a, const Shape& orig_b) {
  Shape ba(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  int64_t n = std::max(ba.size(), bb.size());
  Shape batch = Shape::filled(n, 1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t da = i < n - ba.size() ? 1 : ba[i - (n - ba.size())];
    int64_t db = i < n - bb.size() ? 1 : bb[i - (n - bb.size())];
    EMBER_CHECK(da == db || da == 1 || db == 1, "matmul: shapes ", orig_a, " and ", orig_b,
                " cannot be multiplied (batch dimensions ", ba, " and ", bb, " cannot be broadcast)");
    batch[i] = da == 1 ? db : da;
  }
  Shape os = batch;
  os.push_back(a.size(-2));
  os.push_back(b.size(-1));
  Tensor out = make_tensor(os, a.dtype(), a.device());
  gemm_into("matmul", out, a, b, batch, 1.0, 0.0);
  if (autograd::needs_grad(a, b)) {
    tensor_list saved = {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()};
    autograd::record("MatmulBackward", out, {a, b}, std::move(saved),
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? matmul(g, c.saved(1).transpose(-1, -2)) : Tensor(),
                               c.needs(1) ? matmul(c.saved(0).transpose(-1, -2), g) : Tensor()};
                     });
  }
  return out;
}

}  // namespace detail

/// Matrix product with PyTorch's semantics (torch.matmul):
/// 1-D @ 1-D is a dot product (0-dim); 2-D @ 2-D is mm; a 1-D first operand is treated as [1, k]
/// and a 1-D second operand as [k, 1], the added dim removed from the result; otherwise the
/// leading (batch) dims broadcast: [j, 1, m, k] @ [l, k, n] -> [j, l, m, n]. An N-D @ 2-D (or 1-D)
/// product folds the batch into the rows and runs as one GEMM.
inline Tensor matmul(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.defined() && b.defined(), "matmul: undefined tensor argument");
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dimension, got shapes ",
              a.sizes(), " and ", b.sizes());
  int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  EMBER_CHECK(ka == kb, "matmul: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (", ka, " != ", kb, ")");
  check_same_device("matmul", {&a, &b});
  detail::check_gemm_dtypes("matmul", a, b);
  if (a.dim() == 1 && b.dim() == 1) return dot(a, b);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b);
  if (a.dim() == 2 && b.dim() == 1) return mm(a, b.unsqueeze(1)).squeeze(1);
  if (a.dim() == 1 && b.dim() == 2) return mm(a.unsqueeze(0), b).squeeze(0);
  if (a.dim() >= 3 && b.dim() <= 2) {
    // Fold the batch into the rows: one GEMM, and its backward gives b's gradient in one GEMM too.
    Shape lead(a.sizes().begin(), a.sizes().end() - 1);
    Tensor a2 = a.reshape({lead.numel(), ka});
    if (b.dim() == 1) return mm(a2, b.unsqueeze(1)).view(lead);
    lead.push_back(b.size(1));
    return mm(a2, b).view(lead);
  }
  // Batched with broadcasting; a 1-D operand is promoted and its dim removed afterwards.
  if (a.dim() == 1) return detail::matmul_batched(a.unsqueeze(0), b, a.sizes(), b.sizes()).squeeze(-2);
  if (b.dim() == 1) return detail::matmul_batched(a, b.unsqueeze(1), a.sizes(), b.sizes()).squeeze(-1);
  return detail::matmul_batched(a, b, a.sizes(), b.sizes());
}

inline Tensor Tensor::matmul(const Tensor& o) const { return ember::matmul(*this, o); }
inline Tensor Tensor::mm(const Tensor& o) const { return ember::mm(*this, o); }

// ---- addmm, linear -----------------------------------------------------------------------------------

/// beta * bias + alpha * (a @ b) for 2-D a, b and a bias broadcastable to [m, n] (torch.addmm).
/// With beta == 0 the bias is ignored (NaN in it does not propagate), as in PyTorch.
inline Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta = 1, Scalar alpha = 1) {
  EMBER_CHECK(bias.defined() && a.defined() && b.defined(), "addmm: undefined tensor argument");
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, "addmm: expected 2-D matrices, got shapes ", a.sizes(), " and ", b.sizes());
  EMBER_CHECK(a.size(1) == b.size(0), "addmm: shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (",
              a.size(1), " != ", b.size(0), ")");
  check_same_device("addmm", {&bias, &a, &b});
  detail::check_gemm_dtypes("addmm", a, b);
  EMBER_CHECK(bias.dtype() == a.dtype(), "addmm: bias has dtype ", bias.dtype(), " but the matrices have ", a.dtype());
  Shape os{a.size(0), b.size(1)};
  bool fits = bias.dim() <= 2;
  for (int64_t d = 0; fits && d < bias.dim(); ++d) {
    int64_t s = bias.size(-1 - d);
    fits = s == 1 || s == os[1 - d];
  }
  EMBER_CHECK(fits, "addmm: bias of shape ", bias.sizes(), " cannot be broadcast to the product's shape ", os);
  double be = beta.to_double(), al = alpha.to_double();
  Tensor out = make_tensor(os, a.dtype(), a.device());
  if (be != 0.0) detail::copy_into(out, bias.detach());
  gemm_into("addmm", out, a, b, Shape{}, al, be);
  if (autograd::needs_grad(bias, a, b)) {
    tensor_list saved = {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()};
    autograd::record("AddmmBackward", out, {bias, a, b}, std::move(saved),
                     [be, al](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       auto scaled = [](const Tensor& t, double s) { return s == 1.0 ? t : mul(t, Scalar(s)); };
                       // The engine sums the bias gradient over broadcast dims.
                       return {c.needs(0) ? scaled(g, be) : Tensor(),
                               c.needs(1) ? scaled(mm(g, c.saved(1).t()), al) : Tensor(),
                               c.needs(2) ? scaled(mm(c.saved(0).t(), g), al) : Tensor()};
                     });
  }
  return out;
}

/// y = x @ weight^T + bias for x [..., in], weight [out, in], optional bias [out] (torch.nn.functional.linear).
/// The leading dims of x are flattened into the rows of ONE GEMM; weight^T is a column-major view
/// of weight, so nothing is transposed or copied.
inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor()) {
  EMBER_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  EMBER_CHECK(weight.dim() == 2, "linear: expected a 2-D weight [out_features, in_features], got shape ", weight.sizes());
  EMBER_CHECK(x.dim() >= 1, "linear: expected an input with at least 1 dimension, got a 0-dim tensor");
  int64_t in = weight.size(1), outf = weight.size(0);
  EMBER_CHECK(x.size(-1) == in, "linear: input of shape ", x.sizes(), " and weight of shape ", weight.sizes(),
              " cannot be multiplied (input.size(-1) = ", x.size(-1), " but weight has in_features = ", in, ")");
  check_same_device("linear", {&x, &weight, &bias});
  detail::check_gemm_dtypes("linear", x, weight);
  if (bias.defined()) {
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == outf, "linear: expected a bias of shape [", outf, "], got ",
                bias.sizes());
    EMBER_CHECK(bias.dtype() == x.dtype(), "linear: bias has dtype ", bias.dtype(), " but input has ", x.dtype());
  }
  Shape lead(x.sizes().begin(), x.sizes().end() - 1);
  int64_t rows = lead.numel();
  Tensor x2 = x.detach().reshape({rows, in});
  Tensor out2 = make_tensor({rows, outf}, x.dtype(), x.device());
  if (bias.defined()) detail::copy_into(out2, bias.detach());
  gemm_into("linear", out2, x2, weight.detach().t(), Shape{}, 1.0, bias.defined() ? 1.0 : 0.0);
  lead.push_back(outf);
  Tensor out = out2.view(lead);
  if (autograd::needs_grad(x, weight, bias)) {
    tensor_list saved = {weight.requires_grad() ? x : Tensor(), x.requires_grad() ? weight : Tensor()};
    autograd::record("LinearBackward", out, {x, weight, bias}, std::move(saved),
                     [in, outf](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       Tensor g2 = (c.needs(1) || c.needs(2)) ? g.reshape({-1, outf}) : Tensor();
                       return {c.needs(0) ? matmul(g, c.saved(1)) : Tensor(),
                               c.needs(1) ? mm(g2.t(), c.saved(0).reshape({g2.size(0), in})) : Tensor(),
                               c.needs(2) ? sum(g2, {0}) : Tensor()};
                     });
  }
  return out;
}

}  // namespace ember
