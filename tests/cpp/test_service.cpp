// Request/reply services: correlation, concurrency, timeouts, streaming replies, and real
// processes killed with -9 on either side.
#include "child_process.hpp"
#include "service_test_util.hpp"
#include "test_util.hpp"

#include <flatlane/inspect.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

// Serves until stopped: answers every request (see service_test_util.hpp).
class EchoServer {
 public:
  explicit EchoServer(std::string_view name) : server_(name, service_options()) {
    thread_ = std::thread([this] {
      while (!stop_) {
        auto r = server_.receive(20ms);
        if (r) (void)answer(server_, *r);
      }
    });
  }
  ~EchoServer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ServiceServer& server() { return server_; }  // stats: after stop()

 private:
  ServiceServer server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST(Service, CallsAreAnsweredInOrder) {
  TempName n;
  EchoServer echo(n);
  ServiceClient client(n, service_options());
  for (uint64_t i = 0; i < 10000; ++i) {
    const auto req = request_payload(i);
    auto rep = client.call(req, 2s);
    ASSERT_TRUE(rep.ok()) << to_string(rep.error()) << " at " << i;
    ASSERT_EQ(rep->id(), i + 1);
    ASSERT_TRUE(is_answer(req, rep->data()));
    EXPECT_FALSE(rep->more());
  }
}

TEST(Service, ConcurrentClientsGetTheirOwnReplies) {
  TempName n;
  EchoServer echo(n);
  constexpr int kClients = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      ServiceClient client(n, service_options());
      for (uint64_t i = 0; i < 2000; ++i) {
        const auto req = request_payload(i * kClients + static_cast<uint64_t>(c));
        auto rep = client.call(req, 5s);
        if (!rep || !is_answer(req, rep->data())) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  echo.stop();
  EXPECT_EQ(echo.server().stats().dropped_replies, 0u);
  EXPECT_EQ(echo.server().stats().requests, kClients * 2000u);
}

TEST(Service, ATimedOutCallDoesNotConfuseTheNextOne) {
  TempName n;
  ServiceServer server(n, service_options());
  ServiceClient client(n, service_options());
  const auto first = request_payload(1);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(client.call(first, 100ms).error(), Errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  // The server answers the old request late, then the new one: the client skips the stale reply.
  auto old = server.receive(1s);
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(answer(server, *old).ok());
  const auto second = request_payload(2);
  auto id = client.send(second);
  ASSERT_TRUE(id.ok());
  auto r2 = server.receive(1s);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->id(), *id);
  ASSERT_TRUE(answer(server, *r2).ok());
  auto rep = client.receive(*id, 1s);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(is_answer(second, rep->data()));
}

TEST(Service, StreamingRepliesEndWithTheLastOne) {
  TempName n;
  ServiceServer server(n, service_options());
  ServiceClient client(n, service_options());
  auto id = client.send(as_bytes_of("count to five"));
  ASSERT_TRUE(id.ok());
  auto req = server.receive(1s);
  ASSERT_TRUE(req.ok());
  for (uint8_t k = 1; k <= 5; ++k) {
    const std::byte b{k};
    ASSERT_TRUE(server.reply(*req, std::span(&b, 1), /*more=*/k < 5).ok());
  }
  for (uint8_t k = 1; k <= 5; ++k) {
    auto rep = client.receive(*id, 1s);
    ASSERT_TRUE(rep.ok());
    ASSERT_EQ(rep->size(), 1u);
    EXPECT_EQ(rep->data()[0], std::byte{k});
    EXPECT_EQ(rep->more(), k < 5);
  }
}

TEST(Service, NoServerIsAClearError) {
  TempName n;
  ServiceClient client(n, service_options());
  EXPECT_EQ(client.call(as_bytes_of("anyone?"), 100ms).error(), Errc::not_found);
}

TEST(Service, ARequestTooLargeIsRefused) {
  TempName n;
  EchoServer echo(n);
  ServiceClient client(n, service_options());
  std::vector<std::byte> big(2000);
  EXPECT_EQ(client.call(big, 1s).error(), Errc::message_too_large);
  EXPECT_TRUE(client.call(request_payload(1), 1s).ok());
}

TEST(ServiceProcesses, ClientProcessesAgainstOneServer) {
  TempName n;
  EchoServer echo(n);
  std::vector<std::unique_ptr<ChildProcess>> clients;
  for (int i = 0; i < 4; ++i)
    clients.push_back(std::make_unique<ChildProcess>("flatlane_peer_service", std::vector<std::string>{"call", n.str(), "3000"}));
  for (auto& c : clients) {
    ASSERT_TRUE(c->await("done", 30s)) << c->last_line();
    EXPECT_TRUE(exited_ok(c->wait_exit()));
  }
}

// A client killed with a request outstanding: the server answers into the void and keeps serving.
TEST(ServiceProcesses, ADeadClientNeverBlocksTheServer) {
  TempName n;
  EchoServer echo(n);
  {
    ChildProcess hang("flatlane_peer_service", {"hang", n.str(), "1"});
    ASSERT_TRUE(hang.await("sent"));
    hang.kill9();
    hang.wait_exit();
  }
  ServiceClient client(n, service_options());
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(client.call(request_payload(i), 2s).ok()) << i;
}

TEST(ServiceProcesses, ADeadServerIsReportedQuickly) {
  TempName n;
  ChildProcess server("flatlane_peer_service", {"serve", n.str(), "0"});
  ASSERT_TRUE(server.await("ready"));
  ServiceClient client(n, service_options());
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(client.call(request_payload(i), 2s).ok());
  // Kill it while our next call waits.
  auto id = client.send(request_payload(99));
  ASSERT_TRUE(id.ok());
  server.kill9();
  server.wait_exit();
  const auto t0 = std::chrono::steady_clock::now();
  Errc e = Errc::ok;
  for (;;) {  // the server may have answered before it died
    auto rep = client.receive(*id, 5s);
    if (!rep) {
      e = rep.error();
      break;
    }
  }
  EXPECT_EQ(e, Errc::peer_dead);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
}

TEST(ServiceProcesses, AServerThatDiesBeforeItsFirstReplyIsReportedToo) {
  TempName n;
  ChildProcess server("flatlane_peer_service", {"serve", n.str(), "0"});
  ASSERT_TRUE(server.await("ready"));
  ServiceClient client(n, service_options());
  server.kill9();  // never opened our reply channel
  server.wait_exit();
  auto id = client.send(request_payload(1));
  if (id) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(client.receive(*id, 5s).error(), Errc::peer_dead);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  } else {
    EXPECT_EQ(id.error(), Errc::timeout);  // its queue may be gone with it
  }
}

TEST(Service, AZeroTimeoutPollsForAReply) {
  TempName n;
  ServiceServer server(n, service_options());
  ServiceClient client(n, service_options());
  auto id = client.send(as_bytes_of("poll me"));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(client.receive(*id, 0ns).error(), Errc::timeout);  // not answered yet
  auto req = server.receive(1s);
  ASSERT_TRUE(req.ok());
  ASSERT_TRUE(answer(server, *req).ok());
  auto rep = client.receive(*id, 0ns);
  ASSERT_TRUE(rep.ok()) << to_string(rep.error());
  EXPECT_TRUE(is_answer(as_bytes_of("poll me"), rep->data()));
}

// A million calls from two clients: every reply correlated and correct, no reply dropped, and
// nothing left in /dev/shm once everybody has gone.
TEST(Service, AMillionCallsLeaveNothingBehind) {
  TempName n;
#if defined(__SANITIZE_THREAD__)
  constexpr uint64_t kCalls = 50'000;  // TSan runs ~20x slower; the Release build does the million
#else
  constexpr uint64_t kCalls = 1'000'000;
#endif
  {
    ServiceOptions o = service_options();
    ServiceServer server(n, o);
    std::atomic<bool> stop{false};
    std::thread serving([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        auto req = server.receive(1ms);
        if (!req) continue;
        ASSERT_TRUE(answer(server, *req).ok());
      }
    });
    auto client_main = [&](uint64_t base) {
      ServiceClient client(n, o);
      for (uint64_t i = 0; i < kCalls / 2; ++i) {
        const uint64_t v = base + i;
        auto rep = client.call(std::as_bytes(std::span(&v, 1)), 10s);
        ASSERT_TRUE(rep.ok()) << i << " " << to_string(rep.error());
        ASSERT_EQ(rep->size(), 8u);
        uint64_t got;
        std::memcpy(&got, rep->data().data(), 8);
        uint64_t want = v;  // answer() adds one to every byte
        auto* b = reinterpret_cast<uint8_t*>(&want);
        for (int k = 0; k < 8; ++k) b[k] = static_cast<uint8_t>(b[k] + 1);
        ASSERT_EQ(got, want) << i;
      }
    };
    std::thread c1(client_main, 0);
    std::thread c2(client_main, uint64_t{1} << 40);
    c1.join();
    c2.join();
    stop = true;
    serving.join();
    EXPECT_EQ(server.stats().requests, kCalls);
    EXPECT_EQ(server.stats().replies, kCalls);
    EXPECT_EQ(server.stats().dropped_replies, 0u);
  }
  for (const std::string& s : inspect::list_segments())
    EXPECT_NE(s.rfind(n.str(), 0), 0u) << "left behind: " << s;
}
