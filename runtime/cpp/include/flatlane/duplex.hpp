// In-place duplex channel (kind 3): the response is the request frame, modified where it lies.
//
//   DuplexClient c("image.filter");              DuplexServer s("image.filter");
//   auto span = c.reserve(n);                    auto req = s.receive();          // mutable view
//   fill(*span); c.commit(n);   // -> seq        blur(req->data());               // in place
//   auto rep = c.receive();     // same frame    s.respond(*req);                 // same bytes back
//
// One client and one server per channel; several requests may be outstanding. The server may
// answer them in any order; the client receives responses in request order (sequence numbers
// correlate them) and may hold several and release them in any order. A frame's space returns to
// the client only after its response was received and released. docs/PROTOCOL.md section 16.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "flatlane/channel.hpp"
#include "flatlane/duplex_layout.hpp"
#include "flatlane/error.hpp"
#include "flatlane/segment.hpp"
#include "flatlane/wait.hpp"

namespace flatlane {

struct DuplexOptions {
  OpenMode mode = OpenMode::create_or_open;
  SegmentConfig segment;  // kind is set to duplex; ring_capacity etc. apply when creating
  WaitOptions wait;
  bool unlink_on_close = true;  // last endpoint to close removes the name
};

struct DuplexStats {
  uint64_t requests = 0;     // client: requests sent; server: requests received
  uint64_t responses = 0;    // client: responses received; server: responses sent (incl. rejections)
  uint64_t rejected = 0;     // client: responses that came back rejected; server: requests it rejected
  uint64_t bytes = 0;        // client: request bytes sent; server: response bytes sent
  uint64_t outstanding = 0;  // client: sent, response not yet received; server: received, not answered
  uint64_t occupancy_bytes = 0;  // ring bytes in use (client's view: committed - released)
  uint64_t capacity_bytes = 0;
};

namespace detail {
// A FIFO of private records, grown by doubling: allocation happens only when more frames
// are in flight than ever before on this endpoint, never in steady state.
template <class T>
class RecordQueue {
 public:
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& at(size_t i) noexcept { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  const T& at(size_t i) const noexcept { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  T& front() noexcept { return at(0); }
  void push_back(const T& v) {
    if (size_ == buf_.size()) grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = v;
    ++size_;
  }
  void pop_front() noexcept {
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
  }
 private:
  void grow() {
    std::vector<T> next(buf_.empty() ? 64 : buf_.size() * 2);
    for (size_t i = 0; i < size_; ++i) next[i] = at(i);
    buf_ = std::move(next);
    head_ = 0;
  }
  std::vector<T> buf_;
  size_t head_ = 0;
  size_t size_ = 0;
};
}  // namespace detail

class DuplexClient;
class DuplexServer;

// A response held by the client: the request's frame, as the server left it. Move-only; the
// frame's space is released when this is destroyed or released. Must not outlive its client.
class DuplexResponse {
 public:
  DuplexResponse() = default;
  DuplexResponse(DuplexResponse&& o) noexcept
      : client_(std::exchange(o.client_, nullptr)), index_seq_(o.index_seq_), data_(o.data_), seq_(o.seq_),
        status_(o.status_) {}
  DuplexResponse& operator=(DuplexResponse&& o) noexcept {
    if (this != &o) {
      release();
      client_ = std::exchange(o.client_, nullptr);
      index_seq_ = o.index_seq_;
      data_ = o.data_;
      seq_ = o.seq_;
      status_ = o.status_;
    }
    return *this;
  }
  DuplexResponse(const DuplexResponse&) = delete;
  DuplexResponse& operator=(const DuplexResponse&) = delete;
  ~DuplexResponse() { release(); }

  // The response bytes inside the frame (empty when rejected). Writable: the client may reuse
  // them (e.g. as the input of its next request) while it holds the response.
  std::span<std::byte> data() const noexcept { return data_; }
  size_t size() const noexcept { return data_.size(); }
  uint64_t seq() const noexcept { return seq_; }  // the seq commit() returned for the request
  bool rejected() const noexcept { return status_ == wire::kResponseRejected; }
  bool valid() const noexcept { return client_ != nullptr; }
  void release() noexcept;

