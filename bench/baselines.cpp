// Floors: the cheapest ways to move data between two processes through
// shared memory. Flatlane cannot beat these; its overhead is the distance
// to them.
//
//   floor/cacheline       one line per direction, busy spin: the latency
//                         floor for 64 B
//   floor/futex           same, but the waiter sleeps in FUTEX_WAIT at once:
//                         the blocking floor (two wake-ups per round trip)
//   floor/ring-pp-busy    ping-pong over two bare SPSC rings with N-byte
//   floor/ring-pp-block   payloads, spinning / sleeping on a futex: the
//                         floor for sizes where moving the payload dominates
//   floor/ring            bare SPSC ring, producer -> consumer throughput
#include <new>

#include "bench.hpp"
#include "measure.hpp"
#include "platform.hpp"
#include "spsc_ring.hpp"

namespace flbench {
namespace {

constexpr std::size_t kPage = 4096;

enum class Wait { Spin, Futex };

void signal_word(Wait w, std::uint32_t& word, std::uint32_t value) {
  if (w == Wait::Spin) {
    std::atomic_ref<std::uint32_t>(word).store(value, std::memory_order_release);
  } else {
    store_and_wake(word, value);
  }
}

void wait_word(Wait w, std::uint32_t& word, std::uint32_t value) {
  if (w == Wait::Spin) {
    spin_until_equal(word, value);
  } else {
    futex_wait_until_equal(word, value);
  }
}

// Control page of the ping-pong floors. ping is written only by the parent,
// pong only by the child, each on its own cache line.
struct PingPongControl {
  PairSync sync;
  SyncLine ping;
  SyncLine pong;
};

// The bare cache-line ping-pong: parent publishes seq on ping and waits for
// seq on pong; the child mirrors it. No payload: one line moves each way.
Result line_pingpong(const Plan& plan, Wait wait) {
  SharedRegion region(sizeof(PingPongControl));
  auto* ctl = new (region.data()) PingPongControl;
  const std::uint64_t iters = plan.latency_iters(64);
  const std::uint64_t warmup = plan.warmup_iters(iters);

  Result res;
  auto parent = [&]() -> std::string {
    spin_until_equal(ctl->sync.child_ready.value, 1u);
    measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          const auto s = static_cast<std::uint32_t>(seq);
          signal_word(wait, ctl->ping.value, s);
          wait_word(wait, ctl->pong.value, s);
          return true;
        },
        res.rtt_ns);
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    std::atomic_ref<std::uint32_t>(ctl->sync.child_ready.value).store(1, std::memory_order_release);
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      const auto s = static_cast<std::uint32_t>(seq);
      wait_word(wait, ctl->ping.value, s);
      signal_word(wait, ctl->pong.value, s);
    }
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// Control page of the ring ping-pong: one futex "event" word per
// direction, bumped by the producer after every commit in blocking mode.
struct RingPingPongControl {
  PairSync sync;
  SyncLine fwd_event;
  SyncLine back_event;
};

void ring_notify(Wait wait, std::uint32_t& event) {
  if (wait == Wait::Futex) {
    std::atomic_ref<std::uint32_t>(event).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&event);
  }
}

// Next message of `ring`, busy-spinning or sleeping on `event` right away.
// Reading the event before the re-check closes the lost-wake-up window:
// FUTEX_WAIT returns at once if the producer bumped it in between.
const std::byte* ring_wait_read(Wait wait, SpscRing& ring, std::uint32_t& event, std::size_t& len) {
  if (wait == Wait::Spin) return ring.read_spin(len);
  for (;;) {
    const std::uint32_t e = std::atomic_ref<std::uint32_t>(event).load(std::memory_order_seq_cst);
    if (const std::byte* p = ring.try_read(len)) return p;
    futex_wait(&event, e);
  }
}

