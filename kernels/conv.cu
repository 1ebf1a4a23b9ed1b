/// 2-d convolution on the GPU (include/ember/cuda/dnn.hpp): forward, gradient w.r.t. the input
/// and gradient w.r.t. the filter.
///
/// With cuDNN (EMBER_WITH_CUDNN, set by kernels/CMakeLists.txt when libcudnn is found) each
/// geometry gets a Plan, built once and cached: its descriptors and, per direction, the
/// candidate algorithms cuDNN's heuristics rank (cudnnGet*Algorithm_v7), of which the first
/// that runs is remembered. Workspaces come from the caching allocator, so a warm training step
/// calls no cudaMalloc. Without cuDNN, or with set_cudnn_enabled(false), or when no cuDNN handle
/// can be created, the same three functions run on im2col / col2im kernels + the cuBLAS gemm.
///
/// Math modes: float32 uses plain FMA unless allow_tf32(); float16/bfloat16 use tensor cores with
/// float accumulation; float64 runs in double.
#include <algorithm>
#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common.cuh"
#include "ember/cuda/cudnn.hpp"
#include "ember/cuda/dnn.hpp"
#include "ember/cuda/launch.hpp"
#include "ember/cuda/runtime.hpp"

#ifdef EMBER_WITH_CUDNN
#include <cudnn.h>
#endif