 private:
  friend class DuplexClient;
  DuplexClient* client_ = nullptr;
  uint64_t index_seq_ = 0;
  std::span<std::byte> data_;
  uint64_t seq_ = 0;
  uint32_t status_ = 0;
};

// A request held by the server: a mutable view of the client's frame. Answer it with respond()
// (the bytes now in the frame go back) or reject(); destroying it unanswered rejects it, so a
// client never waits for a request the server dropped. Must not outlive its server.
class DuplexRequest {
 public:
  DuplexRequest() = default;
  DuplexRequest(DuplexRequest&& o) noexcept
      : server_(std::exchange(o.server_, nullptr)), seq_(o.seq_), payload_(o.payload_), offset_(o.offset_),
        size_(o.size_) {}
  DuplexRequest& operator=(DuplexRequest&& o) noexcept {
    if (this != &o) {
      reject();
      server_ = std::exchange(o.server_, nullptr);
      seq_ = o.seq_;
      payload_ = o.payload_;
      offset_ = o.offset_;
      size_ = o.size_;
    }
    return *this;
  }
  DuplexRequest(const DuplexRequest&) = delete;
  DuplexRequest& operator=(const DuplexRequest&) = delete;
  ~DuplexRequest() { reject(); }

  // The request bytes, writable in place.
  std::span<std::byte> data() const noexcept { return payload_.subspan(offset_, size_); }
  // The whole frame payload (the client's reservation): a response may use all of it.
  std::span<std::byte> frame() const noexcept { return payload_; }
  size_t request_offset() const noexcept { return offset_; }
  uint64_t seq() const noexcept { return seq_; }
  bool valid() const noexcept { return server_ != nullptr; }
  // Rejects the request if it was not answered (the client sees DuplexResponse::rejected()).
  void reject() noexcept;

 private:
  friend class DuplexServer;
  DuplexServer* server_ = nullptr;
  uint64_t seq_ = 0;
  std::span<std::byte> payload_;
  size_t offset_ = 0;
  size_t size_ = 0;
};

class DuplexClient {
 public:
  DuplexClient(std::string_view name, const DuplexOptions& opts = {});
  DuplexClient(DuplexClient&&) = delete;  // responses point into this object
  ~DuplexClient();

  // Largest reservation: the frame a request and its response share.
  uint32_t max_frame_payload() const noexcept { return max_frame_; }

  // Writable frame of n bytes for the next request. Space comes back only as this client
  // receives and releases responses, so a ring full of outstanding or held responses fails at
  // once with timeout (receive and release first); only frames left by a previous client are
  // waited for, up to `timeout`, as the server answers them. Errors: message_too_large,
  // timeout, closed.
  Result<std::span<std::byte>> reserve(size_t n, std::chrono::nanoseconds timeout = kInfinite);
  // Publishes the first `used` bytes of the reservation as the request; returns its seq. The
  // whole reservation stays the frame's: the server may answer with up to n bytes.
  uint64_t commit(size_t used) noexcept;
  // Publishes the LAST `used` bytes (a FlatBuffer built back to front). A large unused front is
  // given back to the ring (a padding record), so the server can answer with at most the
  // request's size plus under 4 KiB.
  uint64_t commit_tail(size_t used) noexcept;
  void abort() noexcept { reserved_ = false; }
  // Copies `request` into a frame of max(request.size(), capacity) bytes and publishes it.
  Result<uint64_t> send(std::span<const std::byte> request, size_t capacity = 0,
                        std::chrono::nanoseconds timeout = kInfinite);

  // The response to the oldest request whose response was not received yet. Errors: timeout,
  // peer_dead (the server died; requests it did not answer are answered by the next server,
  // rejected if the dead one had received them), peer_closed, closed, corrupt, and
  // invalid_argument when no request is outstanding.
  Result<DuplexResponse> receive(std::chrono::nanoseconds timeout = kInfinite);

  uint64_t outstanding() const noexcept { return sent_ - received_; }
  void close() noexcept;
  bool peer_attached() const noexcept;
  DuplexStats stats() const noexcept;
  const Segment& segment() const noexcept { return seg_; }

 private:
  friend class DuplexResponse;
  struct Record {
    uint64_t start = 0;  // first byte (padding included) and end of the frame's space
    uint64_t end = 0;
    uint64_t hdr = 0;    // position of the frame header
    uint32_t capacity = 0;
    uint64_t seq = 0;    // 0: an orphan left by a previous client, freed once answered
    bool released = false;
  };
  uint64_t publish(uint64_t hdr_pos, uint64_t capacity, uint64_t offset, size_t used) noexcept;
  void release(uint64_t index_seq) noexcept;
  void advance_release() noexcept;
  void clear_slot_at_write_pos() noexcept;
  void recover(std::string_view name);
  Result<void> wait_for_room(uint64_t needed, std::chrono::nanoseconds timeout);
  bool has_room(uint64_t needed) const noexcept {
    return write_pos_ + needed - release_pos_ <= cap_ - wire::kDuplexRingReserve;
  }
  wire::DuplexFrameHeader* header_at(uint64_t pos) const noexcept {
    return reinterpret_cast<wire::DuplexFrameHeader*>(ring_ + (pos & mask_));
  }

