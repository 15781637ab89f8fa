// Pieces the Flatlane cases (raw frames in flatlane_cases.cpp, typed messages in
// typed_cases.cpp) share.
#pragma once

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

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

}  // namespace flbench

#endif