namespace ember::cuda {

namespace {

using detail::cast;
using detail::compute_t;

std::atomic<bool> g_cudnn_enabled{true};

// ---- validation and geometry ---------------------------------------------------------------

int64_t out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/// Rejects geometry the core should never send: the message names the op and every size.
void check_params(const ConvParams& p, const char* op) {
  auto geometry = [&] {
    return std::string("x [") + std::to_string(p.n) + ", " + std::to_string(p.c) + ", " + std::to_string(p.h) + ", " +
           std::to_string(p.w) + "], w [" + std::to_string(p.o) + ", " +
           std::to_string(p.groups > 0 ? p.c / p.groups : 0) + ", " + std::to_string(p.kh) + ", " +
           std::to_string(p.kw) + "], y [" + std::to_string(p.n) + ", " + std::to_string(p.o) + ", " +
           std::to_string(p.oh) + ", " + std::to_string(p.ow) + "], stride (" + std::to_string(p.stride[0]) + ", " +
           std::to_string(p.stride[1]) + "), padding (" + std::to_string(p.pad[0]) + ", " + std::to_string(p.pad[1]) +
           "), dilation (" + std::to_string(p.dil[0]) + ", " + std::to_string(p.dil[1]) + "), groups " +
           std::to_string(p.groups);
  };
  EMBER_CHECK(is_floating(p.dtype), op, ": expected float16, bfloat16, float32 or float64 on CUDA, got ", p.dtype);
  EMBER_CHECK(p.n >= 0 && p.c >= 0 && p.h >= 0 && p.w >= 0 && p.o >= 0 && p.kh >= 1 && p.kw >= 1, op,
              ": invalid sizes: ", geometry());
  EMBER_CHECK(p.groups >= 1 && p.c % p.groups == 0 && p.o % p.groups == 0, op,
              ": groups must divide both the input and output channels: ", geometry());
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(p.stride[i] >= 1 && p.dil[i] >= 1 && p.pad[i] >= 0, op,
                ": stride and dilation must be >= 1 and padding >= 0: ", geometry());
  // oh may be below the formula: conv_transpose2d with output_padding >= stride (allowed while it
  // is below the dilation) asks for the gradient of an input whose forward output had extra rows.
  int64_t eh = out_size(p.h, p.kh, p.pad[0], p.stride[0], p.dil[0]);
  int64_t ew = out_size(p.w, p.kw, p.pad[1], p.stride[1], p.dil[1]);
  EMBER_CHECK(p.oh >= 1 && p.ow >= 1 && p.oh <= eh && p.ow <= ew, op,
              ": output size does not fit the input, kernel, stride, padding and dilation (expected at most ", eh,
              " x ", ew, "): ", geometry());
}

#ifdef EMBER_WITH_CUDNN
/// cuDNN checks the output size against the formula; a smaller one runs on the fallback.
bool exact_geometry(const ConvParams& p) {
  return p.oh == out_size(p.h, p.kh, p.pad[0], p.stride[0], p.dil[0]) &&
         p.ow == out_size(p.w, p.kw, p.pad[1], p.stride[1], p.dil[1]);
}
#endif

int64_t x_plane(const ConvParams& p) { return p.c * p.h * p.w; }  // elements of one sample of x
int64_t y_plane(const ConvParams& p) { return p.o * p.oh * p.ow; }
int64_t w_numel(const ConvParams& p) { return p.o * (p.c / p.groups) * p.kh * p.kw; }

int current_device(const char* op) {
  int d = 0;
  detail::check(cudaGetDevice(&d), op);
  return d;
}

void zero(void* ptr, int64_t numel, DType dt, const char* op) {
  if (numel <= 0) return;
  detail::check(cudaMemsetAsync(ptr, 0, static_cast<size_t>(numel) * element_size(dt), detail::stream()), op);
}

/// Memory from the caching allocator, returned when the scope ends. Freeing right after queueing
/// the kernel that uses it is safe: all work runs in order on one stream.
class Workspace {
 public:
  Workspace(size_t bytes, int device) : device_(device) { ptr_ = bytes ? allocate(bytes, device) : nullptr; }
  ~Workspace() { deallocate(ptr_, device_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  int device_ = 0;
};

// ---- im2col / col2im fallback ------------------------------------------------------------------

/// Geometry the kernels need, as plain values (passed by value to the device).
struct Geo {
  int64_t c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw;
};

Geo geo_of(const ConvParams& p) {
  return Geo{p.c, p.h, p.w, p.kh, p.kw, p.oh, p.ow, p.stride[0], p.stride[1], p.pad[0], p.pad[1], p.dil[0], p.dil[1]};
}

/// col[(ci*kh + ki)*kw + kj, oy*ow + ox] = x[ci, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw] (0 in the padding).
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, Geo g, int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t ox = t % g.ow, r = t / g.ow;
    int64_t oy = r % g.oh;
    r /= g.oh;
    int64_t kj = r % g.kw;
    r /= g.kw;
    int64_t ki = r % g.kh, ci = r / g.kh;
    int64_t iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
    col[t] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? x[(ci * g.h + iy) * g.w + ix] : cast<T>(0.0f);
  }
}

/// dx[ci, iy, ix] = sum of the col entries im2col copied x[ci, iy, ix] into: a gather per input
/// element, so no atomics and a deterministic sum.
template <typename T>
__global__ void col2im_kernel(const T* __restrict__ col, T* __restrict__ dx, Geo g, int64_t total) {
  using C = compute_t<T>;
  const int64_t L = g.oh * g.ow;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t ix = t % g.w, r = t / g.w;
    int64_t iy = r % g.h, ci = r / g.h;
    C sum = C(0);
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      int64_t ny = iy + g.ph - ki * g.dh;
      if (ny < 0) break;  // grows more negative with ki
      if (ny % g.sh != 0) continue;
      int64_t oy = ny / g.sh;
      if (oy >= g.oh) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        int64_t nx = ix + g.pw - kj * g.dw;
        if (nx < 0) break;
        if (nx % g.sw != 0) continue;
        int64_t ox = nx / g.sw;
        if (ox >= g.ow) continue;
        sum += cast<C>(col[((ci * g.kh + ki) * g.kw + kj) * L + oy * g.ow + ox]);
      }
    }
    dx[t] = cast<T>(sum);
  }
}

void im2col(const ConvParams& p, const void* x, void* col, const char* op) {
  int64_t total = p.c * p.kh * p.kw * p.oh * p.ow;
  if (total == 0) return;
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    im2col_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(col), geo_of(p), total);
  });
  detail::check_launch(op);
}

void col2im(const ConvParams& p, const void* col, void* dx, const char* op) {
  int64_t total = x_plane(p);
  if (total == 0) return;
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    col2im_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(col), static_cast<T*>(dx), geo_of(p), total);
  });
  detail::check_launch(op);
}

