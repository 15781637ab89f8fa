// Demo: two processes bounce 64-byte frames over a pair of Flatlane channels and print the
// one-way latency (round trip / 2) for busy-poll and blocking waits.
//
//   flatlane_ping_pong [--rounds N]
#include <flatlane/flatlane.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono;
using namespace flatlane;

namespace {

ChannelOptions options(OpenMode mode, WaitStrategy ws) {
  ChannelOptions o;
  o.mode = mode;
  o.segment.ring_capacity = 1 << 16;
  o.segment.type = {"flatlane.demo.Ping", 1};
  o.wait.strategy = ws;
  return o;
}

// The child: echo every frame back until the parent closes the channel.
int run_echo(const std::string& base, WaitStrategy ws) {
  Reader in(base + ".ping", options(OpenMode::open, ws));
  Writer out(base + ".pong", options(OpenMode::open, ws));
  for (;;) {
    auto f = in.read(seconds(10));
    if (!f) return f.error() == Errc::peer_closed ? 0 : 1;
    auto span = out.reserve(f->size(), seconds(10));
    if (!span) return 1;
    std::memcpy(span->data(), f->ptr(), f->size());
    out.commit(f->size());
  }
}

void measure(const char* argv0, WaitStrategy ws, const char* label, int rounds) {
  std::string base = "demo." + std::to_string(getpid()) + "." + label;
  auto ping = std::make_unique<Writer>(base + ".ping", options(OpenMode::create, ws));
  Reader pong(base + ".pong", options(OpenMode::create, ws));
  pid_t child = fork();
  if (child == 0) {
    execl(argv0, argv0, "--echo", base.c_str(), label, static_cast<char*>(nullptr));
    _exit(127);
  }
  std::vector<double> us;
  us.reserve(static_cast<size_t>(rounds));
  std::byte payload[64]{};
  for (int i = -rounds / 10; i < rounds; ++i) {  // first 10% warm up
    std::memcpy(payload, &i, sizeof i);  // the echo must carry this round's number back
    auto t0 = steady_clock::now();
    auto span = ping->reserve(sizeof payload);
    std::memcpy(span->data(), payload, sizeof payload);
    ping->commit(sizeof payload);
    auto back = pong.read(seconds(10));
    if (!back) {
      std::fprintf(stderr, "echo failed: %s\n", to_string(back.error()));
      std::exit(1);
    }
    if (back->size() != sizeof payload || std::memcmp(back->ptr(), payload, sizeof payload) != 0) {
      std::fprintf(stderr, "echo of round %d came back wrong\n", i);
      std::exit(1);
    }
    auto t1 = steady_clock::now();
    if (i >= 0) us.push_back(duration<double, std::micro>(t1 - t0).count() / 2);
  }
  ping.reset();  // tells the child to stop (peer_closed)
  int status = 0;
  waitpid(child, &status, 0);
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<size_t>(p * static_cast<double>(us.size() - 1))]; };
  std::printf("  %-10s 64 B one-way latency: p50 %7.2f us   p99 %7.2f us   p99.9 %7.2f us   (%d round trips)\n",
              label, pct(0.50), pct(0.99), pct(0.999), rounds);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--echo") == 0) {
    WaitStrategy ws = std::strcmp(argv[3], "busy-poll") == 0 ? WaitStrategy::busy_spin : WaitStrategy::blocking;
    return run_echo(argv[2], ws);
  }
  int rounds = 20000;
  if (argc == 3 && std::strcmp(argv[1], "--rounds") == 0) rounds = std::max(10, std::atoi(argv[2]));
  std::printf("Flatlane C++ demo: two processes, two SPSC channels, 64-byte frames\n");
  measure(argv[0], WaitStrategy::busy_spin, "busy-poll", rounds);
  measure(argv[0], WaitStrategy::blocking, "blocking", std::max(10, rounds / 4));
  return 0;
}
