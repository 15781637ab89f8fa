// In-place duplex: the server modifies the request frame where it lies and hands it back; the
// client reads the response in the same frame. Correlation, wrap-around, several requests in
// flight, out-of-order answers and releases, limits, hostile frames, peer death and takeover.
#include "child_process.hpp"
#include "duplex_test_util.hpp"
#include "test_util.hpp"

#include <flatlane/inspect.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

// A server thread that inverts every request in place and answers it, until the client leaves.
class InvertingServer {
 public:
  explicit InvertingServer(const TempName& n, uint64_t capacity = 1 << 16)
      : server_(n, duplex_options(OpenMode::open, capacity)), thread_([this] { run(); }) {}
  ~InvertingServer() {
    stop_ = true;
    thread_.join();
  }
  uint64_t served() const { return served_.load(); }

 private:
  void run() {
    while (!stop_) {
      auto req = server_.receive(5ms);
      if (!req) continue;
      invert(req->data());
      ASSERT_TRUE(server_.respond(*req).ok());
      ++served_;
    }
  }
  DuplexServer server_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> served_{0};
  std::thread thread_;
};

}  // namespace

TEST(Duplex, TheResponseIsTheRequestFrameModifiedInPlace) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create));
  DuplexServer s(n, duplex_options(OpenMode::open));
  auto span = c.reserve(100);
  ASSERT_TRUE(span.ok());
  std::byte* request_at = span->data();
  fill_pattern(*span, 1);
  const uint64_t seq = c.commit(100);
  EXPECT_EQ(seq, 1u);
  auto req = s.receive(1s);
  ASSERT_TRUE(req.ok());
  // Zero copy: the server sees the client's bytes at the same place in the (shared) ring.
  const auto off = request_at - c.segment().base();
  EXPECT_EQ(req->data().data() - s.segment().base(), off);
  EXPECT_EQ(req->seq(), 1u);
  ASSERT_EQ(req->data().size(), 100u);
  EXPECT_TRUE(check_pattern(req->data(), 1));
  invert(req->data());
  ASSERT_TRUE(s.respond(*req).ok());
  EXPECT_FALSE(req->valid());
  auto rep = c.receive(1s);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->seq(), 1u);
  EXPECT_FALSE(rep->rejected());
  EXPECT_EQ(rep->data().data(), request_at);  // the same frame, not a copy
  EXPECT_TRUE(check_inverted(rep->data(), 1));
  EXPECT_GT(c.stats().occupancy_bytes, 0u);
  rep->release();
  EXPECT_EQ(c.stats().occupancy_bytes, 0u);
  EXPECT_EQ(c.stats().requests, 1u);
  EXPECT_EQ(c.stats().responses, 1u);
  EXPECT_EQ(s.stats().responses, 1u);
}

TEST(Duplex, ManyOutstandingAcrossWrapAroundWithRandomSizes) {
  TempName n;
  constexpr uint64_t kCap = 8192;
  DuplexClient c(n, duplex_options(OpenMode::create, kCap));
  InvertingServer srv(n, kCap);
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> size(0, 1500);
  std::uniform_int_distribution<int> burst(1, 6);
  std::vector<std::pair<uint64_t, size_t>> in_flight;
  uint64_t done = 0;
  constexpr uint64_t kTotal = 30000;
  uint64_t sent = 0;
  while (done < kTotal) {
    const int k = burst(rng);
    for (int i = 0; i < k && sent < kTotal; ++i) {
      const size_t sz = size(rng);
      auto span = c.reserve(sz, 0ns);
      if (!span) {
        ASSERT_EQ(span.error(), Errc::timeout);  // ring full of outstanding requests
        ASSERT_FALSE(in_flight.empty());
        break;
      }
      fill_pattern(*span, c.stats().requests + 1);
      in_flight.emplace_back(c.commit(sz), sz);
      ++sent;
    }
    // Receive about half of what is in flight, in request order.
    const size_t take = std::max<size_t>(1, in_flight.size() / 2);
    for (size_t i = 0; i < take; ++i) {
      auto rep = c.receive(5s);
      ASSERT_TRUE(rep.ok()) << to_string(rep.error());
      ASSERT_EQ(rep->seq(), in_flight.front().first);
      ASSERT_EQ(rep->size(), in_flight.front().second);
      ASSERT_TRUE(check_inverted(rep->data(), rep->seq())) << "seq " << rep->seq();
      in_flight.erase(in_flight.begin());
      ++done;
    }
  }
  EXPECT_EQ(c.outstanding(), 0u);
  EXPECT_EQ(c.stats().occupancy_bytes, 0u);
  EXPECT_GT(c.stats().bytes, 10 * kCap);  // the ring wrapped many times
}

