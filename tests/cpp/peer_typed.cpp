// A peer program for the typed-endpoint tests: generated endpoints in their own process.
//
//   flatlane_peer_typed MODE CHANNEL COUNT [key=value ...]
//
// Modes
//   publish    fltest::Samples::samples Publisher: COUNT samples with ids 0..COUNT-1
//              (COUNT = 0: forever, until killed). subscribers=K: first waits until K
//              subscribers are attached.
//   subscribe  fltest::Samples::samples Subscriber: COUNT samples with ids 0..COUNT-1, each
//              checked. drop=1: a drop_oldest subscriber that reads until the publisher leaves
//              (ids increasing, each checked) and reports "done <received> dropped <n>".
//              delay_us=N: sleeps N us after each message.
//   push       fltest::Bulk::blobs Pusher: COUNT blobs of sizes 0..200 KiB, one slot each.
//   pull       fltest::Bulk::blobs Puller: COUNT blobs, each checked.
//   work       fltest::Bulk::capped Puller (one of several workers): small blobs (size id % 100)
//              until the pusher leaves; prints "ids <id,id,...>" then "done <n>".
//   calc       fltest::Calc::Add Server: answers COUNT requests (0 = forever) with a + b.
//   add        fltest::Calc::Add Client: COUNT calls (a = i, b = 2 i + 1), each sum checked.
// Output: "ready" once attached, "done <n>" at the end, "end <errc> <n>" on an API error.
// Exit codes: 0 ok, 2 usage, 3 a message failed its check, 10 + Errc on an API error.
#include "typed_test_util.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <sys/prctl.h>
#include <csignal>
#include <thread>
#include <unistd.h>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

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
  ::alarm(60);  // a forgotten peer ends itself
  if (argc < 4) return 2;
  const std::string mode = argv[1];
  EndpointOptions o;
  o.name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  std::map<std::string, uint64_t> kv;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) return 2;
    kv[a.substr(0, eq)] = std::strtoull(a.c_str() + eq + 1, nullptr, 10);
  }
  const auto delay = std::chrono::microseconds(kv["delay_us"]);
  try {
    if (mode == "publish") {
      fltest::Samples::samples::Publisher pub(o);
      while (pub.subscriber_count() < kv["subscribers"]) std::this_thread::sleep_for(1ms);
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        auto r = pub.send([&](auto& b) { return build_sample(b, i); });
        if (!r) return fail(r.error(), i);
      }
      say("done " + std::to_string(count));
    } else if (mode == "subscribe" && kv["drop"] != 0) {
      o.subscriber_mode = SubscriberMode::drop_oldest;
      fltest::Samples::samples::Subscriber sub(o);
      say("ready");
      uint64_t got = 0, last = 0;
      for (;;) {
        auto m = sub.receive(10s);
        if (!m) {
          if (m.error() != Errc::peer_closed) return fail(m.error(), got);
          break;
        }
        const uint64_t id = (*m)->id();
        if ((got != 0 && id <= last) || !check_sample(**m, id).empty()) {
          say("bad sample " + std::to_string(id) + " after " + std::to_string(last));
          return 3;
        }
        last = id;
        ++got;
        std::this_thread::sleep_for(delay);
      }
      say("done " + std::to_string(got) + " dropped " + std::to_string(sub.stats().dropped) + " last " +
          std::to_string(last));
    } else if (mode == "subscribe") {
      fltest::Samples::samples::Subscriber sub(o);
      say("ready");
      for (uint64_t i = 0; i < count; ++i) {
        auto m = sub.receive();
        if (!m) return fail(m.error(), i);
        if (auto why = check_sample(**m, i); !why.empty()) {
          say("bad " + why);
          return 3;
        }
        std::this_thread::sleep_for(delay);
      }
      say("done " + std::to_string(count));
    } else if (mode == "push") {
      fltest::Bulk::blobs::Pusher push(o);
      say("ready");
      for (uint64_t i = 0; i < count; ++i) {
        auto r = push.send([&](auto& b) { return build_blob(b, i, blob_size(i)); });
        if (!r) return fail(r.error(), i);
      }
      say("done " + std::to_string(count));
    } else if (mode == "pull") {
      fltest::Bulk::blobs::Puller pull(o);
      say("ready");
      for (uint64_t i = 0; i < count; ++i) {
        auto m = pull.receive();
        if (!m) return fail(m.error(), i);
        if (auto why = check_blob(**m, i, blob_size(i)); !why.empty()) {
          say("bad " + why);
          return 3;
        }
      }
      say("done " + std::to_string(count));
    } else if (mode == "work") {
      fltest::Bulk::capped::Puller pull(o);
      say("ready");
      std::string ids;
      uint64_t n = 0;
      for (;;) {
        auto m = pull.receive(10s);
        if (!m) {
          if (m.error() != Errc::peer_closed) return fail(m.error(), n);
          break;
        }
        const uint64_t id = (*m)->id();
        if (auto why = check_blob(**m, id, id % 100); !why.empty()) {
          say("bad " + why);
          return 3;
        }
        ids += (n++ ? "," : "") + std::to_string(id);
        std::this_thread::sleep_for(delay);
      }
      say("ids " + ids);
      say("done " + std::to_string(n));
    } else if (mode == "calc") {
      fltest::Calc::Add::Server server(o);
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        auto req = server.receive();
        if (!req) return fail(req.error(), i);
        (void)server.reply(*req, [&](auto& b) { return fltest::CreateAddReply(b, (*req)->a() + (*req)->b()); });
      }
      say("done " + std::to_string(count));
    } else if (mode == "add") {
      fltest::Calc::Add::Client client(o);
      say("ready");
      for (uint64_t i = 0; i < count; ++i) {
        const auto a = static_cast<int64_t>(i), b = static_cast<int64_t>(2 * i + 1);
        auto rep = client.call([&](auto& fbb) { return fltest::CreateAddRequest(fbb, a, b); }, 10s);
        if (!rep) return fail(rep.error(), i);
        if ((*rep)->sum() != a + b) {
          say("bad sum " + std::to_string((*rep)->sum()) + " for " + std::to_string(i));
          return 3;
        }
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
