#pragma once
/// Umbrella header: tensors, autograd, every op, nn and optim.
/// The data loaders (ember/data/data.hpp), io (ember/io/io.hpp: safetensors, checkpoints, images),
/// vision (ember/vision/vision.hpp) and the programs' utilities (ember/utils/utils.hpp) have their
/// own umbrellas, because they bring optional dependencies (zlib, stb, nlohmann-json, Cairo).
#include "ember/core/device.hpp"
#include "ember/core/dtype.hpp"
#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"
#include "ember/core/scalar.hpp"
#include "ember/core/shape.hpp"
#include "ember/core/storage.hpp"
#include "ember/core/tensor.hpp"

#include "ember/autograd/anomaly.hpp"
#include "ember/autograd/function.hpp"
#include "ember/autograd/node.hpp"

#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"
#include "ember/ops/unary.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/pointwise.hpp"
#include "ember/ops/softmax.hpp"
#include "ember/ops/join.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/linalg.hpp"
#include "ember/ops/conv.hpp"
#include "ember/ops/pool.hpp"
#include "ember/ops/batch_norm.hpp"

#include "ember/autograd/engine.hpp"
#include "ember/autograd/gradcheck.hpp"
#include "ember/core/print.hpp"

#include "ember/nn/nn.hpp"
#include "ember/optim/optim.hpp"