// Ping-pong over two bare rings, structured exactly like a Flatlane
// ping-pong (reserve/fill/commit one way, read in place/check/release, then
// the same back), so it is the floor for every payload size: what moving
// the bytes through a ring costs with no protocol on top.
Result ring_pingpong(const Plan& plan, std::size_t size, Wait wait) {
  const std::size_t cap = ring_capacity_for(size);
  const std::size_t ring_bytes = SpscRing::region_bytes(cap);
  SharedRegion region(kPage + 2 * ring_bytes);
  auto* ctl = new (region.data()) RingPingPongControl;
  std::byte* fwd_mem = region.data() + kPage;  // parent -> child
  std::byte* back_mem = fwd_mem + ring_bytes;  // child -> parent
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);

  Result res;
  auto parent = [&]() -> std::string {
    SpscRing fwd(fwd_mem, cap);
    SpscRing back(back_mem, cap);
    spin_until_equal(ctl->sync.child_ready.value, 1u);
    bool bad = false;
    measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          fill_payload(fwd.reserve(size), size, seq);
          fwd.commit();
          ring_notify(wait, ctl->fwd_event.value);
          std::size_t len = 0;
          const std::byte* p = ring_wait_read(wait, back, ctl->back_event.value, len);
          if (len != size || !payload_ok(p, len, seq)) bad = true;
          back.release();
          return true;
        },
        res.rtt_ns);
    if (bad) return "payload mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    SpscRing fwd(fwd_mem, cap);
    SpscRing back(back_mem, cap);
    std::atomic_ref<std::uint32_t>(ctl->sync.child_ready.value).store(1, std::memory_order_release);
    int rc = 0;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      std::size_t len = 0;
      const std::byte* p = ring_wait_read(wait, fwd, ctl->fwd_event.value, len);
      if (len != size || !payload_ok(p, len, seq)) rc = 2;  // keep going so the parent finishes
      fwd.release();
      fill_payload(back.reserve(size), size, seq);
      back.commit();
      ring_notify(wait, ctl->back_event.value);
    }
    return rc;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// One throughput trial through the bare ring: the child produces
// warmup + n messages of `size` bytes (writing every word in place), the
// parent consumes them and sums every word in place. Only the n messages
// after the parent's "go" are timed.
Result ring_trial(const Plan& plan, std::size_t size) {
  const std::size_t cap = ring_capacity_for(size);
  SharedRegion region(kPage + SpscRing::region_bytes(cap));
  auto* sync = new (region.data()) PairSync;
  std::byte* ring_mem = region.data() + kPage;
  const std::uint64_t n = plan.tput_messages(size);
  const std::uint64_t warmup = plan.warmup_iters(n);

  Result res;
  auto parent = [&]() -> std::string {
    SpscRing ring(ring_mem, cap);
    bool bad = false;
    auto consume = [&](std::uint64_t seq) {
      std::size_t len = 0;
      const std::byte* p = ring.read_spin(len);
      if (len != size || !payload_ok(p, len, seq)) bad = true;
      ring.release();
    };
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) consume(seq);
    spin_until_equal(sync->child_ready.value, 1u);
    const std::uint64_t t0 = now_ns();
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    for (; seq <= warmup + n; ++seq) consume(seq);
    const std::uint64_t t1 = now_ns();
    if (bad) return "payload mismatch seen by consumer";
    res.messages = n;
    res.bytes = n * size;
    res.seconds = static_cast<double>(t1 - t0) * 1e-9;
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    SpscRing ring(ring_mem, cap);
    auto produce = [&](std::uint64_t seq) {
      std::byte* p = ring.reserve(size);
      fill_payload(p, size, seq);
      ring.commit();
    };
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) produce(seq);
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    spin_until_equal(sync->go.value, 1u);
    for (; seq <= warmup + n; ++seq) produce(seq);
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

}  // namespace

void add_baseline_cases(std::vector<Case>& out) {
  // Registration order matters: for 64 B the first matching floor, the
  // cache-line / futex one, is the reference of the "vs floor" column.
  out.push_back({"floor/cacheline", "cache-line floor", 64, "busy", Kind::Latency, false,
                 [](const Plan& p) { return line_pingpong(p, Wait::Spin); }});
  out.push_back({"floor/futex", "futex floor", 64, "block", Kind::Latency, false,
                 [](const Plan& p) { return line_pingpong(p, Wait::Futex); }});
  for (Wait wait : {Wait::Spin, Wait::Futex}) {
    for (std::size_t size : kLatencySizes) {
      out.push_back({wait == Wait::Spin ? "floor/ring-pp-busy" : "floor/ring-pp-block",
                     "bare ring ping-pong", size, wait == Wait::Spin ? "busy" : "block",
                     Kind::Latency, false,
                     [size, wait](const Plan& p) { return ring_pingpong(p, size, wait); }});
    }
  }
  for (std::size_t size : kTputSizes) {
    out.push_back({"floor/ring", "bare SPSC ring", size, "busy", Kind::Throughput, false,
                   [size](const Plan& p) {
                     return run_throughput_trials(p, [&] { return ring_trial(p, size); });
                   }});
  }
}

}  // namespace flbench
