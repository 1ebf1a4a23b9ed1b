#include <doctest/doctest.h>

#include "ember/utils/interrupt.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

// Signal dispositions are per process, so each case runs its signals in a forked child and
// reports through its exit status; the child does nothing a forked copy of a threaded process
// must not (no allocation, no locks: sigaction, raise, atomics and _exit only).

namespace {

/// Runs `body` in a child with stderr on /dev/null; returns the raw wait status.
template <typename F>
int in_child(F body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

volatile sig_atomic_t previous_handler_ran = 0;
void previous_handler(int) { previous_handler_ran = 1; }

}  // namespace

TEST_CASE("InterruptHandler: the first SIGINT or SIGTERM sets the flag, the second kills at once") {
  using namespace ember::utils;
  int status = in_child([] {
    InterruptHandler handler;
    if (interrupt_requested() || interrupt_exit_code() != 1) return 10;
    ::raise(SIGTERM);  // handled synchronously: the process goes on
    if (!interrupt_requested() || interrupt_signal() != SIGTERM || interrupt_exit_code() != 143) return 11;
    clear_interrupt();
    ::raise(SIGINT);
    if (interrupt_signal() != SIGINT || interrupt_exit_code() != 130) return 12;
    ::raise(SIGINT);  // the second one: the default action, death by SIGINT
    return 13;
  });
  CHECK_MESSAGE(WIFSIGNALED(status), "child exited with ", WEXITSTATUS(status), " instead of dying of SIGINT");
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("InterruptHandler: the previous handlers come back when it dies") {
  using namespace ember::utils;
  int status = in_child([] {
    struct sigaction sa {};
    sa.sa_handler = previous_handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    {
      InterruptHandler handler;
      ::raise(SIGINT);
      if (previous_handler_ran || !interrupt_requested()) return 20;
    }
    clear_interrupt();
    ::raise(SIGINT);
    if (!previous_handler_ran || interrupt_requested()) return 21;
    return 0;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
