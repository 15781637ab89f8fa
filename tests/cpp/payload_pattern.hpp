// The payload pattern shared by the multi-process tests and their peer program: both sides derive
// every byte from (seed, seq), so a receiver checks content without any shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace flatlane::test {

constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline size_t payload_size(uint64_t seed, uint64_t seq, size_t max) {
  return static_cast<size_t>(mix64(seed * 0x100000001B3ull ^ (seq << 1) ^ 0x5A5A5A5Aull) % (max + 1));
}
inline void fill_payload(uint64_t seed, uint64_t seq, std::byte* p, size_t n) {
  const uint64_t base = mix64(seed ^ mix64(seq));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = mix64(base + i);
    std::memcpy(p + i, &w, 8);
  }
  if (i < n) {
    const uint64_t w = mix64(base + i);
    std::memcpy(p + i, &w, n - i);
  }
}
inline bool check_payload(uint64_t seed, uint64_t seq, const std::byte* p, size_t n) {
  const uint64_t base = mix64(seed ^ mix64(seq));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != mix64(base + i)) return false;
  }
  if (i < n) {
    const uint64_t w = mix64(base + i);
    if (std::memcmp(p + i, &w, n - i) != 0) return false;
  }
  return true;
}
// Whole messages (write_message/read_message): 8-byte id k, then a stream derived from (seed, k).
inline size_t message_size(uint64_t seed, uint64_t k, size_t min, size_t max) {
  return min + static_cast<size_t>(mix64(seed * 0x9E3779B1ull ^ (k << 3) ^ 0x77ull) % (max - min + 1));
}
inline void fill_message(uint64_t seed, uint64_t k, std::byte* p, size_t n) {
  std::memcpy(p, &k, 8);
  fill_payload(seed ^ 0xC0FFEEull, k, p + 8, n - 8);
}
// Returns the id, or UINT64_MAX when size or bytes do not match.
inline uint64_t check_message(uint64_t seed, const std::byte* p, size_t n, size_t min, size_t max) {
  if (n < 8) return UINT64_MAX;
  uint64_t k;
  std::memcpy(&k, p, 8);
  if (n != message_size(seed, k, min, max) || !check_payload(seed ^ 0xC0FFEEull, k, p + 8, n - 8)) return UINT64_MAX;
  return k;
}

}  // namespace flatlane::test
