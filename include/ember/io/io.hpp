#pragma once
/// Umbrella header for ember::io: safetensors files, training checkpoints, images.
#include "ember/io/atomic_file.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/io/checkpoint.hpp"
#include "ember/io/image.hpp"
