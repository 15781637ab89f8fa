// The wire layout of a Flatlane in-place duplex segment (kind 3), protocol version 1.
// docs/PROTOCOL.md section 16 is the normative description; this header mirrors it.
//
// One ring, two roles. The client writes a request into a frame and publishes it; the server
// receives a mutable view of that frame, modifies the request where it lies (or writes its answer
// over it) and publishes the response in the same frame; the client reads the response in place
// and releases the frame. Nothing is copied, and the ring holds each message once, not twice.
//
// The segment header (256 bytes), the two endpoint blocks and the first two eventcounts sit at the
// offsets of a one-to-one channel (layout.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "flatlane/layout.hpp"

namespace flatlane::wire {

inline constexpr uint32_t kKindDuplex = 3;

// Client block = the channel's writer block, server block = its reader block (EndpointBlock).
//   client: pos = bytes committed (requests), cursor = bytes released (responses consumed),
//           count = last request seq, messages = responses received, bytes = request bytes sent
//   server: pos = bytes responded (contiguous prefix), cursor = bytes delivered to the server,
//           count = seq of the last request delivered, messages = responses sent, bytes = response bytes
inline constexpr uint64_t kDuplexClientBlockOffset = kWriterBlockOffset;  // 256
inline constexpr uint64_t kDuplexServerBlockOffset = kReaderBlockOffset;  // 384
inline constexpr uint64_t kEndpointCursorOffset = 32;  // within an EndpointBlock (its reserved1 bytes)
inline constexpr uint64_t kRequestEventOffset = kDataEventOffset;    // 512: client notifies, server waits
inline constexpr uint64_t kResponseEventOffset = kSpaceEventOffset;  // 640: server notifies, client waits

// Frames are 32-aligned, so the tail before the ring end always holds a padding header.
inline constexpr uint64_t kDuplexFrameAlign = 32;
inline constexpr uint64_t kDuplexFrameHeaderSize = 32;
// The client never fills the last 32 bytes: the header slot at its write position stays free.
inline constexpr uint64_t kDuplexRingReserve = 32;
inline constexpr uint64_t kMaxDuplexRingCapacity = 1ull << 31;  // response offsets have 30 bits
constexpr uint64_t duplex_max_frame_limit(uint64_t capacity) { return capacity / 2 - 64; }

// Response word (the server's commit word): 0 while the request is pending.
inline constexpr uint64_t kResponseStatusShift = 62;
inline constexpr uint64_t kResponseOffsetShift = 32;
inline constexpr uint64_t kResponseOffsetMask = (1ull << 30) - 1;
enum ResponseStatus : uint32_t {
  kResponsePending = 0,
  kResponseOk = 1,        // offset/size describe the response bytes within the frame's payload
  kResponseRejected = 2,  // no response: the server refused the request or died holding it
};
constexpr uint64_t make_response(uint32_t status, uint64_t offset, uint32_t size) {
  return (uint64_t{status} << kResponseStatusShift) | ((offset & kResponseOffsetMask) << kResponseOffsetShift) | size;
}
constexpr uint32_t response_status(uint64_t w) { return static_cast<uint32_t>(w >> kResponseStatusShift); }
constexpr uint64_t response_offset(uint64_t w) { return (w >> kResponseOffsetShift) & kResponseOffsetMask; }
constexpr uint32_t response_size(uint64_t w) { return static_cast<uint32_t>(w); }

// 32 bytes at a 32-aligned position, payload right after it (32-aligned).
struct DuplexFrameHeader {
  uint32_t capacity;        // +0  payload bytes after the header (padding: bytes to skip)
  uint32_t flags;           // +4  kFramePadding | kFrameReleased (client-private) | epoch << 16
  uint64_t seq;             // +8  request commit word, stored last by the client (release)
  uint32_t request_offset;  // +16 request bytes start this far into the payload
  uint32_t request_size;    // +20
  uint64_t response;        // +24 response word, stored last by the server (release)
};
static_assert(sizeof(DuplexFrameHeader) == kDuplexFrameHeaderSize);
static_assert(offsetof(DuplexFrameHeader, seq) == 8 && offsetof(DuplexFrameHeader, response) == 24);

constexpr uint64_t duplex_extent(uint64_t capacity) {
  return align_up(kDuplexFrameHeaderSize + capacity, kDuplexFrameAlign);
}

inline constexpr const char* kDuplexLayoutDescription =
    "flatlane-duplex-v1;hdr=256;oieb=c256,s384,req512,resp640;ep=pos0,owner8:pid|state<<32,start16,"
    "epoch24,cursor32,count64,msgs72,bytes80;ev=seq0,waiters4,demand8;ring=4096;"
    "frame=cap0:u32,flags4:u32,seq8:u64,reqoff16:u32,reqsize20:u32,resp24:u64(status62|off32:30|size0:32);"
    "align=32;reserve32;commit=seq-last,next-slot-cleared";
inline constexpr uint64_t kDuplexLayoutHash = fnv1a(kDuplexLayoutDescription);

inline std::atomic<uint64_t>& endpoint_cursor(EndpointBlock& b) noexcept {
  return *reinterpret_cast<std::atomic<uint64_t>*>(reinterpret_cast<std::byte*>(&b) + kEndpointCursorOffset);
}

}  // namespace flatlane::wire
