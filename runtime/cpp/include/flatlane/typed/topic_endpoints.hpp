// Typed publish/subscribe topics and push/pull work queues: FlatBuffers messages built in a
// loaned topic slot and read in place by every subscriber (topics) or by one puller (pipelines).
//
//   flatlane::TopicSender<robot::Telemetry> pub(spec);          // generated: Publisher / Pusher
//   pub.send([&](flatbuffers::FlatBufferBuilder& b) { return robot::CreateTelemetry(b, ...); });
//
//   flatlane::TopicReceiver<robot::Telemetry> sub(spec);        // generated: Subscriber / Puller
//   auto m = sub.receive(100ms);                                // Result<ReceivedSample<Telemetry>>
//   if (m) use((*m)->joint_positions());                        // verified view of the slot
//
// Sending loans a whole slot of the publisher's pool (flatlane/topic.hpp) and hands it to the
// FlatBufferBuilder as its only memory (detail::SpanAllocator): the message is built back to
// front inside the slot and published where it ends (TopicPublisher::publish_tail). No heap, no
// copy, no syscall unless a subscriber sleeps. Topics do not chunk: a message that does not fit a
// slot (the channel's max_message, rounded up to 64 bytes) fails with message_too_large and
// nothing is published.
//
// The schema's settings map onto the topic as follows (docs/CPP.md, "Topics and pipelines"):
//   slot size     = max_message (64 KiB when the schema leaves the 4 GiB default), max 1 GiB
//   slot count    = ring_capacity / slot size, at least 8, at most 4096 (per publisher)
//   overflow      block: senders wait up to send_timeout for a slot and for a blocking
//                 subscriber's queue; subscribers default to block_publisher (nothing is lost)
//                 fail: senders never wait, a full pool / queue returns timeout (counted dropped)
//                 drop_oldest: senders never wait; topic subscribers default to drop_oldest (a
//                 full queue loses its oldest entry, counted by the subscriber); a pusher whose
//                 pool is full drops the new message (queued work is never dropped)
//   wait          the wait strategy of both ends
//   chunk_size    not used (topics carry one message per slot)
// A pipeline is the same segment with Distribution::work_queue: each message to one puller.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <flatbuffers/flatbuffer_builder.h>

#include "flatlane/topic.hpp"
#include "flatlane/topic_layout.hpp"
#include "flatlane/typed/receiver.hpp"
#include "flatlane/typed/sender.hpp"
#include "flatlane/typed/service.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

namespace detail {

inline constexpr uint64_t kDefaultTopicSlot = 64 * 1024;
inline constexpr uint32_t kMinTopicSlots = 8;
inline constexpr uint32_t kMaxDerivedTopicSlots = 4096;

inline uint32_t topic_slot_size(const ChannelSpec& spec, const EndpointOptions& o) {
  const uint64_t max = o.max_message ? o.max_message : spec.max_message;
  const uint64_t slot = max >= (1ull << 32) ? kDefaultTopicSlot : std::clamp<uint64_t>(max, 64, 1u << 30);
  return static_cast<uint32_t>((slot + 63) & ~uint64_t{63});
}

inline Distribution distribution_of(const ChannelSpec& spec) {
  return spec.kind == ChannelKind::pipeline ? Distribution::work_queue : Distribution::fan_out;
}

// The TopicOptions of a typed topic / pipeline endpoint (the mapping above). Python's
// flatlane.typed computes the same (runtime/python/flatlane/typed.py, _topic_geometry).
template <FlatlaneMessage Msg>
TopicOptions topic_options(const ChannelSpec& spec, const EndpointOptions& o) {
  TopicOptions t;
  t.mode = o.mode;
  TopicConfig& c = t.topic;
  c.slot_size = topic_slot_size(spec, o);
  const uint64_t ring = o.ring_capacity ? o.ring_capacity : spec.ring_capacity;
  c.slot_count = o.slot_count ? o.slot_count
                              : static_cast<uint32_t>(std::clamp<uint64_t>(ring / c.slot_size, kMinTopicSlots,
                                                                          kMaxDerivedTopicSlots));
  c.max_publishers = o.max_publishers ? o.max_publishers : 4;
  c.max_subscribers = o.max_subscribers ? o.max_subscribers : 32;
  c.queue_depth = o.queue_depth ? o.queue_depth : 32;
  c.max_held = o.max_held ? o.max_held : 16;
  c.distribution = distribution_of(spec);
  c.history = c.distribution == Distribution::work_queue ? 0 : o.history;
  c.type = {std::string(MessageTraits<Msg>::type_name), MessageTraits<Msg>::type_hash,
            o.type_check == TypeCheck::name_only};
  t.wait.strategy = o.wait.value_or(spec.wait);
  t.unlink_on_close = o.unlink_on_close;
  const Overflow overflow = o.overflow.value_or(spec.overflow);
  t.subscriber_mode = o.subscriber_mode.value_or(overflow == Overflow::drop_oldest ? SubscriberMode::drop_oldest
                                                                                  : SubscriberMode::block_publisher);
  t.history_request = c.distribution == Distribution::work_queue ? 0 : o.history_request;
  t.block_timeout = overflow == Overflow::block ? o.send_timeout : std::chrono::nanoseconds{0};
  return t;
}

// An existing segment of the same name must be the same pattern: a pipeline endpoint on a
// publish/subscribe topic (or the other way round) would silently change who gets what.
inline void check_distribution(const Segment& seg, std::string_view name, Distribution want) {
  const auto& h = *reinterpret_cast<const wire::TopicHeader*>(seg.base() + wire::kTopicHeaderOffset);
  const uint32_t have = h.distribution;
  if (have == static_cast<uint32_t>(want)) return;
  auto what = [](uint32_t d) {
    return d == wire::kDistributionWorkQueue ? "a push/pull work queue (pipeline)" : "a publish/subscribe topic";
  };
  throw Error(Errc::invalid_argument, "flatlane: '" + std::string(name) + "' is " + what(have) +
                                          ", this endpoint expects " + what(static_cast<uint32_t>(want)));
}

}  // namespace detail

