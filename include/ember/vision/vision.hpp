#pragma once
/// Umbrella header of ember::vision, CPU image processing on 8-bit images:
///  - reading handwritten digits (GrayImage/Mask/Box, binarisation, connected components, digit
///    segmentation and MNIST framing), independent of tensors: a caller turns DigitCrop::image
///    into a [N, 1, 28, 28] tensor;
///  - torchvision for photos: the functional image ops (image_ops.hpp), the random transforms
///    (image_transforms.hpp) and the ImageFolder dataset (image_folder.hpp).
#include "ember/vision/gray_image.hpp"
#include "ember/vision/components.hpp"
#include "ember/vision/threshold.hpp"
#include "ember/vision/digits.hpp"
#include "ember/vision/image_ops.hpp"
#include "ember/vision/image_transforms.hpp"
#include "ember/vision/image_folder.hpp"
