// The wire layout of a Flatlane SPSC channel segment, protocol version 1.
// docs/PROTOCOL.md is the normative description; this header mirrors it field by field and
// static_asserts every offset so the C++ compiler checks the spec for us.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace flatlane::wire {

inline constexpr uint64_t kMagic = 0x454E414C54414C46ull;  // bytes "FLATLANE" little-endian
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint64_t kHeaderRegionSize = 4096;  // ring starts at this offset
inline constexpr uint64_t kCacheLine = 64;
inline constexpr uint64_t kFrameAlign = 16;
inline constexpr uint64_t kFrameHeaderSize = 16;
inline constexpr uint64_t kChunkHeaderSize = 16;
inline constexpr uint64_t kMinRingCapacity = 4096;
// The writer never fills the last 16 bytes of the ring: the header slot at the write position is
// always free, so it can be cleared before the frame in front of it is published.
inline constexpr uint64_t kRingReserve = 16;
// Largest frame payload for a ring: two such frames fit beside the reserve, and one always fits
// (with wrap padding) once the ring is empty.
constexpr uint64_t max_frame_limit(uint64_t capacity) { return capacity / 2 - 2 * 16; }
inline constexpr uint64_t kMaxRingCapacity = 1ull << 40;
inline constexpr size_t kTypeNameSize = 128;

enum SegmentState : uint32_t { kStateInitializing = 0, kStateReady = 1 };
enum ChannelKind : uint32_t { kKindSpsc = 1 };  // kKindTopic = 2: topic_layout.hpp

// Role state in an endpoint block (high half of the owner word).
enum RoleState : uint32_t { kRoleNever = 0, kRoleAttached = 1, kRoleClosed = 2, kRoleClaiming = 3 };

// Frame flags (low 16 bits); the high 16 bits carry the writer epoch (mod 2^16).
enum FrameFlags : uint32_t {
  kFramePadding = 1u << 0,   // skip record: wrap padding or leading gap
  kFrameFirst = 1u << 1,     // first frame of a message
  kFrameLast = 1u << 2,      // last frame of a message
  kFrameChunked = 1u << 3,   // payload begins with a ChunkHeader
  kFrameReleased = 1u << 8,  // set by the reader only: frame consumed, space may be reclaimed
};
// Lead: the number of bytes (0-2047) between the header and the payload of an unchunked frame;
// `size` counts them. Lets a payload built back to front (FlatBuffers) be published where it
// ends, without moving it and without a padding record in front. Bits 4-7 hold lead % 16, bits
// 9-15 lead / 16 (bit 8 is RELEASED).
inline constexpr uint32_t kFrameLeadShift = 4;
inline constexpr uint32_t kFrameLeadMask = 0xFu << kFrameLeadShift;
inline constexpr uint32_t kFrameLeadHighShift = 9;
inline constexpr uint32_t kFrameLeadHighMask = 0x7Fu << kFrameLeadHighShift;
inline constexpr uint32_t kMaxFrameLead = 0x7F * 16 + 15;
constexpr uint32_t encode_lead(uint32_t lead) {
  return ((lead & 0xFu) << kFrameLeadShift) | ((lead >> 4) << kFrameLeadHighShift);
}
constexpr uint32_t decode_lead(uint32_t flags) {
  return ((flags & kFrameLeadMask) >> kFrameLeadShift) | (((flags & kFrameLeadHighMask) >> kFrameLeadHighShift) << 4);
}
static_assert(decode_lead(encode_lead(kMaxFrameLead)) == kMaxFrameLead && (encode_lead(kMaxFrameLead) & (1u << 8)) == 0);
inline constexpr uint32_t kFrameFlagMask = 0xFFFFu;
inline constexpr uint32_t kFrameEpochShift = 16;

// Offset 0, written once by the creator before `state` becomes kStateReady, read-only afterwards.
struct SegmentHeader {
  uint64_t magic;                  // 0
  uint32_t protocol_version;       // 8
  uint32_t header_size;            // 12  == kHeaderRegionSize
  uint64_t layout_hash;            // 16
  uint64_t segment_size;           // 24
  uint64_t ring_offset;            // 32
  uint64_t ring_capacity;          // 40  power of two
  uint32_t max_frame_payload;      // 48
  uint32_t chunk_size;             // 52  payload bytes per chunk frame (incl. ChunkHeader)
  uint32_t kind;                   // 56  ChannelKind
  std::atomic<uint32_t> state;     // 60  SegmentState, release-stored by the creator
  uint32_t creator_pid;            // 64
  uint32_t flags;                  // 68  reserved, 0
  uint64_t creator_start_time;     // 72  /proc/<pid>/stat field 22
  uint64_t created_unix_ns;        // 80
  uint64_t type_hash;              // 88  0 = untyped
  char type_name[kTypeNameSize];   // 96  NUL-terminated, empty = untyped
  uint8_t reserved[32];            // 224
};
static_assert(sizeof(SegmentHeader) == 256);