// A received message: the verified root table over the publisher's slot. Move-only; the slot
// goes back to its publisher when this is destroyed or released. Must not outlive its receiver.
template <FlatlaneMessage Msg>
class ReceivedSample {
 public:
  ReceivedSample() = default;
  const Msg& operator*() const noexcept { return *root_; }
  const Msg* operator->() const noexcept { return root_; }
  const Msg* get() const noexcept { return root_; }
  // The whole FlatBuffer, where it lies in the topic segment.
  std::span<const std::byte> bytes() const noexcept { return s_.data(); }
  uint64_t seq() const noexcept { return s_.seq(); }              // the publisher's sequence number
  uint32_t publisher() const noexcept { return s_.publisher(); }  // publisher block index
  static constexpr bool zero_copy() noexcept { return true; }     // topics never reassemble
  const Sample& sample() const noexcept { return s_; }
  void release() noexcept {
    s_.release();
    root_ = nullptr;
  }

 private:
  template <FlatlaneMessage>
  friend class TopicReceiver;
  ReceivedSample(Sample s, const Msg* root) noexcept : s_(std::move(s)), root_(root) {}
  Sample s_;
  const Msg* root_ = nullptr;
};

struct TopicReceiverStats {
  uint64_t received = 0;  // messages handed out
  uint64_t rejected = 0;  // messages that failed verification (consumed, not handed out)
  uint64_t dropped = 0;   // messages this subscriber lost (drop_oldest queue full, or a publisher
                          // gave up on its full block_publisher queue)
  uint32_t queued = 0;    // waiting now
  uint32_t held = 0;      // received and not released yet
};

template <FlatlaneMessage Msg>
class TopicSender {
 public:
  explicit TopicSender(const ChannelSpec& spec, const EndpointOptions& o = {})
      : pub_(endpoint_name(spec, o), detail::topic_options<Msg>(spec, o)),
        overflow_(o.overflow.value_or(spec.overflow)),
        send_timeout_(o.send_timeout),
        slot_(pub_.max_message()) {
    detail::check_distribution(pub_.segment(), endpoint_name(spec, o), detail::distribution_of(spec));
  }

  TopicSender(const TopicSender&) = delete;
  TopicSender& operator=(const TopicSender&) = delete;

  // Builds one message in a loaned slot and publishes it. `build(flatbuffers::FlatBufferBuilder&)`
  // returns flatbuffers::Offset<Msg>. Errors: message_too_large (larger than a slot; nothing is
  // published), timeout (overflow = block: no slot / no queue space within send_timeout;
  // overflow = fail: at once; counted in stats().dropped), closed. With overflow = drop_oldest a
  // send that found no room counts a drop and returns success: publishing never waits.
  // A fan-out topic's timeout means a blocking subscriber's queue stayed full: the others got
  // the message.
  template <class Build>
  Result<void> send(Build&& build) {
    const bool waits = overflow_ == Overflow::block;
    auto r = send(std::forward<Build>(build), waits ? send_timeout_ : std::chrono::nanoseconds{0});
    if (!r && r.error() == Errc::timeout && !waits) {
      ++stats_.dropped;
      if (overflow_ == Overflow::drop_oldest) return {};
    }
    return r;
  }

