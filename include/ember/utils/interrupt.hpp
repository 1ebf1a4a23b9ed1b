#pragma once
/// Graceful Ctrl-C for long loops: while an `InterruptHandler` lives, the first SIGINT or SIGTERM
/// only sets a flag that the loop polls between steps (it can then finish the step, save a
/// checkpoint and exit); a second one ends the process at once, killed by that signal as if no
/// handler were installed (so the shell reports it as usual). Programs conventionally exit with
/// 128 + the signal number after a graceful stop: 130 for SIGINT, 143 for SIGTERM
/// (`interrupt_exit_code()`).
///
/// The handler writes one line to stderr (write(2) is async-signal-safe) so the user knows the
/// first Ctrl-C was heard; everything else happens on the program's own thread.
///
/// Example:
/// ```
///   ember::utils::InterruptHandler interrupts;
///   for (auto& batch : loader) {
///     step(batch);
///     if (ember::utils::interrupt_requested()) { save_checkpoint(); return ember::utils::interrupt_exit_code(); }
///   }
/// ```
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <signal.h>
#include <unistd.h>

namespace ember::utils {

namespace detail {

// Lock-free, so reading and writing it from a signal handler is allowed.
inline std::atomic<int> pending_interrupt{0};
static_assert(std::atomic<int>::is_always_lock_free);

inline void on_interrupt(int sig) {
  int none = 0;
  if (pending_interrupt.compare_exchange_strong(none, sig)) {
    static constexpr char kMsg[] =
        "\ninterrupt: finishing the current step, then saving a checkpoint (send it again to quit at once)\n";
    const int saved_errno = errno;
    (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
    errno = saved_errno;
    return;
  }
  // The second signal: the default action, i.e. the process dies of it once the handler returns
  // (the signal is blocked while its handler runs, so raise() leaves it pending until then).
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace detail

/// Whether SIGINT or SIGTERM arrived since the handler was installed (or the flag was cleared).
inline bool interrupt_requested() { return detail::pending_interrupt.load() != 0; }
/// The signal that arrived first (SIGINT, SIGTERM), or 0.
inline int interrupt_signal() { return detail::pending_interrupt.load(); }
/// The conventional exit status after stopping for that signal: 128 + signal (130, 143); 1 if none.
inline int interrupt_exit_code() {
  const int sig = interrupt_signal();
  return sig ? 128 + sig : 1;
}
/// Forgets a pending interrupt (the next one is again a "first" one).
inline void clear_interrupt() { detail::pending_interrupt.store(0); }

/// Installs the handler for SIGINT and SIGTERM for its lifetime and restores the previous
/// dispositions when it dies. Not nestable across threads; one per program is the intent.
class InterruptHandler {
 public:
  InterruptHandler() {
    clear_interrupt();
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = detail::on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // a read or write in progress goes on rather than failing with EINTR
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptHandler() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;

 private:
  struct sigaction old_int_, old_term_;
};

}  // namespace ember::utils
