#pragma once
/// Thread count and the parallel loop used by CPU kernels (OpenMP when compiled with it).
/// Small loops run inline: below kGrainSize elements the fork/join costs more than it saves.
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <Eigen/Core>

#include "ember/core/error.hpp"

namespace ember {

inline constexpr int64_t kGrainSize = 32768;

namespace detail {
inline int& num_threads_ref() {
#ifdef _OPENMP
  static int n = omp_get_max_threads();
#else
  static int n = 1;
#endif
  return n;
}
}  // namespace detail

/// Threads used by CPU kernels and Eigen's GEMM (torch.set_num_threads).
inline void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, "set_num_threads: expected a positive thread count, got ", n);
  detail::num_threads_ref() = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  Eigen::setNbThreads(n);
}
inline int get_num_threads() { return detail::num_threads_ref(); }

/// Calls f(begin, end) over disjoint chunks of [begin, end), in parallel when the range is at
/// least `grain` long. Exceptions thrown inside a chunk are rethrown on the calling thread.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (begin >= end) return;
  int64_t n = end - begin;
  int threads = get_num_threads();
#ifdef _OPENMP
  if (threads > 1 && n >= grain && !omp_in_parallel()) {
    int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
    chunks = std::max<int64_t>(chunks, 2);
    std::exception_ptr err;
#pragma omp parallel for num_threads(static_cast<int>(std::min<int64_t>(chunks, threads))) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t b = begin + n * c / chunks, e = begin + n * (c + 1) / chunks;
      try {
        f(b, e);
      } catch (...) {
#pragma omp critical
        err = std::current_exception();
      }
    }
    if (err) std::rethrow_exception(err);
    return;
  }
#endif
  (void)threads;
  (void)n;
  (void)grain;
  f(begin, end);
}

}  // namespace ember
