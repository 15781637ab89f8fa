// Messages the topic tests and peer_topic agree on: an 8-byte id, then bytes derived from it.
#pragma once

#include <flatlane/flatlane.hpp>

#include <cstdint>
#include <cstring>

namespace flatlane::test {

inline TopicOptions topic_options(OpenMode mode) {
  TopicOptions o;
  o.mode = mode;
  o.topic.slot_size = 1024;
  o.topic.slot_count = 64;
  o.topic.queue_depth = 16;
  o.topic.max_subscribers = 32;
  o.topic.max_publishers = 4;
  o.topic.max_held = 16;
  o.topic.type = {"fltest.TopicMessage", 0x5151};
  return o;
}

// Push/pull: the same settings as a work queue, with its own type.
inline TopicOptions work_options(OpenMode mode) {
  TopicOptions o = topic_options(mode);
  o.topic.distribution = Distribution::work_queue;
  o.topic.type = {"fltest.Work", 7};
  return o;
}

inline uint8_t topic_byte(uint64_t id, size_t i) { return static_cast<uint8_t>((id * 131 + i * 7) ^ (i >> 3)); }

inline void fill_message(std::span<std::byte> p, uint64_t id) {
  std::memcpy(p.data(), &id, sizeof id);
  for (size_t i = sizeof id; i < p.size(); ++i) p[i] = std::byte{topic_byte(id, i)};
}

inline Result<void> send_message(TopicPublisher& pub, uint64_t id, size_t size, std::chrono::nanoseconds t = kInfinite) {
  auto s = pub.loan(size, t);
  if (!s) return s.error();
  fill_message(*s, id);
  return pub.publish(size);
}

inline uint64_t message_id(const Sample& s) {
  uint64_t id = ~0ull;
  if (s.size() >= sizeof id) std::memcpy(&id, s.ptr(), sizeof id);
  return id;
}

inline bool message_ok(const Sample& s) {
  if (s.size() < sizeof(uint64_t)) return false;
  const uint64_t id = message_id(s);
  for (size_t i = sizeof id; i < s.size(); ++i)
    if (s.data()[i] != std::byte{topic_byte(id, i)}) return false;
  return true;
}

}  // namespace flatlane::test