  // The same with an explicit wait for a free slot (kInfinite: as long as it takes). The wait
  // for a blocking subscriber's queue space stays the endpoint's (send_timeout).
  // flatten: see Sender::send.
  template <class Build>
  [[gnu::flatten]] Result<void> send(Build&& build, std::chrono::nanoseconds timeout) {
    using Root = decltype(build(std::declval<flatbuffers::FlatBufferBuilder&>()));
    static_assert(std::is_same_v<Root, flatbuffers::Offset<Msg>>,
                  "the build function must return flatbuffers::Offset of the channel's message type");
    auto slot = pub_.loan(slot_, timeout);
    if (!slot) return slot.error();
    detail::SpanAllocator alloc(*slot);  // slots are multiples of 64 bytes, 64-aligned
    flatbuffers::FlatBufferBuilder fbb(slot->size(), &alloc, false, detail::FrameAllocator::kAlign);
    try {
      const Root root = build(fbb);
      fbb.Finish(root, MessageTraits<Msg>::file_identifier);
    } catch (const detail::BuildFailure& f) {
      pub_.discard();
      if (f.code == Errc::message_too_large) ++stats_.too_large;
      return f.code;
    } catch (...) {
      pub_.discard();  // the user's exception: nothing was published
      throw;
    }
    auto r = pub_.publish_tail(fbb.GetSize());
    ++stats_.sent;  // handed out (a timeout above means some blocking subscriber missed it)
    return r;
  }

  struct Stats {
    uint64_t sent = 0;       // messages published
    uint64_t dropped = 0;    // sends that found no room (overflow fail / drop_oldest)
    uint64_t too_large = 0;  // sends that failed with message_too_large
  };
  const Stats& stats() const noexcept { return stats_; }
  uint64_t dropped() const noexcept { return stats_.dropped; }
  PublisherStats topic_stats() noexcept { return pub_.stats(); }
  uint32_t max_message() const noexcept { return slot_; }  // bytes of a slot: the largest FlatBuffer
  uint32_t subscriber_count() noexcept { return pub_.subscriber_count(); }
  bool peer_attached() noexcept { return pub_.subscriber_count() != 0; }
  const Segment& segment() const noexcept { return pub_.segment(); }
  TopicPublisher& raw() noexcept { return pub_; }
  void close() noexcept { pub_.close(); }

 private:
  TopicPublisher pub_;
  Overflow overflow_;
  std::chrono::nanoseconds send_timeout_;
  uint32_t slot_;
  Stats stats_;
};

template <FlatlaneMessage Msg>
class TopicReceiver {
 public:
  explicit TopicReceiver(const ChannelSpec& spec, const EndpointOptions& o = {})
      : sub_(endpoint_name(spec, o), detail::topic_options<Msg>(spec, o)), verify_(o.verify) {
    detail::check_distribution(sub_.segment(), endpoint_name(spec, o), detail::distribution_of(spec));
  }

  TopicReceiver(const TopicReceiver&) = delete;
  TopicReceiver& operator=(const TopicReceiver&) = delete;

  // Next message. Errors: timeout; peer_dead / peer_closed once every publisher that attached has
  // died / left and nothing is queued; busy (max_held samples held); closed; corrupt (failed
  // verification: the message is consumed, its slot released, and counted in stats().rejected).
  [[gnu::flatten]] Result<ReceivedSample<Msg>> receive(std::chrono::nanoseconds timeout = kInfinite) {
    auto s = sub_.receive(timeout);
    if (!s) return s.error();
    const Msg* root = detail::verified_root<Msg>(s->data(), verify_);
    if (root == nullptr) {
      ++rejected_;
      return Errc::corrupt;  // the sample goes back here
    }
    ++received_;
    return ReceivedSample<Msg>(std::move(*s), root);
  }

  TopicReceiverStats stats() noexcept {
    const SubscriberStats s = sub_.stats();
    return {received_, rejected_, s.dropped, s.queued, s.held};
  }
  uint64_t dropped() noexcept { return sub_.stats().dropped; }
  const Segment& segment() const noexcept { return sub_.segment(); }
  TopicSubscriber& raw() noexcept { return sub_; }
  void close() noexcept { sub_.close(); }

 private:
  TopicSubscriber sub_;
  bool verify_;
  uint64_t received_ = 0, rejected_ = 0;
};

}  // namespace flatlane
