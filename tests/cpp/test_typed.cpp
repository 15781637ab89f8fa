// Generated C++ topic and pipeline endpoints (tests/cpp/schema/typed_test.fbs ->
// typed_test.flatlane.hpp): messages built in the loaned topic slot, verified zero-copy views,
// slot sizes, overflow policies and subscriber modes, history, type identity, and real processes
// on both ends. Many processes per topic / pipeline: test_typed_topic.cpp.
#include "typed_test_util.hpp"
#include "child_process.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
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

bool inside(const void* p, const Segment& s) {
  const auto* b = reinterpret_cast<const std::byte*>(p);
  return b >= s.base() && b <= s.base() + s.size();
}

}  // namespace

TEST(Typed, GeneratedTraitsAndSpecsComeFromTheSchema) {
  EXPECT_EQ(MessageTraits<fltest::Sample>::type_name, "fltest.Sample");
  EXPECT_NE(MessageTraits<fltest::Sample>::type_hash, MessageTraits<fltest::Blob>::type_hash);
  EXPECT_EQ(MessageTraits<fltest::Sample>::file_identifier, nullptr);
  constexpr auto s = fltest::Samples::strict::spec;
  EXPECT_EQ(s.name, "fltest.Samples.strict");
  EXPECT_EQ(s.kind, ChannelKind::topic);
  EXPECT_EQ(s.ring_capacity, 64u * 1024);
  EXPECT_EQ(s.overflow, Overflow::fail);
  constexpr auto b = fltest::Bulk::blobs::spec;
  EXPECT_EQ(b.kind, ChannelKind::pipeline);
  EXPECT_EQ(b.chunk_size, 8192u);
  EXPECT_EQ(b.max_message, 1u << 20);
  EXPECT_EQ(fltest::Bulk::capped::spec.max_message, 16u * 1024);
}

// The proof of zero-copy send: while the build function runs, the builder's memory is inside the
// publisher's topic segment (the loaned slot), and the subscriber's bytes end at the very same
// segment offset: the FlatBuffer is read where it was built.
TEST(Typed, MessagesAreBuiltInTheSlotAndReadInPlace) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  fltest::Samples::samples::Subscriber sub(named(n));
  const Segment& ws = pub.segment();
  const Segment& rs = sub.segment();
  EXPECT_EQ(pub.max_message(), 64u * 1024);  // the schema leaves max_message: a 64 KiB slot
  for (uint64_t i = 0; i < 2000; ++i) {  // every slot of the pool many times over
    uint64_t end_offset = 0;
    bool in_segment = false;
    auto r = pub.send([&](flatbuffers::FlatBufferBuilder& b) {
      auto root = build_sample(b, i);
      in_segment = inside(b.GetCurrentBufferPointer(), ws);
      end_offset = static_cast<uint64_t>(reinterpret_cast<const std::byte*>(b.GetCurrentBufferPointer()) + b.GetSize() -
                                         ws.base());
      return root;
    });
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    ASSERT_TRUE(in_segment) << "message " << i << " was built outside the segment";
    auto m = sub.receive(1s);
    ASSERT_TRUE(m.ok()) << to_string(m.error());
    EXPECT_TRUE(m->zero_copy());
    ASSERT_TRUE(inside(m->bytes().data(), rs));
    EXPECT_EQ(static_cast<uint64_t>(m->bytes().data() + m->bytes().size() - rs.base()), end_offset) << i;
    // The finished buffer ends exactly at the end of a slot of the segment (built back to front),
    // and that slot's header says so: the message is the last `size` bytes of its data.
    const auto& h = *reinterpret_cast<const wire::TopicHeader*>(rs.base() + wire::kTopicHeaderOffset);
    ASSERT_GT(end_offset, h.slots_offset);
    ASSERT_EQ((end_offset - h.slots_offset) % h.slot_stride, 0u) << i;
    const uint64_t slot = (end_offset - h.slots_offset) / h.slot_stride - 1;
    ASSERT_LT(slot, uint64_t{h.max_publishers} * h.slot_count);
    const auto& sh = *reinterpret_cast<const wire::SlotHeader*>(rs.base() + h.slots_offset + slot * h.slot_stride);
    EXPECT_EQ(sh.size, m->bytes().size()) << i;
    EXPECT_EQ(sh.offset + sh.size, h.slot_size) << i;
    EXPECT_EQ(m->bytes().data(), rs.base() + h.slots_offset + slot * h.slot_stride + wire::kSlotDataOffset + sh.offset);
    ASSERT_EQ(check_sample(**m, i), "") << i;
    EXPECT_EQ(m->get(), flatbuffers::GetRoot<fltest::Sample>(m->bytes().data()));
    EXPECT_EQ(m->seq(), i + 1);
  }
  EXPECT_EQ(pub.stats().sent, 2000u);
  EXPECT_EQ(pub.topic_stats().messages, 2000u);
  EXPECT_EQ(sub.stats().received, 2000u);
  EXPECT_EQ(sub.stats().dropped, 0u);
}

