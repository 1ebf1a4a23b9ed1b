#pragma once
/// cuDNN switches for the CUDA convolution (kernels/conv.cu), like `torch.backends.cudnn`.
/// Declarations only. Without cuDNN at build time (or when its handle cannot be created at run
/// time) conv2d runs on Ember's own im2col kernels + cuBLAS: same results, slower.
///
/// Example:
/// ```
///   ember::cuda::set_cudnn_enabled(false);  // force the im2col + cuBLAS path, e.g. to compare
/// ```
#include <cstddef>

namespace ember::cuda {

/// Turns the use of cuDNN for convolution on (default) or off.
void set_cudnn_enabled(bool on);
/// The switch set by set_cudnn_enabled.
bool cudnn_enabled();
/// True when Ember was built with cuDNN and a cuDNN handle exists (or can be created) on the
/// current device; false without a GPU.
bool cudnn_available();
/// cuDNN's run-time version (e.g. 91900 for 9.19.0), 0 when built without cuDNN.
size_t cudnn_version();
/// Number of convolution shapes whose cuDNN algorithms are cached (one entry per geometry,
/// dtype, device and TF32 setting): a training loop over fixed shapes keeps it constant.
size_t conv_plan_cache_size();

}  // namespace ember::cuda
