// Flatlane channel cases, measured exactly like the floors in baselines.cpp
// (same loops, same payload fill/check, same ring capacity) so that the
// difference is the channel's own cost.
//
//   flatlane/lat-busy    ping-pong over two SPSC channels (one per
//                        direction), WaitStrategy::busy_spin on both ends
//   flatlane/lat-block   the same with WaitStrategy::blocking (sleep on the
//                        futex eventcount at once)
//   flatlane/tput        child writes, parent reads each frame in place,
//                        busy_spin (the bare ring's discipline)
//
// Writers use reserve(n) -> fill in place -> commit(n); readers use read()
// and sum every 8-byte word of Frame::data() in place before the Frame is
// released. Nothing is copied by the benchmark on either side.
#include "bench.hpp"

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

#include <new>

#include <flatlane/flatlane.hpp>

#include "flatlane_common.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

flatlane::ChannelOptions channel_options(std::size_t size, flatlane::WaitStrategy strategy,
                                         flatlane::OpenMode mode) {
  flatlane::ChannelOptions o;
  o.mode = mode;
  o.segment.ring_capacity = ring_capacity_for(size);
  o.wait.strategy = strategy;
  return o;
}

std::string errc_text(const char* what, flatlane::Errc e) {
  return std::string(what) + ": " + flatlane::to_string(e);
}

// Writes one message of `size` bytes in place. Returns Errc::ok or the error.
flatlane::Errc send(flatlane::Writer& w, std::size_t size, std::uint64_t seq) {
  auto span = w.reserve(size);
  if (!span) return span.error();
  fill_payload(span->data(), size, seq);
  w.commit(size);
  return flatlane::Errc::ok;
}

// Reads one frame and checks its payload in place; the frame is released
// on return. `bad` is set on wrong contents.
flatlane::Errc receive(flatlane::Reader& r, std::size_t size, std::uint64_t seq, bool& bad) {
  auto frame = r.read();
  if (!frame) return frame.error();
  if (frame->size() != size || !payload_ok(frame->ptr(), size, seq)) bad = true;
  return flatlane::Errc::ok;
}

Result flatlane_latency(const Plan& plan, std::size_t size, flatlane::WaitStrategy strategy) {
  if (strategy == flatlane::WaitStrategy::busy_spin && !busy_spin_possible()) {
    return skipped_result(kNeedsTwoCpus);
  }
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);
  using flatlane::OpenMode;

  Result res;
  auto parent = [&]() -> std::string {
    // The parent creates both segments (prefaulted by the runtime) and
    // only then lets the child open them, so neither side races creation.
    flatlane::Writer out(names.fwd(), channel_options(size, strategy, OpenMode::create));
    flatlane::Reader in(names.back(), channel_options(size, strategy, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    spin_until_equal(sync->child_ready.value, 1u);

    bool bad = false;
    flatlane::Errc err = flatlane::Errc::ok;
    const bool ok = measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          err = send(out, size, seq);
          if (err == flatlane::Errc::ok) err = receive(in, size, seq, bad);
          return err == flatlane::Errc::ok;
        },
        res.rtt_ns);
    if (!ok) return errc_text("flatlane ping-pong", err);
    if (bad) return "payload mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    flatlane::Reader in(names.fwd(), channel_options(size, strategy, OpenMode::open));
    flatlane::Writer out(names.back(), channel_options(size, strategy, OpenMode::open));
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    bool bad = false;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      if (receive(in, size, seq, bad) != flatlane::Errc::ok) return 1;
      if (send(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    return bad ? 2 : 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// One throughput trial: child = Writer, parent = Reader, same protocol as
// the bare ring's trial (warm-up, then the parent takes t0 and says go).
Result flatlane_tput_trial(const Plan& plan, std::size_t size) {
  if (!busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t n = plan.tput_messages(size);
  const std::uint64_t warmup = plan.warmup_iters(n);
  const auto strategy = flatlane::WaitStrategy::busy_spin;
  using flatlane::OpenMode;

  Result res;
  auto parent = [&]() -> std::string {
    flatlane::Reader in(names.fwd(), channel_options(size, strategy, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    bool bad = false;
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (auto e = receive(in, size, seq, bad); e != flatlane::Errc::ok) return errc_text("read", e);
    }
    spin_until_equal(sync->child_ready.value, 1u);
    const std::uint64_t t0 = now_ns();
    std::atomic_ref<std::uint32_t>(sync->go.value).store(2, std::memory_order_release);
    for (; seq <= warmup + n; ++seq) {
      if (auto e = receive(in, size, seq, bad); e != flatlane::Errc::ok) return errc_text("read", e);
    }
    const std::uint64_t t1 = now_ns();
    if (bad) return "payload mismatch seen by consumer";
    res.messages = n;
    res.bytes = n * size;
    res.seconds = static_cast<double>(t1 - t0) * 1e-9;
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    flatlane::Writer out(names.fwd(), channel_options(size, strategy, OpenMode::open));
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (send(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    spin_until_equal(sync->go.value, 2u);
    for (; seq <= warmup + n; ++seq) {
      if (send(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

}  // namespace

void add_flatlane_cases(std::vector<Case>& out) {
  using flatlane::WaitStrategy;
  for (std::size_t size : kLatencySizes) {
    out.push_back({"flatlane/lat-busy", "flatlane", size, "busy", Kind::Latency, true,
                   [size](const Plan& p) { return flatlane_latency(p, size, WaitStrategy::busy_spin); }});
  }
  for (std::size_t size : kLatencySizes) {
    out.push_back({"flatlane/lat-block", "flatlane", size, "block", Kind::Latency, true,
                   [size](const Plan& p) { return flatlane_latency(p, size, WaitStrategy::blocking); }});
  }
  for (std::size_t size : kTputSizes) {
    out.push_back({"flatlane/tput", "flatlane", size, "busy", Kind::Throughput, true,
                   [size](const Plan& p) {
                     return run_throughput_trials(p, [&] { return flatlane_tput_trial(p, size); });
                   }});
  }
}

const char* flatlane_status() {
  return "runtime linked (flatlane::runtime); channels use busy_spin or blocking wait strategies";
}

}  // namespace flbench

#else  // built without the flatlane::runtime target

namespace flbench {

// Built outside the project (no flatlane::runtime CMake target): the
// program runs the baselines only.
void add_flatlane_cases(std::vector<Case>&) {}

const char* flatlane_status() {
  return "NOT MEASURED: built without the flatlane::runtime target (baselines only)";
}

}  // namespace flbench

#endif