// Any size up to the slot is built in place, whatever came before it (no reservation to learn).
TEST(Typed, MessagesOfAnySizeUpToASlotStayInPlace) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  fltest::Samples::samples::Subscriber sub(named(n));
  const size_t sizes[] = {0, 1, 2000, 3, 7000, 7000, 7000, 10, 4000, 1, 16000};
  for (int round = 0; round < 30; ++round) {
    for (size_t k = 0; k < std::size(sizes); ++k) {
      const uint64_t id = static_cast<uint64_t>(round) * 100 + k;
      ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, id, sizes[k]); }).ok());
      auto m = sub.receive(1s);
      ASSERT_TRUE(m.ok()) << to_string(m.error());
      ASSERT_EQ(check_sample(**m, id, sizes[k]), "") << "round " << round << " size " << sizes[k];
      EXPECT_TRUE(inside(m->bytes().data(), sub.segment()));
    }
  }
  EXPECT_EQ(pub.stats().too_large, 0u);
}

// A pipeline's slot is the channel's max_message (1 MiB here): blobs far beyond the old ring
// frame travel in one slot each, zero-copy. chunk_size plays no part on topics.
TEST(Typed, PipelineSlotsHoldMessagesUpToMaxMessage) {
  TempName n;
  fltest::Bulk::blobs::Pusher push(named(n));
  fltest::Bulk::blobs::Puller pull(named(n));
  EXPECT_EQ(push.max_message(), 1u << 20);
  const size_t sizes[] = {100, 40 * 1024, 300 * 1024, 5, (1 << 20) - 128, 70 * 1024};
  std::thread t([&] {
    for (size_t k = 0; k < std::size(sizes); ++k)
      ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, k, sizes[k]); }, 10s).ok()) << k;
  });
  for (size_t k = 0; k < std::size(sizes); ++k) {
    auto m = pull.receive(10s);
    ASSERT_TRUE(m.ok()) << to_string(m.error());
    EXPECT_EQ(check_blob(**m, k, sizes[k]), "");
    EXPECT_TRUE(inside(m->bytes().data(), pull.segment()));
  }
  t.join();
  EXPECT_EQ(push.stats().sent, std::size(sizes));
}

// Topics do not chunk: a message that does not fit its slot fails with message_too_large,
// nothing is published, and the endpoint stays usable.
TEST(Typed, OverTheSlotSizeFailsAndPublishesNothing) {
  TempName a, b;
  fltest::Bulk::blobs::Pusher big(named(a));
  fltest::Bulk::blobs::Puller big_rx(named(a));
  EXPECT_EQ(big.send([&](auto& fbb) { return build_blob(fbb, 1, 2 << 20); }).error(), Errc::message_too_large);
  EXPECT_EQ(big_rx.receive(0ns).error(), Errc::timeout);

  fltest::Bulk::capped::Pusher capped(named(b));  // 16 KiB slots
  fltest::Bulk::capped::Puller capped_rx(named(b));
  EXPECT_EQ(capped.max_message(), 16u * 1024);
  EXPECT_EQ(capped.send([&](auto& fbb) { return build_blob(fbb, 1, 20 * 1024); }).error(), Errc::message_too_large);
  EXPECT_EQ(capped.send([&](auto& fbb) { return build_blob(fbb, 2, 100 * 1024); }).error(), Errc::message_too_large);
  EXPECT_EQ(capped.stats().too_large, 2u);
  EXPECT_EQ(capped_rx.receive(0ns).error(), Errc::timeout);
  ASSERT_TRUE(capped.send([&](auto& fbb) { return build_blob(fbb, 3, 15 * 1024); }).ok());
  auto m = capped_rx.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_blob(**m, 3, 15 * 1024), "");
  EXPECT_EQ(capped.topic_stats().free_slots + 1, capped.topic_stats().slot_count);  // only m's slot is held
}

