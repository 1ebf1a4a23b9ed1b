#pragma once
/// Generator: the seed and counter offset of the Philox stream (core/philox.hpp) that random ops
/// draw from. `manual_seed(s)` resets the default generator, making runs reproducible; each op
/// reserves a block of counters, so results do not depend on thread count or device.
#include <cstdint>
#include <mutex>

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mu_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  /// Reserves `n` counters; returns the first.
  uint64_t reserve(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }
  /// Saved into checkpoints so a resumed run continues the same stream.
  struct State {
    uint64_t seed, offset;
  };
  State get_state() const { return {seed_, offset_}; }
  void set_state(State s) {
    std::lock_guard<std::mutex> lock(mu_);
    seed_ = s.seed;
    offset_ = s.offset;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  std::mutex mu_;
};

inline Generator& default_generator() {
  static Generator g;
  return g;
}

/// Seeds the default generator (torch.manual_seed).
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace ember
