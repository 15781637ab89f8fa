// Push/pull: a topic with Distribution::work_queue. Each message goes to exactly one puller,
// waits while no puller is attached, is never dropped, and what a dead puller held is reported.
#include "child_process.hpp"
#include "test_util.hpp"
#include "topic_test_util.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

// Pushers in these tests may wait for queue space longer than the default block_timeout (1 s)
// when the pullers run under TSan on a busy 2-core machine; a slow run must not read as a failure.
static TopicOptions patient_pusher(OpenMode mode) {
  TopicOptions o = work_options(mode);
  o.block_timeout = std::chrono::seconds(30);
  return o;
}

TEST(Pipeline, EveryMessageGoesToExactlyOnePuller) {
  TempName n;
  TopicPublisher a(n, patient_pusher(OpenMode::create));
  TopicPublisher b(n, patient_pusher(OpenMode::open));
  constexpr uint64_t kEach = 5000;
  constexpr int kPullers = 4;
  std::vector<std::atomic<int>> seen(2 * kEach);
  std::atomic<uint64_t> total{0};
  std::atomic<bool> order_ok{true};
  std::vector<std::thread> pullers;
  std::vector<uint64_t> counts(kPullers, 0);
  // Each puller keeps its first message until every puller has one: that any puller may take
  // work is then shown however the threads are scheduled (left alone, on a loaded 2-core machine
  // one puller can drain all of it before another even starts).
  std::atomic<int> have_one{0};
  for (int i = 0; i < kPullers; ++i) {
    pullers.emplace_back([&, i] {
      TopicSubscriber pull(n, work_options(OpenMode::open));
      uint64_t last[2] = {0, 0};
      bool first[2] = {true, true};
      while (total.load() < 2 * kEach) {
        auto m = pull.receive(20ms);
        if (!m) continue;
        const uint64_t id = message_id(*m);
        const int from = id >= kEach ? 1 : 0;
        if (!first[from] && id <= last[from]) order_ok = false;  // each pusher's order holds per puller
        first[from] = false;
        last[from] = id;
        ++seen[id];
        ++total;
        if (counts[i]++ == 0) {
          ++have_one;
          const auto give_up = std::chrono::steady_clock::now() + 20s;
          while (have_one.load() < kPullers && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(1ms);
        }
      }
    });
  }
  std::thread ta([&] {
    for (uint64_t i = 0; i < kEach; ++i) ASSERT_TRUE(send_message(a, i, 64).ok());
  });
  std::thread tb([&] {
    for (uint64_t i = 0; i < kEach; ++i) ASSERT_TRUE(send_message(b, kEach + i, 64).ok());
  });
  ta.join();
  tb.join();
  for (auto& t : pullers) t.join();
  for (uint64_t i = 0; i < 2 * kEach; ++i) ASSERT_EQ(seen[i].load(), 1) << "message " << i;
  EXPECT_TRUE(order_ok.load());
  int busy = 0;
  for (uint64_t c : counts) busy += c > 0 ? 1 : 0;
  EXPECT_EQ(busy, kPullers) << "the work was not shared";
  EXPECT_EQ(a.stats().free_slots, a.stats().slot_count);
  EXPECT_EQ(b.stats().free_slots, b.stats().slot_count);
}

TEST(Pipeline, WorkWaitsForAPuller) {
  TempName n;
  TopicPublisher push(n, work_options(OpenMode::create));
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(send_message(push, i, 100).ok());
  EXPECT_EQ(push.stats().no_receiver, 0u);
  TopicSubscriber late(n, work_options(OpenMode::open));
  for (uint64_t i = 0; i < 10; ++i) {
    auto m = late.receive(1s);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(message_id(*m), i);
  }
}

TEST(Pipeline, AFullQueueMakesThePusherWaitNotDrop) {
  TempName n;
  TopicOptions o = work_options(OpenMode::create);
  o.topic.queue_depth = 4;
  o.block_timeout = 50ms;
  TopicPublisher push(n, o);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(send_message(push, i, 100).ok());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(send_message(push, 4, 100).error(), Errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_EQ(push.stats().free_slots, push.stats().slot_count - 4);  // the refused one is free again
  TopicSubscriber pull(n, work_options(OpenMode::open));
  std::thread t([&] {
    for (uint64_t i = 5; i < 500; ++i) ASSERT_TRUE(send_message(push, i, 100, 5s).ok());
  });
  for (uint64_t want : {0u, 1u, 2u, 3u}) EXPECT_EQ(message_id(pull.receive(1s).value()), want);
  for (uint64_t i = 5; i < 500; ++i) {
    auto m = pull.receive(5s);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(message_id(*m), i);
  }
  t.join();
}

TEST(Pipeline, SleepingPullersShareTheWork) {
  TempName n;
  TopicOptions o = work_options(OpenMode::create);
  o.wait.strategy = WaitStrategy::blocking;
  TopicPublisher push(n, o);
  constexpr int kPullers = 2;
  std::atomic<int> got[kPullers] = {0, 0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < kPullers; ++i) {
    ts.emplace_back([&, i] {
      TopicOptions so = work_options(OpenMode::open);
      so.wait.strategy = WaitStrategy::blocking;
      TopicSubscriber pull(n, so);
      while (!stop) {
        if (auto m = pull.receive(10ms)) {
          ++got[i];
          std::this_thread::sleep_for(200us);  // "work": the other puller is the ready one
        }
      }
    });
  }
  std::this_thread::sleep_for(50ms);  // both asleep
  for (uint64_t i = 0; i < 400; ++i) {
    ASSERT_TRUE(send_message(push, i, 64, 1s).ok());
    std::this_thread::sleep_for(100us);
  }
  while (got[0] + got[1] < 400) std::this_thread::sleep_for(1ms);
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_GT(got[0].load(), 400 / 10) << got[0] << " / " << got[1];
  EXPECT_GT(got[1].load(), 400 / 10) << got[0] << " / " << got[1];
}

TEST(Pipeline, WorkQueuesKeepNoHistory) {
  TempName n;
  TopicOptions o = work_options(OpenMode::create);
  o.topic.history = 2;
  EXPECT_THROW(TopicPublisher p(n, o), Error);
}

// A puller killed holding messages: they are lost and counted; queued work goes to the others.
TEST(PipelineProcesses, ADeadPullersMessagesAreReportedAndTheRestIsDelivered) {
  TempName n;
  TopicPublisher push(n, work_options(OpenMode::create));
  ChildProcess holder("flatlane_peer_topic", {"hold", n.str(), "5", "dist=work"});
  ASSERT_TRUE(holder.await("ready"));
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(send_message(push, i, 100).ok());
  ASSERT_TRUE(holder.await("held 5"));
  for (uint64_t i = 5; i < 12; ++i) ASSERT_TRUE(send_message(push, i, 100).ok());
  holder.kill9();
  holder.wait_exit();
  // A new puller attaching cleans up after the dead one (or the pusher does, within a liveness
  // interval); the 7 queued messages are still there.
  TopicSubscriber pull(n, work_options(OpenMode::open));
  std::vector<uint64_t> ids;
  while (auto m = pull.receive(200ms)) ids.push_back(message_id(*m));
  ASSERT_EQ(ids.size(), 7u);
  for (size_t k = 0; k < ids.size(); ++k) EXPECT_EQ(ids[k], 5 + k);
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200; ++i) {
      if (push.stats().lost == 5) return true;
      (void)send_message(push, 100 + i, 64);  // publishing also reaps dead pullers
      (void)pull.receive(0ns);
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }()) << "lost = " << push.stats().lost;
}

