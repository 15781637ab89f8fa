// Generated request/reply endpoints (fltest::Calc in tests/cpp/schema/typed_test.fbs): requests
// and replies built in place and verified, streaming replies, errors, and a server process.
#include "child_process.hpp"
#include "test_util.hpp"
#include "typed_test_util.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

EndpointOptions named(const TempName& n) {
  EndpointOptions o;
  o.name = n.str();
  return o;
}

}  // namespace

TEST(TypedService, CallsAreBuiltInPlaceAndVerified) {
  TempName n;
  fltest::Calc::Add::Server server(named(n));
  std::atomic<bool> stop{false};
  std::thread t([&] {
    while (!stop) {
      auto req = server.receive(10ms);
      if (!req) continue;
      ASSERT_TRUE(server.reply(*req, [&](auto& b) { return fltest::CreateAddReply(b, (*req)->a() + (*req)->b()); }).ok());
    }
  });
  fltest::Calc::Add::Client client(named(n));
  for (int64_t i = 0; i < 5000; ++i) {
    auto rep = client.call([&](flatbuffers::FlatBufferBuilder& b) { return fltest::CreateAddRequest(b, i, 2 * i); }, 2s);
    ASSERT_TRUE(rep.ok()) << to_string(rep.error());
    ASSERT_EQ((*rep)->sum(), 3 * i);
    EXPECT_FALSE(rep->more());
  }
  stop = true;
  t.join();
}

TEST(TypedService, StreamingRepliesCarryMoreUntilTheLast) {
  TempName n;
  fltest::Calc::Count::Server server(named(n));
  fltest::Calc::Count::Client client(named(n));
  auto id = client.send([](auto& b) { return fltest::CreateCountRequest(b, 7); });
  ASSERT_TRUE(id.ok());
  auto req = server.receive(1s);
  ASSERT_TRUE(req.ok());
  for (uint32_t k = 1; k <= (*req)->to(); ++k)
    ASSERT_TRUE(server.reply(*req, [&](auto& b) { return fltest::CreateCountReply(b, k); }, k < (*req)->to()).ok());
  for (uint32_t k = 1; k <= 7; ++k) {
    auto rep = client.receive(*id, 1s);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ((*rep)->n(), k);
    EXPECT_EQ(rep->more(), k < 7);
  }
}

TEST(TypedService, OversizeRequestsAndRepliesAreRefused) {
  TempName n;
  fltest::Calc::Count::Server server(named(n));
  fltest::Calc::Count::Client client(named(n));
  // The channel's max_message is 1 KiB: a request padded past it cannot be built.
  auto big = client.send([](auto& b) {
    b.CreateVector(std::vector<uint8_t>(2000));
    return fltest::CreateCountRequest(b, 1);
  });
  EXPECT_EQ(big.error(), Errc::message_too_large);
  auto id = client.send([](auto& b) { return fltest::CreateCountRequest(b, 1); });
  ASSERT_TRUE(id.ok());
  auto req = server.receive(1s);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(server.reply(*req, [](auto& b) {
    b.CreateVector(std::vector<uint8_t>(2000));
    return fltest::CreateCountReply(b, 1);
  }).error(), Errc::message_too_large);
  ASSERT_TRUE(server.reply(*req, [](auto& b) { return fltest::CreateCountReply(b, 1); }).ok());
  auto rep = client.receive(*id, 1s);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ((*rep)->n(), 1u);
}

TEST(TypedService, AttachingWithOtherMessageTypesFails) {
  TempName n;
  fltest::Calc::Add::Server server(named(n));
  try {
    fltest::Calc::Count::Client other(named(n));
    FAIL() << "a Count client attached to an Add service";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.AddRequest"), std::string::npos) << e.what();
  }
}

TEST(TypedService, AMalformedRequestIsReportedAndTheServerGoesOn) {
  TempName n;
  fltest::Calc::Add::Server server(named(n));
  fltest::Calc::Add::Client client(named(n));
  // A raw client of the same types sends bytes that are not an AddRequest.
  ServiceClient raw(n, detail::service_options<fltest::Calc::Add>(named(n)));
  ASSERT_TRUE(raw.send(as_bytes(std::span("\xff\xff\xff\x7f garbage", 12))).ok());
  EXPECT_EQ(server.receive(1s).error(), Errc::corrupt);
  auto id = client.send([](auto& b) { return fltest::CreateAddRequest(b, 1, 2); });
  ASSERT_TRUE(id.ok());
  auto req = server.receive(1s);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ((*req)->a() + (*req)->b(), 3);
}

TEST(TypedService, AServerProcessAnswersAndItsDeathIsReported) {
  TempName n;
  ChildProcess server("flatlane_peer_typed", {"calc", n.str(), "0"});
  ASSERT_TRUE(server.await("ready"));
  fltest::Calc::Add::Client client(named(n));
  for (int64_t i = 0; i < 2000; ++i) {
    auto rep = client.call([&](auto& b) { return fltest::CreateAddRequest(b, i, 1); }, 5s);
    ASSERT_TRUE(rep.ok()) << to_string(rep.error());
    ASSERT_EQ((*rep)->sum(), i + 1);
  }
  server.kill9();
  server.wait_exit();
  auto rep = client.call([](auto& b) { return fltest::CreateAddRequest(b, 1, 1); }, 5s);
  EXPECT_EQ(rep.error(), Errc::peer_dead);
}