  Segment seg_;
  wire::EndpointBlock* me_ = nullptr;
  wire::EndpointBlock* peer_ = nullptr;
  uint64_t owner_ = 0;
  std::byte* ring_ = nullptr;
  uint64_t cap_ = 0;
  uint64_t mask_ = 0;
  uint32_t max_frame_ = 0;
  uint32_t epoch_ = 0;
  WaitOptions wait_;
  bool unlink_on_close_ = true;
  // Client-private state.
  uint64_t write_pos_ = 0;
  uint64_t release_pos_ = 0;
  uint64_t seq_ = 0;
  uint64_t frame_pos_ = 0;
  size_t reserved_n_ = 0;
  bool reserved_ = false;
  // Records of frames between release_pos_ and write_pos_, oldest first; index_seq numbers them.
  detail::RecordQueue<Record> records_;
  uint64_t first_index_ = 0;   // index_seq of records_.front()
  uint64_t next_receive_ = 0;  // index_seq of the next record whose response receive() returns
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  uint64_t rejected_ = 0;
  uint64_t bytes_ = 0;
  uint64_t messages_ = 0;
  Clock::time_point next_poll_check_{};
  std::atomic<bool> closed_{false};
};

class DuplexServer {
 public:
  DuplexServer(std::string_view name, const DuplexOptions& opts = {});
  DuplexServer(DuplexServer&&) = delete;
  ~DuplexServer();

  // Next request, as a mutable view of its frame. Errors: timeout, peer_dead / peer_closed (the
  // client went away and every request it sent was received), closed, corrupt.
  Result<DuplexRequest> receive(std::chrono::nanoseconds timeout = kInfinite);
  // Answers with the bytes now at the request's place (same offset and size).
  Result<void> respond(DuplexRequest& req) noexcept { return respond(req, req.offset_, req.size_); }
  // Answers with `size` bytes at `offset` within the frame payload (req.frame()).
  Result<void> respond(DuplexRequest& req, size_t offset, size_t size) noexcept;

  uint64_t outstanding() const noexcept { return records_.size() - answered_in_queue_; }
  void close() noexcept;
  bool peer_attached() const noexcept;
  DuplexStats stats() const noexcept;
  const Segment& segment() const noexcept { return seg_; }

 private:
  friend class DuplexRequest;
  struct Record {
    uint64_t end = 0;  // the frame's space ends here (its padding starts after the previous end)
    uint64_t hdr = 0;
    uint64_t seq = 0;
    bool answered = false;
  };
  void answer(uint64_t seq, uint64_t word, size_t bytes) noexcept;
  void take_over(std::string_view name);
  bool request_visible() noexcept;
  wire::DuplexFrameHeader* header_at(uint64_t pos) const noexcept {
    return reinterpret_cast<wire::DuplexFrameHeader*>(ring_ + (pos & mask_));
  }

  Segment seg_;
  wire::EndpointBlock* me_ = nullptr;
  wire::EndpointBlock* peer_ = nullptr;
  uint64_t owner_ = 0;
  std::byte* ring_ = nullptr;
  uint64_t cap_ = 0;
  uint64_t mask_ = 0;
  uint32_t max_frame_ = 0;
  WaitOptions wait_;
  bool unlink_on_close_ = true;
  // Server-private state.
  uint64_t cursor_ = 0;         // next record to look at
  uint64_t responded_pos_ = 0;  // everything before is answered
  uint64_t expected_seq_ = 0;
  detail::RecordQueue<Record> records_;  // delivered frames from responded_pos_ on, oldest first
  size_t answered_in_queue_ = 0;
  uint64_t received_ = 0;
  uint64_t responses_ = 0;
  uint64_t rejected_ = 0;
  uint64_t bytes_ = 0;
  bool corrupt_ = false;
  Clock::time_point next_poll_check_{};
  std::atomic<bool> closed_{false};
};

inline void DuplexResponse::release() noexcept {
  if (client_) std::exchange(client_, nullptr)->release(index_seq_);
}

}  // namespace flatlane