TEST(Duplex, AnswersInAnyOrderAreDeliveredInRequestOrder) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create));
  DuplexServer s(n, duplex_options(OpenMode::open));
  for (uint64_t i = 1; i <= 5; ++i) {
    auto span = c.reserve(64);
    ASSERT_TRUE(span.ok());
    fill_pattern(*span, i);
    ASSERT_EQ(c.commit(64), i);
  }
  std::vector<DuplexRequest> reqs;
  for (int i = 0; i < 5; ++i) {
    auto r = s.receive(1s);
    ASSERT_TRUE(r.ok());
    reqs.push_back(std::move(*r));
  }
  EXPECT_EQ(s.outstanding(), 5u);
  for (int i : {3, 1, 4, 0, 2}) {
    invert(reqs[i].data());
    ASSERT_TRUE(s.respond(reqs[i]).ok());
  }
  EXPECT_EQ(s.outstanding(), 0u);
  std::vector<DuplexResponse> held;
  for (uint64_t i = 1; i <= 5; ++i) {
    auto rep = c.receive(1s);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->seq(), i);
    EXPECT_TRUE(check_inverted(rep->data(), i));
    held.push_back(std::move(*rep));
  }
  EXPECT_EQ(c.receive(0ns).error(), Errc::invalid_argument);  // nothing outstanding
  // Released out of order: space returns when the oldest goes.
  const uint64_t full = c.stats().occupancy_bytes;
  held[2].release();
  held[4].release();
  EXPECT_EQ(c.stats().occupancy_bytes, full);
  held[0].release();
  EXPECT_LT(c.stats().occupancy_bytes, full);
  held[1].release();
  held[3].release();
  EXPECT_EQ(c.stats().occupancy_bytes, 0u);
}

TEST(Duplex, AFullRingFailsAtOnceAndRecoversAfterRelease) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 4096));
  DuplexServer s(n, duplex_options(OpenMode::open, 4096));
  int sent = 0;
  for (;; ++sent) {
    const auto t0 = std::chrono::steady_clock::now();
    auto span = c.reserve(200, 2s);
    if (!span) {
      EXPECT_EQ(span.error(), Errc::timeout);
      EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms) << "no wait can free the client's own frames";
      break;
    }
    c.commit(200);
  }
  EXPECT_GT(sent, 10);
  EXPECT_EQ(c.outstanding(), static_cast<uint64_t>(sent));
  for (int i = 0; i < sent; ++i) {
    auto req = s.receive(1s);
    ASSERT_TRUE(req.ok());
    ASSERT_TRUE(s.respond(*req).ok());
  }
  {
    auto rep = c.receive(1s);
    ASSERT_TRUE(rep.ok());
    EXPECT_FALSE(c.reserve(200, 0ns).ok());  // held: the oldest frame is still in use
  }
  EXPECT_TRUE(c.reserve(200, 0ns).ok());  // released: room again
}

TEST(Duplex, LimitsGiveSpecificErrors) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 16));
  DuplexServer s(n, duplex_options(OpenMode::open));
  EXPECT_EQ(c.max_frame_payload(), (1u << 15) - 64);
  EXPECT_EQ(c.reserve(c.max_frame_payload() + 1).error(), Errc::message_too_large);
  ASSERT_TRUE(c.reserve(c.max_frame_payload()).ok());
  c.abort();
  auto span = c.reserve(128);
  ASSERT_TRUE(span.ok());
  c.commit(50);
  auto req = s.receive(1s);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->data().size(), 50u);
  EXPECT_EQ(req->frame().size(), 128u);  // the whole reservation is the server's to answer in
  EXPECT_EQ(s.respond(*req, 100, 29).error(), Errc::message_too_large);
  EXPECT_TRUE(req->valid());  // still unanswered
  // A longer answer than the request, within the frame.
  std::memset(req->frame().data(), 0x5A, 128);
  ASSERT_TRUE(s.respond(*req, 0, 128).ok());
  auto rep = c.receive(1s);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->size(), 128u);
  EXPECT_EQ(rep->data()[127], std::byte{0x5A});
}

