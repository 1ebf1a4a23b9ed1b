#pragma once
/// Atomic file replacement: everything io/ writes (safetensors files, checkpoints, PNGs) goes
/// through `io::write_file_atomic`, which writes a temporary file in the destination's directory,
/// flushes it to disk (fsync), renames it over the destination (atomic on POSIX file systems) and
/// syncs the directory. A crash or a failed write at any point leaves either the old file or the
/// complete new one, never a half-written file; the temporary is removed on failure (after a
/// SIGKILL it stays: `remove_stale_temporaries` cleans up after dead processes).
///
/// Example:
/// ```
///   ember::io::write_file_atomic("out/config.json", "save_config", [&](ember::io::FileWriter& w) {
///     w.write(text.data(), text.size());
///   });
/// ```
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/core/error.hpp"

namespace ember::io {

namespace detail {
inline std::string errno_text(int e) { return std::strerror(e); }
}  // namespace detail

/// The sink handed to write_file_atomic's callback; write() throws ember::Error on failure.
class FileWriter {
 public:
  FileWriter(int fd, std::string path, std::string op) : fd_(fd), path_(std::move(path)), op_(std::move(op)) {}
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  /// Appends `n` bytes.
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t r = ::write(fd_, p, n);
      if (r < 0 && errno == EINTR) continue;
      EMBER_CHECK(r > 0, op_, ": write to '", path_, "' failed: ", detail::errno_text(r < 0 ? errno : EIO));
      p += r;
      n -= static_cast<size_t>(r);
      written_ += r;
    }
  }
  void write(const std::string& s) { write(s.data(), s.size()); }
  /// Bytes written so far.
  int64_t written() const { return written_; }

 private:
  int fd_;
  std::string path_;
  std::string op_;
  int64_t written_ = 0;
};

/// Replaces `path` atomically with what `fill` writes (see the header comment). `op` names the
/// caller in error messages ("save_safetensors"). The new file gets mode 0644 (less the umask).
inline void write_file_atomic(const std::string& path, const std::string& op,
                              const std::function<void(FileWriter&)>& fill) {
  namespace fs = std::filesystem;
  EMBER_CHECK(!path.empty(), op, ": empty file name");
  fs::path target(path);
  fs::path dir = target.parent_path();
  EMBER_CHECK(!fs::is_directory(target), op, ": '", path, "' is a directory");
  EMBER_CHECK(dir.empty() || fs::is_directory(dir), op, ": cannot write '", path, "': directory '", dir.string(),
              "' does not exist");
  // Unique per process and call, so concurrent writers never share a temporary.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  EMBER_CHECK(fd >= 0, op, ": cannot create a temporary file next to '", path, "' ('", tmp,
              "'): ", detail::errno_text(errno));
  try {
    FileWriter w(fd, path, op);
    fill(w);
    EMBER_CHECK(::fsync(fd) == 0, op, ": fsync of '", tmp, "' failed: ", detail::errno_text(errno));
    int rc = ::close(fd);
    fd = -1;
    EMBER_CHECK(rc == 0, op, ": closing '", tmp, "' failed: ", detail::errno_text(errno));
    EMBER_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, op, ": cannot rename '", tmp, "' to '", path,
                "': ", detail::errno_text(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; a failure here leaves a complete file, so it is not fatal.
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

/// Removes the temporaries that killed writers left next to `path` (`<path>.tmp.<pid>.<n>` of
/// processes that no longer exist: a SIGKILL or power cut during a save leaves one behind, as
/// large as the file it was replacing). Temporaries of live processes are left alone, so a
/// concurrent writer is never disturbed. Returns how many were removed; never throws.
inline int64_t remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target(path);
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp.";
  int64_t removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "<pid>.<n>"
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot > 9) continue;
    const std::string pid_text = rest.substr(0, dot), n_text = rest.substr(dot + 1);
    auto digits = [](const std::string& t) {
      return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(pid_text) || !digits(n_text)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

}  // namespace ember::io
