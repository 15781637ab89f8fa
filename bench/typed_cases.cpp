// Typed message cases: generated endpoints (bench/schema/bench.fbs) against raw frames of the
// same size, measured with the same loops as flatlane_cases.cpp.
//
//   typed/lat-busy   ping-pong of Tick messages, Publisher/Subscriber, busy_spin; every message
//                    is built in the frame with FlatBufferBuilder and verified on receipt
//   typed/tput       one-way stream of Tick messages, the parent receives (and verifies) each
//
// The Tick's payload vector is sized so that the whole FlatBuffer is `size` bytes; the payload
// is filled and checked like the raw cases' payload, so the difference is the FlatBuffers
// building and verification plus the typed layer.
#include "bench.hpp"

#if defined(FLATLANE_BENCH_HAVE_RUNTIME) && defined(FLATLANE_BENCH_HAVE_TYPED)

#include <cstdlib>
#include <new>

#include "bench.flatlane.hpp"
#include "flatlane_common.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

// Payload bytes that make a Tick FlatBuffer exactly `size` bytes (or the nearest above).
std::size_t payload_for(std::size_t size) {
  for (std::size_t n = 0; n < size; ++n) {
    flatbuffers::FlatBufferBuilder b(size * 2);
    uint8_t* p = nullptr;
    b.Finish(CreateTick(b, 1, b.CreateUninitializedVector<uint8_t>(n, &p)));
    if (b.GetSize() >= size) return n;
  }
  return 0;
}

flatlane::EndpointOptions endpoint(const std::string& name, std::size_t size, flatlane::OpenMode mode) {
  flatlane::EndpointOptions o;
  o.name = name;
  o.mode = mode;
  o.ring_capacity = ring_capacity_for(size);
  o.wait = flatlane::WaitStrategy::busy_spin;
  o.verify = std::getenv("FLBENCH_NOVERIFY") == nullptr;
  return o;
}

template <class Sender>
flatlane::Errc send_tick(Sender& s, std::size_t payload, std::uint64_t seq) {
  return s
      .send([&](flatbuffers::FlatBufferBuilder& b) {
        uint8_t* p = nullptr;
        auto vec = b.CreateUninitializedVector(payload, &p);
        fill_payload(reinterpret_cast<std::byte*>(p), payload, seq);
        return CreateTick(b, seq, vec);
      })
      .error();
}

template <class Receiver>
flatlane::Errc receive_tick(Receiver& r, std::size_t payload, std::uint64_t seq, bool& bad) {
  auto m = r.receive();
  if (!m) return m.error();
  const auto* v = (*m)->payload();
  if ((*m)->seq() != seq || v == nullptr || v->size() != payload ||
      !payload_ok(reinterpret_cast<const std::byte*>(v->data()), payload, seq))
    bad = true;
  return flatlane::Errc::ok;
}

std::string errc_text(const char* what, flatlane::Errc e) { return std::string(what) + ": " + flatlane::to_string(e); }

Result typed_latency(const Plan& plan, std::size_t size) {
  if (!busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);
  const std::size_t payload = payload_for(size);
  using flatlane::OpenMode;

  Result res;
  auto parent = [&]() -> std::string {
    Bench::ping::Publisher out(endpoint(names.fwd(), size, OpenMode::create));
    Bench::pong::Subscriber in(endpoint(names.back(), size, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    spin_until_equal(sync->child_ready.value, 1u);
    bool bad = false;
    flatlane::Errc err = flatlane::Errc::ok;
    const bool ok = measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          err = send_tick(out, payload, seq);
          if (err == flatlane::Errc::ok) err = receive_tick(in, payload, seq, bad);
          return err == flatlane::Errc::ok;
        },
        res.rtt_ns);
    if (!ok) return errc_text("typed ping-pong", err);
    if (bad) return "message mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    Bench::ping::Subscriber in(endpoint(names.fwd(), size, OpenMode::open));
    Bench::pong::Publisher out(endpoint(names.back(), size, OpenMode::open));
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    bool bad = false;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      if (receive_tick(in, payload, seq, bad) != flatlane::Errc::ok) return 1;
      if (send_tick(out, payload, seq) != flatlane::Errc::ok) return 1;
    }
    return bad ? 2 : 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

Result typed_tput_trial(const Plan& plan, std::size_t size) {
  if (!busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t n = plan.tput_messages(size);
  const std::uint64_t warmup = plan.warmup_iters(n);
  const std::size_t payload = payload_for(size);
  using flatlane::OpenMode;

  Result res;
  auto parent = [&]() -> std::string {
    Bench::ping::Subscriber in(endpoint(names.fwd(), size, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    bool bad = false;
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (auto e = receive_tick(in, payload, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
    }
    spin_until_equal(sync->child_ready.value, 1u);
    const std::uint64_t t0 = now_ns();
    std::atomic_ref<std::uint32_t>(sync->go.value).store(2, std::memory_order_release);
    for (; seq <= warmup + n; ++seq) {
      if (auto e = receive_tick(in, payload, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
    }
    const std::uint64_t t1 = now_ns();
    if (bad) return "message mismatch seen by consumer";
    res.messages = n;
    res.bytes = n * size;
    res.seconds = static_cast<double>(t1 - t0) * 1e-9;
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    Bench::ping::Publisher out(endpoint(names.fwd(), size, OpenMode::open));
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (send_tick(out, payload, seq) != flatlane::Errc::ok) return 1;
    }
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    spin_until_equal(sync->go.value, 2u);
    for (; seq <= warmup + n; ++seq) {
      if (send_tick(out, payload, seq) != flatlane::Errc::ok) return 1;
    }
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

}  // namespace

void add_typed_cases(std::vector<Case>& out) {
  constexpr std::size_t size = 64;
  out.push_back({"typed/lat-busy", "typed", size, "busy", Kind::Latency, true,
                 [](const Plan& p) { return typed_latency(p, size); }});
  out.push_back({"typed/tput", "typed", size, "busy", Kind::Throughput, true, [](const Plan& p) {
                   return run_throughput_trials(p, [&] { return typed_tput_trial(p, size); });
                 }});
}

}  // namespace flbench

#else

namespace flbench {
void add_typed_cases(std::vector<Case>&) {}
}  // namespace flbench

#endif
