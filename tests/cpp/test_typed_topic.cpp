// Generated topic and pipeline endpoints with many real processes (fork + exec of
// flatlane_peer_typed): fan-out to every subscriber process, drop counting, a pipeline sharing
// work among puller processes (each message exactly once), and a subscriber killed with -9.
#include "typed_test_util.hpp"
#include "child_process.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

EndpointOptions named(const TempName& n) {
  EndpointOptions o;
  o.name = n.str();
  return o;
}

bool exited_ok(ChildProcess& p) {
  const int st = p.wait_exit();
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::vector<uint64_t> parse_ids(const std::string& line) {  // "ids 1,5,9"
  std::vector<uint64_t> ids;
  std::istringstream in(line.substr(line.find(' ') == std::string::npos ? line.size() : line.find(' ') + 1));
  std::string tok;
  while (std::getline(in, tok, ','))
    if (!tok.empty()) ids.push_back(std::stoull(tok));
  return ids;
}

}  // namespace

// Every one of four subscriber processes receives every message, in order, each checked there.
TEST(TypedTopicProcesses, EverySubscriberProcessGetsEveryMessage) {
  TempName n;
  constexpr uint64_t kCount = 5000;
  fltest::Samples::samples::Publisher pub(named(n));
  std::vector<std::unique_ptr<ChildProcess>> subs;
  for (int k = 0; k < 4; ++k) {
    subs.push_back(std::make_unique<ChildProcess>(
        "flatlane_peer_typed", std::vector<std::string>{"subscribe", n.str(), std::to_string(kCount)}));
    ASSERT_TRUE(subs.back()->await("ready")) << k;
  }
  EXPECT_EQ(pub.subscriber_count(), 4u);
  for (uint64_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }, 10s).ok()) << i;
  for (auto& s : subs) {
    auto done = s->await("done", 30s);
    ASSERT_TRUE(done) << s->last_line();
    EXPECT_EQ(*done, "done " + std::to_string(kCount));
    EXPECT_TRUE(exited_ok(*s)) << s->last_line();
  }
  EXPECT_EQ(pub.topic_stats().timeouts, 0u);
}

// A C++ publisher process and several subscriber processes, the test process subscribing too.
TEST(TypedTopicProcesses, PublisherProcessToThreeSubscriberProcesses) {
  TempName n;
  constexpr uint64_t kCount = 3000;
  fltest::Samples::samples::Subscriber mine(named(n));
  std::vector<std::unique_ptr<ChildProcess>> subs;
  for (int k = 0; k < 3; ++k) {
    subs.push_back(std::make_unique<ChildProcess>(
        "flatlane_peer_typed", std::vector<std::string>{"subscribe", n.str(), std::to_string(kCount)}));
    ASSERT_TRUE(subs.back()->await("ready"));
  }
  ChildProcess pub("flatlane_peer_typed", {"publish", n.str(), std::to_string(kCount), "subscribers=4"});
  for (uint64_t i = 0; i < kCount; ++i) {
    auto m = mine.receive(10s);
    ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at " << i;
    ASSERT_EQ(check_sample(**m, i), "");
  }
  ASSERT_TRUE(pub.await("done"));
  EXPECT_TRUE(exited_ok(pub));
  for (auto& s : subs) {
    ASSERT_TRUE(s->await("done", 30s)) << s->last_line();
    EXPECT_TRUE(exited_ok(*s));
  }
}

