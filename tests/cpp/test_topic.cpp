// Publish/subscribe topics: fan-out, ordering, drop and block policies, held samples, late
// joiners and history, several publishers, no leaked slots, and real processes killed with -9.
#include "child_process.hpp"
#include "test_util.hpp"
#include "topic_test_util.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

bool inside(const void* p, const Segment& s) {
  const auto* b = reinterpret_cast<const std::byte*>(p);
  return b >= s.base() && b < s.base() + s.size();
}

// Polls `cond` for up to `limit`.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds limit = 3s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

}  // namespace

TEST(Topic, OneToOneZeroCopy) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  EXPECT_EQ(pub.subscriber_count(), 1u);
  for (uint64_t i = 0; i < 1000; ++i) {
    const size_t size = 8 + (i * 37) % 1000;
    auto slot = pub.loan(size);
    ASSERT_TRUE(slot.ok());
    ASSERT_TRUE(inside(slot->data(), pub.segment()));
    fill_message(*slot, i);
    ASSERT_TRUE(pub.publish(size).ok());
    auto s = sub.receive(1s);
    ASSERT_TRUE(s.ok()) << to_string(s.error());
    EXPECT_TRUE(inside(s->ptr(), sub.segment()));
    EXPECT_EQ(s->ptr() - sub.segment().base(), slot->data() - pub.segment().base()) << "not the publisher's slot";
    EXPECT_EQ(s->size(), size);
    EXPECT_EQ(message_id(*s), i);
    EXPECT_TRUE(message_ok(*s));
    EXPECT_EQ(s->seq(), i + 1);
  }
  EXPECT_EQ(sub.stats().received, 1000u);
  EXPECT_EQ(sub.stats().dropped, 0u);
}

TEST(Topic, PublishTailPublishesTheEndOfTheLoan) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  auto slot = pub.loan(512);
  ASSERT_TRUE(slot.ok());
  std::span<std::byte> tail = slot->subspan(512 - 100);
  fill_message(tail, 77);
  ASSERT_TRUE(pub.publish_tail(100).ok());
  auto s = sub.receive(1s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 100u);
  EXPECT_EQ(s->ptr() - sub.segment().base(), tail.data() - pub.segment().base());
  EXPECT_TRUE(message_ok(*s));
}

TEST(Topic, FanOutDeliversEverythingInOrderToEverySubscriber) {
  TempName n;
  TopicOptions o = topic_options(OpenMode::create);
  TopicPublisher pub(n, o);
  constexpr int kSubs = 4;
  constexpr uint64_t kMessages = 20000;
  std::vector<std::unique_ptr<TopicSubscriber>> subs;
  TopicOptions so = topic_options(OpenMode::open);
  so.subscriber_mode = SubscriberMode::block_publisher;  // exact counts: nobody may drop
  for (int i = 0; i < kSubs; ++i) subs.push_back(std::make_unique<TopicSubscriber>(n, so));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (auto& sub : subs) {
    threads.emplace_back([&, s = sub.get()] {
      for (uint64_t i = 0; i < kMessages; ++i) {
        auto m = s->receive(10s);
        if (!m || message_id(*m) != i || !message_ok(*m)) {
          ++failures;
          return;
        }
      }
    });
  }
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_TRUE(send_message(pub, i, 64).ok()) << i;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (auto& s : subs) EXPECT_EQ(s->stats().dropped, 0u);
  EXPECT_TRUE(eventually([&] { return pub.stats().free_slots == pub.stats().slot_count; }));
}

TEST(Topic, ThirtyTwoSubscribersAndAClearErrorForTheThirtyThird) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  std::vector<std::unique_ptr<TopicSubscriber>> subs;
  for (int i = 0; i < 32; ++i) subs.push_back(std::make_unique<TopicSubscriber>(n, topic_options(OpenMode::open)));
  try {
    TopicSubscriber extra(n, topic_options(OpenMode::open));
    FAIL() << "a 33rd subscriber attached";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::busy);
    EXPECT_NE(std::string(e.what()).find("32 live subscribers"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pub.subscriber_count(), 32u);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(send_message(pub, i, 100).ok());
  for (auto& s : subs) {
    for (uint64_t i = 0; i < 10; ++i) {
      auto m = s->receive(1s);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(message_id(*m), i);
    }
  }
  // One message in 32 queues uses one slot: everything is free again.
  EXPECT_EQ(pub.stats().free_slots, pub.stats().slot_count);
  subs.pop_back();  // a freed block is reusable
  TopicSubscriber again(n, topic_options(OpenMode::open));
}

