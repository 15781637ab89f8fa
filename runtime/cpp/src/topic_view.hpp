// Validated view of a mapped topic segment: geometry checked once at attach, typed accessors,
// and the reference-count operations every participant uses. Internal to the runtime (topic.cpp,
// inspect tools); the layout itself is topic_layout.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "flatlane/error.hpp"
#include "flatlane/topic_layout.hpp"
#include "flatlane/wait.hpp"

namespace flatlane::detail {

inline constexpr uint64_t align64(uint64_t v) { return (v + 63) & ~uint64_t{63}; }

struct Layout {
  uint64_t publishers_offset, subscribers_offset, queues_offset, history_offset, slots_offset, end;
  uint64_t publisher_stride, subscriber_stride, queue_stride, history_stride, slot_stride;
};

// The one place offsets are derived from counts: the creator writes them, openers recompute and
// compare, so a header that lies about any of them is rejected.
inline Layout compute_layout(uint64_t slot_size, uint64_t slot_count, uint64_t pubs, uint64_t subs, uint64_t depth,
                             uint64_t held, uint64_t history) {
  Layout l{};
  l.publisher_stride = sizeof(wire::PublisherBlock);
  l.subscriber_stride = align64(wire::kHeldTableOffset + held * sizeof(wire::HeldEntry));
  l.queue_stride = align64(wire::kQueueCellsOffset + depth * sizeof(uint32_t));
  l.history_stride = align64(std::max<uint64_t>(history, 1) * sizeof(wire::HistoryEntry));
  l.slot_stride = wire::kSlotDataOffset + slot_size;
  l.publishers_offset = wire::kHeaderRegionSize;
  l.subscribers_offset = l.publishers_offset + pubs * l.publisher_stride;
  l.queues_offset = l.subscribers_offset + subs * l.subscriber_stride;
  l.history_offset = l.queues_offset + pubs * subs * l.queue_stride;
  l.slots_offset = align64(l.history_offset + pubs * l.history_stride);
  l.end = l.slots_offset + pubs * slot_count * l.slot_stride;
  return l;
}

// Validated geometry of a mapped topic and typed accessors. Every count and offset here was
// checked once at attach; indices read from shared memory later are checked against them.
class TopicView {
 public:
  TopicView(std::byte* base, uint64_t size, const std::string& name) : base_(base) {
    // Snapshot through volatile: a peer may rewrite the header while we read it.
    const volatile wire::TopicHeader& h = *reinterpret_cast<const wire::TopicHeader*>(base + wire::kTopicHeaderOffset);
    slot_size = h.slot_size;
    slot_count = h.slot_count;
    pubs = h.max_publishers;
    subs = h.max_subscribers;
    depth = h.queue_depth;
    max_held = h.max_held;
    history = h.history;
    distribution = h.distribution;
    const uint64_t offs[] = {h.publishers_offset, h.subscribers_offset, h.queues_offset, h.history_offset,
                             h.slots_offset,      h.publisher_stride,   h.subscriber_stride, h.queue_stride,
                             h.history_stride,    h.slot_stride};
    auto bad = [&](const std::string& why) {
      throw Error(Errc::corrupt, "flatlane: topic '" + name + "' has an invalid header: " + why);
    };
    if (slot_size < 64 || slot_size % 64 != 0 || slot_size > (1u << 30)) bad("slot size " + std::to_string(slot_size));
    if (slot_count == 0 || slot_count > wire::kMaxTopicSlots) bad("slot count " + std::to_string(slot_count));
    if (pubs == 0 || pubs > wire::kMaxTopicPublishers) bad("max publishers " + std::to_string(pubs));
    if (subs == 0 || subs > wire::kMaxTopicSubscribers) bad("max subscribers " + std::to_string(subs));
    if (depth < 2 || depth > (1u << 16) || (depth & (depth - 1)) != 0) bad("queue depth " + std::to_string(depth));
    if (max_held == 0 || max_held > wire::kMaxTopicHeld) bad("max held " + std::to_string(max_held));
    if (history > wire::kMaxTopicHistory || history >= slot_count) bad("history " + std::to_string(history));
    if (distribution > wire::kDistributionWorkQueue) bad("distribution " + std::to_string(distribution));
    if (distribution == wire::kDistributionWorkQueue && history != 0) bad("a work queue with history");
    l = compute_layout(slot_size, slot_count, pubs, subs, depth, max_held, history);
    const uint64_t want[] = {l.publishers_offset, l.subscribers_offset, l.queues_offset, l.history_offset,
                             l.slots_offset,      l.publisher_stride,   l.subscriber_stride, l.queue_stride,
                             l.history_stride,    l.slot_stride};
    if (!std::equal(std::begin(offs), std::end(offs), std::begin(want))) bad("offsets do not match its counts");
    if (l.end > size) bad("needs " + std::to_string(l.end) + " bytes, segment has " + std::to_string(size));
  }

