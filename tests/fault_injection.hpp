#pragma once
/// Failure injection for the tests of Ember's file writers without a hook in the library: a test
/// starts this test binary again with the LD_PRELOAD shim of tests/fault/fault_inject.c, which makes
/// write(), fsync() or rename() fail on the paths it is told (its header lists the variables), and
/// runs one "child" test case there; the parent then checks the files the child left.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "run_program.hpp"

namespace ember_test {

/// The shim's path: -DEMBER_FAULT_SHIM="…" (the build made it), else $EMBER_FAULT_SHIM, else built
/// into `scratch_dir` with the system C compiler (one small file, well under a second); "" if none
/// of these works (the caller skips with a message).
inline std::string fault_shim(const std::filesystem::path& scratch_dir) {
  namespace fs = std::filesystem;
  std::string so;
#ifdef EMBER_FAULT_SHIM
  so = EMBER_FAULT_SHIM;
#endif
  if (const char* e = std::getenv("EMBER_FAULT_SHIM"); so.empty() && e && *e) so = e;
  if (!so.empty()) return fs::exists(so) ? so : std::string();
  const std::string src = std::string(EMBER_SOURCE_DIR) + "/tests/fault/fault_inject.c";
  so = (scratch_dir / "fault_inject.so").string();
  if (fs::exists(so)) return so;
  const std::string cmd = "cc -shared -fPIC -O1 -o " + shell_quote(so) + " " + shell_quote(src) + " -ldl >/dev/null 2>&1";
  return fs::exists(src) && std::system(cmd.c_str()) == 0 ? so : std::string();
}

inline constexpr const char* kNoFaultShim =
    "skipped: no fault-injection shim (define EMBER_FAULT_SHIM or set $EMBER_FAULT_SHIM to a build of "
    "tests/fault/fault_inject.c, or install a C compiler as cc)";

/// Runs the test case `test_case` (a doctest --test-case pattern) of this binary in a child process
/// with `shim` preloaded and the environment assignments `env` ("NAME=value ...", already quoted);
/// its stderr goes through `err_file`. In an ASan build the child is told not to object to the shim
/// being loaded before the ASan runtime.
inline ProgramResult run_self_with_fault(const std::string& shim, const std::string& env, const std::string& test_case,
                                         const std::string& err_file) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string cmd = "env LD_PRELOAD=" + shell_quote(shim) + " " + env + " ASAN_OPTIONS=" +
                          shell_quote(std::string(asan ? asan : "") + ":verify_asan_link_order=0") + " " +
                          shell_quote(self) + " " + shell_quote("--test-case=" + test_case);
  return run_program(cmd, err_file);
}

}  // namespace ember_test
