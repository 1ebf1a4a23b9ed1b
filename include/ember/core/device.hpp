#pragma once
/// Device: where a tensor's storage lives (the CPU or CUDA:n).
#include <cstdint>
#include <ostream>
#include <string>

#include "ember/core/error.hpp"

namespace ember {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}  // NOLINT: Device::CUDA converts
  /// Parses "cpu", "cuda", "cuda:1".
  static Device parse(const std::string& s) {
    if (s == "cpu") return {DeviceType::CPU, 0};
    if (s == "cuda") return {DeviceType::CUDA, 0};
    if (s.rfind("cuda:", 0) == 0) {
      try {
        size_t used = 0;
        int i = std::stoi(s.substr(5), &used);
        if (used == s.size() - 5 && i >= 0) return {DeviceType::CUDA, i};
      } catch (const std::exception&) {
      }
    }
    EMBER_FAIL("Device: cannot parse '", s, "' (expected cpu, cuda or cuda:N)");
  }
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

  static constexpr DeviceType CPU = DeviceType::CPU;
  static constexpr DeviceType CUDA = DeviceType::CUDA;

  friend constexpr bool operator==(Device a, Device b) {
    return a.type == b.type && (a.type == DeviceType::CPU || a.index == b.index);
  }
  friend std::ostream& operator<<(std::ostream& os, Device d) { return os << d.str(); }
};

inline constexpr Device kCPU{DeviceType::CPU, 0};
inline constexpr Device kCUDA{DeviceType::CUDA, 0};

}  // namespace ember