TEST(Typed, AnExceptionInTheBuildFunctionPublishesNothing) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  fltest::Samples::samples::Subscriber sub(named(n));
  EXPECT_THROW((void)pub.send([&](auto& b) -> flatbuffers::Offset<fltest::Sample> {
    build_sample(b, 1);
    throw std::runtime_error("user code failed");
  }),
               std::runtime_error);
  EXPECT_EQ(sub.receive(0ns).error(), Errc::timeout);
  ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, 2); }).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 2), "");
}

// overflow = fail: subscribers default to block_publisher, the publisher never waits. A
// subscriber that does not read holds the pool's slots in its queue: the next send fails at once.
TEST(Typed, OverflowFailNeverWaits) {
  TempName n;
  fltest::Samples::strict::Publisher pub(named(n));
  fltest::Samples::strict::Subscriber sub(named(n));
  uint64_t sent = 0;
  const auto t0 = std::chrono::steady_clock::now();
  Errc last = Errc::ok;
  for (uint64_t i = 0; i < 10000 && last == Errc::ok; ++i) {
    auto r = pub.send([&](auto& b) { return build_sample(b, i); });
    last = r.error();
    if (r) ++sent;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(last, Errc::timeout);
  EXPECT_EQ(pub.dropped(), 1u);
  EXPECT_EQ(sent, pub.topic_stats().slot_count);  // 64 KiB ring / 64 KiB slot -> the minimum, 8
  for (uint64_t i = 0; i < sent; ++i) {
    auto m = sub.receive(1s);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(check_sample(**m, i), "");
  }
  EXPECT_EQ(sub.stats().dropped, 0u);
}

// overflow = drop_oldest: subscribers default to drop_oldest and publishing never waits: a
// subscriber that does not keep up loses its oldest messages, counted by the subscriber, and
// always has the newest.
TEST(Typed, OverflowDropOldestCountsAtTheSubscriber) {
  TempName n;
  fltest::Samples::lossy::Publisher pub(named(n));
  fltest::Samples::lossy::Subscriber sub(named(n));
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < 3000; ++i) ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(pub.dropped(), 0u);  // the publisher never failed to publish
  EXPECT_EQ(pub.stats().sent, 3000u);
  uint64_t got = 0, prev = 0;
  while (auto m = sub.receive(0ns)) {
    EXPECT_TRUE(got == 0 || (*m)->id() > prev);
    prev = (*m)->id();
    ASSERT_EQ(check_sample(**m, prev), "");
    ++got;
  }
  EXPECT_EQ(prev, 2999u);  // the newest survived
  EXPECT_GT(sub.stats().dropped, 0u);
  EXPECT_EQ(got + sub.stats().dropped, 3000u);
  ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, 99999); }).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->id(), 99999u);
}

// A subscriber may choose its own mode: a drop_oldest subscriber on a blocking topic never
// slows the publisher, while a block_publisher one beside it gets everything.
TEST(Typed, SubscriberModeIsAnOption) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  auto lossy = named(n);
  lossy.subscriber_mode = SubscriberMode::drop_oldest;
  fltest::Samples::samples::Subscriber dropping(lossy);
  fltest::Samples::samples::Subscriber all(named(n));
  std::thread reader([&] {
    for (uint64_t i = 0; i < 2000; ++i) {
      auto m = all.receive(5s);
      ASSERT_TRUE(m.ok()) << to_string(m.error());
      ASSERT_EQ(check_sample(**m, i), "");
    }
  });
  for (uint64_t i = 0; i < 2000; ++i) ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }, 5s).ok());
  reader.join();
  uint64_t got = 0;
  while (auto m = dropping.receive(0ns)) ++got;
  EXPECT_GT(dropping.stats().dropped, 0u);
  EXPECT_EQ(got + dropping.stats().dropped, 2000u);
}

// History: a late subscriber asks for the messages the publisher retained.
TEST(Typed, LateJoinerGetsRetainedHistory) {
  TempName n;
  auto o = named(n);
  o.history = 4;
  fltest::Samples::samples::Publisher pub(o);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }).ok());
  auto late = named(n);
  late.history_request = 3;
  fltest::Samples::samples::Subscriber sub(late);
  for (uint64_t i = 7; i < 10; ++i) {
    auto m = sub.receive(1s);
    ASSERT_TRUE(m.ok()) << to_string(m.error());
    EXPECT_EQ(check_sample(**m, i), "");
  }
  EXPECT_EQ(sub.receive(0ns).error(), Errc::timeout);
  ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, 10); }).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 10), "");
}

