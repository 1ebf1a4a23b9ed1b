/* Fault injection for the tests of io::write_file_atomic: an LD_PRELOAD shim that makes fsync()
 * or rename() fail, so a test can prove that a failed save names the file, keeps the previous
 * file intact and leaves no temporary, without any test hook (global state) in the library.
 *
 *   cc -shared -fPIC -O1 -o fault_inject.so tests/fault/fault_inject.c -ldl
 *   EMBER_FAULT_INJECT=fsync LD_PRELOAD=./fault_inject.so program ...
 *
 * Environment (read at every call, so a process can be started with it and nothing else):
 *   EMBER_FAULT_INJECT  comma-separated calls to fail: "fsync", "rename" (unset: pass through)
 *   EMBER_FAULT_MATCH   only calls on a path containing this substring (fsync: the path of the
 *                       descriptor, from /proc/self/fd); unset: every call
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

/* Counts matching calls across both interceptors, so EMBER_FAULT_SKIP orders them. */
static long matching_calls = 0;

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

int fsync(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  path[n > 0 ? n : 0] = '\0';
  if (inject("fsync", path)) return -1;
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}

int rename(const char* from, const char* to) {
  if (inject("rename", to)) return -1;
  int (*real)(const char*, const char*) = (int (*)(const char*, const char*))dlsym(RTLD_NEXT, "rename");
  return real(from, to);
}
