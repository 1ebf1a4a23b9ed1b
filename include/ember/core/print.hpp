#pragma once
// (being written)
#include "ember/ops/reduce.hpp"