/// One sample at a time: col [c*kh*kw, oh*ow] holds every group's rows back to back, so group
/// gi is the gi-th batch of a strided-batched gemm against w [groups][o/g, K] and y [groups][o/g, L].
struct Gemm {
  int64_t g, og, K, L;
  explicit Gemm(const ConvParams& p)
      : g(p.groups), og(p.o / p.groups), K((p.c / p.groups) * p.kh * p.kw), L(p.oh * p.ow) {}
};

void native_forward(const ConvParams& p, const void* x, const void* w, void* y, int device, const char* op) {
  Gemm m(p);
  size_t es = element_size(p.dtype);
  Workspace col(static_cast<size_t>(m.g * m.K * m.L) * es, device);
  for (int64_t i = 0; i < p.n; ++i) {
    im2col(p, static_cast<const char*>(x) + i * x_plane(p) * es, col.get(), op);
    gemm(p.dtype, false, false, m.og, m.L, m.K, 1.0, w, m.K, m.og * m.K, col.get(), m.L, m.K * m.L, 0.0,
         static_cast<char*>(y) + i * y_plane(p) * es, m.L, m.og * m.L, m.g);
  }
}

void native_backward_data(const ConvParams& p, const void* dy, const void* w, void* dx, int device, const char* op) {
  Gemm m(p);
  size_t es = element_size(p.dtype);
  Workspace col(static_cast<size_t>(m.g * m.K * m.L) * es, device);
  for (int64_t i = 0; i < p.n; ++i) {
    // col_g [K, L] = w_g^T [K, o/g] @ dy_g [o/g, L]
    gemm(p.dtype, true, false, m.K, m.L, m.og, 1.0, w, m.K, m.og * m.K, static_cast<const char*>(dy) + i * y_plane(p) * es,
         m.L, m.og * m.L, 0.0, col.get(), m.L, m.K * m.L, m.g);
    col2im(p, col.get(), static_cast<char*>(dx) + i * x_plane(p) * es, op);
  }
}

void native_backward_filter(const ConvParams& p, const void* x, const void* dy, void* dw, int device, const char* op) {
  Gemm m(p);
  size_t es = element_size(p.dtype);
  Workspace col(static_cast<size_t>(m.g * m.K * m.L) * es, device);
  for (int64_t i = 0; i < p.n; ++i) {
    im2col(p, static_cast<const char*>(x) + i * x_plane(p) * es, col.get(), op);
    // dw_g [o/g, K] (+)= dy_g [o/g, L] @ col_g^T [L, K]
    gemm(p.dtype, false, true, m.og, m.K, m.L, 1.0, static_cast<const char*>(dy) + i * y_plane(p) * es, m.L,
         m.og * m.L, col.get(), m.L, m.K * m.L, i == 0 ? 0.0 : 1.0, dw, m.K, m.og * m.K, m.g);
  }
}

// ---- cuDNN -----------------------------------------------------------------------------------

#ifdef EMBER_WITH_CUDNN

void check_cudnn(cudnnStatus_t s, const char* op, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS) [[unlikely]]
    EMBER_FAIL(op, ": cuDNN error in ", what, ": ", cudnnGetErrorString(s), " (", static_cast<int>(s), ")");
}

/// One handle per device, created on first use and never destroyed (like the cuBLAS handle:
/// a static destructor may run after the CUDA runtime is gone). A device whose handle cannot be
/// created (cuDNN's sub-libraries missing, unsupported GPU) is remembered and uses the fallback.
struct HandleSlot {
  cudnnHandle_t h = nullptr;
  bool tried = false;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
};

cudnnHandle_t cudnn_handle(int device) {
  static std::mutex mu;
  static auto* slots = new std::vector<HandleSlot>;
  std::lock_guard<std::mutex> lock(mu);
  if (slots->size() <= static_cast<size_t>(device)) slots->resize(device + 1);
  HandleSlot& s = (*slots)[device];
  if (!s.tried) {
    s.tried = true;
    s.status = cudnnCreate(&s.h);
    if (s.status == CUDNN_STATUS_SUCCESS) {
      s.status = cudnnSetStream(s.h, detail::stream());
      if (s.status != CUDNN_STATUS_SUCCESS) s.h = nullptr;  // leaked on purpose, like the rest
    } else {
      s.h = nullptr;
    }
  }
  return s.h;
}

