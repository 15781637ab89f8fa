// The wire layout of a Flatlane topic segment (publish/subscribe), protocol version 1.
// docs/PROTOCOL.md section 14 is the normative description; this header mirrors it.
//
// A topic is a pool of fixed-size slots per publisher, and one small index queue per
// (publisher, subscriber) pair. A publisher builds a message in a free slot of its pool, sets the
// slot's reference count to the number of receivers, and appends the slot index to each
// subscriber's queue. A subscriber takes indices from its queues and reads the slots in place; the
// last reference released returns the slot to its publisher's free stack. A slot is never reused
// while any subscriber holds it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "flatlane/duplex_layout.hpp"
#include "flatlane/layout.hpp"

namespace flatlane::wire {

inline constexpr uint32_t kKindTopic = 2;

inline constexpr uint64_t kTopicHeaderOffset = 256;   // TopicHeader, written once by the creator
inline constexpr uint64_t kTopicStateOffset = 512;    // TopicState, one line
inline constexpr uint32_t kMaxTopicPublishers = 64;
inline constexpr uint32_t kMaxTopicSubscribers = 1024;
inline constexpr uint32_t kMaxTopicSlots = 1u << 24;   // per publisher
inline constexpr uint32_t kMaxTopicHeld = 1024;        // held-frame entries per subscriber
inline constexpr uint32_t kMaxTopicHistory = 1024;
inline constexpr uint32_t kDistributionFanOut = 0;    // publish/subscribe
inline constexpr uint32_t kDistributionWorkQueue = 1;  // push/pull: queue (p, 0) is shared by all

struct TopicHeader {
  uint32_t slot_size;           // +0   payload bytes of a slot, a multiple of 64
  uint32_t slot_count;          // +4   slots per publisher
  uint32_t max_publishers;      // +8
  uint32_t max_subscribers;     // +12
  uint32_t queue_depth;         // +16  entries of each index queue, a power of two
  uint32_t max_held;            // +20  held-frame entries per subscriber
  uint32_t history;             // +24  messages each publisher keeps for late joiners
  uint32_t distribution;        // +28  0 fan-out (every subscriber), 1 work queue (one subscriber)
  uint64_t publishers_offset;   // +32  from the segment base
  uint64_t subscribers_offset;  // +40
  uint64_t queues_offset;       // +48
  uint64_t history_offset;      // +56
  uint64_t slots_offset;        // +64
  uint64_t publisher_stride;    // +72
  uint64_t subscriber_stride;   // +80
  uint64_t queue_stride;        // +88
  uint64_t history_stride;      // +96
  uint64_t slot_stride;         // +104
  uint8_t reserved1[144];       // +112
};
static_assert(sizeof(TopicHeader) == 256);

struct alignas(64) TopicState {
  std::atomic<uint64_t> members_gen;  // +0 bumped on every attach/detach of a subscriber
  std::atomic<uint64_t> lost;         // +8 work queue: messages held by subscribers that died
  uint8_t pad[48];
};
static_assert(sizeof(TopicState) == 64);

// Owner line shared by publisher and subscriber blocks: pid | RoleState << 32, claimed by CAS.
// kRoleNever / kRoleClosed: free; kRoleClaiming: being set up or cleaned; kRoleAttached: in use.
struct alignas(64) MemberLine {
  std::atomic<uint64_t> owner;       // +0
  std::atomic<uint64_t> start_time;  // +8
  std::atomic<uint32_t> epoch;       // +16 incremented on every attach
  std::atomic<uint32_t> mode;        // +20 subscribers: SubscriberMode; publishers: 0
  uint8_t pad[40];
};
static_assert(sizeof(MemberLine) == 64);

struct PublisherBlock {
  MemberLine member;                  // +0
  std::atomic<uint64_t> free_head;    // +64  Treiber stack of free slots: index + 1, 0 = empty
  uint8_t pad0[56];
  EventCount pool_event;              // +128 releasers notify, a publisher out of slots waits
  std::atomic<uint64_t> seq;          // +192 last published sequence number
  std::atomic<uint64_t> messages;     // +200 messages published
  std::atomic<uint64_t> bytes;        // +208
  std::atomic<uint64_t> no_receiver;  // +216 messages published while no subscriber was attached
  // Delivery in progress, so that a publisher taking over a dead one's block can return the
  // references the dead one counted but never handed out (PROTOCOL.md 14.5).
  std::atomic<uint32_t> inflight_slot;       // +224 slot index + 1; 0 = none
  std::atomic<uint32_t> inflight_action;     // +228 0 none, 1 queue append, 2 history store
  std::atomic<uint32_t> inflight_remaining;  // +232 references not handed out yet, after the action
  std::atomic<uint32_t> inflight_sub;        // +236 action 1: the subscriber
  std::atomic<uint64_t> inflight_tail;       // +240 action 1: the queue tail before the append
  uint8_t pad1[8];
};
static_assert(sizeof(PublisherBlock) == 256);

struct HeldEntry {
  std::atomic<uint32_t> slot;       // +0 slot index + 1; 0 = empty
  std::atomic<uint32_t> publisher;  // +4 publisher block index
};
static_assert(sizeof(HeldEntry) == 8);

// Followed by max_held HeldEntry; stride rounded up to 64.
struct SubscriberBlock {
  MemberLine member;                // +0
  std::atomic<uint64_t> received;   // +64  written by the subscriber
  std::atomic<uint64_t> bytes;      // +72
  uint8_t pad0[48];
  std::atomic<uint64_t> dropped;    // +128 written by publishers (oldest dropped, block timeouts)
  uint8_t pad1[56];
  EventCount data_event;            // +192 publishers notify, the subscriber waits
  EventCount space_event;           // +256 the subscriber notifies, publishers blocked on it wait
};
static_assert(sizeof(SubscriberBlock) == 320);
inline constexpr uint64_t kHeldTableOffset = sizeof(SubscriberBlock);

// One per (publisher, subscriber): cells[depth] of slot index + 1 follow the two lines.
struct IndexQueue {
  std::atomic<uint64_t> head;  // +0   next entry to take; advanced by CAS (subscriber, or a
  uint8_t pad0[56];            //      publisher dropping the oldest entry)
  std::atomic<uint64_t> tail;  // +64  entries appended; written by the publisher only
  uint8_t pad1[56];
};
static_assert(sizeof(IndexQueue) == 128);
inline constexpr uint64_t kQueueCellsOffset = sizeof(IndexQueue);

struct HistoryEntry {
  std::atomic<uint64_t> seq;   // +0 0 = empty
  std::atomic<uint32_t> slot;  // +8 slot index + 1
  uint32_t reserved;
};
static_assert(sizeof(HistoryEntry) == 16);

// Slot state word: bit 31 free, bit 30 on the free stack, bits 0-29 reference count.
inline constexpr uint32_t kSlotFree = 1u << 31;
inline constexpr uint32_t kSlotOnStack = 1u << 30;
inline constexpr uint32_t kSlotRefMask = kSlotOnStack - 1;

struct SlotHeader {
  std::atomic<uint32_t> state;  // +0
  std::atomic<uint32_t> next;   // +4  free-stack link: index + 1
  std::atomic<uint64_t> seq;    // +8  publisher's sequence number of the message in it
  uint32_t size;                // +16 payload bytes
  uint32_t offset;              // +20 payload start within the slot's data (publish_tail)
  uint32_t flags;               // +24 reserved, 0
  uint32_t epoch;               // +28 publisher epoch
  uint8_t pad[32];
};
static_assert(sizeof(SlotHeader) == 64);
inline constexpr uint64_t kSlotDataOffset = sizeof(SlotHeader);

inline constexpr const char* kTopicLayoutDescription =
    "flatlane-topic-v1;th=256:slot_size0,slot_count4,pubs8,subs12,depth16,held20,history24,dist28,offs32..64,"
    "strides72..104;ts=512:gen0,lost8;member=owner0,start8,epoch16,mode20;pub=member0,free64,pool128,seq192,"
    "msgs200,bytes208,noreceiver216,inflight224:slot+1,action228,remaining232,sub236,tail240;sub=member0,recv64,bytes72,dropped128,data192,space256,held320:slot+1,pub;"
    "queue=head0,tail64,cells128:u32 slot+1;hist=seq0,slot8;slot=state0:free31,stack30,refs,next4,seq8,"
    "size16,offset20,flags24,epoch28,data64";
inline constexpr uint64_t kTopicLayoutHash = fnv1a(kTopicLayoutDescription);

// Topic segments share the segment header with one-to-one channels and carry their own hash.
constexpr uint64_t layout_hash_for(uint32_t kind) {
  return kind == kKindTopic ? kTopicLayoutHash : kind == kKindDuplex ? kDuplexLayoutHash : kLayoutHash;
}

}  // namespace flatlane::wire