TEST(Topic, ASlowSubscriberLosesItsOldestMessagesAndThePublisherNeverWaits) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber slow(n, topic_options(OpenMode::open));  // drop_oldest, queue depth 16
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(send_message(pub, i, 200, 0ns).ok()) << i;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_EQ(slow.stats().dropped, 1000u - 16);
  EXPECT_EQ(slow.stats().queued, 16u);
  for (uint64_t i = 1000 - 16; i < 1000; ++i) {
    auto m = slow.receive(0ns);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(message_id(*m), i);
  }
  EXPECT_EQ(slow.receive(0ns).error(), Errc::timeout);
  EXPECT_EQ(pub.stats().free_slots, pub.stats().slot_count);
}

TEST(Topic, ABlockingSubscriberHoldsThePublisherBackUpToItsTimeout) {
  TempName n;
  TopicOptions po = topic_options(OpenMode::create);
  po.block_timeout = 50ms;
  TopicPublisher pub(n, po);
  TopicOptions so = topic_options(OpenMode::open);
  so.subscriber_mode = SubscriberMode::block_publisher;
  TopicSubscriber sub(n, so);
  TopicSubscriber other(n, topic_options(OpenMode::open));  // drop_oldest: unaffected
  for (uint64_t i = 0; i < 16; ++i) ASSERT_TRUE(send_message(pub, i, 100).ok());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(send_message(pub, 16, 100).error(), Errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_EQ(sub.stats().dropped, 1u);
  EXPECT_EQ(pub.stats().timeouts, 1u);
  // The other subscriber got message 16; the blocking one has 0..15, in order.
  EXPECT_EQ(other.stats().queued, 16u);
  for (uint64_t i = 0; i < 16; ++i) {
    auto m = sub.receive(0ns);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(message_id(*m), i);
  }
  // With a reader, the publisher waits only as long as it must.
  std::thread reader([&] {
    for (uint64_t i = 17; i < 1017; ++i) {
      auto m = sub.receive(5s);
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(message_id(*m), i);
    }
  });
  for (uint64_t i = 17; i < 1017; ++i) ASSERT_TRUE(send_message(pub, i, 100).ok()) << i;
  reader.join();
  EXPECT_EQ(sub.stats().dropped, 1u);
}

TEST(Topic, HeldSamplesAreNeverReused) {
  TempName n;
  TopicOptions o = topic_options(OpenMode::create);
  o.topic.slot_count = 16;
  o.topic.queue_depth = 4;
  TopicPublisher pub(n, o);
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  std::vector<Sample> held;
  for (uint64_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(send_message(pub, i, 512).ok());
    auto m = sub.receive(1s);
    ASSERT_TRUE(m.ok());
    held.push_back(std::move(*m));
  }
  // 1000 more through the 8 remaining slots: the pool runs dry over and over.
  for (uint64_t i = 8; i < 1008; ++i) ASSERT_TRUE(send_message(pub, i, 512, 1s).ok()) << i;
  for (uint64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(message_id(held[i]), i);
    EXPECT_TRUE(message_ok(held[i])) << "held sample " << i << " was overwritten";
  }
  EXPECT_EQ(sub.stats().held, 8u);
  EXPECT_GT(sub.stats().dropped, 900u);
  held.clear();
  while (sub.receive(0ns)) {
  }
  EXPECT_EQ(pub.stats().free_slots, 16u);
}

TEST(Topic, HoldingMoreThanMaxHeldIsRefusedClearly) {
  TempName n;
  TopicOptions o = topic_options(OpenMode::create);
  o.topic.queue_depth = 32;  // all 17 stay queued
  TopicPublisher pub(n, o);
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  std::vector<Sample> held;
  for (uint64_t i = 0; i < 17; ++i) ASSERT_TRUE(send_message(pub, i, 64).ok());
  for (int i = 0; i < 16; ++i) held.push_back(std::move(sub.receive(1s).value()));
  EXPECT_EQ(sub.receive(0ns).error(), Errc::busy);
  held.pop_back();
  auto m = sub.receive(0ns);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(message_id(*m), 16u);
}

TEST(Topic, ALateJoinerStartsAtTheNewestMessage) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(send_message(pub, i, 64).ok());
  EXPECT_EQ(pub.stats().no_receiver, 5u);
  TopicSubscriber late(n, topic_options(OpenMode::open));
  EXPECT_EQ(late.receive(0ns).error(), Errc::timeout);
  ASSERT_TRUE(send_message(pub, 5, 64).ok());
  auto m = late.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(message_id(*m), 5u);
  EXPECT_EQ(pub.stats().free_slots, pub.stats().slot_count - 1);  // m still holds one
}

