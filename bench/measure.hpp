// Timing and payload helpers shared by every case, so that all transports
// are measured with exactly the same loop and touch their payloads the same
// way.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace flbench {

inline std::uint64_t now_ns() {
  // steady_clock is clock_gettime(CLOCK_MONOTONIC) through the vDSO: ~20 ns,
  // no syscall while the clocksource is tsc/kvm-clock.
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// Message contents. Every payload is `size` bytes made of 8-byte words all
// equal to the message's sequence number. The writer stores every word and
// the reader loads every word (in place, no copy) and checks the sum, so
// each transport pays for moving every cache line and a broken transport
// is detected instead of timed.
inline void fill_payload(std::byte* p, std::size_t size, std::uint64_t seq) {
  for (std::size_t off = 0; off + 8 <= size; off += 8) std::memcpy(p + off, &seq, 8);
}

inline std::uint64_t sum_payload(const std::byte* p, std::size_t size) {
  std::uint64_t sum = 0;
  for (std::size_t off = 0; off + 8 <= size; off += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + off, 8);  // memcpy: payloads need not be 8-aligned
    sum += w;
  }
  return sum;
}

inline bool payload_ok(const std::byte* p, std::size_t size, std::uint64_t seq) {
  return sum_payload(p, size) == static_cast<std::uint64_t>(size / 8) * seq;
}

// Runs `warmup` untimed round trips, then `iters` timed ones, and returns one
// round-trip time per timed iteration. `round_trip(seq)` performs one full
// exchange for message number `seq` (starting at 1) and returns false on a
// transport error. One clock read per iteration: each sample spans from the
// end of the previous round trip to the end of this one.
template <class RoundTrip>
bool measure_round_trips(std::uint64_t warmup, std::uint64_t iters, RoundTrip&& round_trip,
                         std::vector<std::uint64_t>& rtt_ns) {
  // assign() writes every element now, so the sample buffer's page faults
  // happen here and not inside the timed loop.
  rtt_ns.assign(iters, 0);
  std::uint64_t seq = 1;
  for (std::uint64_t i = 0; i < warmup; ++i) {
    if (!round_trip(seq++)) {
      rtt_ns.clear();
      return false;
    }
  }
  std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < iters; ++i) {
    if (!round_trip(seq++)) {
      rtt_ns.resize(i);  // keep only real samples
      return false;
    }
    const std::uint64_t t1 = now_ns();
    rtt_ns[i] = t1 - t0;
    t0 = t1;
  }
  return true;
}

// Cache-line sized, separately aligned control words the cases use to line
// up the two processes before the timed part starts (and as ping/pong words).
struct alignas(64) SyncLine {
  std::uint32_t value = 0;
};

struct PairSync {
  SyncLine child_ready;  // child has prefaulted/attached (and finished warm-up)
  SyncLine go;           // parent's signal to the child; meaning is per case
};

}  // namespace flbench