// One per role (writer, reader), two cache lines. The first holds what the peer polls (`pos`)
// and what changes only on attach/close; the second holds counters the owner bumps per message,
// so those stores never steal the polled line from the peer.
struct alignas(64) EndpointBlock {
  std::atomic<uint64_t> pos;         // +0  writer: bytes committed; reader: bytes released
  std::atomic<uint64_t> owner;       // +8  pid (bits 0-31) | RoleState (bits 32-63), claimed by CAS
  std::atomic<uint64_t> start_time;  // +16 owner's process start time
  std::atomic<uint32_t> epoch;       // +24 incremented on every attach
  uint32_t reserved0;                // +28
  uint8_t reserved1[32];             // +32
  std::atomic<uint64_t> count;       // +64 writer: frames committed (= last seq); reader: frames released
  std::atomic<uint64_t> messages;    // +72 whole messages sent / received (stats)
  std::atomic<uint64_t> bytes;       // +80 payload bytes sent / received (stats)
  uint8_t reserved2[40];             // +88
};
static_assert(sizeof(EndpointBlock) == 128);

constexpr uint64_t make_owner(uint32_t pid, uint32_t state) { return pid | (uint64_t{state} << 32); }
constexpr uint32_t owner_pid(uint64_t owner) { return static_cast<uint32_t>(owner); }
constexpr uint32_t owner_state(uint64_t owner) { return static_cast<uint32_t>(owner >> 32); }

// An eventcount: waiters announce themselves, notifiers bump `seq` and FUTEX_WAKE only if
// `waiters` is non-zero, so the hot path makes no syscall while the peer is awake.
struct alignas(64) EventCount {
  std::atomic<uint32_t> seq;      // +0 futex word
  std::atomic<uint32_t> waiters;  // +4 number of sleepers (or about-to-sleep)
  std::atomic<uint32_t> demand;   // +8 waiting side has waited long or failed a poll: publish eagerly
  uint8_t pad[52];
};
static_assert(sizeof(EventCount) == 64);

// OIEB (operation info exchange block). Producer and consumer blocks and the two eventcounts
// sit on separate lines, 128 bytes apart, so the adjacent-line prefetcher never couples them.
inline constexpr uint64_t kWriterBlockOffset = 256;
inline constexpr uint64_t kReaderBlockOffset = 384;
inline constexpr uint64_t kDataEventOffset = 512;   // writer notifies, reader waits
inline constexpr uint64_t kSpaceEventOffset = 640;  // reader notifies, writer waits

// `seq` is the commit word: the writer stores it last, with release order, and a reader that
// knows the next sequence number detects a new frame by polling it (one cache line per frame).
struct FrameHeader {
  uint32_t size;   // payload bytes that follow this header (padding: bytes to skip)
  uint32_t flags;  // FrameFlags | epoch << 16
  uint64_t seq;    // 1-based frame sequence; padding carries the seq of the frame after it
};
static_assert(sizeof(FrameHeader) == kFrameHeaderSize);

struct ChunkHeader {
  uint64_t message_size;  // total bytes of the reassembled message
  uint32_t index;         // 0-based chunk index
  uint32_t count;         // number of chunks
};
static_assert(sizeof(ChunkHeader) == kChunkHeaderSize);

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint64_t frame_extent(uint64_t payload) { return align_up(kFrameHeaderSize + payload, kFrameAlign); }

// FNV-1a over a textual description of the layout: any change of field, offset or size gives a
// different hash, which `open` reports as layout_mismatch.
constexpr uint64_t fnv1a(const char* s, uint64_t h = 0xcbf29ce484222325ull) {
  return *s ? fnv1a(s + 1, (h ^ static_cast<uint8_t>(*s)) * 0x100000001b3ull) : h;
}
inline constexpr const char* kLayoutDescription =
    "flatlane-spsc-v1;hdr=256;oieb=w256,r384,de512,se640;ep=pos0,owner8:pid|state<<32,start16,epoch24,"
    "count64,msgs72,bytes80;ev=seq0,waiters4,demand8;ring=4096;frame=size0:u32,flags4:u32,seq8:u64;align=16;"
    "chunk=msize0:u64,index8:u32,count12:u32;commit=seq-last,next-slot-cleared,reserve16;lead=flags4-7+9-15x16";
inline constexpr uint64_t kLayoutHash = fnv1a(kLayoutDescription);

static_assert(offsetof(SegmentHeader, protocol_version) == 8 && offsetof(SegmentHeader, layout_hash) == 16 &&
              offsetof(SegmentHeader, ring_capacity) == 40 && offsetof(SegmentHeader, state) == 60 &&
              offsetof(SegmentHeader, creator_start_time) == 72 && offsetof(SegmentHeader, type_hash) == 88 &&
              offsetof(SegmentHeader, type_name) == 96);
static_assert(offsetof(EndpointBlock, owner) == 8 && offsetof(EndpointBlock, start_time) == 16 &&
              offsetof(EndpointBlock, epoch) == 24 && offsetof(EndpointBlock, count) == 64 &&
              offsetof(EndpointBlock, messages) == 72 && offsetof(EndpointBlock, bytes) == 80);
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format is little-endian");

}  // namespace flatlane::wire