TEST(Topic, HistoryGivesALateJoinerTheLastMessages) {
  TempName n;
  TopicOptions o = topic_options(OpenMode::create);
  o.topic.history = 4;
  TopicPublisher pub(n, o);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(send_message(pub, i, 64).ok());
  TopicOptions so = topic_options(OpenMode::open);
  so.history_request = 3;
  TopicSubscriber late(n, so);
  ASSERT_TRUE(send_message(pub, 10, 64).ok());
  for (uint64_t want : {7u, 8u, 9u, 10u}) {
    auto m = late.receive(1s);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(message_id(*m), want);
    EXPECT_TRUE(message_ok(*m));
  }
  EXPECT_EQ(late.receive(0ns).error(), Errc::timeout);
  TopicSubscriber no_history(n, topic_options(OpenMode::open));
  EXPECT_EQ(no_history.receive(0ns).error(), Errc::timeout);
  // Only the 4 retained messages keep slots.
  EXPECT_EQ(pub.stats().free_slots, pub.stats().slot_count - 4);
}

TEST(Topic, SeveralPublishersKeepTheirOwnOrder) {
  TempName n;
  TopicPublisher a(n, topic_options(OpenMode::create));
  TopicPublisher b(n, topic_options(OpenMode::open));
  TopicOptions so = topic_options(OpenMode::open);
  so.subscriber_mode = SubscriberMode::block_publisher;
  TopicSubscriber sub(n, so);
  constexpr uint64_t kEach = 5000;
  std::thread ta([&] {
    for (uint64_t i = 0; i < kEach; ++i) ASSERT_TRUE(send_message(a, i, 64).ok());
  });
  std::thread tb([&] {
    for (uint64_t i = 0; i < kEach; ++i) ASSERT_TRUE(send_message(b, 1'000'000 + i, 64).ok());
  });
  uint64_t next[2] = {0, 1'000'000};
  for (uint64_t i = 0; i < 2 * kEach; ++i) {
    auto m = sub.receive(10s);
    ASSERT_TRUE(m.ok()) << i;
    const uint64_t id = message_id(*m);
    const int from = id >= 1'000'000 ? 1 : 0;
    ASSERT_EQ(id, next[from]) << "publisher " << from << " out of order";
    ASSERT_EQ(m->publisher(), from == 0 ? a.index() : b.index());
    ++next[from];
  }
  ta.join();
  tb.join();
  EXPECT_EQ(next[0], kEach);
  EXPECT_EQ(next[1], 1'000'000 + kEach);
}

TEST(Topic, AMillionMessagesLeakNoSlot) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicOptions so = topic_options(OpenMode::open);
  so.subscriber_mode = SubscriberMode::block_publisher;
  TopicSubscriber s1(n, so);
  TopicSubscriber s2(n, topic_options(OpenMode::open));  // drop_oldest, may lose some
  constexpr uint64_t kMessages = 1'000'000;
  std::atomic<bool> done{false};
  std::thread r1([&] {
    for (uint64_t i = 0; i < kMessages; ++i) {
      auto m = s1.receive(10s);
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(message_id(*m), i);
    }
  });
  std::thread r2([&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto m = s2.receive(1ms);
      if (m) {
        ASSERT_GE(message_id(*m), last);
        last = message_id(*m);
      }
    }
  });
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_TRUE(send_message(pub, i, 32).ok());
  r1.join();
  done = true;
  r2.join();
  while (s2.receive(0ns)) {
  }
  EXPECT_EQ(s2.stats().received + s2.stats().dropped, kMessages);
  EXPECT_EQ(pub.stats().free_slots, pub.stats().slot_count);
}

