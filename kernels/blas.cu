/// GEMM through cuBLAS. Ember is row-major and cuBLAS column-major; a row-major matrix is its own
/// transpose seen column-major, so row-major C = op(A) op(B) is computed as column-major
/// C^T = op(B)^T op(A)^T: swap the operands (and m with n), keep each one's transpose flag.
#include <cublas_v2.h>

#include <climits>
#include <mutex>
#include <vector>

#include "common.cuh"
#include "ember/cuda/runtime.hpp"

namespace ember::cuda {

namespace {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "unknown cuBLAS status";
  }
}

void check_cublas(cublasStatus_t s, const char* op) {
  if (s != CUBLAS_STATUS_SUCCESS) [[unlikely]]
    EMBER_FAIL(op, ": cuBLAS error ", static_cast<int>(s), " (", cublas_status_name(s), ")");
}

/// One handle per device, created on first use and deliberately never destroyed: destroying it
/// from a static destructor can run after the CUDA runtime has shut down.
cublasHandle_t handle() {
  static std::mutex mu;
  static std::vector<cublasHandle_t>* handles = new std::vector<cublasHandle_t>;
  int device = 0;
  detail::check(cudaGetDevice(&device), "gemm (cuda)");
  std::lock_guard<std::mutex> lock(mu);
  if (handles->size() <= static_cast<size_t>(device)) handles->resize(device + 1, nullptr);
  cublasHandle_t& h = (*handles)[device];
  if (h == nullptr) {
    check_cublas(cublasCreate(&h), "gemm (cuda): cublasCreate");
    check_cublas(cublasSetStream(h, detail::stream()), "gemm (cuda): cublasSetStream");
  }
  return h;
}

int to_int(int64_t v, const char* what) {
  EMBER_CHECK(v >= 0 && v <= INT_MAX, "gemm (cuda): ", what, " = ", v, " is outside the range cuBLAS accepts (0..", INT_MAX,
              ")");
  return static_cast<int>(v);
}

}  // namespace

void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
          int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc,
          int64_t stride_c, int64_t batch) {
  const char* name = "gemm (cuda)";
  if (m == 0 || n == 0 || batch == 0) return;
  int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
  int ilda = to_int(lda < 1 ? 1 : lda, "lda"), ildb = to_int(ldb < 1 ? 1 : ldb, "ldb"), ildc = to_int(ldc < 1 ? 1 : ldc, "ldc");
  int ibatch = to_int(batch, "batch");
  cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = handle();

  cudaDataType_t type;
  cublasComputeType_t compute;
  float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const void* pa = &alpha_f;
  const void* pb = &beta_f;
  switch (dtype) {
    case DType::Float32:
      type = CUDA_R_32F;
      compute = allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      break;
    case DType::Float64:
      type = CUDA_R_64F;
      compute = CUBLAS_COMPUTE_64F;
      pa = &alpha;
      pb = &beta;
      break;
    case DType::Float16:
      type = CUDA_R_16F;
      compute = CUBLAS_COMPUTE_32F;  // float accumulation on the tensor cores
      break;
    case DType::BFloat16:
      type = CUDA_R_16BF;
      compute = CUBLAS_COMPUTE_32F;
      break;
    default: EMBER_FAIL(name, ": expected float32, float64, float16 or bfloat16, got ", dtype);
  }
  // Column-major C^T (n x m) = op(B)^T (n x k) * op(A)^T (k x m).
  check_cublas(cublasGemmStridedBatchedEx(h, op_b, op_a, in, im, ik, pa, b, type, ildb, stride_b, a, type, ilda, stride_a,
                                          pb, c, type, ildc, stride_c, ibatch, compute, CUBLAS_GEMM_DEFAULT),
               name);
}

}  // namespace ember::cuda
