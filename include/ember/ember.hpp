#pragma once
/// Umbrella header: everything in Ember's core.
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

#include "ember/autograd/function.hpp"
#include "ember/autograd/node.hpp"

#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"

#include "ember/autograd/engine.hpp"