TEST(Topic, WrongKindAndWrongTypeAreRefused) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  try {
    Reader r(n, opts(OpenMode::open));
    FAIL() << "a channel reader attached to a topic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("topic"), std::string::npos);
  }
  TopicOptions other = topic_options(OpenMode::open);
  other.topic.type = {"fltest.Other", 1};
  try {
    TopicSubscriber s(n, other);
    FAIL() << "attached with another type";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.TopicMessage"), std::string::npos);
  }
  TempName ch;
  Writer w(ch, opts(OpenMode::create));
  EXPECT_THROW(TopicSubscriber s(ch, topic_options(OpenMode::open)), Error);
}

TEST(Topic, OversizeMessagesAreRefused) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  EXPECT_EQ(pub.max_message(), 1024u);
  EXPECT_EQ(pub.loan(1025).error(), Errc::message_too_large);
  std::vector<std::byte> big(5000);
  EXPECT_EQ(pub.send(big).error(), Errc::message_too_large);
  EXPECT_TRUE(pub.loan(1024).ok());
}

TEST(Topic, SubscribersSeeTheirPublisherLeave) {
  TempName n;
  auto pub = std::make_unique<TopicPublisher>(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  ASSERT_TRUE(send_message(*pub, 0, 64).ok());
  pub.reset();
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());  // queued before the publisher left
  EXPECT_EQ(sub.receive(1s).error(), Errc::peer_closed);
}

TEST(Topic, CloseInterruptsABlockedReceive) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    sub.close();
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(sub.receive(10s).error(), Errc::closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  t.join();
}

TEST(TopicProcesses, SubscriberProcessesReceiveEverything) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  std::vector<std::unique_ptr<ChildProcess>> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(std::make_unique<ChildProcess>("flatlane_peer_topic",
                                                  std::vector<std::string>{"subscribe", n.str(), "20000", "mode=block"}));
    ASSERT_TRUE(subs.back()->await("ready"));
  }
  ASSERT_TRUE(eventually([&] { return pub.subscriber_count() == 4; }));
  for (uint64_t i = 0; i < 20000; ++i) ASSERT_TRUE(send_message(pub, i, 300, 10s).ok()) << i;
  for (auto& s : subs) {
    ASSERT_TRUE(s->await("done")) << s->last_line();
    EXPECT_TRUE(exited_ok(s->wait_exit()));
  }
  EXPECT_TRUE(eventually([&] { return pub.stats().free_slots == pub.stats().slot_count; }));
}

TEST(TopicProcesses, PublisherProcessToSubscriber) {
  TempName n;
  TopicOptions so = topic_options(OpenMode::create);
  so.subscriber_mode = SubscriberMode::block_publisher;
  TopicSubscriber sub(n, so);
  ChildProcess pub("flatlane_peer_topic", {"publish", n.str(), "20000"});
  for (uint64_t i = 0; i < 20000; ++i) {
    auto m = sub.receive(10s);
    ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at " << i;
    ASSERT_EQ(message_id(*m), i);
    ASSERT_TRUE(message_ok(*m));
  }
  ASSERT_TRUE(pub.await("done"));
  EXPECT_TRUE(exited_ok(pub.wait_exit()));
  EXPECT_EQ(sub.receive(1s).error(), Errc::peer_closed);
}

// A subscriber killed while holding samples and with messages queued: the publisher keeps going
// and gets every slot back.
TEST(TopicProcesses, AKilledSubscribersSlotsAreReclaimed) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  ChildProcess holder("flatlane_peer_topic", {"hold", n.str(), "12"});
  ASSERT_TRUE(holder.await("ready"));
  ASSERT_TRUE(eventually([&] { return pub.subscriber_count() == 1; }));
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(send_message(pub, i, 500).ok());
  ASSERT_TRUE(holder.await("held 12"));
  EXPECT_LT(pub.stats().free_slots, pub.stats().slot_count - 12);
  holder.kill9();
  holder.wait_exit();
  // Publishing notices the death within a liveness interval and reclaims held and queued slots.
  uint64_t i = 20;
  ASSERT_TRUE(eventually([&] {
    EXPECT_TRUE(send_message(pub, i++, 500, 1s).ok());
    return pub.subscriber_count() == 0 && pub.stats().free_slots == pub.stats().slot_count;
  }));
  // The block is free again for a new subscriber.
  TopicSubscriber next(n, topic_options(OpenMode::open));
  ASSERT_TRUE(send_message(pub, 999, 64).ok());
  auto m = next.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(message_id(*m), 999u);
}

