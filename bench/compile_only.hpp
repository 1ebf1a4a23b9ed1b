#pragma once
/// CI builds the benchmarks only to prove that they compile: -DEMBER_BENCH_COMPILE_ONLY=ON builds
/// them without optimisation (a third of the compile time), and such a binary refuses to run,
/// since its figures would mislead. scripts/bench.sh and scripts/gpu_bench.sh make their own builds.
#include <cstdio>

namespace bench {

/// True in a compile-only build, after saying so on stderr: main then returns 2.
inline bool compile_only_build(const char* program) {
#ifdef EMBER_BENCH_COMPILE_ONLY
  std::fprintf(stderr,
               "%s: built with -DEMBER_BENCH_COMPILE_ONLY=ON (CI's unoptimised compile check), so its figures would "
               "be meaningless; build the benchmarks with scripts/bench.sh (bench/README.md)\n",
               program);
  return true;
#else
  (void)program;
  return false;
#endif
}

}  // namespace bench
