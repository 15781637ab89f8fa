// A peer program for the typed-endpoint tests: generated endpoints in their own process.
//
//   flatlane_peer_typed MODE CHANNEL COUNT
//
// Modes
//   publish    fltest::Samples::samples Publisher: COUNT samples with ids 0..COUNT-1
//              (COUNT = 0: forever, until killed).
//   subscribe  fltest::Samples::samples Subscriber: COUNT samples, each checked.
//   push       fltest::Bulk::blobs Pusher: COUNT blobs of sizes 0..200 KiB (many chunked).
//   pull       fltest::Bulk::blobs Puller: COUNT blobs, each checked.
//   calc       fltest::Calc::Add Server: answers COUNT requests (0 = forever) with a + b.
// Output: "ready" once attached, "done <n>" at the end, "end <errc> <n>" on an API error.
// Exit codes: 0 ok, 2 usage, 3 a message failed its check, 10 + Errc on an API error.
#include "typed_test_util.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/prctl.h>
#include <csignal>
#include <unistd.h>

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
  ::alarm(60);  // a forgotten peer ends itself
  if (argc != 4) return 2;
  const std::string mode = argv[1];
  EndpointOptions o;
  o.name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  try {
    if (mode == "publish") {
      fltest::Samples::samples::Publisher pub(o);
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        auto r = pub.send([&](auto& b) { return build_sample(b, i); });
        if (!r) return fail(r.error(), i);
      }
      say("done " + std::to_string(count));
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
      }
      say("done " + std::to_string(count));
    } else if (mode == "push") {
      fltest::Bulk::blobs::Pusher push(o);
      say("ready");
      for (uint64_t i = 0; i < count; ++i) {
        auto r = push.send([&](auto& b) { return build_blob(b, i, blob_size(i)); });
        if (!r) return fail(r.error(), i);
      }
      say("done " + std::to_string(count) + " chunked " + std::to_string(push.stats().chunked));
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
    } else if (mode == "calc") {
      fltest::Calc::Add::Server server(o);
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        auto req = server.receive();
        if (!req) return fail(req.error(), i);
        (void)server.reply(*req, [&](auto& b) { return fltest::CreateAddReply(b, (*req)->a() + (*req)->b()); });
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