TEST(Duplex, AnUnansweredRequestIsRejectedNotLost) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create));
  DuplexServer s(n, duplex_options(OpenMode::open));
  ASSERT_TRUE(c.send(std::as_bytes(std::span("abc", 3))).ok());
  ASSERT_TRUE(c.send(std::as_bytes(std::span("def", 3))).ok());
  { auto dropped = s.receive(1s); ASSERT_TRUE(dropped.ok()); }  // destroyed unanswered
  auto second = s.receive(1s);
  ASSERT_TRUE(second.ok());
  second->reject();
  auto r1 = c.receive(1s);
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->rejected());
  EXPECT_EQ(r1->size(), 0u);
  auto r2 = c.receive(1s);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->rejected());
  EXPECT_EQ(c.stats().rejected, 2u);
  EXPECT_EQ(s.stats().rejected, 2u);
}

TEST(Duplex, CommitTailGivesALargeUnusedFrontBack) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 16));
  DuplexServer s(n, duplex_options(OpenMode::open));
  for (size_t front : {size_t{0}, size_t{24}, size_t{4096}, size_t{10000}}) {
    const size_t used = 333;
    auto span = c.reserve(front + used);
    ASSERT_TRUE(span.ok());
    std::byte* tail = span->data() + front;
    fill_pattern(std::span(tail, used), 9);
    c.commit_tail(used);
    auto req = s.receive(1s);
    ASSERT_TRUE(req.ok());
    EXPECT_EQ(req->data().data() - s.segment().base(), tail - c.segment().base());  // where it was built
    EXPECT_EQ(req->data().size(), used);
    EXPECT_TRUE(check_pattern(req->data(), 9));
    if (front > 4096) EXPECT_LT(req->frame().size(), 400u) << "front given back";
    else EXPECT_EQ(req->frame().size(), front + used);
    invert(req->data());
    ASSERT_TRUE(s.respond(*req).ok());
    auto rep = c.receive(1s);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->data().data(), tail);
    EXPECT_TRUE(check_inverted(rep->data(), 9));
  }
  EXPECT_EQ(c.stats().occupancy_bytes, 0u);
}

TEST(Duplex, AttachChecksKindAndType) {
  TempName n;
  DuplexOptions o = duplex_options(OpenMode::create);
  o.segment.type = {"img.Image", 0x1234};
  DuplexClient c(n, o);
  DuplexOptions other = duplex_options(OpenMode::open);
  other.segment.type = {"img.Mask", 0x99};
  try {
    DuplexServer s(n, other);
    FAIL() << "attached with another type";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("img.Image"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("img.Mask"), std::string::npos) << e.what();
  }
  try {
    Reader r(n, opts(OpenMode::open));
    FAIL() << "a one-to-one reader attached to a duplex channel";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("duplex"), std::string::npos) << e.what();
  }
  TempName ch;
  Writer w(ch, opts(OpenMode::create));
  EXPECT_THROW(DuplexServer s(ch, duplex_options(OpenMode::open)), Error);
  EXPECT_THROW(DuplexClient c2(n, duplex_options(OpenMode::open)), Error);  // role busy
}

TEST(Duplex, HostileFramesAreRejectedNotFollowed) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 14));
  DuplexServer s(n, duplex_options(OpenMode::open, 1 << 14));
  auto span = c.reserve(64);
  ASSERT_TRUE(span.ok());
  auto* hdr = reinterpret_cast<wire::DuplexFrameHeader*>(span->data() - wire::kDuplexFrameHeaderSize);
  c.commit(64);
  hdr->request_offset = 60;  // 60 + 64 > capacity 64
  EXPECT_EQ(s.receive(100ms).error(), Errc::corrupt);
  EXPECT_EQ(s.receive(100ms).error(), Errc::corrupt);  // sticky
  // A server reading a frame that claims to run past the ring end.
  TempName n2;
  DuplexClient c2(n2, duplex_options(OpenMode::create, 1 << 14));
  DuplexServer s2(n2, duplex_options(OpenMode::open, 1 << 14));
  auto sp2 = c2.reserve(64);
  ASSERT_TRUE(sp2.ok());
  auto* h2 = reinterpret_cast<wire::DuplexFrameHeader*>(sp2->data() - wire::kDuplexFrameHeaderSize);
  c2.commit(64);
  h2->capacity = 0xFFFFFF00u;
  EXPECT_EQ(s2.receive(100ms).error(), Errc::corrupt);
  // A response word that points outside the frame.
  TempName n3;
  DuplexClient c3(n3, duplex_options(OpenMode::create));
  DuplexServer s3(n3, duplex_options(OpenMode::open));
  auto sp3 = c3.reserve(64);
  ASSERT_TRUE(sp3.ok());
  auto* h3 = reinterpret_cast<wire::DuplexFrameHeader*>(sp3->data() - wire::kDuplexFrameHeaderSize);
  c3.commit(64);
  auto req = s3.receive(1s);
  ASSERT_TRUE(req.ok());
  ASSERT_TRUE(s3.respond(*req).ok());
  std::atomic_ref<uint64_t>(h3->response).store(wire::make_response(wire::kResponseOk, 1000, 4000));
  EXPECT_EQ(c3.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(c3.stats().occupancy_bytes, 0u);  // the frame was released all the same
}

