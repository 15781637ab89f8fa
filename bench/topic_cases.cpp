// Publish/subscribe topic cases (runtime/cpp topic.hpp), measured like flatlane_cases.cpp so the
// difference to a one-to-one channel is the cost of the pattern: slot pool, reference counts and
// per-subscriber index queues.
//
//   topic/lat-busy    ping-pong over two topics (one publisher and one subscriber each),
//                     busy_spin waits; the publisher loans a slot, fills it, publishes; the
//                     subscriber reads it in place and releases it
//   topic/lat-block   the same with blocking waits
//   topic/tput        child publishes, parent (a block_publisher subscriber, so nothing is
//                     dropped) reads every message in place
#include "bench.hpp"

#ifdef FLATLANE_BENCH_HAVE_RUNTIME


#include "flatlane_common.hpp"
#include "pair_cases.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

flatlane::TopicOptions topic_options(std::size_t size, flatlane::WaitStrategy strategy, flatlane::OpenMode mode) {
  flatlane::TopicOptions o;
  o.mode = mode;
  o.topic.slot_size = static_cast<std::uint32_t>(size < 64 ? 64 : size);
  o.topic.slot_count = 64;
  o.topic.queue_depth = 32;
  o.topic.max_subscribers = 4;
  o.topic.max_publishers = 1;
  o.wait.strategy = strategy;
  o.subscriber_mode = flatlane::SubscriberMode::block_publisher;
  return o;
}

flatlane::Errc publish(flatlane::TopicPublisher& p, std::size_t size, std::uint64_t seq) {
  auto slot = p.loan(size);
  if (!slot) return slot.error();
  fill_payload(slot->data(), size, seq);
  return p.publish(size).error();
}

flatlane::Errc take(flatlane::TopicSubscriber& s, std::size_t size, std::uint64_t seq, bool& bad) {
  auto m = s.receive();
  if (!m) return m.error();
  if (m->size() != size || !payload_ok(m->ptr(), size, seq)) bad = true;
  return flatlane::Errc::ok;
}

Result topic_latency(const Plan& plan, std::size_t size, flatlane::WaitStrategy strategy) {
  using flatlane::OpenMode;
  return ping_pong_case(
      plan, size, strategy == flatlane::WaitStrategy::busy_spin,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicPublisher out(n.fwd(), topic_options(size, strategy, OpenMode::create));
        flatlane::TopicSubscriber in(n.back(), topic_options(size, strategy, OpenMode::create));
        return f(out, in);
      },
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicSubscriber in(n.fwd(), topic_options(size, strategy, OpenMode::open));
        flatlane::TopicPublisher out(n.back(), topic_options(size, strategy, OpenMode::open));
        return f(in, out);
      },
      [&](flatlane::TopicPublisher& p, std::uint64_t seq) { return publish(p, size, seq); },
      [&](flatlane::TopicSubscriber& s, std::uint64_t seq, bool& bad) { return take(s, size, seq, bad); });
}

Result topic_tput_trial(const Plan& plan, std::size_t size) {
  using flatlane::OpenMode;
  const auto strategy = flatlane::WaitStrategy::busy_spin;
  return stream_trial(
      plan, size,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicSubscriber in(n.fwd(), topic_options(size, strategy, OpenMode::create));
        return f(in);
      },
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicPublisher out(n.fwd(), topic_options(size, strategy, OpenMode::open));
        return f(out);
      },
      [&](flatlane::TopicPublisher& p, std::uint64_t seq) { return publish(p, size, seq); },
      [&](flatlane::TopicSubscriber& s, std::uint64_t seq, bool& bad) { return take(s, size, seq, bad); });
}

}  // namespace

void add_topic_cases(std::vector<Case>& out) {
  using flatlane::WaitStrategy;
  constexpr std::size_t size = 64;
  out.push_back({"topic/lat-busy", "topic 1->1", size, "busy", Kind::Latency, true,
                 [](const Plan& p) { return topic_latency(p, size, WaitStrategy::busy_spin); }});
  out.push_back({"topic/lat-block", "topic 1->1", size, "block", Kind::Latency, true,
                 [](const Plan& p) { return topic_latency(p, size, WaitStrategy::blocking); }});
  out.push_back({"topic/lat-spin", "topic 1->1", size, "spin", Kind::Latency, true,
                 [](const Plan& p) { return topic_latency(p, size, WaitStrategy::spin_then_sleep); }});
  out.push_back({"topic/tput", "topic 1->1", size, "busy", Kind::Throughput, true, [](const Plan& p) {
                   return run_throughput_trials(p, [&] { return topic_tput_trial(p, size); });
                 }});
}

}  // namespace flbench

#else

namespace flbench {
void add_topic_cases(std::vector<Case>&) {}
}  // namespace flbench

#endif
