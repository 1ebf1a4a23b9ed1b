#pragma once
/// Umbrella header of the data layer: datasets, samplers, the DataLoader, transforms, the
/// MNIST/IDX reader and the data directory lookup. The MNIST reader includes <zlib.h>: link
/// with -lz (CMake: ZLIB::ZLIB). Code without zlib can include the other headers one by one.
#include "ember/data/dataset.hpp"
#include "ember/data/sampler.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/data/transforms.hpp"
#include "ember/data/data_dir.hpp"
#include "ember/data/mnist.hpp"
