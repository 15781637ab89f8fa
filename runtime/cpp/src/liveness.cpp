#include "flatlane/liveness.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace flatlane {

namespace {

// Parses /proc/<pid>/stat: the comm field may contain spaces and ')' so scan from the last ')'.
// Returns 0 for a missing process or a zombie/dead one; *exists tells whether /proc had it.
uint64_t read_start_time(uint32_t pid, bool* exists = nullptr) noexcept {
  if (exists) *exists = false;
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  if (exists) *exists = true;
  buf[n] = '\0';
  char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ') return 0;
  p += 2;  // now at field 3 (state)
  char state = *p;
  if (state == 'Z' || state == 'X' || state == 'x') return 0;
  // Skip fields 3..21 to reach field 22 (starttime).
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return 0;
    ++p;
  }
  return std::strtoull(p, nullptr, 10);
}

}  // namespace

uint64_t process_start_time(uint32_t pid) noexcept {
  if (pid == 0) return 0;
  return read_start_time(pid);
}

ProcessIdentity self_identity() noexcept {
  // Cached per pid so a forked child computes its own.
  static thread_local ProcessIdentity cached{};
  uint32_t pid = static_cast<uint32_t>(::getpid());
  if (cached.pid != pid) cached = ProcessIdentity{pid, read_start_time(pid)};
  return cached;
}

bool is_alive(const ProcessIdentity& id) noexcept {
  if (id.pid == 0) return false;
  if (::kill(static_cast<pid_t>(id.pid), 0) != 0 && errno == ESRCH) return false;
  bool exists = false;
  uint64_t st = read_start_time(id.pid, &exists);
  // kill() found a process but /proc did not show it: another pid namespace; assume alive.
  if (!exists) return true;
  if (st == 0) return false;  // zombie: it will never touch the segment again
  return id.start_time == 0 || id.start_time == st;
}

}  // namespace flatlane
