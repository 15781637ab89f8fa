// OS plumbing for the benchmark: CPU pinning, spinning, futexes, the shared
// mapping both processes use, and running a (parent, child) pair of
// functions in two processes with a watchdog.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include <immintrin.h>
#include <sched.h>

namespace flbench {

// ---- CPUs -----------------------------------------------------------------

struct CpuPair {
  int parent = -1;  // -1: not pinned
  int child = -1;
  bool separate_cores = false;  // false on a 1-CPU machine/affinity mask
};

// Picks the first two CPUs of this process's affinity mask (normally 0 and
// 1), pins the calling process to the first one, and remembers the pair.
// With a single CPU nothing is pinned and spin loops yield instead (see
// cpu_relax), otherwise a spinner would burn its whole time slice while the
// process it waits for cannot run.
CpuPair setup_cpus();
const CpuPair& cpus();
bool pin_to_cpu(int cpu);

namespace detail {
inline bool g_yield_in_spin = false;
}

// Body of every busy-wait loop.
inline void cpu_relax() {
  if (detail::g_yield_in_spin) {
    sched_yield();
  } else {
    _mm_pause();
  }
}

// Spin until `word` (accessed atomically) equals `want`.
template <class T>
inline void spin_until_equal(T& word, T want) {
  std::atomic_ref<T> ref(word);
  while (ref.load(std::memory_order_acquire) != want) cpu_relax();
}

// ---- futex ----------------------------------------------------------------

// Shared (not FUTEX_PRIVATE) operations, because the word lives in a
// mapping used by two processes.
void futex_wait(std::uint32_t* word, std::uint32_t expected);
void futex_wake(std::uint32_t* word);

// Block (no spinning first) until `word` equals `want`.
inline void futex_wait_until_equal(std::uint32_t& word, std::uint32_t want) {
  std::atomic_ref<std::uint32_t> ref(word);
  for (;;) {
    const std::uint32_t v = ref.load(std::memory_order_acquire);
    if (v == want) return;
    futex_wait(&word, v);
  }
}

inline void store_and_wake(std::uint32_t& word, std::uint32_t value) {
  std::atomic_ref<std::uint32_t>(word).store(value, std::memory_order_release);
  futex_wake(&word);
}

// ---- shared memory --------------------------------------------------------

// A MAP_SHARED mapping of a POSIX shm object, created before fork so both
// processes see it at the same address. The name carries the pid and a
// counter so concurrent runs never collide, and it is unlinked right after
// mmap: the mapping stays valid, and nothing is left in /dev/shm even if the
// program is killed. The creating process prefaults every page.
class SharedRegion {
 public:
  explicit SharedRegion(std::size_t bytes);
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  std::byte* data() const { return base_; }
  std::size_t size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  std::string name_;
};

// Touch every page with a write that does not change memory (atomic add of
// zero), so page-table entries exist in the calling process before timing
// starts. fork() does not copy the page tables of shared file mappings, so
// the child has to do this itself. Must run before the other side starts
// writing non-atomically into the same pages, i.e. before the handshake.
void prefault(void* base, std::size_t bytes);

// ---- process pair ---------------------------------------------------------

// Runs `child` in a forked process pinned to cpus().child and `parent` in
// this process. Returns an empty string on success, else an error message
// (child exit status, or the parent's own error string). A watchdog alarm
// kills both if a case hangs (e.g. the child died while the parent spins).
// Neither function may throw across this boundary; the child's return value
// is its exit status.
std::string run_pair(const std::function<std::string()>& parent,
                     const std::function<int()>& child, unsigned watchdog_s);

// Paths (ZeroMQ ipc sockets) to unlink if the watchdog or a signal ends the
// program. At most a few are registered at a time.
void register_cleanup_path(const std::string& path);
void unregister_cleanup_path(const std::string& path);
// Installs SIGINT/SIGTERM/SIGALRM handlers that unlink registered paths,
// kill a running child, and exit.
void install_signal_handlers();

// Unique-per-run name fragment: "<pid>-<counter>".
std::string unique_suffix();

}  // namespace flbench