cudnnDataType_t cudnn_type(DType dt) {
  switch (dt) {
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    case DType::Float64: return CUDNN_DATA_DOUBLE;
    default: return CUDNN_DATA_FLOAT;
  }
}

/// Statuses that mean "this algorithm (or cuDNN itself) can't do this here", as opposed to a
/// failure on the GPU: the next candidate, or the im2col fallback, takes over.
bool skippable(cudnnStatus_t s) {
  int category = static_cast<int>(CUDNN_STATUS_CATEGORY(s));
  return category == 1000 || category == 2000 || category == 3000 ||
         s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED || s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
}

/// A candidate algorithm as the heuristics ranked it.
struct Candidate {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t memory = 0;
};

enum Dir { kFwd = 0, kBwdData = 1, kBwdFilter = 2 };

/// Everything cuDNN needs for one geometry, built once; `chosen[d]` is the index in cand[d] of the
/// algorithm that last ran (candidates that fail at run time are skipped for good).
struct Plan {
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd[3] = {nullptr, nullptr, nullptr};
  std::vector<Candidate> cand[3];
  bool ranked[3] = {false, false, false};
  size_t chosen[3] = {0, 0, 0};
};

using PlanKey = std::vector<int64_t>;

PlanKey key_of(const ConvParams& p, int device, bool tf32) {
  return {static_cast<int64_t>(p.dtype), p.n, p.c, p.h, p.w, p.o, p.kh, p.kw, p.oh, p.ow, p.stride[0], p.stride[1],
          p.pad[0], p.pad[1], p.dil[0], p.dil[1], p.groups, device, tf32 ? 1 : 0};
}

std::mutex g_plan_mu;
std::map<PlanKey, Plan>* g_plans = new std::map<PlanKey, Plan>;  // never destroyed (descriptors outlive exit)

int to_int(int64_t v) { return static_cast<int>(v); }  // callers check the int range first

/// The math type requested from the heuristics: no tensor cores for float32 unless TF32 is on.
cudnnMathType_t base_math(DType dt, bool tf32) {
  switch (dt) {
    case DType::Float16:
    case DType::BFloat16: return CUDNN_TENSOR_OP_MATH;
    case DType::Float32: return tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    default: return CUDNN_DEFAULT_MATH;
  }
}

Plan& get_plan(const ConvParams& p, int device, bool tf32, const char* op) {
  PlanKey key = key_of(p, device, tf32);
  auto it = g_plans->find(key);
  if (it != g_plans->end()) return it->second;
  Plan plan;
  cudnnDataType_t t = cudnn_type(p.dtype);
  check_cudnn(cudnnCreateTensorDescriptor(&plan.xd), op, "cudnnCreateTensorDescriptor");
  check_cudnn(cudnnCreateTensorDescriptor(&plan.yd), op, "cudnnCreateTensorDescriptor");
  check_cudnn(cudnnCreateFilterDescriptor(&plan.wd), op, "cudnnCreateFilterDescriptor");
  check_cudnn(cudnnSetTensor4dDescriptor(plan.xd, CUDNN_TENSOR_NCHW, t, to_int(p.n), to_int(p.c), to_int(p.h), to_int(p.w)),
              op, "cudnnSetTensor4dDescriptor (x)");
  check_cudnn(
      cudnnSetTensor4dDescriptor(plan.yd, CUDNN_TENSOR_NCHW, t, to_int(p.n), to_int(p.o), to_int(p.oh), to_int(p.ow)), op,
      "cudnnSetTensor4dDescriptor (y)");
  check_cudnn(cudnnSetFilter4dDescriptor(plan.wd, t, CUDNN_TENSOR_NCHW, to_int(p.o), to_int(p.c / p.groups), to_int(p.kh),
                                         to_int(p.kw)),
              op, "cudnnSetFilter4dDescriptor");
  // Half types accumulate in float; float64 in double.
  cudnnDataType_t compute = p.dtype == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  for (auto& cd : plan.cd) {
    check_cudnn(cudnnCreateConvolutionDescriptor(&cd), op, "cudnnCreateConvolutionDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(cd, to_int(p.pad[0]), to_int(p.pad[1]), to_int(p.stride[0]),
                                                to_int(p.stride[1]), to_int(p.dil[0]), to_int(p.dil[1]),
                                                CUDNN_CROSS_CORRELATION, compute),
                op, "cudnnSetConvolution2dDescriptor");
    check_cudnn(cudnnSetConvolutionGroupCount(cd, to_int(p.groups)), op, "cudnnSetConvolutionGroupCount");
    check_cudnn(cudnnSetConvolutionMathType(cd, base_math(p.dtype, tf32)), op, "cudnnSetConvolutionMathType");
  }
  return g_plans->emplace(std::move(key), plan).first->second;
}

