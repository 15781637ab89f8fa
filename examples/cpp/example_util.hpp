// Small helpers the pattern examples share: child processes, FlatBuffers in topic slots, timing.
#pragma once

#include <flatlane/flatlane.hpp>
#include <flatlane/typed.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace example {

// Runs `body` in a forked child; returns its pid. The child exits with body's return value.
inline pid_t spawn(const std::function<int()>& body) {
  std::fflush(stdout);  // or the child would print our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    std::fflush(stdout);
    ::_exit(rc);
  }
  return pid;
}

inline bool wait_ok(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Builds a FlatBuffer of type Msg in a loaned topic slot and publishes it where it ends.
template <class Msg, class Build>
flatlane::Result<void> publish_built(flatlane::TopicPublisher& pub, Build&& build) {
  auto slot = pub.loan(pub.max_message());
  if (!slot) return slot.error();
  auto size = flatlane::detail::build_into<Msg>(*slot, std::forward<Build>(build));
  if (!size) {
    pub.discard();
    return size.error();
  }
  return pub.publish_tail(*size);
}

// The verified root of a received sample, or nullptr.
template <class Msg>
const Msg* root_of(const flatlane::Sample& s) {
  return flatlane::detail::verified_root<Msg>(s.data(), true);
}

inline std::string unique_name(const char* what) {
  return std::string("example.") + what + "." + std::to_string(::getpid());
}

inline double percentile_us(std::vector<uint64_t>& ns, double q) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  return static_cast<double>(ns[static_cast<size_t>(q * static_cast<double>(ns.size() - 1))]) / 1000.0;
}

inline uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace example
