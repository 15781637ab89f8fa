// Floors: the cheapest ways to move data between two processes through
// shared memory. Flatlane cannot beat these; its overhead is the distance
// to them.
//
//   floor/cacheline   one line per direction, busy spin (latency floor)
//   floor/futex       same, but the waiter sleeps in FUTEX_WAIT at once
//                     (blocking-mode floor: two wake-ups per round trip)
//   floor/shm-spin    cacheline protocol + N-byte payload written and read
//   floor/shm-futex   futex protocol + N-byte payload written and read
//   floor/ring        bare SPSC ring, producer -> consumer throughput
#include <bit>
#include <new>

#include "bench.hpp"
#include "measure.hpp"
#include "platform.hpp"
#include "spsc_ring.hpp"

namespace flbench {
namespace {

constexpr std::size_t kPage = 4096;

std::size_t page_round(std::size_t n) { return (n + kPage - 1) / kPage * kPage; }

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

// Ping-pong with `payload` bytes each way (0 = the bare cache-line case).
// Parent: fill A, publish seq on ping, wait for seq on pong, check B.
// Child:  wait for seq on ping, check A, fill B, publish seq on pong.
Result shm_pingpong(const Plan& plan, std::size_t payload, Wait wait) {
  const std::size_t buf = page_round(payload);
  SharedRegion region(kPage + 2 * buf);
  auto* ctl = new (region.data()) PingPongControl;
  std::byte* a = region.data() + kPage;  // parent -> child
  std::byte* b = a + buf;                // child -> parent
  const std::uint64_t iters = plan.latency_iters(payload);
  const std::uint64_t warmup = plan.warmup_iters(iters);

  Result res;
  auto parent = [&]() -> std::string {
    spin_until_equal(ctl->sync.child_ready.value, 1u);
    bool bad = false;
    measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          const auto s = static_cast<std::uint32_t>(seq);
          if (payload != 0) fill_payload(a, payload, seq);
          signal_word(wait, ctl->ping.value, s);
          wait_word(wait, ctl->pong.value, s);
          if (payload != 0 && !payload_ok(b, payload, seq)) bad = true;
          return true;
        },
        res.rtt_ns);
    if (bad) return "payload mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    std::atomic_ref<std::uint32_t>(ctl->sync.child_ready.value).store(1, std::memory_order_release);
    int rc = 0;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      const auto s = static_cast<std::uint32_t>(seq);
      wait_word(wait, ctl->ping.value, s);
      if (payload != 0) {
        if (!payload_ok(a, payload, seq)) rc = 2;  // keep going so the parent finishes
        fill_payload(b, payload, seq);
      }
      signal_word(wait, ctl->pong.value, s);
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
  // Room for at least 4 records in flight, and never tiny.
  const std::size_t cap =
      std::max<std::size_t>(256 * kKiB, std::bit_ceil(4 * SpscRing::record_bytes(size)));
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
  out.push_back({"floor/cacheline", "cache-line floor", 64, "busy", Kind::Latency, false,
                 [](const Plan& p) { return shm_pingpong(p, 0, Wait::Spin); }});
  out.push_back({"floor/futex", "futex floor", 64, "block", Kind::Latency, false,
                 [](const Plan& p) { return shm_pingpong(p, 0, Wait::Futex); }});
  for (std::size_t size : kLatencySizes) {
    if (size <= 64) continue;  // the 64 B floors are the two cases above
    out.push_back({"floor/shm-spin", "shm+payload floor", size, "busy", Kind::Latency, false,
                   [size](const Plan& p) { return shm_pingpong(p, size, Wait::Spin); }});
  }
  for (std::size_t size : kLatencySizes) {
    if (size <= 64) continue;
    out.push_back({"floor/shm-futex", "shm+payload floor", size, "block", Kind::Latency, false,
                   [size](const Plan& p) { return shm_pingpong(p, size, Wait::Futex); }});
  }
  for (std::size_t size : kTputSizes) {
    out.push_back({"floor/ring", "bare SPSC ring", size, "busy", Kind::Throughput, false,
                   [size](const Plan& p) {
                     return run_throughput_trials(p, [&] { return ring_trial(p, size); });
                   }});
  }
}

}  // namespace flbench
