// Single-producer/single-consumer channel over one segment: zero-copy frames, chunked messages.
//
// Writer: reserve(n) -> span inside the ring -> commit(used) or abort().
// Reader: read(timeout) -> Frame (zero-copy view, released on destruction, in any order).
// Positions are monotonic 64-bit byte counters; the ring offset is pos & (capacity - 1).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "flatlane/error.hpp"
#include "flatlane/segment.hpp"
#include "flatlane/wait.hpp"

namespace flatlane {

enum class OpenMode : uint8_t {
  create,          // create the segment (reclaiming a stale one); fail if a live one exists
  open,            // attach to an existing segment
  create_or_open,  // open if it exists, else create
};

struct ChannelOptions {
  OpenMode mode = OpenMode::create_or_open;
  SegmentConfig segment;   // used when creating; ring_capacity etc. are read from the segment when opening
  WaitOptions wait;
  uint64_t max_message_size = 1ull << 32;  // reader refuses larger reassemblies (message_too_large)
  bool unlink_on_close = true;             // last endpoint to close removes the name
};

class Reader;

// A committed frame held by the reader. Move-only; releases its ring space when destroyed or
// released. Must not outlive its Reader.
class Frame {
 public:
  Frame() = default;
  // Inline: frames move through Result, Message and typed wrappers on every receive, and the
  // compiler can only fold those moves away when it sees them.
  Frame(Frame&& o) noexcept
      : reader_(std::exchange(o.reader_, nullptr)), pos_(o.pos_), extent_(o.extent_), data_(o.data_), seq_(o.seq_),
        flags_(o.flags_), chunk_(o.chunk_) {}
  Frame& operator=(Frame&& o) noexcept {
    if (this != &o) {
      release();
      reader_ = std::exchange(o.reader_, nullptr);
      pos_ = o.pos_;
      extent_ = o.extent_;
      data_ = o.data_;
      seq_ = o.seq_;
      flags_ = o.flags_;
      chunk_ = o.chunk_;
    }
    return *this;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  ~Frame() { release(); }

  std::span<const std::byte> data() const noexcept { return data_; }
  const std::byte* ptr() const noexcept { return data_.data(); }
  size_t size() const noexcept { return data_.size(); }
  uint64_t seq() const noexcept { return seq_; }
  uint32_t flags() const noexcept { return flags_; }
  bool chunked() const noexcept { return (flags_ & wire::kFrameChunked) != 0; }
  // For chunk frames: the ChunkHeader (index, count, message size); data() excludes it.
  wire::ChunkHeader chunk() const noexcept { return chunk_; }
  bool valid() const noexcept { return reader_ != nullptr; }
  void release() noexcept {
    if (reader_) release_held();
  }

 private:
  friend class Reader;
  void release_held() noexcept;
  Reader* reader_ = nullptr;
  uint64_t pos_ = 0;
  uint64_t extent_ = 0;  // validated frame extent, so release never re-reads shared memory
  std::span<const std::byte> data_;
  uint64_t seq_ = 0;
  uint32_t flags_ = 0;
  wire::ChunkHeader chunk_{};
};

// A whole message: either one frame held in place (zero-copy) or a reassembly of chunks held in
// the reader's buffer (valid until the next read_message on that reader).
class Message {
 public:
  std::span<const std::byte> data() const noexcept { return data_; }
  size_t size() const noexcept { return data_.size(); }
  bool zero_copy() const noexcept { return frame_.valid(); }
  uint64_t seq() const noexcept { return seq_; }

