// Endpoints named after the pattern, for the channel structs flatlane-gen writes:
//
//   robot::ArmTopics::commands::Publisher pub;     // = flatlane::Publisher<robot::ArmTopics::commands>
//   robot::ArmTopics::commands::Subscriber sub;
//
// A channel struct has `using message_type = ...;` and `static constexpr ChannelSpec spec`.
//
// Today every channel is one ring with one sender and one receiver (the runtime's SPSC channel):
// a topic has one publisher and one subscriber, a pipeline one pusher and one puller. Fan-out,
// several senders, request/reply and in-place duplex endpoints arrive with the patterns work
// (issue 4); the generated names stay the same.
#pragma once

#include "flatlane/typed/receiver.hpp"
#include "flatlane/typed/sender.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

template <class Ch>
concept OneWayChannel = requires {
  typename Ch::message_type;
  { Ch::spec } -> std::convertible_to<ChannelSpec>;
} && FlatlaneMessage<typename Ch::message_type>;

template <OneWayChannel Ch>
class Publisher : public Sender<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::topic, "Publisher needs a topic channel");

 public:
  explicit Publisher(const EndpointOptions& o = {}) : Sender<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Subscriber : public Receiver<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::topic, "Subscriber needs a topic channel");

 public:
  explicit Subscriber(const EndpointOptions& o = {}) : Receiver<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Pusher : public Sender<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::pipeline, "Pusher needs a pipeline channel");

 public:
  explicit Pusher(const EndpointOptions& o = {}) : Sender<typename Ch::message_type>(Ch::spec, o) {}
};

template <OneWayChannel Ch>
class Puller : public Receiver<typename Ch::message_type> {
  static_assert(Ch::spec.kind == ChannelKind::pipeline, "Puller needs a pipeline channel");

 public:
  explicit Puller(const EndpointOptions& o = {}) : Receiver<typename Ch::message_type>(Ch::spec, o) {}
};

}  // namespace flatlane
