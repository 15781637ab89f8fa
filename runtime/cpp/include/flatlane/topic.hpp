// Publish/subscribe topics: several publishers, many subscribers, zero-copy fan-out.
//
//   TopicPublisher pub("robot.telemetry");
//   auto slot = pub.loan(256);                  // a free slot of this publisher's pool
//   fill(*slot); pub.publish(256);              // every attached subscriber gets the slot index
//
//   TopicSubscriber sub("robot.telemetry");
//   auto s = sub.receive(100ms);                // Sample: zero-copy view, released on destruction
//
// Semantics (docs/PROTOCOL.md section 14):
// - A subscriber receives what is published after it attached (a late joiner starts at the
//   newest message), plus, if it asks, up to `history` retained messages per publisher.
// - Messages of one publisher arrive in order; messages of different publishers interleave.
// - Publishing never waits for a drop_oldest subscriber (the default): when its queue is full the
//   oldest entry is dropped and its `dropped` counter says how many. A block_publisher subscriber
//   makes publishers wait for queue space, up to TopicOptions::block_timeout.
// - A slot is never reused while a subscriber holds it. Held slots of a subscriber that died are
//   reclaimed by the next publisher or subscriber that finds it dead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flatlane/channel.hpp"
#include "flatlane/error.hpp"
#include "flatlane/segment.hpp"
#include "flatlane/topic_layout.hpp"
#include "flatlane/wait.hpp"

namespace flatlane {

// How a message is distributed among subscribers.
enum class Distribution : uint32_t {
  fan_out = 0,     // publish/subscribe: every attached subscriber gets every message
  work_queue = 1,  // push/pull: each message goes to exactly one subscriber (whichever takes it
                   // first; a sleeping one is woken), and waits in the queue while none is attached
};

// Set by the creator; openers use what the segment says.
struct TopicConfig {
  uint32_t slot_size = 4096;     // largest message, bytes (rounded up to 64)
  uint32_t slot_count = 64;      // slots per publisher
  uint32_t max_publishers = 4;
  uint32_t max_subscribers = 32;
  uint32_t queue_depth = 32;     // messages waiting per subscriber and publisher (power of two)
  uint32_t max_held = 16;        // samples a subscriber may hold at once
  uint32_t history = 0;          // messages each publisher retains for late joiners (fan-out only)
  Distribution distribution = Distribution::fan_out;
  mode_t mode = 0600;
  TypeId type;
};

enum class SubscriberMode : uint32_t {
  drop_oldest = 0,      // never slows publishers; a full queue loses its oldest message
  block_publisher = 1,  // publishers wait for queue space (up to their block_timeout)
};

struct TopicOptions {
  OpenMode mode = OpenMode::create_or_open;
  TopicConfig topic;
  WaitOptions wait;
  bool unlink_on_close = true;  // last member to leave removes the name
  // Subscribers:
  SubscriberMode subscriber_mode = SubscriberMode::drop_oldest;
  uint32_t history_request = 0;  // retained messages to receive first, per publisher
  // Publishers: how long publish() waits for a block_publisher subscriber's queue space, and for
  // a free slot in loan() when the pool is exhausted.
  std::chrono::nanoseconds block_timeout = std::chrono::seconds(1);
};

struct PublisherStats {
  uint64_t messages = 0;     // published
  uint64_t bytes = 0;
  uint64_t no_receiver = 0;  // published while no subscriber was attached
  uint64_t timeouts = 0;     // deliveries abandoned after block_timeout (counted as drops too)
  uint32_t subscribers = 0;  // attached now
  uint32_t free_slots = 0;   // in this publisher's pool, not in use by anybody
  uint32_t slot_count = 0;
  uint64_t lost = 0;         // work queue: messages held by subscribers that died (all publishers)
};

struct SubscriberStats {
  uint64_t received = 0;
  uint64_t bytes = 0;
  uint64_t dropped = 0;      // messages lost: oldest dropped on a full queue, or a publisher timed out
  uint32_t held = 0;         // samples held now
  uint32_t queued = 0;       // messages waiting now
};

class TopicSubscriber;

// A received message: a read-only view of the publisher's slot. Move-only; released when
// destroyed. Must not outlive its subscriber.
class Sample {
 public:
  Sample() = default;
  Sample(Sample&& o) noexcept
      : sub_(std::exchange(o.sub_, nullptr)), data_(o.data_), seq_(o.seq_), held_(o.held_), publisher_(o.publisher_),
        slot_(o.slot_), epoch_(o.epoch_) {}
  Sample& operator=(Sample&& o) noexcept {
    if (this != &o) {
      release();
      sub_ = std::exchange(o.sub_, nullptr);
      data_ = o.data_;
      seq_ = o.seq_;
      held_ = o.held_;
      publisher_ = o.publisher_;
      slot_ = o.slot_;
      epoch_ = o.epoch_;
    }
    return *this;
  }
  Sample(const Sample&) = delete;
  Sample& operator=(const Sample&) = delete;
  ~Sample() { release(); }

