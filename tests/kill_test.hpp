#pragma once
/// A program's command-line test runs scripts/kill_test.sh on it: training on a tiny generated data
/// set with a checkpoint every step, SIGKILLed at random moments, resumed after every kill; the last
/// checkpoint must always load and the resumed run must end bitwise equal to an uninterrupted one
/// (docs/RELIABILITY.md).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "run_program.hpp"

namespace ember_test {

/// `kill_test.sh -p program -b bin -n kills -s seed` in `scratch` (kept there for a failure's
/// post-mortem; the caller's scratch folder removes it). Skips with a message without bash.
inline void check_kill_test(const std::string& program, const std::string& bin, int kills, int seed,
                            const std::filesystem::path& scratch) {
  const std::string script = std::string(EMBER_SOURCE_DIR) + "/scripts/kill_test.sh";
  if (!std::filesystem::exists(script) || std::system("command -v bash >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: scripts/kill_test.sh or bash not found");
    return;
  }
  const ProgramResult r =
      run_program("bash " + shell_quote(script) + " -p " + program + " -n " + std::to_string(kills) + " -s " +
                      std::to_string(seed) + " -m 300 -b " + shell_quote(bin) + " -w " +
                      shell_quote((scratch / "kill_test").string()),
                  (scratch / "kill_test.err").string());
  MESSAGE(r.out);
  CHECK_MESSAGE(r.code == 0, (r.out + r.err));
  CHECK(r.out.find("kill_test: PASS") != std::string::npos);
}

}  // namespace ember_test