// A raw publisher of the same type (a buggy peer) publishes slots that are not a Sample: the
// subscriber reports corrupt, releases that slot, and the next good one comes through.
TEST(Typed, VerificationRejectsMalformedSlots) {
  TempName n;
  const auto spec = fltest::Samples::samples::spec;
  TopicPublisher raw(n.str(), detail::topic_options<fltest::Sample>(spec, named(n)));
  fltest::Samples::samples::Subscriber sub(named(n));
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(raw.send(std::as_bytes(std::span(junk))).ok());
  ASSERT_TRUE(raw.send({}).ok());  // empty
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(sub.stats().rejected, 2u);
  EXPECT_EQ(sub.stats().held, 0u);  // rejected slots went back

  flatbuffers::FlatBufferBuilder b;
  b.Finish(build_sample(b, 7));
  ASSERT_TRUE(raw.send({reinterpret_cast<const std::byte*>(b.GetBufferPointer()), b.GetSize()}).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 7), "");

  // A table whose vector length points past the message fails verification, not the reader.
  b.Clear();
  b.Finish(build_sample(b, 8, 4));
  std::vector<uint8_t> bad(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  // The vector's length word, located in the builder's copy (GCC's object-size tracking would
  // take `bad` for a Sample if we looked it up there, and warn about the write below).
  const auto* s = flatbuffers::GetRoot<fltest::Sample>(b.GetBufferPointer());
  const auto len_at = static_cast<size_t>(reinterpret_cast<const uint8_t*>(s->values()) - b.GetBufferPointer());
  const uint32_t huge = 1u << 28;
  std::memcpy(bad.data() + len_at, &huge, sizeof huge);
  ASSERT_TRUE(raw.send(std::as_bytes(std::span(bad))).ok());
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(sub.stats().rejected, 3u);
}

TEST(Typed, TrustedPeersSkipVerificationButNotTheRootCheck) {
  TempName n;
  auto o = named(n);
  o.verify = false;
  TopicPublisher raw(n.str(), detail::topic_options<fltest::Sample>(fltest::Samples::samples::spec, o));
  fltest::Samples::samples::Subscriber sub(o);
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
  ASSERT_TRUE(raw.send(std::as_bytes(std::span(junk))).ok());
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);  // root offset outside the message
  // A vector length past the message is not checked without verification; the reader trusts it.
  flatbuffers::FlatBufferBuilder b;
  b.Finish(build_sample(b, 5));
  ASSERT_TRUE(raw.send({reinterpret_cast<const std::byte*>(b.GetBufferPointer()), b.GetSize()}).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 5), "");
}

TEST(Typed, AttachingWithAnotherMessageTypeNamesBoth) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  try {
    TopicReceiver<fltest::Blob> wrong(fltest::Samples::samples::spec, named(n));
    FAIL() << "attached a Blob receiver to a Sample topic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.Sample"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fltest.Blob"), std::string::npos) << e.what();
  }
  try {  // the generated pipeline endpoint of another type
    fltest::Bulk::blobs::Pusher wrong(named(n));
    FAIL() << "attached a Blob pusher to a Sample topic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.Sample"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fltest.Blob"), std::string::npos) << e.what();
  }
}

// A pipeline endpoint on a publish/subscribe topic of the same type (or the other way round)
// would change who gets what: refused, naming both patterns.
TEST(Typed, AttachingAPipelineToATopicIsRefused) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  const ChannelSpec as_pipeline{.name = "x", .kind = ChannelKind::pipeline, .ring_capacity = 65536};
  try {
    TopicReceiver<fltest::Sample> wrong(as_pipeline, named(n));
    FAIL() << "a work-queue puller attached to a fan-out topic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("publish/subscribe topic"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("work queue"), std::string::npos) << e.what();
  }
}

