#include "flatlane/duplex.hpp"

#include <algorithm>
#include <cstring>

#include "flatlane/liveness.hpp"
#include "flatlane/topic_layout.hpp"
#include "roles.hpp"
#include "wait_until.hpp"

namespace flatlane {

namespace {

using std::chrono::nanoseconds;
using detail::claim_role;
using detail::detach;
using detail::role_closed;
using detail::role_error;
using detail::role_live;
using detail::set_role_state;
using detail::wait_until;

// A frame's response is answered with a large unused front given back only above this size:
// below it the front stays in the frame (the server may grow its answer into it).
constexpr uint64_t kKeepFront = 4096;

Segment open_duplex(std::string_view name, const TypeId& type) {
  Segment s = Segment::open(name, type);
  if (s.kind() != wire::kKindDuplex)
    throw Error(Errc::invalid_argument, "flatlane: '" + std::string(name) + "' is " +
                                            (s.kind() == wire::kKindTopic ? "a publish/subscribe topic"
                                                                          : "a one-to-one channel") +
                                            ", not an in-place duplex channel");
  return s;
}

Segment open_or_create(std::string_view name, const DuplexOptions& o) {
  SegmentConfig cfg = o.segment;
  cfg.kind = wire::kKindDuplex;
  return detail::open_or_create_segment(name, o.mode, cfg, open_duplex);
}

wire::EventCount& request_event(const Segment& s) { return s.data_event(); }
wire::EventCount& response_event(const Segment& s) { return s.space_event(); }

uint64_t load_acquire(const uint64_t& word) noexcept {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_acquire);
}
void store_release(uint64_t& word, uint64_t v) noexcept {
  std::atomic_ref<uint64_t>(word).store(v, std::memory_order_release);
}

[[noreturn]] void corrupt(std::string_view name, const std::string& why) {
  throw Error(Errc::corrupt, "flatlane: duplex channel '" + std::string(name) + "': " + why);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Client

DuplexClient::DuplexClient(std::string_view name, const DuplexOptions& opts)
    : seg_(open_or_create(name, opts)), wait_(opts.wait), unlink_on_close_(opts.unlink_on_close) {
  me_ = &seg_.writer_block();
  peer_ = &seg_.reader_block();
  ring_ = seg_.ring();
  cap_ = seg_.ring_capacity();
  mask_ = cap_ - 1;
  max_frame_ = seg_.max_frame_payload();
  epoch_ = claim_role(*me_, owner_, "client", name);
  // Only the client sleeps on the response event: a count left by a client that died asleep is stale.
  response_event(seg_).waiters.store(0, std::memory_order_relaxed);
  try {
    recover(name);
  } catch (...) {
    set_role_state(*me_, owner_, wire::kRoleClosed);  // leave the role free for a later attempt
    throw;
  }
}

// Continues where a previous client stopped. Its frames between the released and the committed
// position are orphans: nobody will read their responses, and each is freed once the server has
// answered it (a frame the server may still be writing into is never reused).
void DuplexClient::recover(std::string_view name) {
  write_pos_ = me_->pos.load(std::memory_order_acquire);
  seq_ = me_->count.load(std::memory_order_relaxed);
  release_pos_ = wire::endpoint_cursor(*me_).load(std::memory_order_acquire);
  if (write_pos_ % wire::kDuplexFrameAlign != 0 || release_pos_ % wire::kDuplexFrameAlign != 0 ||
      release_pos_ > write_pos_ || write_pos_ - release_pos_ > cap_ - wire::kDuplexRingReserve)
    corrupt(name, "inconsistent ring positions");
  // A client that died between a request's commit word and its position store left a request
  // the server may already be answering: count it as sent (an orphan), never write over it.
  uint64_t pos = write_pos_;
  for (int records = 0; records < 3; ++records) {  // at most wrap padding, front padding, frame
    const auto* h = header_at(pos);
    if (load_acquire(h->seq) != seq_ + 1) break;
    const uint64_t ext = wire::duplex_extent(h->capacity);
    if (ext > cap_ - (pos & mask_) || pos + ext - release_pos_ > cap_ - wire::kDuplexRingReserve) break;
    pos += ext;
    if ((h->flags & wire::kFramePadding) == 0) {
      write_pos_ = pos;
      me_->count.store(++seq_, std::memory_order_relaxed);
      me_->pos.store(write_pos_, std::memory_order_release);
      break;
    }
  }
  // Rebuild the records of the orphans from their headers, validating every extent.
  uint64_t start = release_pos_;
  for (uint64_t p = release_pos_; p < write_pos_;) {
    const auto* h = header_at(p);
    const uint32_t capacity = h->capacity;
    const uint32_t flags = h->flags;
    const uint64_t ext = wire::duplex_extent(capacity);
    if (ext > cap_ - (p & mask_) || p + ext > write_pos_) corrupt(name, "a frame runs past the committed end");
    if ((flags & wire::kFramePadding) == 0) {
      if (capacity > max_frame_) corrupt(name, "a frame is larger than the frame limit");
      Record r;
      r.start = start;
      r.end = p + ext;
      r.hdr = p;
      r.capacity = capacity;
      r.seq = 0;  // orphan
      r.released = (flags & wire::kFrameReleased) != 0;
      records_.push_back(r);
      start = p + ext;
    }
    p += ext;
  }
  if (start != write_pos_) corrupt(name, "padding without a frame at the committed end");
  next_receive_ = first_index_ + records_.size();
  messages_ = me_->messages.load(std::memory_order_relaxed);
  bytes_ = me_->bytes.load(std::memory_order_relaxed);
  clear_slot_at_write_pos();
}

void DuplexClient::clear_slot_at_write_pos() noexcept {
  auto* h = header_at(write_pos_);
  std::atomic_ref<uint64_t>(h->seq).store(0, std::memory_order_relaxed);
  std::atomic_ref<uint64_t>(h->response).store(0, std::memory_order_relaxed);
  h->capacity = 0;
  h->flags = 0;
}

DuplexClient::~DuplexClient() {
  close();
  // Frames released out of order are marked in their headers, so a client that takes over
  // frees them as well; the released position covers the rest.
  if (me_->owner.load(std::memory_order_acquire) == owner_)
    wire::endpoint_cursor(*me_).store(release_pos_, std::memory_order_release);
  detach(seg_, me_, owner_, peer_, unlink_on_close_);
}

Result<std::span<std::byte>> DuplexClient::reserve(size_t n, nanoseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (n > max_frame_) return Errc::message_too_large;
  const uint64_t total = wire::duplex_extent(n);
  const uint64_t tail = cap_ - (write_pos_ & mask_);
  const uint64_t needed = total <= tail ? total : tail + total;
  if (!has_room(needed)) {
    if (auto r = wait_for_room(needed, timeout); !r) return r.error();
  }
  if (total > tail) {
    // The frame does not fit before the ring end: a padding record (at least one 32-byte
    // header, every position being 32-aligned) covers the tail. Its commit word stays 0 until
    // commit(), so an aborted reservation leaves nothing visible.
    auto* pad = header_at(write_pos_);
    pad->capacity = static_cast<uint32_t>(tail - wire::kDuplexFrameHeaderSize);
    pad->flags = wire::kFramePadding | (epoch_ << wire::kFrameEpochShift);
    frame_pos_ = write_pos_ + tail;
  } else {
    frame_pos_ = write_pos_;
  }
  reserved_ = true;
  reserved_n_ = n;
  return std::span<std::byte>(ring_ + (frame_pos_ & mask_) + wire::kDuplexFrameHeaderSize, n);
}

uint64_t DuplexClient::commit(size_t used) noexcept {
  if (!reserved_) return 0;
  return publish(frame_pos_, reserved_n_, 0, std::min(used, reserved_n_));
}

uint64_t DuplexClient::commit_tail(size_t used) noexcept {
  if (!reserved_) return 0;
  used = std::min(used, reserved_n_);
  const uint64_t front = reserved_n_ - used;
  if (front <= kKeepFront) return publish(frame_pos_, reserved_n_, front, used);
  // Give the unused front back: the header moves to the last 32-aligned slot in front of the
  // request, and the bytes before it become a padding record published with the frame.
  const uint64_t payload = frame_pos_ + wire::kDuplexFrameHeaderSize + front;
  const uint64_t hdr_pos = (payload - wire::kDuplexFrameHeaderSize) & ~(wire::kDuplexFrameAlign - 1);
  const uint64_t end = frame_pos_ + wire::kDuplexFrameHeaderSize + reserved_n_;
  auto* gap = header_at(frame_pos_);
  gap->capacity = static_cast<uint32_t>(hdr_pos - frame_pos_ - wire::kDuplexFrameHeaderSize);
  gap->flags = wire::kFramePadding | (epoch_ << wire::kFrameEpochShift);
  return publish(hdr_pos, end - hdr_pos - wire::kDuplexFrameHeaderSize,
                 payload - hdr_pos - wire::kDuplexFrameHeaderSize, used);
}

// Publishes the request whose header is at `hdr_pos`, with the padding records in front of it
// (wrap padding at the write position, a commit_tail gap at frame_pos_). Their commit words are
// stored after the frame's, so a server that skips a padding record finds the frame ready.
uint64_t DuplexClient::publish(uint64_t hdr_pos, uint64_t capacity, uint64_t offset, size_t used) noexcept {
  const uint64_t seq = seq_ + 1;
  const uint64_t end = hdr_pos + wire::duplex_extent(capacity);
  Record rec;
  rec.start = write_pos_;
  rec.end = end;
  rec.hdr = hdr_pos;
  rec.capacity = static_cast<uint32_t>(capacity);
  rec.seq = seq;
  records_.push_back(rec);  // allocates only past the largest number of frames ever in flight
  const uint64_t old_write = write_pos_;
  write_pos_ = end;
  clear_slot_at_write_pos();  // before anything below becomes visible (see kDuplexRingReserve)
  auto* hdr = header_at(hdr_pos);
  hdr->capacity = static_cast<uint32_t>(capacity);
  hdr->flags = epoch_ << wire::kFrameEpochShift;
  hdr->request_offset = static_cast<uint32_t>(offset);
  hdr->request_size = static_cast<uint32_t>(used);
  std::atomic_ref<uint64_t>(hdr->response).store(0, std::memory_order_relaxed);
  store_release(hdr->seq, seq);
  if (hdr_pos != frame_pos_) store_release(header_at(frame_pos_)->seq, seq);
  if (frame_pos_ != old_write) store_release(header_at(old_write)->seq, seq);
  seq_ = seq;
  reserved_ = false;
  // A client taking over after we die here finds the frame by its commit word (recover()).
  me_->count.store(seq, std::memory_order_relaxed);
  me_->pos.store(write_pos_, std::memory_order_release);
  detail::notify(request_event(seg_));
  ++sent_;
  bytes_ += used;
  me_->bytes.store(bytes_, std::memory_order_relaxed);
  return seq;
}

Result<uint64_t> DuplexClient::send(std::span<const std::byte> request, size_t capacity, nanoseconds timeout) {
  auto span = reserve(std::max(request.size(), capacity), timeout);
  if (!span) return span.error();
  if (!request.empty()) std::memcpy(span->data(), request.data(), request.size());
  return commit(request.size());
}

// Moves the released position over the front frames this client released and over orphans the
// server has answered.
void DuplexClient::advance_release() noexcept {
  bool freed = false;
  while (!records_.empty()) {
    Record& r = records_.front();
    if (!r.released && (r.seq != 0 || load_acquire(header_at(r.hdr)->response) == 0)) break;
    release_pos_ = r.end;
    records_.pop_front();
    ++first_index_;
    freed = true;
  }
  if (freed) wire::endpoint_cursor(*me_).store(release_pos_, std::memory_order_release);
}

Result<void> DuplexClient::wait_for_room(uint64_t needed, nanoseconds timeout) {
  advance_release();
  if (has_room(needed)) return {};
  // Only orphans are freed by someone else (the server answering them); our own frames come
  // back when we release them, which no wait can bring about.
  const bool orphans_ahead = !records_.empty() && records_.front().seq == 0;
  if (!orphans_ahead) return Errc::timeout;
  auto ready = [&] {
    advance_release();
    return has_room(needed) || records_.empty() || records_.front().seq != 0;
  };
  auto r = wait_until(ready, response_event(seg_), wait_, timeout, closed_, next_poll_check_, nullptr,
                      [&] { return role_closed(*peer_); }, [&] { return role_error(*peer_); });
  if (!r) return r;
  return has_room(needed) ? Result<void>{} : Result<void>{Errc::timeout};
}

Result<DuplexResponse> DuplexClient::receive(nanoseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (next_receive_ == first_index_ + records_.size()) return Errc::invalid_argument;  // nothing outstanding
  Record& r = records_.at(next_receive_ - first_index_);
  auto* hdr = header_at(r.hdr);
  uint64_t word = load_acquire(hdr->response);
  if (word == 0) {
    auto ready = [&] {
      word = load_acquire(hdr->response);
      return word != 0;
    };
    auto w = wait_until(ready, response_event(seg_), wait_, timeout, closed_, next_poll_check_, nullptr,
                        [&] { return role_closed(*peer_); }, [&] { return role_error(*peer_); });
    if (!w) return w.error();
  }
  const uint32_t status = wire::response_status(word);
  const uint64_t off = wire::response_offset(word);
  const uint32_t size = wire::response_size(word);
  const uint64_t index = next_receive_++;
  ++received_;
  me_->messages.store(++messages_, std::memory_order_relaxed);
  DuplexResponse resp;
  resp.client_ = this;
  resp.index_seq_ = index;
  resp.seq_ = r.seq;
  resp.status_ = status;
  if (status == wire::kResponseOk && off + size <= r.capacity) {
    resp.data_ = std::span<std::byte>(ring_ + (r.hdr & mask_) + wire::kDuplexFrameHeaderSize + off, size);
  } else if (status != wire::kResponseRejected) {
    return Errc::corrupt;  // the server broke the protocol; the frame is released with resp
  } else {
    ++rejected_;
  }
  return resp;
}

void DuplexClient::release(uint64_t index) noexcept {
  if (index < first_index_ || index - first_index_ >= records_.size()) return;
  Record& r = records_.at(index - first_index_);
  r.released = true;
  if (index != first_index_) {
    // Out of order: marked in the header too, so a client taking over after us frees it.
    auto* hdr = header_at(r.hdr);
    std::atomic_ref<uint32_t>(hdr->flags).fetch_or(wire::kFrameReleased, std::memory_order_relaxed);
    return;
  }
  advance_release();
}

void DuplexClient::close() noexcept {
  if (closed_.exchange(true)) return;
  detail::force_wake(response_event(seg_));  // interrupt our own blocked receive()
  set_role_state(*me_, owner_, wire::kRoleClosed);
  detail::force_wake(request_event(seg_));  // let a sleeping server see peer_closed now
}

bool DuplexClient::peer_attached() const noexcept { return role_live(*peer_); }

DuplexStats DuplexClient::stats() const noexcept {
  DuplexStats s;
  s.requests = me_->count.load(std::memory_order_relaxed);
  s.responses = me_->messages.load(std::memory_order_relaxed);
  s.rejected = rejected_;
  s.bytes = me_->bytes.load(std::memory_order_relaxed);
  s.outstanding = outstanding();
  s.occupancy_bytes = write_pos_ - release_pos_;
  s.capacity_bytes = cap_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Server

DuplexServer::DuplexServer(std::string_view name, const DuplexOptions& opts)
    : seg_(open_or_create(name, opts)), wait_(opts.wait), unlink_on_close_(opts.unlink_on_close) {
  me_ = &seg_.reader_block();
  peer_ = &seg_.writer_block();
  ring_ = seg_.ring();
  cap_ = seg_.ring_capacity();
  mask_ = cap_ - 1;
  max_frame_ = seg_.max_frame_payload();
  claim_role(*me_, owner_, "server", name);
  request_event(seg_).waiters.store(0, std::memory_order_relaxed);  // see DuplexClient
  try {
    take_over(name);
  } catch (...) {
    set_role_state(*me_, owner_, wire::kRoleClosed);
    throw;
  }
}

// Requests a previous server received but did not answer are rejected: it may have modified
// them half-way, so handing them out again could answer with garbage. Requests it never
// received are served by us.
void DuplexServer::take_over(std::string_view name) {
  responded_pos_ = me_->pos.load(std::memory_order_acquire);
  cursor_ = wire::endpoint_cursor(*me_).load(std::memory_order_acquire);
  const uint64_t delivered = me_->count.load(std::memory_order_relaxed);
  received_ = delivered;
  responses_ = me_->messages.load(std::memory_order_relaxed);
  bytes_ = me_->bytes.load(std::memory_order_relaxed);
  if (responded_pos_ % wire::kDuplexFrameAlign != 0 || cursor_ % wire::kDuplexFrameAlign != 0 ||
      responded_pos_ > cursor_ || cursor_ - responded_pos_ > cap_)
    corrupt(name, "inconsistent server positions");
  expected_seq_ = delivered + 1;
  bool rejected_any = false;
  uint64_t last_seq = 0;
  for (uint64_t p = responded_pos_; p < cursor_;) {
    auto* h = header_at(p);
    const uint32_t capacity = h->capacity;
    const uint64_t ext = wire::duplex_extent(capacity);
    if (ext > cap_ - (p & mask_) || p + ext > cursor_) corrupt(name, "a delivered frame runs past the delivered end");
    if ((h->flags & wire::kFramePadding) == 0) {
      last_seq = load_acquire(h->seq);
      if (load_acquire(h->response) == 0) {
        store_release(h->response, wire::make_response(wire::kResponseRejected, 0, 0));
        ++rejected_;
        ++responses_;
        rejected_any = true;
      }
    }
    p += ext;
  }
  // The previous server stores its delivered position before the delivered count: a count one
  // behind is corrected by the last delivered frame's own sequence number.
  if (last_seq != 0) expected_seq_ = last_seq + 1;
  received_ = expected_seq_ - 1;
  responded_pos_ = cursor_;
  me_->count.store(received_, std::memory_order_relaxed);
  me_->messages.store(responses_, std::memory_order_relaxed);
  me_->pos.store(responded_pos_, std::memory_order_release);
  if (rejected_any) detail::notify(response_event(seg_));
}

DuplexServer::~DuplexServer() {
  // A client must never wait for a request nobody will answer.
  while (!records_.empty()) {
    const uint64_t seq = records_.front().seq;
    answer(seq, wire::make_response(wire::kResponseRejected, 0, 0), 0);
    if (!records_.empty() && records_.front().seq == seq) break;  // cannot happen; never loop forever
  }
  close();
  detach(seg_, me_, owner_, peer_, unlink_on_close_);
}

bool DuplexServer::request_visible() noexcept {
  return load_acquire(header_at(cursor_)->seq) == expected_seq_;
}

Result<DuplexRequest> DuplexServer::receive(nanoseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (corrupt_) return Errc::corrupt;
  for (;;) {
    if (!request_visible()) {
      auto w = wait_until([&] { return request_visible(); }, request_event(seg_), wait_, timeout, closed_,
                          next_poll_check_, nullptr, [&] { return role_closed(*peer_); },
                          [&] { return role_error(*peer_); });
      if (!w) return w.error();
    }
    // Every field is read once and validated before use: the client is not trusted.
    const auto* h = header_at(cursor_);
    const uint32_t capacity = h->capacity;
    const uint32_t flags = h->flags;
    const uint64_t ext = wire::duplex_extent(capacity);
    const uint64_t room = cap_ - (cursor_ & mask_);
    if (ext > room) {
      corrupt_ = true;
      return Errc::corrupt;
    }
    if (flags & wire::kFramePadding) {
      cursor_ += ext;  // the frame after it carries the same sequence number
      continue;
    }
    const uint32_t offset = h->request_offset;
    const uint32_t size = h->request_size;
    if (capacity > max_frame_ || uint64_t{offset} + size > capacity) {
      corrupt_ = true;
      return Errc::corrupt;
    }
    Record rec;
    rec.hdr = cursor_;
    rec.end = cursor_ + ext;
    rec.seq = expected_seq_;
    records_.push_back(rec);  // allocates only past the largest number of requests ever held
    cursor_ += ext;
    received_ = expected_seq_++;
    // Position first, then count (take_over() relies on this order).
    wire::endpoint_cursor(*me_).store(cursor_, std::memory_order_release);
    me_->count.store(received_, std::memory_order_relaxed);
    DuplexRequest req;
    req.server_ = this;
    req.seq_ = rec.seq;
    req.payload_ = std::span<std::byte>(ring_ + (rec.hdr & mask_) + wire::kDuplexFrameHeaderSize, capacity);
    req.offset_ = offset;
    req.size_ = size;
    return req;
  }
}

Result<void> DuplexServer::respond(DuplexRequest& req, size_t offset, size_t size) noexcept {
  if (req.server_ != this) return Errc::invalid_argument;
  if (offset > req.payload_.size() || size > req.payload_.size() - offset) return Errc::message_too_large;
  answer(req.seq_, wire::make_response(wire::kResponseOk, offset, static_cast<uint32_t>(size)), size);
  req.server_ = nullptr;
  return {};
}

void DuplexRequest::reject() noexcept {
  if (server_)
    std::exchange(server_, nullptr)->answer(seq_, wire::make_response(wire::kResponseRejected, 0, 0), 0);
}

void DuplexServer::answer(uint64_t seq, uint64_t word, size_t bytes) noexcept {
  if (records_.empty() || seq < records_.front().seq || seq - records_.front().seq >= records_.size()) return;
  Record& r = records_.at(seq - records_.front().seq);
  if (r.answered) return;
  store_release(header_at(r.hdr)->response, word);
  r.answered = true;
  ++answered_in_queue_;
  ++responses_;
  bytes_ += bytes;
  if (wire::response_status(word) == wire::kResponseRejected) ++rejected_;
  while (!records_.empty() && records_.front().answered) {
    responded_pos_ = records_.front().end;
    records_.pop_front();
    --answered_in_queue_;
  }
  me_->pos.store(responded_pos_, std::memory_order_release);
  detail::notify(response_event(seg_));
  me_->messages.store(responses_, std::memory_order_relaxed);
  me_->bytes.store(bytes_, std::memory_order_relaxed);
}

void DuplexServer::close() noexcept {
  if (closed_.exchange(true)) return;
  detail::force_wake(request_event(seg_));  // interrupt our own blocked receive()
  set_role_state(*me_, owner_, wire::kRoleClosed);
  detail::force_wake(response_event(seg_));  // let a waiting client see peer_closed now
}

bool DuplexServer::peer_attached() const noexcept { return role_live(*peer_); }

DuplexStats DuplexServer::stats() const noexcept {
  DuplexStats s;
  s.requests = received_;
  s.responses = responses_;
  s.rejected = rejected_;
  s.bytes = bytes_;
  s.outstanding = outstanding();
  const uint64_t committed = peer_->pos.load(std::memory_order_relaxed);
  const uint64_t released = wire::endpoint_cursor(*peer_).load(std::memory_order_relaxed);
  s.occupancy_bytes = committed >= released ? committed - released : 0;
  s.capacity_bytes = cap_;
  return s;
}

}  // namespace flatlane
