#include "platform.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace flbench {

// ---- CPUs -----------------------------------------------------------------

namespace {
CpuPair g_cpus;
}

bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

CpuPair setup_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  CpuPair pair;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      if (pair.parent < 0) {
        pair.parent = cpu;
      } else {
        pair.child = cpu;
        break;
      }
    }
  }
  if (pair.parent >= 0 && pair.child >= 0 && pin_to_cpu(pair.parent)) {
    pair.separate_cores = true;
  } else {
    pair = CpuPair{};  // one CPU (or pinning refused): run unpinned
    detail::g_yield_in_spin = true;
  }
  g_cpus = pair;
  return pair;
}

const CpuPair& cpus() { return g_cpus; }

// ---- futex ----------------------------------------------------------------

void futex_wait(std::uint32_t* word, std::uint32_t expected) {
  // EAGAIN (value already changed) and EINTR just make the caller re-check.
  syscall(SYS_futex, word, FUTEX_WAIT, expected, nullptr, nullptr, 0);
}

void futex_wake(std::uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// ---- shared memory --------------------------------------------------------

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

SharedRegion::SharedRegion(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  size_ = (bytes + page - 1) / page * page;
  name_ = "/flatlane-bench-" + unique_suffix();
  const int fd = shm_open(name_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throw std::runtime_error("shm_open " + name_ + ": " + std::strerror(errno));
  // Unlink at once: the fd/mapping keep the object alive, and no exit path
  // (error, signal, crash) can leave the name behind.
  shm_unlink(name_.c_str());
  if (ftruncate(fd, static_cast<off_t>(size_)) != 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error(std::string("ftruncate: ") + std::strerror(err));
  }
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(err));
  base_ = static_cast<std::byte*>(p);
  std::memset(base_, 0, size_);  // prefault (write) in the creating process
}

SharedRegion::~SharedRegion() {
  if (base_ != nullptr) munmap(base_, size_);
}

void prefault(void* base, std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* p = static_cast<unsigned char*>(base);
  for (std::size_t off = 0; off < bytes; off += page) {
    std::atomic_ref<unsigned char>(p[off]).fetch_add(0, std::memory_order_relaxed);
  }
}

// ---- signals and cleanup --------------------------------------------------

namespace {

// Everything here is touched from signal handlers, so it is plain
// fixed-size storage and only async-signal-safe calls are used.
constexpr std::size_t kMaxPaths = 4;
constexpr std::size_t kPathLen = 108;  // sizeof(sockaddr_un::sun_path)
std::array<std::array<char, kPathLen>, kMaxPaths> g_paths{};
volatile sig_atomic_t g_child_pid = 0;

void unlink_registered_paths() {
  for (auto& p : g_paths) {
    if (p[0] != '\0') unlink(p.data());
  }
}

void write_stderr(const char* s) {
  const ssize_t ignored = write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

void on_fatal_signal(int sig) {
  const pid_t child = g_child_pid;
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);  // reap it: no zombie left for init
  }
  unlink_registered_paths();
  if (sig == SIGALRM) {
    write_stderr("flatlane_bench: watchdog expired (a case hung); aborting\n");
    _exit(3);
  }
  _exit(128 + sig);
}

void reset_signals_in_child() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGALRM, SIG_DFL);
}

}  // namespace

void register_cleanup_path(const std::string& path) {
  if (path.size() >= kPathLen) throw std::runtime_error("cleanup path too long: " + path);
  for (auto& p : g_paths) {
    if (p[0] == '\0') {
      std::memcpy(p.data(), path.c_str(), path.size() + 1);
      return;
    }
  }
  throw std::runtime_error("too many cleanup paths");
}

void unregister_cleanup_path(const std::string& path) {
  for (auto& p : g_paths) {
    if (path == p.data()) p[0] = '\0';
  }
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGALRM, &sa, nullptr);
}

// ---- process pair ---------------------------------------------------------

std::string run_pair(const std::function<std::string()>& parent,
                     const std::function<int()>& child, unsigned watchdog_s) {
  std::fflush(stdout);  // otherwise the child could inherit and re-emit buffered text
  std::fflush(stderr);
  const pid_t parent_pid = getpid();
  const pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);

  if (pid == 0) {
    reset_signals_in_child();
    // Die with the parent instead of spinning forever as an orphan.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) _exit(1);
    if (cpus().child >= 0 && !pin_to_cpu(cpus().child)) _exit(1);
    int rc = 1;
    try {
      rc = child();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flatlane_bench child: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "flatlane_bench child: unknown exception\n");
    }
    std::fflush(stderr);
    _exit(rc);  // skip atexit handlers/static destructors of the parent's copy
  }

  g_child_pid = pid;
  alarm(watchdog_s);
  std::string err;
  try {
    err = parent();
  } catch (const std::exception& e) {
    err = e.what();
  } catch (...) {
    err = "unknown exception";
  }
  // If the parent gave up, the child may be waiting for it forever.
  if (!err.empty()) kill(pid, SIGKILL);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  alarm(0);
  g_child_pid = 0;

  if (err.empty()) {
    if (WIFSIGNALED(status)) {
      err = "child killed by signal " + std::to_string(WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      err = "child exited with status " + std::to_string(WEXITSTATUS(status));
    }
  }
  return err;
}

}  // namespace flbench
