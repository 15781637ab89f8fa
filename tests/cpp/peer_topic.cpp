// A peer program for the topic tests: one publisher or subscriber in its own process.
//
//   flatlane_peer_topic MODE TOPIC COUNT [key=value ...]
//
// Modes
//   publish    publish COUNT messages (0 = forever) with ids 0.., payload derived from the id
//   subscribe  receive COUNT messages, checking each payload and that ids increase by one
//   hold       receive COUNT messages and hold them all; then hang (the test kills it)
// Keys: mode=drop|block (subscriber mode, default drop), size=N (payload bytes, default 200),
//       dist=work (the topic is a work queue: push/pull)
// Output: "ready" once attached, "done <n>", "held <n>", "end <errc> <n>" on an API error, "bad <why>".
// Exit codes: 0 ok, 2 usage, 3 payload or order check failed, 10 + Errc on an API error.
#include <flatlane/flatlane.hpp>

#include "topic_test_util.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace flatlane;
using namespace flatlane::test;

namespace {
void say(const std::string& s) {
  const std::string line = s + "\n";
  (void)!::write(STDOUT_FILENO, line.data(), line.size());
}
int fail(Errc e, uint64_t n) {
  say(std::string("end ") + to_string(e) + " " + std::to_string(n));
  return 10 + static_cast<int>(e);
}
}  // namespace

int main(int argc, char** argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::alarm(60);
  if (argc < 4) return 2;
  const std::string mode = argv[1], name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  TopicOptions o = topic_options(OpenMode::open);
  size_t size = 200;
  for (int i = 4; i < argc; ++i) {
    const std::string kv = argv[i];
    if (kv == "mode=block") o.subscriber_mode = SubscriberMode::block_publisher;
    else if (kv.rfind("size=", 0) == 0) size = std::strtoull(kv.c_str() + 5, nullptr, 10);
    else if (kv == "dist=work") o = work_options(OpenMode::open);
  }
  try {
    if (mode == "publish") {
      TopicPublisher pub(name, o);
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        if (auto r = send_message(pub, i, size); !r) return fail(r.error(), i);
      }
      say("done " + std::to_string(count));
    } else if (mode == "subscribe" || mode == "hold") {
      TopicSubscriber sub(name, o);
      say("ready");
      std::vector<Sample> held;
      uint64_t expect = 0;
      for (uint64_t i = 0; i < count; ++i) {
        auto s = sub.receive(std::chrono::seconds(20));
        if (!s) return fail(s.error(), i);
        const uint64_t id = message_id(*s);
        const bool in_order = o.topic.distribution == Distribution::work_queue ? id >= expect : id == expect;
        if (!message_ok(*s) || (mode == "subscribe" && !in_order)) {
          say("bad message " + std::to_string(id) + " expected " + std::to_string(expect));
          return 3;
        }
        expect = id + 1;
        if (mode == "hold") held.push_back(std::move(*s));
      }
      if (mode == "hold") {
        say("held " + std::to_string(held.size()));
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      say("done " + std::to_string(count));
    } else {
      return 2;
    }
  } catch (const Error& e) {
    say(std::string("error ") + to_string(e.code()) + " " + e.what());
    return 40 + static_cast<int>(e.code());
  }
  return 0;
}
