// Generated C++ endpoints (tests/cpp/schema/typed_test.fbs -> typed_test.flatlane.hpp): messages
// built in the frame, verified zero-copy views, growth, chunking, overflow policies, type identity,
// and real processes on both ends.
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
// writer's segment, and the receiver's bytes end at the very same segment offset.
TEST(Typed, MessagesAreBuiltInTheFrameAndReadInPlace) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  fltest::Samples::samples::Subscriber sub(named(n));
  const Segment& ws = pub.writer().segment();
  const Segment& rs = sub.reader().segment();
  for (uint64_t i = 0; i < 2000; ++i) {  // ~40 wraps of the 64 KiB ring
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
    ASSERT_EQ(check_sample(**m, i), "") << i;
    EXPECT_EQ(m->get(), flatbuffers::GetRoot<fltest::Sample>(m->bytes().data()));
  }
  EXPECT_EQ(pub.stats().sent, 2000u);
  EXPECT_EQ(pub.stats().chunked, 0u);
  EXPECT_EQ(sub.stats().received, 2000u);
}

// A message larger than the adaptive reservation moves once into a larger one and stays intact;
// the next reservation is sized from it.
TEST(Typed, GrowthBeyondTheReservationKeepsTheMessageIntact) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  fltest::Samples::samples::Subscriber sub(named(n));
  const size_t sizes[] = {0, 1, 2000, 3, 7000, 7000, 7000, 10, 4000, 1};
  for (int round = 0; round < 30; ++round) {
    for (size_t k = 0; k < std::size(sizes); ++k) {
      const uint64_t id = static_cast<uint64_t>(round) * 100 + k;
      ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, id, sizes[k]); }).ok());
      auto m = sub.receive(1s);
      ASSERT_TRUE(m.ok()) << to_string(m.error());
      ASSERT_EQ(check_sample(**m, id, sizes[k]), "") << "round " << round << " size " << sizes[k];
      EXPECT_TRUE(m->zero_copy());
    }
  }
  EXPECT_GT(pub.stats().regrown, 0u);
  EXPECT_LT(pub.stats().regrown, pub.stats().sent);  // repeated sizes fit the learned reservation
  EXPECT_EQ(pub.stats().chunked, 0u);
}

TEST(Typed, MessagesLargerThanAFrameGoOutChunked) {
  TempName n;
  fltest::Bulk::blobs::Pusher push(named(n));
  fltest::Bulk::blobs::Puller pull(named(n));
  const size_t sizes[] = {100, 40 * 1024, 300 * 1024, 5, (1 << 20) - 128, 70 * 1024};
  std::thread t([&] {
    for (size_t k = 0; k < std::size(sizes); ++k)
      ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, k, sizes[k]); }, 10s).ok()) << k;
  });
  for (size_t k = 0; k < std::size(sizes); ++k) {
    auto m = pull.receive(10s);
    ASSERT_TRUE(m.ok()) << to_string(m.error());
    EXPECT_EQ(check_blob(**m, k, sizes[k]), "");
    EXPECT_EQ(m->zero_copy(), sizes[k] < 30 * 1024) << sizes[k];
  }
  t.join();
  EXPECT_EQ(push.stats().chunked, 4u);
}

TEST(Typed, OverTheMessageLimitFailsAndPublishesNothing) {
  TempName a, b;
  fltest::Bulk::blobs::Pusher chunking(named(a));
  fltest::Bulk::blobs::Puller chunking_rx(named(a));
  EXPECT_EQ(chunking.send([&](auto& fbb) { return build_blob(fbb, 1, 2 << 20); }).error(), Errc::message_too_large);
  EXPECT_EQ(chunking_rx.receive(0ns).error(), Errc::timeout);

  fltest::Bulk::capped::Pusher capped(named(b));  // 16 KiB limit, no chunking
  fltest::Bulk::capped::Puller capped_rx(named(b));
  EXPECT_EQ(capped.send([&](auto& fbb) { return build_blob(fbb, 1, 20 * 1024); }).error(), Errc::message_too_large);
  EXPECT_EQ(capped.send([&](auto& fbb) { return build_blob(fbb, 2, 100 * 1024); }).error(), Errc::message_too_large);
  EXPECT_EQ(capped_rx.receive(0ns).error(), Errc::timeout);
  // The channel is still usable, and the limit is the message's, not the frame's.
  ASSERT_TRUE(capped.send([&](auto& fbb) { return build_blob(fbb, 3, 15 * 1024); }).ok());
  auto m = capped_rx.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_blob(**m, 3, 15 * 1024), "");
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
  EXPECT_GT(sent, 20u);
  for (uint64_t i = 0; i < sent; ++i) {
    auto m = sub.receive(1s);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(check_sample(**m, i), "");
  }
}