  std::span<const std::byte> data() const noexcept { return data_; }
  const std::byte* ptr() const noexcept { return data_.data(); }
  size_t size() const noexcept { return data_.size(); }
  uint64_t seq() const noexcept { return seq_; }            // the publisher's sequence number
  uint32_t publisher() const noexcept { return publisher_; }  // publisher block index
  uint32_t publisher_epoch() const noexcept { return epoch_; }  // that publisher's attach epoch
  bool valid() const noexcept { return sub_ != nullptr; }
  void release() noexcept;

 private:
  friend class TopicSubscriber;
  TopicSubscriber* sub_ = nullptr;
  std::span<const std::byte> data_;
  uint64_t seq_ = 0;
  uint32_t held_ = 0;  // held-table entry
  uint32_t publisher_ = 0;
  uint32_t slot_ = 0;
  uint32_t epoch_ = 0;
};

namespace detail {
class TopicView;  // validated geometry + accessors, shared by both ends (topic.cpp)
}

class TopicPublisher {
 public:
  TopicPublisher(std::string_view name, const TopicOptions& o = {});
  TopicPublisher(TopicPublisher&&) = delete;
  ~TopicPublisher();

  uint32_t max_message() const noexcept;  // the slot size
  // A free slot of `n` bytes (n <= max_message()). When every slot is in use, queued messages of
  // drop_oldest subscribers are dropped to free one; otherwise waits up to `timeout`.
  Result<std::span<std::byte>> loan(size_t n, std::chrono::nanoseconds timeout = kInfinite);
  // Hands the loaned slot to every attached subscriber (the first `used` bytes, or with
  // publish_tail the last `used` bytes of the loan). Errors: timeout if a block_publisher
  // subscriber had no queue space within block_timeout (the others got the message).
  Result<void> publish(size_t used);
  Result<void> publish_tail(size_t used);
  void discard() noexcept;  // give the loaned slot back unpublished
  // loan + copy + publish.
  Result<void> send(std::span<const std::byte> data, std::chrono::nanoseconds timeout = kInfinite);

  uint32_t subscriber_count() noexcept;
  PublisherStats stats() noexcept;
  uint32_t index() const noexcept { return me_; }
  uint32_t epoch() const noexcept { return epoch_; }  // this attach of the block (1, 2, ...)
  // Subscribers attached and alive now (reads /proc for each: not for hot paths).
  uint32_t live_subscribers() noexcept;
  const Segment& segment() const noexcept { return seg_; }
  void close() noexcept;

 private:
  Result<void> deliver(uint32_t slot, uint32_t offset, size_t used);
  Result<void> deliver_work(uint32_t slot);
  bool pop_free(uint32_t& slot) noexcept;
  bool reclaim_for_pool() noexcept;
  bool reap_dead_subscribers() noexcept;
  void refresh_members() noexcept;
  void recover_pool() noexcept;

  Segment seg_;
  detail::TopicView* v_ = nullptr;
  uint32_t me_ = 0;
  uint64_t owner_ = 0;
  uint32_t epoch_ = 0;
  WaitOptions wait_;
  std::chrono::nanoseconds block_timeout_;
  bool unlink_on_close_ = true;
  std::atomic<bool> closed_{false};
  std::vector<uint32_t> free_;      // slots taken off the shared free stack, reserved up front
  std::vector<uint32_t> members_;   // attached subscribers at the last membership change
  uint64_t members_gen_ = ~0ull;
  uint32_t wake_next_ = 0;  // work queue: the subscriber to try waking first
  bool loaned_ = false;
  uint32_t loan_slot_ = 0;
  size_t loan_size_ = 0;
  uint64_t seq_ = 0;
  uint64_t messages_ = 0, bytes_ = 0, no_receiver_ = 0, timeouts_ = 0;
  Clock::time_point next_poll_check_{};
};

class TopicSubscriber {
 public:
  TopicSubscriber(std::string_view name, const TopicOptions& o = {});
  TopicSubscriber(TopicSubscriber&&) = delete;
  ~TopicSubscriber();

  // Next message from any publisher. Errors: timeout; busy when max_held samples are already held;
  // peer_dead / peer_closed when every publisher that attached has died / left and nothing is
  // queued; closed; corrupt (the segment holds impossible values).
  Result<Sample> receive(std::chrono::nanoseconds timeout = kInfinite);
  SubscriberStats stats() noexcept;
  uint32_t index() const noexcept { return me_; }
  const Segment& segment() const noexcept { return seg_; }
  void close() noexcept;

 private:
  friend class Sample;
  void release(const Sample& s) noexcept;
  bool try_take(Sample& out, Errc& err) noexcept;
  Errc publishers_gone() noexcept;
  void take_history(uint32_t per_publisher) noexcept;

  Segment seg_;
  detail::TopicView* v_ = nullptr;
  uint32_t me_ = 0;
  uint64_t owner_ = 0;
  WaitOptions wait_;
  bool unlink_on_close_ = true;
  std::atomic<bool> closed_{false};
  uint32_t next_pub_ = 0;  // round robin over publishers' queues
  uint32_t held_ = 0;
  uint64_t received_ = 0, bytes_ = 0;
  std::vector<Sample> history_;  // retained messages delivered before the queues
  Clock::time_point next_poll_check_{};
};

}  // namespace flatlane
