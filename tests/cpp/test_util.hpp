// Shared helpers for the C++ tests: unique channel names and automatic cleanup.
#pragma once

#include <flatlane/flatlane.hpp>

#include <atomic>
#include <ostream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace flatlane {
// Readable error kinds in assertion failures (found by GoogleTest through ADL).
inline void PrintTo(Errc e, std::ostream* os) { *os << "Errc::" << to_string(e); }
}  // namespace flatlane

namespace flatlane::test {

// A channel name unique to this process and call; the segment is unlinked when it goes away.
class TempName {
 public:
  explicit TempName(const std::string& tag = "t") {
    static std::atomic<int> counter{0};
    name_ = "test." + tag + "." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  }
  ~TempName() { Segment::unlink(name_); }
  const std::string& str() const { return name_; }
  operator std::string_view() const { return name_; }  // NOLINT(google-explicit-constructor)

 private:
  std::string name_;
};

inline ChannelOptions opts(OpenMode mode, uint64_t capacity = 1 << 16,
                           WaitStrategy ws = WaitStrategy::spin_then_sleep) {
  ChannelOptions o;
  o.mode = mode;
  o.segment.ring_capacity = capacity;
  o.wait.strategy = ws;
  return o;
}

}  // namespace flatlane::test
