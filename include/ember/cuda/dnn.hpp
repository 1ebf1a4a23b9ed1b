#pragma once
/// The CUDA side of convolution and pooling (kernels/conv.cu on cuDNN, kernels/pool.cu own
/// kernels). Declarations only, like launch.hpp. All tensors are contiguous NCHW; the core
/// (ops/conv.hpp, ops/pool.hpp) makes them so before calling.
#include <cstdint>

#include "ember/core/dtype.hpp"

namespace ember::cuda {

/// Geometry of a 2-d convolution y = conv2d(x, w): x [n, c, h, w], w [o, c/groups, kh, kw],
/// y [n, o, oh, ow].
struct ConvParams {
  DType dtype = kFloat32;
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t o = 0, kh = 0, kw = 0;
  int64_t oh = 0, ow = 0;
  int64_t stride[2] = {1, 1}, pad[2] = {0, 0}, dil[2] = {1, 1};
  int64_t groups = 1;
};
/// y = conv2d(x, w) (no bias; the core adds it).
void conv2d_forward(const ConvParams& p, const void* x, const void* w, void* y);
/// dx = the gradient w.r.t. x given dy (overwrites dx).
void conv2d_backward_data(const ConvParams& p, const void* dy, const void* w, void* dx);
/// dw = the gradient w.r.t. w given x and dy (overwrites dw).
void conv2d_backward_filter(const ConvParams& p, const void* x, const void* dy, void* dw);

/// Geometry of a 2-d pooling window over x [n, c, h, w] → y [n, c, oh, ow].
struct PoolParams {
  DType dtype = kFloat32;
  int64_t n = 0, c = 0, h = 0, w = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1;
  int64_t stride[2] = {1, 1}, pad[2] = {0, 0}, dil[2] = {1, 1};
  bool count_include_pad = true;  // avg pool only
};
/// y = max over each window; indices[i] = argmax position within the h*w plane (int64), as PyTorch.
void max_pool2d_forward(const PoolParams& p, const void* x, void* y, int64_t* indices);
/// dx[plane, indices[i]] += dy[i]; dx must be zeroed by the caller.
void max_pool2d_backward(const PoolParams& p, const void* dy, const int64_t* indices, void* dx);
void avg_pool2d_forward(const PoolParams& p, const void* x, void* y);
/// dx = the gradient of avg pooling (overwrites dx).
void avg_pool2d_backward(const PoolParams& p, const void* dy, void* dx);

}  // namespace ember::cuda