/// Keeps what the heuristics returned with status success, minus tensor-core variants of float32
/// when TF32 is off (cuDNN would otherwise be free to round the inputs to TF32).
template <typename Perf>
std::vector<Candidate> to_candidates(const std::vector<Perf>& perf, int returned, DType dt, bool tf32) {
  std::vector<Candidate> out;
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    cudnnMathType_t math = perf[i].mathType;
    if (dt == DType::Float32 && !tf32) {
      if (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      math = CUDNN_FMA_MATH;
    }
    out.push_back(Candidate{static_cast<int>(perf[i].algo), math, perf[i].memory});
  }
  return out;
}

/// Asks the heuristics once per plan and direction. A geometry or dtype cuDNN cannot rank leaves
/// no candidates (the fallback runs); anything else is an error.
void rank(Plan& plan, Dir dir, cudnnHandle_t h, DType dt, bool tf32, const char* op) {
  if (plan.ranked[dir]) return;
  plan.ranked[dir] = true;
  auto ok = [&](cudnnStatus_t s, const char* what) {
    if (s == CUDNN_STATUS_SUCCESS) return true;
    if (!skippable(s)) check_cudnn(s, op, what);
    return false;
  };
  int count = 0, returned = 0;
  cudnnConvolutionDescriptor_t cd = plan.cd[dir];
  if (dir == kFwd) {
    if (!ok(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count), "cudnnGetConvolutionForwardAlgorithmMaxCount")) return;
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(count > 0 ? count : 1);
    if (!ok(cudnnGetConvolutionForwardAlgorithm_v7(h, plan.xd, plan.wd, cd, plan.yd, count, &returned, perf.data()),
            "cudnnGetConvolutionForwardAlgorithm_v7"))
      return;
    plan.cand[dir] = to_candidates(perf, returned, dt, tf32);
  } else if (dir == kBwdData) {
    if (!ok(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count), "cudnnGetConvolutionBackwardDataAlgorithmMaxCount"))
      return;
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(count > 0 ? count : 1);
    if (!ok(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.wd, plan.yd, cd, plan.xd, count, &returned, perf.data()),
            "cudnnGetConvolutionBackwardDataAlgorithm_v7"))
      return;
    plan.cand[dir] = to_candidates(perf, returned, dt, tf32);
  } else {
    if (!ok(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count),
            "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount"))
      return;
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(count > 0 ? count : 1);
    if (!ok(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.xd, plan.yd, cd, plan.wd, count, &returned, perf.data()),
            "cudnnGetConvolutionBackwardFilterAlgorithm_v7"))
      return;
    plan.cand[dir] = to_candidates(perf, returned, dt, tf32);
  }
}