TEST(Typed, OverflowDropCountsAndContinues) {
  TempName n;
  fltest::Samples::lossy::Publisher pub(named(n));
  fltest::Samples::lossy::Subscriber sub(named(n));
  for (uint64_t i = 0; i < 3000; ++i) ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, i); }).ok());
  EXPECT_GT(pub.dropped(), 0u);
  const uint64_t delivered = pub.stats().sent;
  EXPECT_EQ(delivered + pub.dropped(), 3000u);
  uint64_t got = 0, prev = 0;
  while (auto m = sub.receive(0ns)) {
    EXPECT_TRUE(got == 0 || (*m)->id() > prev);
    prev = (*m)->id();
    ++got;
  }
  EXPECT_EQ(got, delivered);
  ASSERT_TRUE(pub.send([&](auto& b) { return build_sample(b, 99999); }).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->id(), 99999u);
}

// A raw writer of the same type (a buggy peer) sends bytes that are not a Sample: the receiver
// reports corrupt, consumes that message, and the next good one comes through.
TEST(Typed, VerificationRejectsMalformedMessages) {
  TempName n;
  const auto spec = fltest::Samples::samples::spec;
  Writer raw(n, channel_options<fltest::Sample>(spec, named(n)));
  fltest::Samples::samples::Subscriber sub(named(n));
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(raw.write_message(std::as_bytes(std::span(junk))).ok());
  ASSERT_TRUE(raw.write_message({}).ok());  // empty
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(sub.stats().rejected, 2u);

  flatbuffers::FlatBufferBuilder b;
  b.Finish(build_sample(b, 7));
  ASSERT_TRUE(raw.write_message({reinterpret_cast<const std::byte*>(b.GetBufferPointer()), b.GetSize()}).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 7), "");

  // A table whose vector length points past the frame fails verification, not the reader.
  b.Clear();
  b.Finish(build_sample(b, 8, 4));
  std::vector<uint8_t> bad(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  // The vector's length word, located in the builder's copy (GCC's object-size tracking would
  // take `bad` for a Sample if we looked it up there, and warn about the write below).
  const auto* s = flatbuffers::GetRoot<fltest::Sample>(b.GetBufferPointer());
  const auto len_at = static_cast<size_t>(reinterpret_cast<const uint8_t*>(s->values()) - b.GetBufferPointer());
  const uint32_t huge = 1u << 28;
  std::memcpy(bad.data() + len_at, &huge, sizeof huge);
  ASSERT_TRUE(raw.write_message(std::as_bytes(std::span(bad))).ok());
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);
}

TEST(Typed, TrustedPeersSkipVerificationButNotTheRootCheck) {
  TempName n;
  auto o = named(n);
  o.verify = false;
  Writer raw(n, channel_options<fltest::Sample>(fltest::Samples::samples::spec, o));
  fltest::Samples::samples::Subscriber sub(o);
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
  ASSERT_TRUE(raw.write_message(std::as_bytes(std::span(junk))).ok());
  EXPECT_EQ(sub.receive(1s).error(), Errc::corrupt);  // root offset outside the message
  flatbuffers::FlatBufferBuilder b;
  b.Finish(build_sample(b, 5));
  ASSERT_TRUE(raw.write_message({reinterpret_cast<const std::byte*>(b.GetBufferPointer()), b.GetSize()}).ok());
  auto m = sub.receive(1s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(check_sample(**m, 5), "");
}

TEST(Typed, AttachingWithAnotherMessageTypeNamesBoth) {
  TempName n;
  fltest::Samples::samples::Publisher pub(named(n));
  try {
    Receiver<fltest::Blob> wrong(fltest::Bulk::blobs::spec, named(n));
    FAIL() << "attached a Blob receiver to a Sample channel";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.Sample"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fltest.Blob"), std::string::npos) << e.what();
  }
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

TEST(TypedProcesses, ChunkedBlobsBothWays) {
  {
    TempName n;
    fltest::Bulk::blobs::Puller pull(named(n));
    ChildProcess peer("flatlane_peer_typed", {"push", n.str(), "60"});
    for (uint64_t i = 0; i < 60; ++i) {
      auto m = pull.receive(10s);
      ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at " << i;
      ASSERT_EQ(check_blob(**m, i, blob_size(i)), "");
    }
    auto done = peer.await("done");
    ASSERT_TRUE(done);
    EXPECT_NE(done->find("chunked"), std::string::npos);
    EXPECT_EQ(peer.wait_exit(), 0);
  }
  {
    TempName n;
    fltest::Bulk::blobs::Pusher push(named(n));
    ChildProcess peer("flatlane_peer_typed", {"pull", n.str(), "60"});
    ASSERT_TRUE(peer.await("ready"));
    for (uint64_t i = 0; i < 60; ++i)
      ASSERT_TRUE(push.send([&](auto& b) { return build_blob(b, i, blob_size(i)); }, 10s).ok()) << i;
    EXPECT_GT(push.stats().chunked, 30u);
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
