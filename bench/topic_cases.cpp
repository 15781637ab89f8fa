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

#include <new>

#include "flatlane_common.hpp"
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

std::string errc_text(const char* what, flatlane::Errc e) { return std::string(what) + ": " + flatlane::to_string(e); }

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
  if (strategy == flatlane::WaitStrategy::busy_spin && !busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);
  using flatlane::OpenMode;

  Result res;
  auto parent = [&]() -> std::string {
    flatlane::TopicPublisher out(names.fwd(), topic_options(size, strategy, OpenMode::create));
    flatlane::TopicSubscriber in(names.back(), topic_options(size, strategy, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    spin_until_equal(sync->child_ready.value, 1u);
    bool bad = false;
    flatlane::Errc err = flatlane::Errc::ok;
    const bool ok = measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          err = publish(out, size, seq);
          if (err == flatlane::Errc::ok) err = take(in, size, seq, bad);
          return err == flatlane::Errc::ok;
        },
        res.rtt_ns);
    if (!ok) return errc_text("topic ping-pong", err);
    if (bad) return "payload mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    flatlane::TopicSubscriber in(names.fwd(), topic_options(size, strategy, OpenMode::open));
    flatlane::TopicPublisher out(names.back(), topic_options(size, strategy, OpenMode::open));
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    bool bad = false;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      if (take(in, size, seq, bad) != flatlane::Errc::ok) return 1;
      if (publish(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    return bad ? 2 : 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

Result topic_tput_trial(const Plan& plan, std::size_t size) {
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
    flatlane::TopicSubscriber in(names.fwd(), topic_options(size, strategy, OpenMode::create));
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    bool bad = false;
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (auto e = take(in, size, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
    }
    spin_until_equal(sync->child_ready.value, 1u);
    const std::uint64_t t0 = now_ns();
    std::atomic_ref<std::uint32_t>(sync->go.value).store(2, std::memory_order_release);
    for (; seq <= warmup + n; ++seq) {
      if (auto e = take(in, size, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
    }
    const std::uint64_t t1 = now_ns();
    if (bad) return "payload mismatch seen by subscriber";
    res.messages = n;
    res.bytes = n * size;
    res.seconds = static_cast<double>(t1 - t0) * 1e-9;
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    flatlane::TopicPublisher out(names.fwd(), topic_options(size, strategy, OpenMode::open));
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (publish(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    spin_until_equal(sync->go.value, 2u);
    for (; seq <= warmup + n; ++seq) {
      if (publish(out, size, seq) != flatlane::Errc::ok) return 1;
    }
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

}  // namespace

void add_topic_cases(std::vector<Case>& out) {
  using flatlane::WaitStrategy;
  constexpr std::size_t size = 64;
  out.push_back({"topic/lat-busy", "topic 1->1", size, "busy", Kind::Latency, true,
                 [](const Plan& p) { return topic_latency(p, size, WaitStrategy::busy_spin); }});
  out.push_back({"topic/lat-block", "topic 1->1", size, "block", Kind::Latency, true,
                 [](const Plan& p) { return topic_latency(p, size, WaitStrategy::blocking); }});
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
