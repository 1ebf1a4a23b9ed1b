#pragma once
/// ember::Error, the one exception type of the library, and the EMBER_CHECK macro that
/// builds its message from the arguments (op name, shapes, what was expected).
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ember {

/// Every user-facing failure throws this. The message names the op, the shapes/dtypes/devices
/// involved and what was expected, e.g. `matmul: shapes [32, 1600] and [160, 50] cannot be multiplied`.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace ember

/// Throws ember::Error with the concatenated arguments when `cond` is false.
#define EMBER_CHECK(cond, ...)                                               \
  do {                                                                       \
    if (!(cond)) [[unlikely]] {                                              \
      throw ::ember::Error(::ember::detail::str_cat(__VA_ARGS__));           \
    }                                                                        \
  } while (0)

#define EMBER_FAIL(...) throw ::ember::Error(::ember::detail::str_cat(__VA_ARGS__))