TEST(PipelineProcesses, PullerProcessesTakeEverythingOnce) {
  TempName n;
  TopicPublisher push(n, patient_pusher(OpenMode::create));
  // Two pullers, kEach messages each: each checks increasing ids. The peers give up after 60 s
  // (alarm), which TSan's slowdown on a loaded 2-core machine can reach with 3000 each.
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kEach = 500;
#else
  constexpr uint64_t kEach = 3000;
#endif
  ChildProcess p1("flatlane_peer_topic", {"subscribe", n.str(), std::to_string(kEach), "dist=work"});
  ChildProcess p2("flatlane_peer_topic", {"subscribe", n.str(), std::to_string(kEach), "dist=work"});
  ASSERT_TRUE(p1.await("ready"));
  ASSERT_TRUE(p2.await("ready"));
  for (uint64_t i = 0; i < 2 * kEach; ++i) {
    auto r = send_message(push, i, 200, 30s);
    ASSERT_TRUE(r.ok()) << "message " << i << ": " << to_string(r.error());
  }
  ASSERT_TRUE(p1.await("done", 30s)) << p1.last_line();
  ASSERT_TRUE(p2.await("done", 30s)) << p2.last_line();
  EXPECT_TRUE(exited_ok(p1.wait_exit()));
  EXPECT_TRUE(exited_ok(p2.wait_exit()));
}

// A million messages through two pullers: each exactly once, none lost, every slot back in the
// pool, and the name gone once everybody has left.
TEST(Pipeline, AMillionMessagesEachOnceNoSlotLeaked) {
  TempName n;
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kMessages = 50'000;  // TSan runs ~20x slower; the Release build does the million
#else
  constexpr uint64_t kMessages = 1'000'000;
#endif
  {
    TopicPublisher push(n, patient_pusher(OpenMode::create));
    std::vector<uint8_t> seen(kMessages, 0);
    std::atomic<uint64_t> total{0};
    std::vector<uint64_t> counts(2, 0);
    std::vector<std::thread> pullers;
    for (int i = 0; i < 2; ++i) {
      pullers.emplace_back([&, i] {
        TopicSubscriber pull(n, work_options(OpenMode::open));
        while (total.load() < kMessages) {
          auto m = pull.receive(5ms);
          if (!m) continue;
          const uint64_t id = message_id(*m);
          ASSERT_LT(id, kMessages);
          ++seen[id];  // each id goes to one puller only, so no two threads touch one byte
          ++counts[i];
          ++total;
        }
      });
    }
    // Wait for both pullers so that the load is shared from the first message on.
    while (push.stats().subscribers < 2) std::this_thread::sleep_for(1ms);
    for (uint64_t i = 0; i < kMessages; ++i) ASSERT_TRUE(send_message(push, i, 48, 10s).ok()) << i;
    for (auto& t : pullers) t.join();
    for (uint64_t i = 0; i < kMessages; ++i) ASSERT_EQ(seen[i], 1) << "message " << i;
    EXPECT_GT(counts[0], 0u);
    EXPECT_GT(counts[1], 0u);
    EXPECT_EQ(push.stats().lost, 0u);
    EXPECT_EQ(push.stats().free_slots, push.stats().slot_count);
  }
  EXPECT_FALSE(Segment::unlink(n)) << "the work queue's segment was left behind";
}
