/* Fault injection for the tests of io::write_file_atomic: an LD_PRELOAD shim that makes write(),
 * fsync() or rename() fail, so a test can prove that a failed save names the file, keeps the
 * previous file intact and leaves no temporary, without any test hook (global state) in the library.
 *
 *   cc -shared -fPIC -O1 -o fault_inject.so tests/fault/fault_inject.c -ldl
 *   EMBER_FAULT_INJECT=fsync LD_PRELOAD=./fault_inject.so program ...
 *
 * Environment (read at every call, so a process can be started with it and nothing else):
 *   EMBER_FAULT_INJECT  comma-separated calls to fail: "write", "fsync", "rename" (unset: pass
 *                       through)
 *   EMBER_FAULT_MATCH   only calls on a path containing this substring (write, fsync: the path of
 *                       the descriptor, from /proc/self/fd); unset: every call
 *   EMBER_FAULT_AFTER_BYTES  write: let this many bytes through first (default 0), as a disk that
 *                       fills up: the write that crosses the limit is cut short there (a short
 *                       count, as the kernel returns), the next one fails
 *   EMBER_FAULT_SKIP    let this many matching calls succeed first (default 0), e.g. 1 to fail
 *                       the directory fsync after the file's
 *   EMBER_FAULT_ERRNO   the errno to fail with (default EIO)
 * Every injected failure writes one line to stderr ("fault_inject: fsync(...) -> errno N"), so a
 * test can check that the fault it asked for was really injected.
 *
 * Not part of the library: built by the test that uses it (tests/test_io.cpp) or by the build. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fault_wanted(const char* call) {
  const char* list = getenv("EMBER_FAULT_INJECT");
  if (!list) return 0;
  size_t n = strlen(call);
  for (const char* p = list; (p = strstr(p, call)) != NULL; p += n)
    if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
  return 0;
}

static int path_matches(const char* path) {
  const char* match = getenv("EMBER_FAULT_MATCH");
  return !match || (path && strstr(path, match) != NULL);
}

/* Counts matching calls across the interceptors, so EMBER_FAULT_SKIP orders them. */
static long matching_calls = 0;
/* Bytes that matching write() calls let through so far (EMBER_FAULT_AFTER_BYTES). */
static long long bytes_written = 0;

static int inject(const char* call, const char* path) {
  if (!fault_wanted(call) || !path_matches(path)) return 0;
  long seen = __atomic_fetch_add(&matching_calls, 1, __ATOMIC_SEQ_CST);
  const char* skip = getenv("EMBER_FAULT_SKIP");
  if (skip && seen < atol(skip)) return 0;
  const char* e = getenv("EMBER_FAULT_ERRNO");
  int code = e ? atoi(e) : EIO;
  fprintf(stderr, "fault_inject: %s('%s') -> errno %d (injected)\n", call, path ? path : "?", code);
  errno = code;
  return 1;
}

/* The path behind descriptor `fd`, into `path` (empty if unknown). */
static void fd_path(int fd, char* path, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, size - 1);
  path[n > 0 ? n : 0] = '\0';
}

ssize_t write(int fd, const void* buf, size_t count) {
  ssize_t (*real)(int, const void*, size_t) = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  if (!fault_wanted("write")) return real(fd, buf, count);
  char path[4096];
  fd_path(fd, path, sizeof path);
  if (!path_matches(path)) return real(fd, buf, count);
  const char* after = getenv("EMBER_FAULT_AFTER_BYTES");
  long long room = (after ? atoll(after) : 0) - __atomic_load_n(&bytes_written, __ATOMIC_SEQ_CST);
  if (room > 0) {
    ssize_t r = real(fd, buf, count < (unsigned long long)room ? count : (size_t)room);
    if (r > 0) __atomic_fetch_add(&bytes_written, r, __ATOMIC_SEQ_CST);
    return r;
  }
  return inject("write", path) ? -1 : real(fd, buf, count);
}

int fsync(int fd) {
  char path[4096];
  fd_path(fd, path, sizeof path);
  if (inject("fsync", path)) return -1;
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}

int rename(const char* from, const char* to) {
  if (inject("rename", to)) return -1;
  int (*real)(const char*, const char*) = (int (*)(const char*, const char*))dlsym(RTLD_NEXT, "rename");
  return real(from, to);
}
