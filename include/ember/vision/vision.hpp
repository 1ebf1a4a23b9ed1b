#pragma once
/// Umbrella header of ember::vision: CPU image processing for reading handwritten digits
/// (GrayImage/Mask/Box, binarisation, connected components, digit segmentation and MNIST framing).
/// Independent of tensors and nn: a caller turns DigitCrop::image into a [N, 1, 28, 28] tensor.
#include "ember/vision/gray_image.hpp"
#include "ember/vision/components.hpp"
#include "ember/vision/threshold.hpp"
#include "ember/vision/digits.hpp"
