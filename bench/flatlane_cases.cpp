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

#include <cstdio>

#ifdef FLATLANE_BENCH_HAVE_RUNTIME


#include <flatlane/flatlane.hpp>

#include <chrono>
#include <string>

#include "flatlane_common.hpp"
#include "pair_cases.hpp"
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
  using flatlane::OpenMode;
  return ping_pong_case(
      plan, size, strategy == flatlane::WaitStrategy::busy_spin,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::Writer out(n.fwd(), channel_options(size, strategy, OpenMode::create));
        flatlane::Reader in(n.back(), channel_options(size, strategy, OpenMode::create));
        return f(out, in);
      },
      [&](const ChannelNames& n, auto&& f) {
        flatlane::Reader in(n.fwd(), channel_options(size, strategy, OpenMode::open));
        flatlane::Writer out(n.back(), channel_options(size, strategy, OpenMode::open));
        return f(in, out);
      },
      [&](flatlane::Writer& w, std::uint64_t seq) { return send(w, size, seq); },
      [&](flatlane::Reader& r, std::uint64_t seq, bool& bad) { return receive(r, size, seq, bad); });
}

// One throughput trial: child = Writer, parent = Reader, same protocol as the bare ring's trial.
Result flatlane_tput_trial(const Plan& plan, std::size_t size) {
  using flatlane::OpenMode;
  const auto strategy = flatlane::WaitStrategy::busy_spin;
  return stream_trial(
      plan, size,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::Reader in(n.fwd(), channel_options(size, strategy, OpenMode::create));
        return f(in);
      },
      [&](const ChannelNames& n, auto&& f) {
        flatlane::Writer out(n.fwd(), channel_options(size, strategy, OpenMode::open));
        return f(out);
      },
      [&](flatlane::Writer& w, std::uint64_t seq) { return send(w, size, seq); },
      [&](flatlane::Reader& r, std::uint64_t seq, bool& bad) { return receive(r, size, seq, bad); });
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

// --peer: one side of a throughput run whose other side is another program (the C# bench), to
// tell which side bounds a cross-language stream. Both open a channel the other program created.
int flatlane_stream_peer(const std::string& role, const std::string& name, std::size_t size,
                         std::uint64_t warmup, std::uint64_t count) {
  using flatlane::OpenMode;
  const auto strategy = flatlane::WaitStrategy::busy_spin;
  if (role == "produce") {
    flatlane::Writer out(name, channel_options(size, strategy, OpenMode::open));
    return peer_produce(warmup, count, [&](std::uint64_t seq) { return send(out, size, seq); });
  }
  if (role == "consume") {
    flatlane::Reader in(name, channel_options(size, strategy, OpenMode::open));
    return peer_consume(warmup, count, [&](std::uint64_t seq, bool& bad) { return receive(in, size, seq, bad); });
  }
  return 2;
}

}  // namespace flbench

#else  // built without the flatlane::runtime target

namespace flbench {

// Built outside the project (no flatlane::runtime CMake target): the
// program runs the baselines only.
void add_flatlane_cases(std::vector<Case>&) {}

int flatlane_stream_peer(const std::string&, const std::string&, std::size_t, std::uint64_t, std::uint64_t) {
  std::fprintf(stderr, "flatlane_bench: --peer needs the flatlane runtime\n");
  return 2;
}

const char* flatlane_status() {
  return "NOT MEASURED: built without the flatlane::runtime target (baselines only)";
}

}  // namespace flbench

#endif
