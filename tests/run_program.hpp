#pragma once
/// Runs a shell command for the command-line tests, capturing stdout and stderr separately.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>

namespace ember_test {

struct ProgramResult {
  int code = -1;     ///< exit code, or 128 + signal
  std::string out;   ///< stdout
  std::string err;   ///< stderr
};

/// `s` single-quoted for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `command` with /bin/sh; stderr goes through `err_file` (a path in the test's scratch dir).
inline ProgramResult run_program(const std::string& command, const std::string& err_file) {
  ProgramResult r;
  FILE* p = ::popen((command + " 2>" + shell_quote(err_file)).c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  std::ifstream f(err_file, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  r.err = ss.str();
  return r;
}

}  // namespace ember_test
