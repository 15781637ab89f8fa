// A peer program for the duplex tests: one client or server in its own process.
//
//   flatlane_peer_duplex MODE NAME COUNT [key=value ...]
//
// Modes
//   serve   answer COUNT requests (0 = until the client goes away): every byte is inverted in
//           place and the same bytes are handed back
//   hold    receive COUNT requests and hold them unanswered; then hang (the test kills it)
//   client  send COUNT requests of the pattern for their seq (size=N bytes, outstanding=K in
//           flight), check every response is the inverted pattern; then hang if hang=1
// Output: "ready" once attached, "done <n>", "held <n>", "end <errc> <n>" on an API error, "bad <why>".
// Exit codes: 0 ok, 2 usage, 3 check failed, 10 + Errc on an API error.
#include <flatlane/flatlane.hpp>

#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "duplex_test_util.hpp"

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
  ::alarm(60);
  if (argc < 4) return 2;
  const std::string mode = argv[1], name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  size_t size = 256;
  uint64_t outstanding = 1;
  bool hang = false;
  for (int i = 4; i < argc; ++i) {
    const std::string kv = argv[i];
    if (kv.rfind("size=", 0) == 0) size = std::strtoull(kv.c_str() + 5, nullptr, 10);
    else if (kv.rfind("outstanding=", 0) == 0) outstanding = std::strtoull(kv.c_str() + 12, nullptr, 10);
    else if (kv == "hang=1") hang = true;
    else return 2;
  }
  try {
    if (mode == "serve" || mode == "hold") {
      DuplexServer s(name, duplex_options(OpenMode::open));
      say("ready");
      std::vector<DuplexRequest> held;
      uint64_t n = 0;
      while (count == 0 || n < count) {
        auto req = s.receive(20s);
        if (!req) {
          if (count == 0 && (req.error() == Errc::peer_closed || req.error() == Errc::peer_dead)) break;
          return fail(req.error(), n);
        }
        ++n;
        if (mode == "hold") {
          held.push_back(std::move(*req));
          continue;
        }
        invert(req->data());
        if (auto r = s.respond(*req); !r) return fail(r.error(), n);
      }
      if (mode == "hold") {
        say("held " + std::to_string(n));
        for (;;) std::this_thread::sleep_for(1s);
      }
      say("done " + std::to_string(n));
      return 0;
    }
    if (mode == "client") {
      DuplexClient c(name, duplex_options(OpenMode::open));
      say("ready");
      uint64_t sent = 0, got = 0;
      while (got < count) {
        while (sent < count && sent - got < outstanding) {
          auto span = c.reserve(size, 5s);
          if (!span) return fail(span.error(), got);
          fill_pattern(*span, sent + 1);
          c.commit(size);
          ++sent;
        }
        auto rep = c.receive(20s);
        if (!rep) return fail(rep.error(), got);
        ++got;
        if (rep->rejected() || !check_inverted(rep->data(), rep->seq())) {
          say("bad response " + std::to_string(rep->seq()));
          return 3;
        }
      }
      say("done " + std::to_string(got));
      if (hang) {
        // Leave requests outstanding, then hang: the test kills us with them in the ring.
        for (uint64_t i = 0; i < outstanding; ++i) {
          auto span = c.reserve(size, 5s);
          if (!span) break;
          fill_pattern(*span, ++sent);
          c.commit(size);
        }
        say("outstanding " + std::to_string(c.outstanding()));
        for (;;) std::this_thread::sleep_for(1s);
      }
      return 0;
    }
  } catch (const Error& e) {
    say(std::string("bad ") + e.what());
    return 10 + static_cast<int>(e.code());
  }
  return 2;
}