 private:
  friend class Reader;
  Frame frame_;
  std::span<const std::byte> data_;
  uint64_t seq_ = 0;
};

struct EndpointStats {
  uint64_t frames = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t occupancy_bytes = 0;  // committed but not yet released
  uint64_t capacity_bytes = 0;
};

namespace detail {

// A Writer's cursor and reservation, plain data in a fixed layout: the C ABI hands its address
// to bindings that run reserve/commit themselves (flatlane_writer_fast_path, docs/PROTOCOL.md
// 6.2), so both sides advance the same state. Only the writer's thread touches it.
struct WriterCursor {
  uint64_t write_pos;        // where the next record starts (published as EndpointBlock::pos)
  uint64_t cached_read_pos;  // the reader's position as last seen
  uint64_t seq;              // last frame sequence number used
  uint64_t messages;         // counters, mirrored to the endpoint block after each commit
  uint64_t bytes;
  uint64_t frame_pos;        // where the reserved frame's header goes (after any wrap padding)
  uint64_t reserved_n;       // size of the open reservation
  uint32_t reserved;         // 1 while a reservation is open
  uint32_t demand_raised;    // 1: we may have set space_event.demand
};
static_assert(sizeof(WriterCursor) == 64);

struct WriterAccess;

// A Reader's consumer-private state, plain data in a fixed layout: the C ABI hands its address
// to bindings that run read/release themselves (flatlane_reader_get_fast_path, docs/PROTOCOL.md
// 6.4-6.5), so both sides advance the same state. Only the reading thread touches it.
struct ReaderCursor {
  uint64_t cursor;             // next record to deliver
  uint64_t release_pos;        // everything before is free
  uint64_t published_release;  // last value stored to the shared read position
  uint64_t publish_batch;      // publish at least this often while more is to read (cap / 4)
  uint64_t cached_write_pos;   // never decreases; may run ahead of the writer's position
  uint64_t pos_floor;          // the writer's position may not fall below this
  uint64_t fast_commit_start;  // commit of the last record found through its commit word
  uint64_t fast_prev_end;
  uint64_t expected_seq;       // 0 = resynchronise on the next frame
  uint64_t held;               // frames delivered and not released
  uint64_t released_frames;
  uint32_t writer_epoch;       // epoch seen in the last frame (low 16 bits)
  uint8_t epoch_known;
  uint8_t fast_prev_padding;
  uint8_t corrupt;             // sticky: the writer violated the protocol
  uint8_t reserved0;
};
static_assert(sizeof(ReaderCursor) == 96);

struct ReaderAccess;

}  // namespace detail

class Writer {
 public:
  Writer(std::string_view name, const ChannelOptions& opts = {});
  Writer(Writer&&) = delete;  // frames and spans point into this object's mapping
  ~Writer();

  // Largest n accepted by reserve().
  uint32_t max_frame_payload() const noexcept { return max_frame_; }
  uint32_t chunk_size() const noexcept { return chunk_size_; }

  // Writable span of exactly n bytes, 16-byte aligned, inside the ring. Waits for space per the
  // wait strategy. Errors: message_too_large, timeout, peer_dead, peer_closed, closed.
  Result<std::span<std::byte>> reserve(size_t n, std::chrono::nanoseconds timeout = kInfinite);
  // reserve() without waiting and without raising `demand` (PROTOCOL.md §8.5): the poll a binding
  // makes before a blocking reserve(), which raises demand itself when it has to wait. A
  // zero-timeout reserve() raises it at once, and a writer that polls that way before every wait
  // makes the reader publish on every release once the ring fills (per-message line traffic).
  // Errors: message_too_large, timeout, closed, corrupt (no peer checks: the wait that follows
  // makes them).
  Result<std::span<std::byte>> try_reserve(size_t n) noexcept;
  // Publishes the first `used` bytes of the reservation (used <= n).
  void commit(size_t used) noexcept;
  // Publishes the LAST `used` bytes of the reservation, where a FlatBuffers builder leaves its
  // finished buffer; the bytes in front are skipped, not copied. The payload keeps its address,
  // so its alignment is that of (span end - used).
  void commit_tail(size_t used) noexcept;
  void abort() noexcept { cur_.reserved = 0; }

  // Copies `data` in: one frame if it fits max_frame_payload, else chunks of chunk_size().
  // The timeout bounds each wait for space (time without progress), not the whole transfer.
  Result<void> write_message(std::span<const std::byte> data, std::chrono::nanoseconds timeout = kInfinite);

  // Interrupts a blocked reserve() from another thread and detaches; later calls return closed.
  void close() noexcept;
  bool peer_attached() const noexcept;
  EndpointStats stats() const noexcept;
  const Segment& segment() const noexcept { return seg_; }

 private:
  void commit_frame(uint64_t hdr_pos, size_t size, uint32_t flags, size_t payload) noexcept;
  void clear_slot(uint64_t pos) noexcept;
  void recover_unpublished_commit() noexcept;
  Result<void> wait_for_space(uint64_t needed, std::chrono::nanoseconds timeout);
  Errc peer_error() const noexcept;

