// flatlane_typed_cost: what a typed message costs beside a raw topic slot, in one process, so
// that it can be counted exactly instead of timed on a noisy machine:
//
//   valgrind --tool=callgrind build/bench/flatlane_typed_cost raw 20000
//   valgrind --tool=callgrind build/bench/flatlane_typed_cost typed 20000
//   valgrind --tool=callgrind build/bench/flatlane_typed_cost none 0      (setup only)
//
// (instructions(mode) - instructions(none)) / count = instructions per message: one send and one
// receive of the bench's Tick (a 64-byte FlatBuffer built in the slot, verified on receipt;
// FLBENCH_NOVERIFY=1 skips verification) or of a raw 64-byte topic slot, over the same topic
// geometry. Without valgrind it prints ns per message (timed, so noisy).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "bench.flatlane.hpp"

namespace {

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flbench;
  const std::string mode = argc > 1 ? argv[1] : "";
  const long count = argc > 2 ? std::atol(argv[2]) : 1000000;
  if (mode != "raw" && mode != "typed" && mode != "channel" && mode != "none") {
    std::fprintf(stderr, "usage: flatlane_typed_cost raw|typed|channel|none [count]\n");
    return 2;
  }
  const std::string tag = std::to_string(::getpid());
  flatlane::EndpointOptions o;
  o.name = "flatlane-typed-cost-" + tag;
  o.mode = flatlane::OpenMode::create;
  o.wait = flatlane::WaitStrategy::busy_spin;
  o.verify = std::getenv("FLBENCH_NOVERIFY") == nullptr;
  flatlane::EndpointOptions oo = o;
  oo.mode = flatlane::OpenMode::open;
  Bench::ping::Publisher pub(o);
  Bench::ping::Subscriber sub(oo);

  // The raw reference: the topic the typed endpoint creates, carrying plain frames.
  auto t = flatlane::detail::topic_options<Tick>(Bench::ping::spec, o);
  t.topic.type = {};
  const std::string raw_name = "flatlane-typed-cost-raw-" + tag;
  flatlane::TopicPublisher rp(raw_name, t);
  t.mode = flatlane::OpenMode::open;
  flatlane::TopicSubscriber rs(raw_name, t);

  constexpr std::size_t kPayload = 21;  // a 64-byte Tick (bench/typed_cases.cpp, payload_for)
  constexpr std::size_t kRaw = 64;
  // The C# bench's channel cost case (runtime/csharp/Flatlane.Bench, --cost): one 64-byte frame,
  // every word = seq, reserved, committed, read and released in one thread.
  flatlane::ChannelOptions co;
  co.mode = flatlane::OpenMode::create;
  co.wait.strategy = flatlane::WaitStrategy::busy_spin;
  const std::string ch_name = "flatlane-typed-cost-ch-" + tag;
  flatlane::Writer cw(ch_name, co);
  co.mode = flatlane::OpenMode::open;
  flatlane::Reader cr(ch_name, co);

  const bool typed = mode == "typed", raw = mode == "raw", channel = mode == "channel";  // not compared in the loop
  std::uint64_t check = 0, want = 0;
  const std::uint64_t t0 = now_ns();
  for (long i = 1; i <= count; ++i) {
    const auto seq = static_cast<std::uint64_t>(i);
    want += 2 * seq;
    if (typed) {
      auto r = pub.send([&](flatbuffers::FlatBufferBuilder& b) {
        uint8_t* p = nullptr;
        auto v = b.CreateUninitializedVector(kPayload, &p);
        std::memcpy(p, &seq, 8);
        std::memcpy(p + 8, &seq, 8);
        return CreateTick(b, seq, v);
      });
      auto m = sub.receive();
      if (!r || !m) return 1;
      std::uint64_t w;
      std::memcpy(&w, (*m)->payload()->data(), 8);
      check += (*m)->seq() + w;
    } else if (channel) {
      auto s = cw.reserve(kRaw);
      if (!s) return 1;
      auto* words = reinterpret_cast<std::uint64_t*>(s->data());
      for (std::size_t k = 0; k < kRaw / 8; ++k) words[k] = seq;
      cw.commit(kRaw);
      auto f = cr.read();
      if (!f) return 1;
      std::uint64_t sum = 0;
      for (std::size_t k = 0; k < kRaw / 8; ++k) {
        std::uint64_t v;
        std::memcpy(&v, f->ptr() + 8 * k, 8);
        sum += v;
      }
      check += sum / 4;  // 8 words of seq: adds 2 * seq like the other modes
    } else if (raw) {
      auto s = rp.loan(kRaw);
      if (!s) return 1;
      std::memcpy(s->data(), &seq, 8);
      std::memcpy(s->data() + 8, &seq, 8);
      if (!rp.publish(kRaw)) return 1;
      auto m = rs.receive();
      if (!m) return 1;
      std::uint64_t a, b;
      std::memcpy(&a, m->ptr(), 8);
      std::memcpy(&b, m->ptr() + 8, 8);
      check += a + b;
    }
  }
  const std::uint64_t t1 = now_ns();
  if (mode != "none" && check != want) {
    std::fprintf(stderr, "flatlane_typed_cost: wrong contents received\n");
    return 1;
  }
  if (count > 0 && mode != "none")
    std::printf("%s: %ld messages, %.1f ns per send + receive\n", mode.c_str(), count,
                static_cast<double>(t1 - t0) / static_cast<double>(count));
  return 0;
}