TEST(Duplex, InconsistentPositionsOnAttachAreCorrupt) {
  TempName n;
  {
    DuplexOptions o = duplex_options(OpenMode::create);
    o.unlink_on_close = false;
    DuplexClient c(n, o);
    c.segment().writer_block().pos.store(48);  // not 32-aligned
  }
  try {
    DuplexClient c(n, duplex_options(OpenMode::open));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::corrupt);
  }
}

TEST(Duplex, ClosingThePeerIsReported) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create));
  auto s = std::make_unique<DuplexServer>(n, duplex_options(OpenMode::open));
  ASSERT_TRUE(c.send(std::as_bytes(std::span("x", 1))).ok());
  s.reset();  // leaves before receiving it
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.receive(2s).error(), Errc::peer_closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  // A server that attaches later serves the request that waited for it.
  DuplexServer again(n, duplex_options(OpenMode::open));
  auto req = again.receive(1s);
  ASSERT_TRUE(req.ok());
  ASSERT_TRUE(again.respond(*req).ok());
  auto rep = c.receive(1s);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->size(), 1u);
  // And a client blocked in receive() sees the server leave.
  TempName m;
  DuplexClient c2(m, duplex_options(OpenMode::create));
  auto s2 = std::make_unique<DuplexServer>(m, duplex_options(OpenMode::open));
  ASSERT_TRUE(c2.send(std::as_bytes(std::span("y", 1))).ok());
  auto held = s2->receive(1s);
  ASSERT_TRUE(held.ok());
  held->reject();
  auto r2 = c2.receive(1s);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->rejected());
}

TEST(Duplex, BlockingWaitsWakeTheSleeper) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 16, WaitStrategy::blocking));
  std::thread server([&] {
    DuplexServer s(n, duplex_options(OpenMode::open, 1 << 16, WaitStrategy::blocking));
    for (int i = 0; i < 2000; ++i) {
      auto req = s.receive(5s);
      ASSERT_TRUE(req.ok());
      invert(req->data());
      ASSERT_TRUE(s.respond(*req).ok());
    }
  });
  for (uint64_t i = 1; i <= 2000; ++i) {
    auto span = c.reserve(32);
    ASSERT_TRUE(span.ok());
    fill_pattern(*span, i);
    c.commit(32);
    auto rep = c.receive(5s);
    ASSERT_TRUE(rep.ok());
    ASSERT_TRUE(check_inverted(rep->data(), i));
  }
  server.join();
}