// The same type name with another hash attaches to a typed topic only with the name-only check.
TEST(Typed, NameOnlyTypeCheckOnATopic) {
  TempName n;
  TopicOptions v1 = detail::topic_options<fltest::Sample>(fltest::Samples::samples::spec, named(n));
  v1.topic.type.hash ^= 1;  // an evolved definition
  TopicPublisher older(n.str(), v1);
  EXPECT_THROW(fltest::Samples::samples::Subscriber strict(named(n)), Error);
  auto relaxed = named(n);
  relaxed.type_check = TypeCheck::name_only;
  fltest::Samples::samples::Subscriber sub(relaxed);
  EXPECT_EQ(sub.stats().received, 0u);
}

// Rolling upgrades: the same type name with another hash (a field appended) attaches only when
// the endpoint asks for the name-only check.
TEST(Typed, NameOnlyTypeCheckAcceptsAnEvolvedDefinition) {
  TempName n;
  ChannelOptions v1 = opts(OpenMode::create);
  v1.segment.type = {"fltest.Sample", 0x1111, false};
  Writer w(n, v1);
  ChannelOptions v2 = opts(OpenMode::open);
  v2.segment.type = {"fltest.Sample", 0x2222, false};
  try {
    Reader strict(n, v2);
    FAIL() << "a different hash attached";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
  }
  v2.segment.type.name_only = true;
  Reader relaxed(n, v2);
  v2.segment.type.name = "fltest.Other";
  EXPECT_THROW(Reader other(n, v2), Error);
}

TEST(TypedProcesses, PublisherProcessToSubscriber) {
  TempName n;
  fltest::Samples::samples::Subscriber sub(named(n));
  ChildProcess peer("flatlane_peer_typed", {"publish", n.str(), "20000"});
  for (uint64_t i = 0; i < 20000; ++i) {
    auto m = sub.receive(10s);
    ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at " << i;
    ASSERT_EQ(check_sample(**m, i), "");
    ASSERT_TRUE(m->zero_copy());
  }
  ASSERT_TRUE(peer.await("done"));
  const int st = peer.wait_exit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << peer.last_line();
}

TEST(TypedProcesses, PublisherToSubscriberProcess) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  ChildProcess peer("flatlane_peer_typed", {"subscribe", n.str(), "20000"});
  ASSERT_TRUE(peer.await("ready"));
  for (uint64_t i = 0; i < 20000; ++i)
    ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }, 10s).ok()) << i;
  ASSERT_TRUE(peer.await("done")) << peer.last_line();
  const int st = peer.wait_exit();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << peer.last_line();
}

TEST(TypedProcesses, BlobsThroughAPipelineBothWays) {
  {
    TempName n;
    fltest::Bulk::blobs::Puller pull(named(n));
    ChildProcess peer("flatlane_peer_typed", {"push", n.str(), "60"});
    for (uint64_t i = 0; i < 60; ++i) {
      auto m = pull.receive(10s);
      ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at " << i;
      ASSERT_EQ(check_blob(**m, i, blob_size(i)), "");
    }
    ASSERT_TRUE(peer.await("done"));
    EXPECT_EQ(peer.wait_exit(), 0);
  }
  {
    TempName n;
    fltest::Bulk::blobs::Pusher push(named(n));
    ChildProcess peer("flatlane_peer_typed", {"pull", n.str(), "60"});
    // Work waits in the queue until a puller attaches: no need to wait for "ready".
    for (uint64_t i = 0; i < 60; ++i)
      ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, i, blob_size(i)); }, 10s).ok()) << i;
    ASSERT_TRUE(peer.await("done")) << peer.last_line();
    EXPECT_EQ(peer.wait_exit(), 0);
  }
}

TEST(TypedProcesses, KilledPublisherIsReportedToTheSubscriber) {
  TempName n;
  fltest::Samples::samples::Subscriber sub(named(n));
  ChildProcess peer("flatlane_peer_typed", {"publish", n.str(), "0"});  // forever
  ASSERT_TRUE(peer.await("ready"));
  for (uint64_t i = 0; i < 1000; ++i) {
    auto m = sub.receive(10s);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(check_sample(**m, i), "");
  }
  peer.kill9();
  peer.wait_exit();
  // Everything committed before the kill is still delivered and verified, then peer_dead.
  Errc end = Errc::ok;
  for (uint64_t i = 1000;; ++i) {
    auto m = sub.receive(5s);
    if (!m) {
      end = m.error();
      break;
    }
    ASSERT_EQ(check_sample(**m, i), "");
  }
  EXPECT_EQ(end, Errc::peer_dead);
}
