// The messaging patterns beside their ZeroMQ equivalents (zmq_cases.cpp):
//
//   topic/fanout-1     the same harness with one subscriber (zmq/pubsub-1)
//   topic/fanout-4     one publisher, 4 subscriber processes (blocking waits, 5 processes on
//                      the cores there are): stamp to the LAST subscriber's receive, paced one
//                      message at a time (fanout.hpp); zmq/pubsub-4 is the same over PUB/SUB
//   service/rtt        request/reply round trip, ServiceClient -> ServiceServer -> reply ring,
//                      both directions `size` bytes written and read in place; zmq/reqrep is the
//                      same over REQ/REP
//   pipeline/tput      push/pull: one pusher process, one puller (a work-queue topic), every
//                      message read in place; zmq/pushpull is the same over PUSH/PULL
#include "bench.hpp"

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

#include <flatlane/flatlane.hpp>

#include "fanout.hpp"
#include "flatlane_common.hpp"
#include "measure.hpp"
#include "pair_cases.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

using flatlane::Errc;
using flatlane::OpenMode;
using flatlane::WaitStrategy;

flatlane::TopicOptions pattern_topic(std::size_t size, WaitStrategy strategy, OpenMode mode, std::uint32_t subs,
                                     flatlane::Distribution dist = flatlane::Distribution::fan_out) {
  flatlane::TopicOptions o;
  o.mode = mode;
  o.topic.slot_size = static_cast<std::uint32_t>(size < 64 ? 64 : size);
  o.topic.slot_count = 64;
  o.topic.queue_depth = 32;
  o.topic.max_subscribers = subs;
  o.topic.max_publishers = 1;
  o.topic.distribution = dist;
  o.wait.strategy = strategy;
  o.subscriber_mode = flatlane::SubscriberMode::block_publisher;
  return o;
}

Result topic_fanout(const Plan& plan, std::size_t size, int subs) {
  const std::uint64_t iters = plan.latency_iters(size) / 4 + 200;
  const std::uint64_t warmup = plan.warmup_iters(iters);
  FanoutRun run(subs, warmup + iters);
  ChannelNames names;
  const auto strategy = WaitStrategy::blocking;
  flatlane::TopicPublisher pub(names.fwd(), pattern_topic(size, strategy, OpenMode::create,
                                                          static_cast<std::uint32_t>(subs)));
  Result res;
  auto parent = [&]() -> std::string {
    FanoutRun::wait_at_least(run.sync().ready, static_cast<std::uint32_t>(subs));
    for (std::uint64_t seq = 1; seq <= run.total(); ++seq) {
      auto slot = pub.loan(size);
      if (!slot) return errc_text("loan", slot.error());
      stamp_payload(slot->data(), size, seq);
      if (auto r = pub.publish(size); !r) return errc_text("publish", r.error());
      FanoutRun::wait_at_least(run.sync().done, static_cast<std::uint32_t>(seq * static_cast<std::uint64_t>(subs)));
    }
    return {};
  };
  auto child = [&](int i) -> int {
    flatlane::TopicSubscriber sub(names.fwd(), pattern_topic(size, strategy, OpenMode::open,
                                                             static_cast<std::uint32_t>(subs)));
    run.add(run.sync().ready);
    for (std::uint64_t seq = 1; seq <= run.total(); ++seq) {
      auto m = sub.receive();
      if (!m) return 10 + static_cast<int>(m.error());
      std::uint64_t stamp = 0;
      if (m->size() != size || !stamped_payload_ok(m->ptr(), size, seq, &stamp)) return 3;
      run.record(i, seq, now_ns() - stamp);
    }
    return 0;
  };
  res.error = run_fanout(subs, parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  if (res.ok) res.rtt_ns = run.last_subscriber_rtt(warmup);
  return res;
}

flatlane::ServiceOptions service_options(std::size_t size, WaitStrategy strategy) {
  flatlane::ServiceOptions o;
  o.max_request = static_cast<std::uint32_t>(size);
  o.max_clients = 2;
  o.reply_ring = ring_capacity_for(size);
  o.wait.strategy = strategy;
  return o;
}

struct ServiceClientEnd {
  flatlane::ServiceClient client;
  std::uint64_t id = 0;
};
struct ServiceServerEnd {
  flatlane::ServiceServer server;
  flatlane::Request pending;
};

Result service_latency(const Plan& plan, std::size_t size, WaitStrategy strategy) {
  return ping_pong_case(
      plan, size, strategy == WaitStrategy::busy_spin,
      [&](const ChannelNames& n, auto&& f) {
        ServiceClientEnd c{flatlane::ServiceClient(n.fwd(), service_options(size, strategy)), 0};
        return f(c, c);
      },
      [&](const ChannelNames& n, auto&& f) {
        ServiceServerEnd s{flatlane::ServiceServer(n.fwd(), service_options(size, strategy)), {}};
        return f(s, s);
      },
      [&](auto& end, std::uint64_t seq) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, ServiceClientEnd>) {
          auto span = end.client.prepare(size);
          if (!span) return span.error();
          fill_payload(span->data(), size, seq);
          auto id = end.client.send_prepared(size);
          if (!id) return id.error();
          end.id = *id;
        } else {
          auto span = end.server.prepare_reply(end.pending, size);
          if (!span) return span.error();
          fill_payload(span->data(), size, seq);
          if (auto r = end.server.commit_reply(size); !r) return r.error();
          end.pending = flatlane::Request{};
        }
        return Errc::ok;
      },
      [&](auto& end, std::uint64_t seq, bool& bad) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, ServiceClientEnd>) {
          auto rep = end.client.receive(end.id);
          if (!rep) return rep.error();
          if (rep->size() != size || !payload_ok(rep->data().data(), size, seq)) bad = true;
        } else {
          auto req = end.server.receive();
          if (!req) return req.error();
          if (req->size() != size || !payload_ok(req->data().data(), size, seq)) bad = true;
          end.pending = std::move(*req);
        }
        return Errc::ok;
      });
}

