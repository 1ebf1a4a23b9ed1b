#pragma once
/// Umbrella header of the data layer: datasets, samplers, the DataLoader, transforms, the
/// MNIST/IDX reader and the data directory lookup. The MNIST reader uses <zlib.h> for .gz files
/// when the header exists (programs that read MNIST then link -lz, CMake ZLIB::ZLIB); without
/// it everything compiles, plain IDX files still load and a .gz file gets a clear error.
#include "ember/data/dataset.hpp"
#include "ember/data/sampler.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/data/transforms.hpp"
#include "ember/data/data_dir.hpp"
#include "ember/data/mnist.hpp"
