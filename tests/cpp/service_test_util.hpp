// Requests and answers the service tests and peer_service agree on.
#pragma once

#include <flatlane/flatlane.hpp>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace flatlane::test {

inline ServiceOptions service_options() {
  ServiceOptions o;
  o.max_clients = 8;
  o.max_request = 1024;
  o.request_slots = 16;
  o.queue_depth = 8;
  o.reply_ring = 1 << 14;
  o.request_type = {"fltest.Request", 1};
  o.reply_type = {"fltest.Reply", 2};
  return o;
}

inline std::span<const std::byte> as_bytes_of(std::string_view s) { return std::as_bytes(std::span(s)); }

inline std::vector<std::byte> request_payload(uint64_t i) {
  std::vector<std::byte> v(8 + i % 200);
  for (size_t k = 0; k < v.size(); ++k) v[k] = std::byte(static_cast<uint8_t>(i * 31 + k));
  return v;
}

// The answer to a request: every byte plus one.
inline Result<void> answer(ServiceServer& server, const Request& r) {
  auto out = server.prepare_reply(r, r.size());
  if (!out) return out.error();
  for (size_t k = 0; k < r.size(); ++k) (*out)[k] = std::byte(static_cast<uint8_t>(static_cast<uint8_t>(r.data()[k]) + 1));
  return server.commit_reply(r.size());
}

inline bool is_answer(std::span<const std::byte> req, std::span<const std::byte> rep) {
  if (req.size() != rep.size()) return false;
  for (size_t k = 0; k < req.size(); ++k)
    if (static_cast<uint8_t>(rep[k]) != static_cast<uint8_t>(static_cast<uint8_t>(req[k]) + 1)) return false;
  return true;
}

}  // namespace flatlane::test
