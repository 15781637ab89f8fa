// Endpoints named after the pattern, for the channel structs flatlane-gen writes:
//
//   robot::ArmTopics::commands::Publisher pub;     // = flatlane::Publisher<robot::ArmTopics::commands>
//   robot::ArmTopics::commands::Subscriber sub;
//
// A channel struct has `using message_type = ...;` and `static constexpr ChannelSpec spec`.
//
// Topics are the runtime's publish/subscribe topics (flatlane/topic.hpp): several publishers,
// many subscribers, each subscriber gets every message. Pipelines are its push/pull work queues:
// several pushers and pullers, each message to exactly one puller. Both build in a loaned slot
// and read in place (typed/topic_endpoints.hpp). Services: typed/service.hpp.
#pragma once

#include "flatlane/typed/spec.hpp"
#include "flatlane/typed/topic_endpoints.hpp"

namespace flatlane {

template <class Ch>
concept OneWayChannel = requires {
  typename Ch::message_type;
  { Ch::spec } -> std::convertible_to<ChannelSpec>;
} && FlatlaneMessage<typename Ch::message_type>;

template <OneWayChannel Ch>
class Publisher : public TopicSender<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::topic, "Publisher needs a topic channel");

 public:
  explicit Publisher(const EndpointOptions& o = {}) : TopicSender<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Subscriber : public TopicReceiver<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::topic, "Subscriber needs a topic channel");

 public:
  explicit Subscriber(const EndpointOptions& o = {}) : TopicReceiver<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Pusher : public TopicSender<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::pipeline, "Pusher needs a pipeline channel");

 public:
  explicit Pusher(const EndpointOptions& o = {}) : TopicSender<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Puller : public TopicReceiver<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::pipeline, "Puller needs a pipeline channel");

 public:
  explicit Puller(const EndpointOptions& o = {}) : TopicReceiver<typename Ch::message_type>(Ch::spec, o) {}
};

}  // namespace flatlane