TEST(Duplex, AMillionRoundTripsLeaveNothingBehind) {
  TempName n;
  {
    DuplexClient c(n, duplex_options(OpenMode::create, 1 << 14, WaitStrategy::busy_spin));
    std::thread server([&] {
      DuplexServer s(n, duplex_options(OpenMode::open, 1 << 14, WaitStrategy::busy_spin));
      for (uint64_t i = 0; i < 1'000'000; ++i) {
        auto req = s.receive(10s);
        ASSERT_TRUE(req.ok());
        auto d = req->data();
        uint64_t v;
        std::memcpy(&v, d.data(), 8);
        v = ~v;
        std::memcpy(d.data(), &v, 8);
        ASSERT_TRUE(s.respond(*req).ok());
      }
      EXPECT_EQ(s.outstanding(), 0u);
    });
    constexpr int kInFlight = 8;
    uint64_t sent = 0, got = 0;
    while (got < 1'000'000) {
      while (sent < 1'000'000 && sent - got < kInFlight) {
        auto span = c.reserve(64);
        ASSERT_TRUE(span.ok());
        const uint64_t v = sent + 1;
        std::memcpy(span->data(), &v, 8);
        c.commit(64);
        ++sent;
      }
      auto rep = c.receive(10s);
      ASSERT_TRUE(rep.ok());
      uint64_t v;
      std::memcpy(&v, rep->data().data(), 8);
      ASSERT_EQ(~v, got + 1);
      ++got;
    }
    server.join();
    EXPECT_EQ(c.stats().occupancy_bytes, 0u);
    EXPECT_EQ(c.stats().requests, 1'000'000u);
  }
  EXPECT_FALSE(Segment::unlink(n));  // both closed: the name is gone already
}

// ---------------------------------------------------------------------------------------------
// Real processes

TEST(DuplexProcesses, AServerProcessAnswersInPlace) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 20));
  ChildProcess server("flatlane_peer_duplex", {"serve", n.str(), "0"});
  ASSERT_TRUE(server.await("ready"));
  std::mt19937 rng(3);
  std::uniform_int_distribution<size_t> size(0, 100000);
  std::vector<std::pair<uint64_t, size_t>> in_flight;
  for (uint64_t i = 0; i < 3000; ++i) {
    const size_t sz = size(rng);
    auto span = c.reserve(sz, 5s);
    if (!span) {
      ASSERT_EQ(span.error(), Errc::timeout);
    } else {
      fill_pattern(*span, c.stats().requests + 1);
      in_flight.emplace_back(c.commit(sz), sz);
    }
    if (!span || in_flight.size() >= 4) {
      auto rep = c.receive(5s);
      ASSERT_TRUE(rep.ok()) << to_string(rep.error());
      ASSERT_EQ(rep->seq(), in_flight.front().first);
      ASSERT_EQ(rep->size(), in_flight.front().second);
      ASSERT_TRUE(check_inverted(rep->data(), rep->seq()));
      in_flight.erase(in_flight.begin());
    }
  }
  while (!in_flight.empty()) {
    auto rep = c.receive(5s);
    ASSERT_TRUE(rep.ok());
    ASSERT_TRUE(check_inverted(rep->data(), in_flight.front().first));
    in_flight.erase(in_flight.begin());
  }
  c.close();
  ASSERT_TRUE(server.await("done", 10s)) << server.last_line();
  EXPECT_EQ(server.wait_exit(), 0);
}

TEST(DuplexProcesses, AClientProcessIsServedInPlace) {
  TempName n;
  DuplexServer s(n, duplex_options(OpenMode::create, 1 << 16));
  ChildProcess client("flatlane_peer_duplex", {"client", n.str(), "5000", "size=3000", "outstanding=5"});
  ASSERT_TRUE(client.await("ready"));
  for (int i = 0; i < 5000; ++i) {
    auto req = s.receive(5s);
    ASSERT_TRUE(req.ok()) << to_string(req.error());
    ASSERT_TRUE(check_pattern(req->data(), req->seq()));
    invert(req->data());
    ASSERT_TRUE(s.respond(*req).ok());
  }
  ASSERT_TRUE(client.await("done", 10s)) << client.last_line();
  EXPECT_EQ(client.wait_exit(), 0);
}

// kill -9 of a server holding requests: the client learns of it within one liveness interval;
// a new server rejects what the dead one held (it may have half-modified it) and serves the rest.
TEST(DuplexProcesses, AKilledServersHeldRequestsAreRejectedAndTheRestServed) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create, 1 << 16));
  ChildProcess holder("flatlane_peer_duplex", {"hold", n.str(), "3"});
  ASSERT_TRUE(holder.await("ready"));
  for (uint64_t i = 1; i <= 3; ++i) {
    auto span = c.reserve(100);
    ASSERT_TRUE(span.ok());
    fill_pattern(*span, i);
    c.commit(100);
  }
  ASSERT_TRUE(holder.await("held 3"));
  for (uint64_t i = 4; i <= 6; ++i) {
    auto span = c.reserve(100);
    ASSERT_TRUE(span.ok());
    fill_pattern(*span, i);
    c.commit(100);
  }
  holder.kill9();
  holder.wait_exit();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.receive(5s).error(), Errc::peer_dead);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  InvertingServer next(n);
  for (uint64_t i = 1; i <= 6; ++i) {
    auto rep = c.receive(5s);
    ASSERT_TRUE(rep.ok()) << to_string(rep.error());
    EXPECT_EQ(rep->seq(), i);
    if (i <= 3) {
      EXPECT_TRUE(rep->rejected()) << i;
    } else {
      EXPECT_FALSE(rep->rejected()) << i;
      EXPECT_TRUE(check_inverted(rep->data(), i));
    }
  }
  EXPECT_EQ(c.stats().occupancy_bytes, 0u);
}