/// Runs direction `dir` with the remembered algorithm, or the next candidates in rank order when
/// it cannot get its workspace or cuDNN refuses it. Returns false when no candidate ran (the
/// caller then uses the im2col fallback).
template <typename Call>
bool run_cudnn(const ConvParams& p, Dir dir, int device, const char* op, Call call) {
  cudnnHandle_t h = cudnn_handle(device);
  if (h == nullptr) return false;
  bool tf32 = allow_tf32();
  std::lock_guard<std::mutex> lock(g_plan_mu);
  Plan& plan = get_plan(p, device, tf32, op);
  rank(plan, dir, h, p.dtype, tf32, op);
  auto& cands = plan.cand[dir];
  for (size_t i = plan.chosen[dir]; i < cands.size(); ++i) {
    const Candidate& c = cands[i];
    check_cudnn(cudnnSetConvolutionMathType(plan.cd[dir], c.math), op, "cudnnSetConvolutionMathType");
    void* ws = nullptr;
    try {
      ws = c.memory ? allocate(c.memory, device) : nullptr;
    } catch (const Error&) {
      continue;  // out of memory for this algorithm's workspace: try a leaner one
    }
    cudnnStatus_t s = call(plan, c.algo, ws, c.memory);
    deallocate(ws, device);
    if (s == CUDNN_STATUS_SUCCESS) {
      plan.chosen[dir] = i;
      return true;
    }
    if (!skippable(s)) check_cudnn(s, op, "running the convolution");  // a real failure: report it
  }
  plan.chosen[dir] = cands.size();
  return false;
}

struct Scale {
  double d0 = 0, d1 = 1;
  float f0 = 0, f1 = 1;
  const void* one(DType dt) const { return dt == DType::Float64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType dt) const { return dt == DType::Float64 ? static_cast<const void*>(&d0) : &f0; }
};

bool cudnn_forward(const ConvParams& p, const void* x, const void* w, void* y, int device, const char* op) {
  Scale s;
  return run_cudnn(p, kFwd, device, op, [&](Plan& pl, int algo, void* ws, size_t bytes) {
    return cudnnConvolutionForward(cudnn_handle(device), s.one(p.dtype), pl.xd, x, pl.wd, w, pl.cd[kFwd],
                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, bytes, s.zero(p.dtype), pl.yd, y);
  });
}

bool cudnn_backward_data(const ConvParams& p, const void* dy, const void* w, void* dx, int device, const char* op) {
  Scale s;
  return run_cudnn(p, kBwdData, device, op, [&](Plan& pl, int algo, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardData(cudnn_handle(device), s.one(p.dtype), pl.wd, w, pl.yd, dy, pl.cd[kBwdData],
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, bytes, s.zero(p.dtype),
                                        pl.xd, dx);
  });
}

bool cudnn_backward_filter(const ConvParams& p, const void* x, const void* dy, void* dw, bool accumulate, int device,
                           const char* op) {
  Scale s;
  return run_cudnn(p, kBwdFilter, device, op, [&](Plan& pl, int algo, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardFilter(cudnn_handle(device), s.one(p.dtype), pl.xd, x, pl.yd, dy, pl.cd[kBwdFilter],
                                          static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws, bytes,
                                          accumulate ? s.one(p.dtype) : s.zero(p.dtype), pl.wd, dw);
  });
}

#endif  // EMBER_WITH_CUDNN

// ---- batch chunks ------------------------------------------------------------------------------

/// cuDNN's descriptors hold int sizes and strides, so a batch whose x or y has 2^31 elements or
/// more runs in chunks of whole samples (each chunk has the same geometry, hence one plan).
int64_t chunk_size(const ConvParams& p, const char* op) {
  int64_t per = std::max(x_plane(p), y_plane(p));
  EMBER_CHECK(per <= INT_MAX && w_numel(p) <= INT_MAX && p.c * p.kh * p.kw * p.oh * p.ow <= INT_MAX, op,
              ": one sample is too large for the CUDA convolution (", per, " elements; at most ", INT_MAX, ")");
  int64_t chunk = per > 0 ? INT_MAX / per : p.n;
  return std::max<int64_t>(1, std::min(chunk, p.n));
}

#ifdef EMBER_WITH_CUDNN
bool use_cudnn(const ConvParams& p) { return g_cudnn_enabled.load() && exact_geometry(p); }
#endif

}  // namespace

// ---- public entry points ----------------------------------------------------------------------