  wire::TopicState& state() const noexcept { return at<wire::TopicState>(wire::kTopicStateOffset); }
  wire::PublisherBlock& pub(uint32_t p) const noexcept {
    return at<wire::PublisherBlock>(l.publishers_offset + p * l.publisher_stride);
  }
  wire::SubscriberBlock& sub(uint32_t s) const noexcept {
    return at<wire::SubscriberBlock>(l.subscribers_offset + s * l.subscriber_stride);
  }
  wire::HeldEntry& held(uint32_t s, uint32_t k) const noexcept {
    return at<wire::HeldEntry>(l.subscribers_offset + s * l.subscriber_stride + wire::kHeldTableOffset +
                               k * sizeof(wire::HeldEntry));
  }
  wire::IndexQueue& queue(uint32_t p, uint32_t s) const noexcept {
    return at<wire::IndexQueue>(l.queues_offset + (uint64_t{p} * subs + s) * l.queue_stride);
  }
  std::atomic<uint32_t>& cell(uint32_t p, uint32_t s, uint64_t pos) const noexcept {
    return at<std::atomic<uint32_t>>(l.queues_offset + (uint64_t{p} * subs + s) * l.queue_stride +
                                     wire::kQueueCellsOffset + (pos & (depth - 1)) * sizeof(uint32_t));
  }
  wire::HistoryEntry& hist(uint32_t p, uint32_t i) const noexcept {
    return at<wire::HistoryEntry>(l.history_offset + p * l.history_stride + i * sizeof(wire::HistoryEntry));
  }
  wire::SlotHeader& slot(uint32_t p, uint32_t i) const noexcept {
    return at<wire::SlotHeader>(l.slots_offset + (uint64_t{p} * slot_count + i) * l.slot_stride);
  }
  std::byte* slot_data(uint32_t p, uint32_t i) const noexcept {
    return base_ + l.slots_offset + (uint64_t{p} * slot_count + i) * l.slot_stride + wire::kSlotDataOffset;
  }

  // Drops one reference; the last one returns the slot to its publisher's free stack. A count
  // that is already zero (a buggy or hostile peer) is left alone instead of wrapping.
  bool unref(uint32_t p, uint32_t i) const noexcept {
    if (p >= pubs || i >= slot_count) return false;
    auto& st = slot(p, i).state;
    uint32_t cur = st.load(std::memory_order_relaxed);
    do {
      if ((cur & (wire::kSlotFree | wire::kSlotOnStack)) != 0 || (cur & wire::kSlotRefMask) == 0) return false;
    } while (!st.compare_exchange_weak(cur, cur - 1, std::memory_order_acq_rel, std::memory_order_relaxed));
    if ((cur & wire::kSlotRefMask) != 1) return true;
    // Recovery (a publisher taking over a dead one's pool) may claim a zero-count slot first.
    uint32_t zero = 0;
    if (st.compare_exchange_strong(zero, wire::kSlotFree | wire::kSlotOnStack, std::memory_order_acq_rel)) push_free(p, i);
    return true;
  }

  void push_free(uint32_t p, uint32_t i) const noexcept {
    auto& head = pub(p).free_head;
    auto& next = slot(p, i).next;
    uint64_t h = head.load(std::memory_order_relaxed);
    do {
      next.store(static_cast<uint32_t>(h), std::memory_order_relaxed);
    } while (!head.compare_exchange_weak(h, uint64_t{i} + 1, std::memory_order_release, std::memory_order_relaxed));
    // The publisher sleeps only on an empty stack: the push that ends emptiness wakes it.
    if (h == 0) detail::notify(pub(p).pool_event);
  }

  // Takes every entry of subscriber s's queues and returns their references (detach, cleanup).
  void drain_queues(uint32_t s) const noexcept {
    for (uint32_t p = 0; p < pubs; ++p) {
      auto& q = queue(p, s);
      for (;;) {
        uint64_t h = q.head.load(std::memory_order_acquire);
        const uint64_t t = q.tail.load(std::memory_order_acquire);
        if (h >= t || t - h > depth) break;
        const uint32_t idx = cell(p, s, h).load(std::memory_order_relaxed);
        if (q.head.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel) && idx != 0) unref(p, idx - 1);
      }
    }
  }

  // Returns the references a (dead or closing) subscriber still holds; how many there were.
  uint32_t release_held(uint32_t s) const noexcept {
    uint32_t n = 0;
    for (uint32_t k = 0; k < max_held; ++k) {
      auto& e = held(s, k);
      const uint32_t idx = e.slot.exchange(0, std::memory_order_acq_rel);
      if (idx != 0) {
        unref(e.publisher.load(std::memory_order_relaxed), idx - 1);
        ++n;
      }
    }
    return n;
  }

  // The queue subscriber s takes from: its own, or in a work queue the one all share.
  uint32_t queue_of(uint32_t s) const noexcept { return work_queue() ? 0 : s; }
  bool work_queue() const noexcept { return distribution == wire::kDistributionWorkQueue; }

  uint32_t slot_size = 0, slot_count = 0, pubs = 0, subs = 0, depth = 0, max_held = 0, history = 0;
  uint32_t distribution = 0;
  Layout l{};

 private:
  template <class T>
  T& at(uint64_t off) const noexcept {
    return *reinterpret_cast<T*>(base_ + off);
  }
  std::byte* base_;
};

}  // namespace flatlane::detail
