// The waiting loop shared by every endpoint kind (channel.cpp, topic.cpp): spin as the strategy
// says, then sleep on an eventcount in slices of the liveness interval.
#pragma once

#include <atomic>
#include <chrono>

#include "flatlane/error.hpp"
#include "flatlane/layout.hpp"
#include "flatlane/wait.hpp"

namespace flatlane::detail {

using std::chrono::nanoseconds;

// Spin (per strategy), then sleep on the eventcount in slices of liveness_interval, re-checking
// the peer after each slice so a dead peer is reported within one interval.
template <class Ready, class PeerClosed, class PeerError>
Result<void> wait_until(Ready&& ready, wire::EventCount& ev, const WaitOptions& w, nanoseconds timeout,
                        const std::atomic<bool>& closed, Clock::time_point& next_poll_check,
                        std::atomic<uint32_t>* demand, PeerClosed&& peer_closed, PeerError&& peer_error) {
  // Tells the peer that we are short of what it may be holding back (batched publication).
  auto raise_demand = [demand] {
    if (demand && demand->load(std::memory_order_relaxed) == 0) {
      demand->store(1, std::memory_order_relaxed);
      detail::full_fence();
    }
  };
  if (ready()) return {};
  if (closed.load(std::memory_order_relaxed)) return Errc::closed;
  // A peer that already closed cleanly is reported at once (a shared-memory load, no syscall).
  if (Errc e = peer_closed(); e != Errc::ok) return ready() ? Result<void>{} : Result<void>{e};
  // The liveness check reads /proc, so it runs at most once per liveness interval per endpoint
  // (one deadline shared by every wait): polling loops stay syscall-free, and a peer that died
  // before a wait began is still reported at its start.
  auto check_peer = [&](Clock::time_point now) {
    if (now < next_poll_check) return Errc::ok;
    next_poll_check = now + w.liveness_interval;
    return peer_error();
  };
  const auto start = Clock::now();
  if (Errc e = check_peer(start); e != Errc::ok) return ready() ? Result<void>{} : Result<void>{e};
  if (timeout.count() == 0) {
    raise_demand();
    return ready() ? Result<void>{} : Result<void>{Errc::timeout};
  }
  constexpr nanoseconds kForever = std::chrono::hours(24 * 365 * 100);
  const auto deadline = timeout.count() < 0 || timeout >= kForever ? Clock::time_point::max() : start + timeout;
  const auto demand_at = start + std::chrono::microseconds(20);
  const auto spin_end = w.strategy == WaitStrategy::busy_spin  ? Clock::time_point::max()
                        : w.strategy == WaitStrategy::blocking ? start
                                                               : start + w.spin_budget;
  for (uint32_t i = 0;; ++i) {
    if (ready()) return {};
    if (closed.load(std::memory_order_relaxed)) return Errc::closed;
    if ((i & 63) == 0) {
      const auto now = Clock::now();
      if (Errc e = peer_closed(); e != Errc::ok) return ready() ? Result<void>{} : Result<void>{e};
      if (now >= demand_at) raise_demand();
      if (now >= deadline) return Errc::timeout;
      if (Errc e = check_peer(now); e != Errc::ok) return ready() ? Result<void>{} : Result<void>{e};
      if (now >= spin_end) break;
    }
    detail::cpu_relax();
  }
  raise_demand();
  for (;;) {
    ev.waiters.fetch_add(1, std::memory_order_seq_cst);
    detail::full_fence();  // pairs with detail::notify()
    const uint32_t gen = ev.seq.load(std::memory_order_acquire);
    Errc result = Errc::ok;
    bool done = true;
    const auto now = Clock::now();
    if (ready()) {
    } else if (closed.load(std::memory_order_relaxed)) {
      result = Errc::closed;
    } else if (Errc e = peer_closed(); e != Errc::ok) {
      result = e;  // close() wakes sleepers, but it may have come before we announced ourselves
    } else if (now >= deadline) {
      result = Errc::timeout;
    } else {
      done = false;
      detail::futex_wait(&ev.seq, gen, std::min<nanoseconds>(deadline - now, w.liveness_interval));
    }
    ev.waiters.fetch_sub(1, std::memory_order_release);
    if (done) return result == Errc::ok ? Result<void>{} : Result<void>{result};
    if (ready()) return {};
    if (closed.load(std::memory_order_relaxed)) return Errc::closed;
    if (Errc e = check_peer(Clock::now()); e != Errc::ok) return ready() ? Result<void>{} : Result<void>{e};
  }
}

}  // namespace flatlane::detail
