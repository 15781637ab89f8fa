// A peer program for the service tests: a server or a client in its own process.
//
//   flatlane_peer_service MODE SERVICE COUNT
//
// Modes
//   serve   answer COUNT requests (0 = forever): the reply is the request with every byte + 1
//   call    make COUNT calls with payloads derived from the call number, checking each reply
//   hang    make one request and never read the reply (the test kills it)
// Output: "ready", "done <n>", "end <errc> <n>", "bad <why>".
// Exit codes: 0 ok, 2 usage, 3 a reply was wrong, 10 + Errc on an API error, 40 + Errc thrown.
#include <flatlane/flatlane.hpp>

#include "service_test_util.hpp"

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
  if (argc != 4) return 2;
  const std::string mode = argv[1], name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  try {
    if (mode == "serve") {
      ServiceServer server(name, service_options());
      say("ready");
      for (uint64_t i = 0; count == 0 || i < count; ++i) {
        auto r = server.receive();
        if (!r) return fail(r.error(), i);
        (void)answer(server, *r);  // a client that left is not our failure
      }
      say("done " + std::to_string(count));
    } else if (mode == "call" || mode == "hang") {
      ServiceClient client(name, service_options());
      say("ready");
      if (mode == "hang") {
        auto id = client.send(as_bytes_of("never read"));
        if (!id) return fail(id.error(), 0);
        say("sent");
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      for (uint64_t i = 0; i < count; ++i) {
        const std::vector<std::byte> req = request_payload(i);
        auto rep = client.call(req, std::chrono::seconds(10));
        if (!rep) return fail(rep.error(), i);
        if (!is_answer(req, rep->data())) {
          say("bad reply " + std::to_string(i));
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
