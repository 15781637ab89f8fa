// Helpers shared by the duplex tests and their peer program.
#pragma once

#include <flatlane/flatlane.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace flatlane::test {

inline DuplexOptions duplex_options(OpenMode mode, uint64_t capacity = 1 << 16,
                                    WaitStrategy ws = WaitStrategy::spin_then_sleep) {
  DuplexOptions o;
  o.mode = mode;
  o.segment.ring_capacity = capacity;
  o.wait.strategy = ws;
  return o;
}

// Bytes derived from a seq, so every request is recognisable by its content.
inline std::byte pattern_byte(uint64_t seq, size_t i) {
  return static_cast<std::byte>((seq * 131 + i * 7 + (i >> 8)) & 0xFF);
}
inline void fill_pattern(std::span<std::byte> s, uint64_t seq) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = pattern_byte(seq, i);
}
inline bool check_pattern(std::span<const std::byte> s, uint64_t seq) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != pattern_byte(seq, i)) return false;
  return true;
}
// The servers' transformation: every byte inverted, in place.
inline void invert(std::span<std::byte> s) {
  for (auto& b : s) b = ~b;
}
inline bool check_inverted(std::span<const std::byte> s, uint64_t seq) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != ~pattern_byte(seq, i)) return false;
  return true;
}

}  // namespace flatlane::test