// A slow drop_oldest subscriber process loses messages (and says how many) without slowing the
// publisher or the blocking subscriber process beside it, which gets every message.
TEST(TypedTopicProcesses, SlowDroppingSubscriberCountsWhatItLost) {
  TempName n;
  constexpr uint64_t kCount = 4000;
  auto o = named(n);
  fltest::Samples::samples::Publisher pub(o);
  ChildProcess slow("flatlane_peer_typed", {"subscribe", n.str(), "0", "drop=1", "delay_us=200"});
  ChildProcess all("flatlane_peer_typed", {"subscribe", n.str(), std::to_string(kCount)});
  ASSERT_TRUE(slow.await("ready"));
  ASSERT_TRUE(all.await("ready"));
  for (uint64_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }, 10s).ok()) << i;
  ASSERT_TRUE(all.await("done", 30s)) << all.last_line();
  pub.close();  // the slow one reads what is queued, then sees peer_closed
  auto done = slow.await("done", 30s);
  ASSERT_TRUE(done) << slow.last_line();
  uint64_t received = 0, dropped = 0, last = 0;
  ASSERT_EQ(std::sscanf(done->c_str(), "done %lu dropped %lu last %lu", &received, &dropped, &last), 3) << *done;
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(received + dropped, kCount) << *done;
  EXPECT_EQ(last, kCount - 1);  // the newest is never the one dropped
  EXPECT_TRUE(exited_ok(slow));
  EXPECT_TRUE(exited_ok(all));
}

// Three worker processes pull from one pipeline: every message reaches exactly one of them, and
// the work is shared.
TEST(TypedTopicProcesses, PipelineGivesEachMessageToExactlyOnePuller) {
  TempName n;
  constexpr uint64_t kCount = 3000;
  fltest::Bulk::capped::Pusher push(named(n));
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int k = 0; k < 3; ++k) {
    workers.push_back(std::make_unique<ChildProcess>(
        "flatlane_peer_typed", std::vector<std::string>{"work", n.str(), "0", "delay_us=20"}));
    ASSERT_TRUE(workers.back()->await("ready"));
  }
  for (uint64_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, i, i % 100); }, 10s).ok()) << i;
  push.close();  // workers drain the queue, then see peer_closed
  std::vector<int> seen(kCount, 0);
  for (auto& w : workers) {
    auto ids = w->await("ids", 30s);
    ASSERT_TRUE(ids) << w->last_line();
    const auto got = parse_ids(*ids);
    EXPECT_GT(got.size(), 0u) << "one worker got nothing";
    for (uint64_t id : got) {
      ASSERT_LT(id, kCount);
      ++seen[id];
    }
    ASSERT_TRUE(w->await("done"));
    EXPECT_TRUE(exited_ok(*w));
  }
  for (uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(seen[i], 1) << "message " << i;
}

// Work pushed before any puller attached waits in the queue (a topic would have lost it).
TEST(TypedTopicProcesses, PipelineWorkWaitsForAPuller) {
  TempName n;
  fltest::Bulk::capped::Pusher push(named(n));
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, i, i % 100); }).ok());
  fltest::Bulk::capped::Puller pull(named(n));
  for (uint64_t i = 0; i < 5; ++i) {
    auto m = pull.receive(1s);
    ASSERT_TRUE(m.ok()) << to_string(m.error());
    EXPECT_EQ(check_blob(**m, i, i % 100), "");
  }
}

// kill -9 of a blocking subscriber process in mid-stream: the publisher notices it is dead
// instead of waiting for its full queue, and the other subscriber gets every message.
TEST(TypedTopicProcesses, KilledSubscriberDoesNotStallThePublisher) {
  TempName n;
  constexpr uint64_t kCount = 4000;
  fltest::Samples::samples::Publisher pub(named(n));
  ChildProcess victim("flatlane_peer_typed", {"subscribe", n.str(), std::to_string(kCount), "delay_us=100"});
  ChildProcess survivor("flatlane_peer_typed", {"subscribe", n.str(), std::to_string(kCount)});
  ASSERT_TRUE(victim.await("ready"));
  ASSERT_TRUE(survivor.await("ready"));
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < kCount; ++i) {
    if (i == 500) {
      victim.kill9();
      victim.wait_exit();
    }
    auto r = pub.send([&](auto& b) { return build_sample(b, i); }, 10s);
    ASSERT_TRUE(r.ok()) << to_string(r.error()) << " at " << i;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  ASSERT_TRUE(survivor.await("done", 30s)) << survivor.last_line();
  EXPECT_TRUE(exited_ok(survivor));
  // The dead subscriber's slots came back to the pool.
  for (int k = 0; k < 100 && pub.topic_stats().free_slots != pub.topic_stats().slot_count; ++k)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(pub.topic_stats().free_slots, pub.topic_stats().slot_count);
}
