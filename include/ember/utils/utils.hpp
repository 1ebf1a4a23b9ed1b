#pragma once
/// Umbrella header of the tutorial utilities: progress bar, metrics, interrupt handling and the
/// resumable-training bookkeeping (needs nlohmann-json) always; the PNG outputs (plots, image grids, annotated images) when the build has Cairo and
/// says so with EMBER_HAVE_CAIRO (the CMake targets that link `ember::cairo` define it). Without that define,
/// include "ember/utils/plot.hpp" / "ember/utils/image_grid.hpp" yourself and link cairo.
#include "ember/utils/interrupt.hpp"
#include "ember/utils/metrics.hpp"
#include "ember/utils/progress.hpp"
#include "ember/utils/training.hpp"

#ifdef EMBER_HAVE_CAIRO
#include "ember/utils/canvas.hpp"
#include "ember/utils/image_grid.hpp"
#include "ember/utils/plot.hpp"
#endif
