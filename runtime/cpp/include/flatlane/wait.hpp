// Wait strategies and the shared-futex eventcount used by both sides of a channel.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "flatlane/layout.hpp"

namespace flatlane {

enum class WaitStrategy : uint8_t {
  busy_spin,         // never sleeps: lowest latency, burns a core while waiting
  spin_then_sleep,   // spins for a bounded budget, then sleeps on a futex (default)
  blocking,          // sleeps on a futex right away
};

struct WaitOptions {
  WaitStrategy strategy = WaitStrategy::spin_then_sleep;
  std::chrono::nanoseconds spin_budget{50'000};  // spin_then_sleep only
  // Upper bound of one futex sleep: a sleeper re-checks peer liveness at least this often.
  std::chrono::nanoseconds liveness_interval{50'000'000};
};

using Clock = std::chrono::steady_clock;
inline constexpr std::chrono::nanoseconds kInfinite{-1};

namespace detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// A full (StoreLoad) barrier. ThreadSanitizer does not model standalone fences, so TSan builds
// use a seq_cst read-modify-write on a private word instead (correct for TSan's purposes, slower).
inline void full_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
  static std::atomic<uint32_t> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// FUTEX_WAIT on a word in shared memory (non-private: the peer is another process).
// Returns when woken, when *word != expected, on a signal, or after `timeout`.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
void futex_wake_all(std::atomic<uint32_t>* word) noexcept;

// Notifier half of the eventcount. Call after publishing with a release store.
inline void notify(wire::EventCount& ev) noexcept {
  // Pairs with the fence in the waiter: either we see its `waiters` increment, or it sees our data.
  full_fence();
  if (ev.waiters.load(std::memory_order_relaxed) != 0) {
    ev.seq.fetch_add(1, std::memory_order_release);
    futex_wake_all(&ev.seq);
  }
}

// Unconditional wake, used by close() to interrupt a blocked call.
inline void force_wake(wire::EventCount& ev) noexcept {
  ev.seq.fetch_add(1, std::memory_order_release);
  futex_wake_all(&ev.seq);
}

}  // namespace detail
}  // namespace flatlane