  Segment seg_;
  wire::EndpointBlock* me_ = nullptr;
  wire::EndpointBlock* peer_ = nullptr;
  uint64_t owner_ = 0;  // the owner word we last wrote (see set_role_state)
  std::byte* ring_ = nullptr;
  uint64_t cap_ = 0;
  uint64_t mask_ = 0;
  uint32_t max_frame_ = 0;
  uint32_t chunk_size_ = 0;
  uint32_t epoch_ = 0;
  WaitOptions wait_;
  bool unlink_on_close_ = true;
  Result<std::span<std::byte>> reserve_impl(size_t n, std::chrono::nanoseconds timeout, bool wait);

  // Producer-private state (never in shared memory): its own cursor and a cached copy of the
  // reader's. One block, so that a binding running the reserve/commit fast path itself works on
  // these very fields (detail::WriterAccess, used by the C ABI) instead of a copy.
  detail::WriterCursor cur_{};
  friend struct detail::WriterAccess;
  Clock::time_point next_poll_check_{};  // rate limit for liveness checks by zero-timeout polls
  std::atomic<bool> closed_{false};
};

class Reader {
 public:
  Reader(std::string_view name, const ChannelOptions& opts = {});
  Reader(Reader&&) = delete;
  ~Reader();

  // Next frame (a whole small message or one chunk). Errors: timeout, peer_dead (the writer
  // died and everything it committed has been read), peer_closed, closed, corrupt.
  Result<Frame> read(std::chrono::nanoseconds timeout = kInfinite);
  // Next whole message, reassembling chunks. The timeout bounds each wait (time without progress).
  Result<Message> read_message(std::chrono::nanoseconds timeout = kInfinite);
  // Frames delivered but not yet released.
  uint64_t held_frames() const noexcept { return cur_.held; }
  // Chunks of the message being reassembled so far (progress of a large read_message).
  uint32_t chunks_received() const noexcept { return chunks_done_; }
  // Chunked messages abandoned half-way (writer died, restarted or timed out mid-message).
  uint64_t dropped_partial_messages() const noexcept { return dropped_partial_; }

  void close() noexcept;
  bool peer_attached() const noexcept;
  EndpointStats stats() const noexcept;
  const Segment& segment() const noexcept { return seg_; }

 private:
  friend class Frame;
  void release(uint64_t pos, uint64_t extent) noexcept;
  void sweep() noexcept;
  void publish_release(bool force) noexcept;
  bool caught_up() noexcept;
  void skip(uint64_t extent) noexcept;
  Result<void> wait_for_data(std::chrono::nanoseconds timeout);
  bool frame_visible(bool check_pos) noexcept;
  Errc peer_error() const noexcept;
  wire::FrameHeader* header_at(uint64_t pos) const noexcept {
    return reinterpret_cast<wire::FrameHeader*>(ring_ + (pos & mask_));
  }

  Segment seg_;
  wire::EndpointBlock* me_ = nullptr;
  wire::EndpointBlock* peer_ = nullptr;
  uint64_t owner_ = 0;  // the owner word we last wrote (see set_role_state)
  std::byte* ring_ = nullptr;
  uint64_t cap_ = 0;
  uint64_t mask_ = 0;
  uint32_t max_frame_ = 0;
  uint64_t max_message_ = 0;
  WaitOptions wait_;
  bool unlink_on_close_ = true;
  // Consumer-private state (never in shared memory), in one block that bindings running the
  // read/release fast path themselves work on directly (detail::ReaderAccess, the C ABI).
  detail::ReaderCursor cur_{};
  friend struct detail::ReaderAccess;
  uint64_t messages_ = 0;
  uint64_t bytes_ = 0;
  // Chunk reassembly, reused across messages. Address space is reserved with MAP_NORESERVE and
  // pages are committed only as chunks arrive, so a lying message_size costs no memory.
  std::byte* assembly_ = nullptr;
  uint64_t assembly_cap_ = 0;
  bool assembling_ = false;
  bool skipping_ = false;
  uint64_t asm_size_ = 0;
  uint64_t asm_off_ = 0;
  uint64_t asm_seq_ = 0;
  uint32_t asm_count_ = 0;
  uint32_t asm_next_ = 0;
  uint32_t chunks_done_ = 0;
  uint64_t dropped_partial_ = 0;
  Clock::time_point next_poll_check_{};
  std::atomic<bool> closed_{false};
};

}  // namespace flatlane
