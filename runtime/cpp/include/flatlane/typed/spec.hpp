// What generated code tells the typed layer about a channel and its message type.
//
// flatlane-gen writes one `MessageTraits<T>` specialization per message type and one channel
// struct per schema method holding a `ChannelSpec` (the schema's defaults). Users override the
// defaults per endpoint with `EndpointOptions`.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flatlane/channel.hpp"
#include "flatlane/topic.hpp"

namespace flatlane {

enum class ChannelKind : uint8_t { topic, service, pipeline, duplex };

// What a sender does when there is no room (schema attribute `flatlane_overflow`). On topics
// and pipelines (typed/topic_endpoints.hpp) it also sets the subscribers' default mode.
enum class Overflow : uint8_t {
  block,        // wait for space (up to EndpointOptions::send_timeout); topic subscribers
                // default to block_publisher: nothing is lost
  drop_oldest,  // never wait; topic subscribers default to drop_oldest (a full queue loses its
                // oldest message, counted by the subscriber); see docs/CPP.md for pipelines
  fail,         // never wait; send returns Errc::timeout
};

enum class TypeCheck : uint8_t {
  exact,      // type name and type hash must match (default)
  name_only,  // rolling upgrades of wire-compatible schemas: name only (docs/SCHEMA.md)
};

// A channel as declared in the schema.
struct ChannelSpec {
  std::string_view name;  // default segment name: "<namespace>.<service>.<method>"
  ChannelKind kind = ChannelKind::topic;
  uint64_t ring_capacity = 1u << 20;
  uint64_t max_message = 1ull << 32;
  uint32_t chunk_size = 0;  // 0 = the runtime's default
  Overflow overflow = Overflow::block;
  WaitStrategy wait = WaitStrategy::spin_then_sleep;
};

// Specialized by generated code for every message type:
//   static constexpr std::string_view type_name;        // "robot.Command"
//   static constexpr uint64_t type_hash;                // docs/SCHEMA.md, "Type hash"
//   static constexpr const char* file_identifier;       // 4 chars, or nullptr
template <class T>
struct MessageTraits;

template <class T>
concept FlatlaneMessage = requires {
  { MessageTraits<T>::type_name } -> std::convertible_to<std::string_view>;
  { MessageTraits<T>::type_hash } -> std::convertible_to<uint64_t>;
};

// Per-endpoint settings; zero / empty / nullopt means "as the schema says".
struct EndpointOptions {
  std::string name;  // segment name; empty = the channel's schema name
  OpenMode mode = OpenMode::create_or_open;
  uint64_t ring_capacity = 0;
  uint64_t max_message = 0;
  std::optional<Overflow> overflow;
  std::optional<WaitStrategy> wait;
  TypeCheck type_check = TypeCheck::exact;
  bool verify = true;    // receivers: run the FlatBuffers verifier on every message
  size_t size_hint = 0;  // senders: bytes reserved for the first message; 0 = adaptive
  std::chrono::nanoseconds send_timeout = kInfinite;  // overflow = block
  bool unlink_on_close = true;
  // Topics and pipelines (typed/topic_endpoints.hpp); zero / nullopt = derived from the schema.
  // Geometry is the creator's: whoever opens an existing topic uses what its segment says.
  uint32_t slot_count = 0;        // slots per publisher; default ring_capacity / slot size, >= 8
  uint32_t max_publishers = 0;    // default 4
  uint32_t max_subscribers = 0;   // default 32
  uint32_t queue_depth = 0;       // per subscriber and publisher; default 32
  uint32_t max_held = 0;          // samples a subscriber may hold at once; default 16
  uint32_t history = 0;           // messages each publisher retains for late joiners (topics)
  // Subscribers: block_publisher (nothing lost, publishers wait) or drop_oldest (never slows
  // publishers); default from the overflow policy: drop_oldest -> drop_oldest, else block_publisher.
  std::optional<SubscriberMode> subscriber_mode;
  uint32_t history_request = 0;   // subscribers: retained messages to receive first, per publisher
};

// FlatBuffers cannot address more than 2 GiB - 1.
inline constexpr uint64_t kMaxFlatBufferSize = 0x7fffffffu;

template <FlatlaneMessage Msg>
ChannelOptions channel_options(const ChannelSpec& spec, const EndpointOptions& o) {
  ChannelOptions c;
  c.mode = o.mode;
  c.segment.ring_capacity = o.ring_capacity ? o.ring_capacity : spec.ring_capacity;
  c.segment.chunk_size = spec.chunk_size;
  c.segment.type.name = std::string(MessageTraits<Msg>::type_name);
  c.segment.type.hash = MessageTraits<Msg>::type_hash;
  c.segment.type.name_only = o.type_check == TypeCheck::name_only;
  c.wait.strategy = o.wait.value_or(spec.wait);
  const uint64_t max = o.max_message ? o.max_message : spec.max_message;
  c.max_message_size = max < kMaxFlatBufferSize ? max : kMaxFlatBufferSize;
  c.unlink_on_close = o.unlink_on_close;
  return c;
}

inline std::string endpoint_name(const ChannelSpec& spec, const EndpointOptions& o) {
  return o.name.empty() ? std::string(spec.name) : o.name;
}

}  // namespace flatlane