void conv2d_forward(const ConvParams& p, const void* x, const void* w, void* y) {
  const char* op = "conv2d (cuda)";
  check_params(p, op);
  if (p.n * y_plane(p) == 0) return;
  if (p.c == 0) return zero(y, p.n * y_plane(p), p.dtype, op);  // an empty sum
  int device = current_device(op);
  size_t es = element_size(p.dtype);
  int64_t chunk = chunk_size(p, op);
  for (int64_t i0 = 0; i0 < p.n; i0 += chunk) {
    ConvParams q = p;
    q.n = std::min(chunk, p.n - i0);
    const void* xi = static_cast<const char*>(x) + i0 * x_plane(p) * es;
    void* yi = static_cast<char*>(y) + i0 * y_plane(p) * es;
#ifdef EMBER_WITH_CUDNN
    if (use_cudnn(q) && cudnn_forward(q, xi, w, yi, device, op)) continue;
#endif
    native_forward(q, xi, w, yi, device, op);
  }
}

void conv2d_backward_data(const ConvParams& p, const void* dy, const void* w, void* dx) {
  const char* op = "conv2d backward (input) (cuda)";
  check_params(p, op);
  if (p.n * x_plane(p) == 0) return;
  if (p.o == 0) return zero(dx, p.n * x_plane(p), p.dtype, op);
  int device = current_device(op);
  size_t es = element_size(p.dtype);
  int64_t chunk = chunk_size(p, op);
  for (int64_t i0 = 0; i0 < p.n; i0 += chunk) {
    ConvParams q = p;
    q.n = std::min(chunk, p.n - i0);
    const void* dyi = static_cast<const char*>(dy) + i0 * y_plane(p) * es;
    void* dxi = static_cast<char*>(dx) + i0 * x_plane(p) * es;
#ifdef EMBER_WITH_CUDNN
    if (use_cudnn(q) && cudnn_backward_data(q, dyi, w, dxi, device, op)) continue;
#endif
    native_backward_data(q, dyi, w, dxi, device, op);
  }
}

void conv2d_backward_filter(const ConvParams& p, const void* x, const void* dy, void* dw) {
  const char* op = "conv2d backward (weight) (cuda)";
  check_params(p, op);
  if (w_numel(p) == 0) return;
  if (p.n == 0) return zero(dw, w_numel(p), p.dtype, op);  // no samples: the gradient is 0
  int device = current_device(op);
  size_t es = element_size(p.dtype);
  int64_t chunk = chunk_size(p, op);
  for (int64_t i0 = 0; i0 < p.n; i0 += chunk) {
    ConvParams q = p;
    q.n = std::min(chunk, p.n - i0);
    const void* xi = static_cast<const char*>(x) + i0 * x_plane(p) * es;
    const void* dyi = static_cast<const char*>(dy) + i0 * y_plane(p) * es;
#ifdef EMBER_WITH_CUDNN
    if (use_cudnn(q) && cudnn_backward_filter(q, xi, dyi, dw, i0 > 0, device, op)) continue;
#endif
    if (i0 == 0) {
      native_backward_filter(q, xi, dyi, dw, device, op);
    } else {
      // Later chunks add to what the earlier ones wrote.
      Workspace part(static_cast<size_t>(w_numel(p)) * es, device);
      native_backward_filter(q, xi, dyi, part.get(), device, op);
      TensorArg out, in;
      out.data = dw;
      in.data = part.get();
      out.dtype = in.dtype = p.dtype;
      out.ndim = in.ndim = 1;
      out.sizes[0] = in.sizes[0] = w_numel(p);
      out.strides[0] = in.strides[0] = 1;
      binary(BinaryOp::Add, out, out, in, 1.0);
    }
  }
}

// ---- switches (include/ember/cuda/cudnn.hpp) ------------------------------------------------------

void set_cudnn_enabled(bool on) { g_cudnn_enabled.store(on); }
bool cudnn_enabled() { return g_cudnn_enabled.load(); }

bool cudnn_available() {
#ifdef EMBER_WITH_CUDNN
  if (!is_available()) return false;
  return cudnn_handle(current_device("cudnn_available")) != nullptr;
#else
  return false;
#endif
}

size_t cudnn_version() {
#ifdef EMBER_WITH_CUDNN
  return cudnnGetVersion();
#else
  return 0;
#endif
}

size_t conv_plan_cache_size() {
#ifdef EMBER_WITH_CUDNN
  std::lock_guard<std::mutex> lock(g_plan_mu);
  return g_plans->size();
#else
  return 0;
#endif
}

}  // namespace ember::cuda