Result pipeline_tput_trial(const Plan& plan, std::size_t size) {
  const auto strategy = WaitStrategy::busy_spin;
  const auto work = flatlane::Distribution::work_queue;
  return stream_trial(
      plan, size,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicSubscriber in(n.fwd(), pattern_topic(size, strategy, OpenMode::create, 4, work));
        return f(in);
      },
      [&](const ChannelNames& n, auto&& f) {
        flatlane::TopicPublisher out(n.fwd(), pattern_topic(size, strategy, OpenMode::open, 4, work));
        return f(out);
      },
      [&](flatlane::TopicPublisher& p, std::uint64_t seq) -> Errc {
        auto slot = p.loan(size);
        if (!slot) return slot.error();
        fill_payload(slot->data(), size, seq);
        return p.publish(size).error();
      },
      [&](flatlane::TopicSubscriber& s, std::uint64_t seq, bool& bad) -> Errc {
        auto m = s.receive();
        if (!m) return m.error();
        if (m->size() != size || !payload_ok(m->ptr(), size, seq)) bad = true;
        return Errc::ok;
      });
}

}  // namespace

void add_pattern_cases(std::vector<Case>& out) {
  constexpr std::size_t size = 64;
  out.push_back({"topic/fanout-1", "topic 1->1 (stamped)", size, "block", Kind::Latency, true,
                 [](const Plan& p) { return topic_fanout(p, size, 1); }});
  out.push_back({"topic/fanout-4", "topic 1->4 (last sub)", size, "block", Kind::Latency, true,
                 [](const Plan& p) { return topic_fanout(p, size, 4); }});
  out.push_back({"service/rtt-busy", "service req/rep", size, "busy", Kind::Latency, true,
                 [](const Plan& p) { return service_latency(p, size, WaitStrategy::busy_spin); }});
  out.push_back({"service/rtt-block", "service req/rep", size, "block", Kind::Latency, true,
                 [](const Plan& p) { return service_latency(p, size, WaitStrategy::blocking); }});
  out.push_back({"pipeline/tput", "pipeline push/pull", size, "busy", Kind::Throughput, true, [](const Plan& p) {
                   return run_throughput_trials(p, [&] { return pipeline_tput_trial(p, size); });
                 }});
}

}  // namespace flbench

#else

namespace flbench {
void add_pattern_cases(std::vector<Case>&) {}
}  // namespace flbench

#endif