TEST(TopicProcesses, AKilledPublisherIsReportedAndReplaced) {
  TempName n;
  TopicSubscriber sub(n, topic_options(OpenMode::create));
  {
    ChildProcess pub("flatlane_peer_topic", {"publish", n.str(), "0"});
    ASSERT_TRUE(pub.await("ready"));
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(sub.receive(10s).ok());
    pub.kill9();
    pub.wait_exit();
  }
  Errc end = Errc::ok;
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    auto m = sub.receive(5s);
    if (!m) {
      end = m.error();
      break;
    }
  }
  EXPECT_EQ(end, Errc::peer_dead);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  // A new publisher takes over the dead one's block and its pool.
  TopicPublisher next(n, topic_options(OpenMode::open));
  EXPECT_EQ(next.index(), 0u);
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(send_message(next, i, 100, 1s).ok()) << i;
  uint64_t got = 0;
  while (auto m = sub.receive(0ns)) {
    EXPECT_TRUE(message_ok(*m));
    ++got;
  }
  EXPECT_GT(got, 0u);
  // The dead publisher's loan and its half-done delivery are recovered exactly; a kill that lands
  // between dropping a full queue's oldest entry and releasing it leaks that one slot (PROTOCOL.md
  // OP-T1), so allow one.
  EXPECT_GE(next.stats().free_slots + 1, next.stats().slot_count);
}

// ---------------------------------------------------------------------------------------------
// A topic segment is a trust boundary: every count, offset and index read from it is checked.

namespace {

wire::TopicHeader& topic_header(const Segment& s) {
  return *reinterpret_cast<wire::TopicHeader*>(s.base() + wire::kTopicHeaderOffset);
}

}  // namespace

TEST(TopicHostile, AHeaderThatLiesAboutItsLayoutIsRefused) {
  const std::vector<std::pair<const char*, void (*)(wire::TopicHeader&)>> lies = {
      {"slot_count", [](wire::TopicHeader& h) { h.slot_count = 1u << 30; }},
      {"depth", [](wire::TopicHeader& h) { h.queue_depth = 3; }},
      {"offset", [](wire::TopicHeader& h) { h.slots_offset += 64; }},
      {"stride", [](wire::TopicHeader& h) { h.slot_stride = 64; }},
      {"subscribers", [](wire::TopicHeader& h) { h.max_subscribers = 5000; }},
      {"size", [](wire::TopicHeader& h) { h.slot_size *= 4; }},
  };
  for (const auto& [what, lie] : lies) {
    TempName n;
    TopicPublisher pub(n, topic_options(OpenMode::create));
    lie(topic_header(pub.segment()));
    try {
      TopicSubscriber sub(n, topic_options(OpenMode::open));
      ADD_FAILURE() << what << ": attached to a lying header";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt) << what << ": " << e.what();
    }
  }
}

TEST(TopicHostile, GarbageInQueuesAndSlotsIsReportedNotFollowed) {
  TempName n;
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  const auto& h = topic_header(pub.segment());
  auto* base = pub.segment().base();
  auto& q = *reinterpret_cast<wire::IndexQueue*>(base + h.queues_offset +
                                                 (uint64_t{pub.index()} * h.max_subscribers + sub.index()) * h.queue_stride);
  auto* cells = reinterpret_cast<std::atomic<uint32_t>*>(reinterpret_cast<std::byte*>(&q) + wire::kQueueCellsOffset);
  // An index past the pool.
  cells[q.tail.load() & (h.queue_depth - 1)].store(h.slot_count + 7);
  q.tail.fetch_add(1);
  EXPECT_EQ(sub.receive(0ns).error(), Errc::corrupt);
  // A tail far ahead of the head.
  q.tail.store(q.head.load() + 1'000'000);
  EXPECT_EQ(sub.receive(0ns).error(), Errc::corrupt);
  q.tail.store(q.head.load());
  // A slot whose size runs past its end.
  ASSERT_TRUE(send_message(pub, 1, 64).ok());
  const uint32_t idx = cells[(q.tail.load() - 1) & (h.queue_depth - 1)].load() - 1;
  auto& slot = *reinterpret_cast<wire::SlotHeader*>(base + h.slots_offset +
                                                    (uint64_t{pub.index()} * h.slot_count + idx) * h.slot_stride);
  slot.size = h.slot_size + 1;
  EXPECT_EQ(sub.receive(0ns).error(), Errc::corrupt);
  EXPECT_EQ(sub.stats().held, 0u);
}
