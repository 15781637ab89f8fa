// Pieces the Flatlane cases (raw frames in flatlane_cases.cpp, typed messages in
// typed_cases.cpp) share.
#pragma once

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <flatlane/flatlane.hpp>

#include "platform.hpp"

namespace flbench {

// Two unique channel names for one case. The runtime unlinks a segment
// when its last endpoint closes; if a case fails half-way this destructor
// unlinks whatever is left, and the paths are registered so the signal
// handler can remove them if the program is killed.
class ChannelNames {
 public:
  ChannelNames() {
    const std::string base = "flatlane-bench-" + unique_suffix();
    names_[0] = base + "-fwd";
    names_[1] = base + "-back";
    for (const std::string& n : names_) register_cleanup_path(dev_shm_path(n));
  }
  ~ChannelNames() {
    for (const std::string& n : names_) {
      try {
        flatlane::Segment::unlink(n);
      } catch (...) {
      }
      unregister_cleanup_path(dev_shm_path(n));
    }
  }
  ChannelNames(const ChannelNames&) = delete;
  ChannelNames& operator=(const ChannelNames&) = delete;

  const std::string& fwd() const { return names_[0]; }   // parent -> child
  const std::string& back() const { return names_[1]; }  // child -> parent

 private:
  static std::string dev_shm_path(const std::string& name) { return "/dev/shm/flatlane." + name; }
  std::string names_[2];
};

// busy_spin never yields, so with both processes on one CPU every round
// trip would cost a scheduler time slice: skip instead of timing that.
inline bool busy_spin_possible() { return cpus().separate_cores; }
inline constexpr const char* kNeedsTwoCpus = "busy_spin needs two CPUs";

// The two sides of a --peer stream (another program holds the other end): send messages
// 1..warmup+count, or receive them and print "msgs_per_s N" over the last `count`.
// Exit codes: 0 ok, 3 a payload read back wrong, 4 a send or receive failed.
template <class Send>
int peer_produce(std::uint64_t warmup, std::uint64_t count, Send&& send_one) {
  for (std::uint64_t seq = 1; seq <= warmup + count; ++seq) {
    if (send_one(seq) != flatlane::Errc::ok) return 4;
  }
  return 0;
}

template <class Receive>
int peer_consume(std::uint64_t warmup, std::uint64_t count, Receive&& receive_one) {
  bool bad = false;
  std::uint64_t seq = 1;
  for (; seq <= warmup; ++seq) {
    if (receive_one(seq, bad) != flatlane::Errc::ok) return 4;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (; seq <= warmup + count; ++seq) {
    if (receive_one(seq, bad) != flatlane::Errc::ok) return 4;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (bad) return 3;
  std::printf("msgs_per_s %.0f\n", static_cast<double>(count) / s);
  return 0;
}

}  // namespace flbench

#endif