// kill -9 of a client with requests in flight: the server never blocks, answers what is there,
// and a new client frees the dead one's frames once they are answered, then works as usual.
TEST(DuplexProcesses, AKilledClientsFramesAreReclaimedByTheNextClient) {
  TempName n;
  constexpr uint64_t kCap = 1 << 14;
  DuplexServer s(n, duplex_options(OpenMode::create, kCap));
  ChildProcess client("flatlane_peer_duplex",
                      {"client", n.str(), "20", "size=1000", "outstanding=6", "hang=1"});
  ASSERT_TRUE(client.await("ready"));
  for (int i = 0; i < 20; ++i) {
    auto req = s.receive(5s);
    ASSERT_TRUE(req.ok());
    invert(req->data());
    ASSERT_TRUE(s.respond(*req).ok());
  }
  ASSERT_TRUE(client.await("outstanding 6")) << client.last_line();
  client.kill9();
  client.wait_exit();
  // The dead client's last six requests are still in the ring; the server answers them.
  std::vector<DuplexRequest> late;
  for (int i = 0; i < 6; ++i) {
    auto req = s.receive(1s);
    ASSERT_TRUE(req.ok()) << to_string(req.error());
    late.push_back(std::move(*req));
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.receive(5s).error(), Errc::peer_dead);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  DuplexClient next(n, duplex_options(OpenMode::open));
  EXPECT_EQ(next.outstanding(), 0u);
  EXPECT_GT(next.stats().occupancy_bytes, 5000u);  // the orphans, not yet answered
  // Not enough room while the orphans are unanswered; room once the server answers them.
  EXPECT_EQ(next.reserve(kCap / 2 - 64, 20ms).error(), Errc::timeout);
  for (auto& r : late) ASSERT_TRUE(s.respond(r).ok());
  std::thread server([&] {
    for (int i = 0; i < 100; ++i) {
      auto req = s.receive(5s);
      ASSERT_TRUE(req.ok());
      invert(req->data());
      ASSERT_TRUE(s.respond(*req).ok());
    }
  });
  for (int i = 0; i < 100; ++i) {
    auto span = next.reserve(3000, 1s);
    ASSERT_TRUE(span.ok()) << i << " " << to_string(span.error());
    const uint64_t seq = next.stats().requests + 1;
    fill_pattern(*span, seq);
    ASSERT_EQ(next.commit(3000), seq);
    auto rep = next.receive(5s);
    ASSERT_TRUE(rep.ok());
    ASSERT_TRUE(check_inverted(rep->data(), seq));
  }
  server.join();
  EXPECT_EQ(next.stats().occupancy_bytes, 0u);
}

TEST(Duplex, InspectionShowsKindRolesAndOccupancy) {
  TempName n;
  DuplexClient c(n, duplex_options(OpenMode::create));
  DuplexServer s(n, duplex_options(OpenMode::open));
  auto span = c.reserve(100);
  ASSERT_TRUE(span.ok());
  c.commit(100);
  const inspect::SegmentInfo info = inspect::inspect(n);
  EXPECT_EQ(info.kind, inspect::Kind::duplex);
  EXPECT_STREQ(inspect::to_string(info.kind), "duplex");
  ASSERT_TRUE(info.channel.has_value());
  EXPECT_EQ(info.channel->writer.role, inspect::Role::client);
  EXPECT_EQ(info.channel->reader.role, inspect::Role::server);
  EXPECT_TRUE(info.channel->writer.holds_role());
  EXPECT_EQ(info.channel->occupancy_bytes, wire::duplex_extent(100));
  EXPECT_TRUE(info.warnings.empty());
  EXPECT_FALSE(inspect::stale(info));
}
