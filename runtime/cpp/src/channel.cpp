#include "flatlane/channel.hpp"

#include <algorithm>
#include <cstring>
#include <sys/mman.h>

#include "flatlane/liveness.hpp"
#include "flatlane/duplex_layout.hpp"
#include "roles.hpp"
#include "wait_until.hpp"

namespace flatlane {

namespace {

using std::chrono::nanoseconds;
using detail::wait_until;
using detail::claim_role;
using detail::detach;
using detail::role_closed;
using detail::role_error;
using detail::role_live;
using detail::set_role_state;

Segment open_spsc(std::string_view name, const TypeId& type) {
  Segment s = Segment::open(name, type);
  if (s.kind() != wire::kKindSpsc)
    throw Error(Errc::invalid_argument,
                "flatlane: '" + std::string(name) + "' is " +
                    (s.kind() == wire::kKindDuplex ? "an in-place duplex channel" : "a publish/subscribe topic") +
                    ", not a one-to-one channel");
  return s;
}

Segment open_or_create(std::string_view name, const ChannelOptions& o) {
  if (o.segment.kind != wire::kKindSpsc)
    throw Error(Errc::invalid_argument, "flatlane: channel options must describe a one-to-one channel");
  return detail::open_or_create_segment(name, o.mode, o.segment, open_spsc);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Frame

void Frame::release_held() noexcept { std::exchange(reader_, nullptr)->release(pos_, extent_); }

// ---------------------------------------------------------------------------------------------
// Writer

Writer::Writer(std::string_view name, const ChannelOptions& opts)
    : seg_(open_or_create(name, opts)), wait_(opts.wait), unlink_on_close_(opts.unlink_on_close) {
  me_ = &seg_.writer_block();
  peer_ = &seg_.reader_block();
  ring_ = seg_.ring();
  cap_ = seg_.ring_capacity();
  mask_ = cap_ - 1;
  max_frame_ = seg_.max_frame_payload();
  chunk_size_ = seg_.chunk_size();
  epoch_ = claim_role(*me_, owner_, "writer", name);
  // Only the writer sleeps on the space event: a count left by a writer that died asleep is stale.
  seg_.space_event().waiters.store(0, std::memory_order_relaxed);
  seg_.space_event().demand.store(0, std::memory_order_relaxed);
  // Continue where the previous writer (if any) stopped; its unpublished work is simply gone.
  cur_.write_pos = me_->pos.load(std::memory_order_acquire);
  cur_.seq = me_->count.load(std::memory_order_relaxed);
  cur_.messages = me_->messages.load(std::memory_order_relaxed);
  cur_.bytes = me_->bytes.load(std::memory_order_relaxed);
  cur_.cached_read_pos = peer_->pos.load(std::memory_order_acquire);
  // First publish a commit the previous writer made but did not live to announce: a reader may
  // already have consumed (and released) it, so the positions only agree after that.
  if ((cur_.write_pos % wire::kFrameAlign) == 0) recover_unpublished_commit();
  if ((cur_.write_pos % wire::kFrameAlign) != 0 || cur_.cached_read_pos > cur_.write_pos ||
      cur_.write_pos - cur_.cached_read_pos > cap_ - wire::kRingReserve) {
    set_role_state(*me_, owner_, wire::kRoleClosed);  // leave the role free for a later attempt
    throw Error(Errc::corrupt, "flatlane: channel '" + std::string(name) + "' has inconsistent ring positions");
  }
  // A previous writer may have died half-way through a commit: make the next slot unambiguous.
  clear_slot(cur_.write_pos);
}

// A writer that died between a frame's commit word and its position store left a frame that a
// reader may already have consumed. It is recognisable: its sequence number equals the recorded
// count (stored before the commit word). Publish it instead of writing over it.
void Writer::recover_unpublished_commit() noexcept {
  uint64_t pos = cur_.write_pos;
  for (int records = 0; records < 3; ++records) {  // at most wrap padding, gap padding, frame
    const auto* hdr = reinterpret_cast<const wire::FrameHeader*>(ring_ + (pos & mask_));
    const uint64_t seq = std::atomic_ref<uint64_t>(const_cast<uint64_t&>(hdr->seq)).load(std::memory_order_acquire);
    if (seq == 0 || seq != cur_.seq) return;
    const uint64_t ext = wire::frame_extent(hdr->size);
    const bool padding = (hdr->flags & wire::kFramePadding) != 0;
    const uint64_t used_after = pos + ext > cur_.cached_read_pos ? pos + ext - cur_.cached_read_pos : 0;
    if (ext > cap_ - (pos & mask_) || used_after > cap_ - wire::kRingReserve ||
        (!padding && hdr->size > max_frame_))
      return;  // not a frame we can vouch for
    pos += ext;
    if (!padding) {
      cur_.write_pos = pos;
      me_->pos.store(cur_.write_pos, std::memory_order_release);
      return;
    }
  }
}

// Zeroes the header slot at `pos` (always free, see kRingReserve) so a reader polling it for the
// next sequence number cannot mistake stale bytes of an earlier lap for a committed frame.
void Writer::clear_slot(uint64_t pos) noexcept {
  auto* h = reinterpret_cast<wire::FrameHeader*>(ring_ + (pos & mask_));
  std::atomic_ref<uint64_t>(h->seq).store(0, std::memory_order_relaxed);
  h->size = 0;
  h->flags = 0;
}

Writer::~Writer() {
  close();
  detach(seg_, me_, owner_, peer_, unlink_on_close_);
}

Result<std::span<std::byte>> Writer::reserve(size_t n, nanoseconds timeout) { return reserve_impl(n, timeout, true); }

Result<std::span<std::byte>> Writer::try_reserve(size_t n) noexcept { return reserve_impl(n, nanoseconds(0), false); }

Result<std::span<std::byte>> Writer::reserve_impl(size_t n, nanoseconds timeout, bool wait) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (n > max_frame_) return Errc::message_too_large;
  const uint64_t total = wire::frame_extent(n);
  const uint64_t tail = cap_ - (cur_.write_pos & mask_);
  const uint64_t needed = total <= tail ? total : tail + total;
  if (cur_.write_pos + needed - cur_.cached_read_pos > cap_ - wire::kRingReserve) {
    if (wait) {
      if (auto r = wait_for_space(needed, timeout); !r) return r.error();
    } else {
      // The reader may have published since we last looked: one acquire load, no demand.
      const uint64_t rp = peer_->pos.load(std::memory_order_acquire);
      if (rp > cur_.write_pos || cur_.write_pos - rp > cap_) return Errc::corrupt;
      cur_.cached_read_pos = rp;
      if (cur_.write_pos + needed - rp > cap_ - wire::kRingReserve) return Errc::timeout;
    }
  }
  if (cur_.demand_raised) {  // we have what we asked for: let the reader batch again
    cur_.demand_raised = false;
    seg_.space_event().demand.store(0, std::memory_order_relaxed);
  }
  if (total > tail) {
    // Not enough room before the ring end: one padding record covers the tail (always >= 16
    // bytes since every position is 16-aligned), and the frame starts at offset 0. Its commit
    // word stays 0 until commit(), so an aborted reservation leaves nothing visible.
    auto* pad = reinterpret_cast<wire::FrameHeader*>(ring_ + (cur_.write_pos & mask_));
    pad->size = static_cast<uint32_t>(tail - wire::kFrameHeaderSize);
    pad->flags = wire::kFramePadding | (epoch_ << wire::kFrameEpochShift);
    cur_.frame_pos = cur_.write_pos + tail;
  } else {
    cur_.frame_pos = cur_.write_pos;
  }
  cur_.reserved = true;
  cur_.reserved_n = n;
  return std::span<std::byte>(ring_ + (cur_.frame_pos & mask_) + wire::kFrameHeaderSize, n);
}

void Writer::commit(size_t used) noexcept {
  if (!cur_.reserved) return;
  used = std::min(used, cur_.reserved_n);
  commit_frame(cur_.frame_pos, used, wire::kFrameFirst | wire::kFrameLast, used);
}

void Writer::commit_tail(size_t used) noexcept {
  if (!cur_.reserved) return;
  used = std::min(used, cur_.reserved_n);
  const uint64_t front = cur_.reserved_n - used;
  if (front <= wire::kMaxFrameLead) {
    // The usual case: the header stays where it was reserved and the lead skips the unused
    // front, so the reader sees one record.
    commit_frame(cur_.frame_pos, front + used,
                 wire::kFrameFirst | wire::kFrameLast | wire::encode_lead(static_cast<uint32_t>(front)), used);
    return;
  }
  const uint64_t payload = cur_.frame_pos + wire::kFrameHeaderSize + front;
  // The header goes in the last 16-aligned slot in front of the payload; what is left of the
  // reservation before it becomes a padding record, committed with the frame.
  const uint64_t hdr_pos = (payload - wire::kFrameHeaderSize) & ~(wire::kFrameAlign - 1);
  const uint64_t lead = payload - hdr_pos - wire::kFrameHeaderSize;
  auto* gap = reinterpret_cast<wire::FrameHeader*>(ring_ + (cur_.frame_pos & mask_));
  gap->size = static_cast<uint32_t>(hdr_pos - cur_.frame_pos - wire::kFrameHeaderSize);
  gap->flags = wire::kFramePadding | (epoch_ << wire::kFrameEpochShift);
  commit_frame(hdr_pos, lead + used,
               wire::kFrameFirst | wire::kFrameLast | wire::encode_lead(static_cast<uint32_t>(lead)), used);
}

// Publishes the frame whose header is at `hdr_pos` (`size` bytes after the header, `payload` of
// them user data), together with the padding records in front of it: wrap padding at the old
// write position and a commit_tail gap at cur_.frame_pos. Their commit words are stored after the
// frame's, last one first, so a reader that skips a padding record finds the next record ready.
void Writer::commit_frame(uint64_t hdr_pos, size_t size, uint32_t flags, size_t payload) noexcept {
  const uint64_t seq = ++cur_.seq;
  // Recorded before the frame is visible: a writer that takes over after we die continues above
  // every sequence number a reader may have seen.
  me_->count.store(seq, std::memory_order_relaxed);
  const uint64_t end = hdr_pos + wire::frame_extent(size);
  clear_slot(end);  // before anything below becomes visible
  auto* hdr = reinterpret_cast<wire::FrameHeader*>(ring_ + (hdr_pos & mask_));
  hdr->size = static_cast<uint32_t>(size);
  hdr->flags = flags | (epoch_ << wire::kFrameEpochShift);
  std::atomic_ref<uint64_t>(hdr->seq).store(seq, std::memory_order_release);
  if (hdr_pos != cur_.frame_pos) {
    auto* gap = reinterpret_cast<wire::FrameHeader*>(ring_ + (cur_.frame_pos & mask_));
    std::atomic_ref<uint64_t>(gap->seq).store(seq, std::memory_order_release);
  }
  if (cur_.frame_pos != cur_.write_pos) {
    auto* pad = reinterpret_cast<wire::FrameHeader*>(ring_ + (cur_.write_pos & mask_));
    std::atomic_ref<uint64_t>(pad->seq).store(seq, std::memory_order_release);
  }
  cur_.write_pos = end;
  cur_.reserved = false;
  me_->pos.store(cur_.write_pos, std::memory_order_release);
  detail::notify(seg_.data_event());
  // Counters live on the block's second line; they are written after publication so the reader
  // is not kept waiting for them.
  cur_.bytes += payload;
  if (flags & wire::kFrameLast) ++cur_.messages;
  me_->bytes.store(cur_.bytes, std::memory_order_relaxed);
  me_->messages.store(cur_.messages, std::memory_order_relaxed);
}

Errc Writer::peer_error() const noexcept { return role_error(*peer_); }

Result<void> Writer::wait_for_space(uint64_t needed, nanoseconds timeout) {
  bool corrupt = false;
  auto ready = [&] {
    const uint64_t rp = peer_->pos.load(std::memory_order_acquire);
    if (rp > cur_.write_pos || cur_.write_pos - rp > cap_) {
      corrupt = true;  // a reader may never release more than was written
      return true;
    }
    cur_.cached_read_pos = rp;
    return cur_.write_pos + needed - rp <= cap_ - wire::kRingReserve;
  };
  cur_.demand_raised = true;
  auto r = wait_until(ready, seg_.space_event(), wait_, timeout, closed_, next_poll_check_,
                      &seg_.space_event().demand, [&] { return role_closed(*peer_); },
                      [&] { return peer_error(); });
  if (corrupt) return Errc::corrupt;
  return r;
}

Result<void> Writer::write_message(std::span<const std::byte> data, nanoseconds timeout) {
  if (data.size() <= max_frame_) {
    auto span = reserve(data.size(), timeout);
    if (!span) return span.error();
    if (!data.empty()) std::memcpy(span->data(), data.data(), data.size());
    commit(data.size());
    return {};
  }
  const uint64_t per_chunk = chunk_size_ - wire::kChunkHeaderSize;
  const uint64_t count = (data.size() + per_chunk - 1) / per_chunk;
  if (count > UINT32_MAX) return Errc::message_too_large;
  uint64_t off = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t len = std::min<uint64_t>(per_chunk, data.size() - off);
    auto span = reserve(wire::kChunkHeaderSize + len, timeout);
    if (!span) return span.error();  // the reader drops the partial message when the next one starts
    wire::ChunkHeader ch{data.size(), i, static_cast<uint32_t>(count)};
    std::memcpy(span->data(), &ch, sizeof ch);
    std::memcpy(span->data() + wire::kChunkHeaderSize, data.data() + off, len);
    uint32_t flags = wire::kFrameChunked | (i == 0 ? wire::kFrameFirst : 0u) | (i + 1 == count ? wire::kFrameLast : 0u);
    commit_frame(cur_.frame_pos, wire::kChunkHeaderSize + len, flags, len);
    off += len;
  }
  return {};
}

void Writer::close() noexcept {
  if (closed_.exchange(true)) return;
  detail::force_wake(seg_.space_event());  // interrupt our own blocked reserve()
  set_role_state(*me_, owner_, wire::kRoleClosed);
  detail::force_wake(seg_.data_event());   // let a sleeping reader see peer_closed now
}

bool Writer::peer_attached() const noexcept { return role_live(*peer_); }

EndpointStats Writer::stats() const noexcept {
  EndpointStats s;
  s.frames = me_->count.load(std::memory_order_relaxed);
  s.messages = me_->messages.load(std::memory_order_relaxed);
  s.bytes = me_->bytes.load(std::memory_order_relaxed);
  s.occupancy_bytes = me_->pos.load(std::memory_order_relaxed) - peer_->pos.load(std::memory_order_relaxed);
  s.capacity_bytes = cap_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Reader

Reader::Reader(std::string_view name, const ChannelOptions& opts)
    : seg_(open_or_create(name, opts)),
      max_message_(opts.max_message_size),
      wait_(opts.wait),
      unlink_on_close_(opts.unlink_on_close) {
  me_ = &seg_.reader_block();
  peer_ = &seg_.writer_block();
  ring_ = seg_.ring();
  cap_ = seg_.ring_capacity();
  mask_ = cap_ - 1;
  max_frame_ = seg_.max_frame_payload();
  claim_role(*me_, owner_, "reader", name);
  seg_.data_event().waiters.store(0, std::memory_order_relaxed);  // see Writer::Writer
  // Resume at the oldest frame the previous reader did not release; frames it released out of
  // order still carry kFrameReleased and are skipped, the others are delivered again.
  cur_.cursor = cur_.release_pos = cur_.published_release = cur_.pos_floor =
      me_->pos.load(std::memory_order_acquire);
  cur_.publish_batch = cap_ / 4;
  cur_.cached_write_pos = peer_->pos.load(std::memory_order_acquire);
  cur_.released_frames = me_->count.load(std::memory_order_relaxed);
  messages_ = me_->messages.load(std::memory_order_relaxed);
  bytes_ = me_->bytes.load(std::memory_order_relaxed);
  if ((cur_.cursor % wire::kFrameAlign) != 0 || cur_.cursor > cur_.cached_write_pos || cur_.cached_write_pos - cur_.cursor > cap_) {
    set_role_state(*me_, owner_, wire::kRoleClosed);
    throw Error(Errc::corrupt, "flatlane: channel '" + std::string(name) + "' has inconsistent ring positions");
  }
}

Reader::~Reader() {
  if (assembly_) ::munmap(assembly_, assembly_cap_);
  close();
  // Hand everything released so far to whoever reads next, unless a new reader already owns the
  // role (then the position is its own).
  if (me_->owner.load(std::memory_order_acquire) == owner_) publish_release(true);
  detach(seg_, me_, owner_, peer_, unlink_on_close_);
}

Errc Reader::peer_error() const noexcept { return role_error(*peer_); }

// True when a record at the cursor is committed. Once the reader knows the next sequence number
// it polls that frame's commit word (the line it must read anyway); the writer's position, a
// second line, is read only when asked (`check_pos`), when the sequence is unknown (first frame,
// new writer), or to catch a frame whose sequence was not the expected one.
bool Reader::frame_visible(bool check_pos) noexcept {
  if (cur_.cursor < cur_.cached_write_pos) return true;
  if (cur_.expected_seq != 0) {
    auto* hdr = header_at(cur_.cursor);
    const uint64_t seq = std::atomic_ref<uint64_t>(hdr->seq).load(std::memory_order_acquire);
    if (seq == cur_.expected_seq) return true;
    // A cleared slot reads 0; anything else (a new writer's sequence, garbage) is settled by
    // the writer's position at once.
    if (seq == 0 && !check_pos) return false;
  }
  // The writer stores its position after each commit word, so it may lag the frames found
  // through commit words by one commit; it may never fall further back.
  const uint64_t wp = peer_->pos.load(std::memory_order_acquire);
  if (wp < cur_.pos_floor) {
    cur_.corrupt = true;
    return true;  // read() reports it
  }
  cur_.pos_floor = wp;  // it only ever grows
  if (wp > cur_.cached_write_pos) cur_.cached_write_pos = wp;
  return cur_.cursor < cur_.cached_write_pos;
}

Result<void> Reader::wait_for_data(nanoseconds timeout) {
  uint32_t polls = 0;
  auto ready = [&] { return frame_visible((polls++ & 63) == 0); };
  return wait_until(ready, seg_.data_event(), wait_, timeout, closed_, next_poll_check_, nullptr,
                    [&] { return role_closed(*peer_); },
                    [&] { return peer_error(); });
}

Result<Frame> Reader::read(nanoseconds timeout) {
  for (;;) {
    if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
    if (cur_.corrupt) return Errc::corrupt;
    if (!frame_visible(true)) {
      publish_release(true);
      if (auto r = wait_for_data(timeout); !r) return r.error();
    }
    if (cur_.corrupt) return Errc::corrupt;
    // Everything below comes from shared memory: validate before use, read each field once.
    const uint64_t off = cur_.cursor & mask_;
    auto* hdr = header_at(cur_.cursor);
    // The header and the start of the payload usually straddle two lines: fetch both at once
    // instead of one after the other (the second load would otherwise wait for validation).
    __builtin_prefetch(reinterpret_cast<const std::byte*>(hdr) + 64);
    const uint32_t size = hdr->size;
    const uint32_t flags = hdr->flags;
    const uint64_t seq = std::atomic_ref<uint64_t>(hdr->seq).load(std::memory_order_relaxed);
    const uint64_t ext = wire::frame_extent(size);
    if (cur_.cursor == cur_.cached_write_pos) {
      // Found through its commit word: the writer's position may not show it yet. It must not
      // reach into space the reader has not released.
      if (ext > cap_ - off || cur_.cursor + ext - cur_.release_pos > cap_ - wire::kRingReserve) {
        cur_.corrupt = true;
        return Errc::corrupt;
      }
      // Padding records and the frame right behind them are one commit (wrap padding, a
      // commit_tail gap, the frame), and W may still be at the start of that commit.
      if (!(cur_.fast_prev_padding && cur_.fast_prev_end == cur_.cursor)) cur_.fast_commit_start = cur_.cursor;
      cur_.pos_floor = std::max(cur_.pos_floor, cur_.fast_commit_start);
      cur_.fast_prev_end = cur_.cursor + ext;
      cur_.fast_prev_padding = (flags & wire::kFramePadding) != 0;
      cur_.cached_write_pos = cur_.cursor + ext;
    }
    const uint64_t avail = cur_.cached_write_pos - cur_.cursor;
    if (avail > cap_ || avail < wire::kFrameHeaderSize || (cur_.cached_write_pos % wire::kFrameAlign) != 0 ||
        ext > avail || ext > cap_ - off) {
      cur_.corrupt = true;
      return Errc::corrupt;
    }
    if (flags & wire::kFramePadding) {
      skip(ext);
      continue;
    }
    const uint32_t lead = wire::decode_lead(flags);
    if (size > max_frame_ || ((flags & wire::kFrameChunked) && (size < wire::kChunkHeaderSize || lead != 0)) ||
        lead > size) {
      cur_.corrupt = true;
      return Errc::corrupt;
    }
    const uint32_t epoch = flags >> wire::kFrameEpochShift;
    if (!cur_.epoch_known || epoch != cur_.writer_epoch) {
      // A new writer took over: resynchronise sequence numbers, drop any half-assembled message.
      cur_.epoch_known = true;
      cur_.writer_epoch = epoch;
      cur_.expected_seq = 0;
      if (assembling_) {
        assembling_ = false;
        ++dropped_partial_;
      }
      skipping_ = false;
    }
    if (cur_.expected_seq != 0 && seq != cur_.expected_seq) {
      cur_.corrupt = true;
      return Errc::corrupt;
    }
    cur_.expected_seq = seq + 1;
    if (flags & wire::kFrameReleased) {
      skip(ext);  // a previous reader consumed this frame (out of order) before it died
      continue;
    }
    Frame f;
    f.reader_ = this;
    f.pos_ = cur_.cursor;
    f.extent_ = ext;
    f.seq_ = seq;
    f.flags_ = flags & wire::kFrameFlagMask;
    const std::byte* payload = ring_ + off + wire::kFrameHeaderSize;
    if (lead != 0) {
      f.data_ = {payload + lead, size - lead};
    } else if (flags & wire::kFrameChunked) {
      std::memcpy(&f.chunk_, payload, sizeof f.chunk_);
      f.data_ = {payload + wire::kChunkHeaderSize, size - wire::kChunkHeaderSize};
    } else {
      f.data_ = {payload, size};
    }
    cur_.cursor += ext;
    ++cur_.held;
    return f;
  }
}

// Consumes a record nobody will hold: padding, or a frame a previous reader already released.
// Both already satisfy the sweep's test, so only a record at the front needs any work.
void Reader::skip(uint64_t extent) noexcept {
  const uint64_t pos = cur_.cursor;
  cur_.cursor += extent;
  if (pos == cur_.release_pos) {
    cur_.release_pos += extent;
    sweep();
  }
}

void Reader::release(uint64_t pos, uint64_t extent) noexcept {
  --cur_.held;
  ++cur_.released_frames;
  if (pos == cur_.release_pos) {
    // In-order release (the common case) touches no ring memory: only our own position moves.
    cur_.release_pos += extent;
    sweep();
  } else {
    // Out of order: mark it; the sweep passes over it once every frame before it is released.
    auto* hdr = header_at(pos);
    hdr->flags = hdr->flags | wire::kFrameReleased;
  }
}

// Advances the release position over frames already marked released, then publishes it, so the
// writer only ever sees space that no held frame occupies, whatever order frames were released in.
void Reader::sweep() noexcept {
  while (cur_.release_pos < cur_.cursor) {
    auto* hdr = header_at(cur_.release_pos);
    const uint32_t flags = hdr->flags;
    if (!(flags & (wire::kFrameReleased | wire::kFramePadding))) break;
    const uint64_t ext = wire::frame_extent(hdr->size);
    if (ext > cur_.cursor - cur_.release_pos) {  // header changed under us after validation
      cur_.corrupt = true;
      break;
    }
    cur_.release_pos += ext;
  }
  publish_release(false);
}

// Nothing held and nothing more committed: a reader in this state may go off and block elsewhere
// (say, writing to another channel), so it must not keep freed space to itself.
bool Reader::caught_up() noexcept {
  if (cur_.held != 0 || cur_.cursor < cur_.cached_write_pos) return false;
  return cur_.expected_seq == 0 ||
         std::atomic_ref<uint64_t>(header_at(cur_.cursor)->seq).load(std::memory_order_relaxed) != cur_.expected_seq;
}

// Publishing the release position costs a store to a line the writer polls when the ring looks
// full, and waking a sleeping writer needs the eventcount fence. Per message, that drops a
// streaming pair into the slow regime where both sides trade the line for every frame, so:
//  - the position is stored once per quarter ring while the reader has more to read, and at
//    once when it has caught up, when the writer sleeps (`waiters`), when the writer has waited
//    a moment or failed a poll (`demand`), and whenever read() finds nothing to deliver.
void Reader::publish_release(bool force) noexcept {
  if (cur_.release_pos == cur_.published_release) return;
  auto& ev = seg_.space_event();
  if (!force && cur_.release_pos - cur_.published_release < cur_.publish_batch &&
      ev.waiters.load(std::memory_order_relaxed) == 0 && ev.demand.load(std::memory_order_relaxed) == 0 &&
      !caught_up())
    return;
  cur_.published_release = cur_.release_pos;
  me_->count.store(cur_.released_frames, std::memory_order_relaxed);
  me_->pos.store(cur_.release_pos, std::memory_order_release);
  detail::notify(ev);
}

Result<Message> Reader::read_message(nanoseconds timeout) {
  for (;;) {
    auto r = read(timeout);
    if (!r) return r.error();
    Frame f = std::move(r).value();
    if (!f.chunked()) {
      if (assembling_) {  // the writer abandoned a chunked message (e.g. it timed out)
        assembling_ = false;
        ++dropped_partial_;
      }
      skipping_ = false;
      Message m;
      m.data_ = f.data();
      m.seq_ = f.seq();
      m.frame_ = std::move(f);
      ++messages_;
      bytes_ += m.data_.size();
      me_->messages.store(messages_, std::memory_order_relaxed);
      me_->bytes.store(bytes_, std::memory_order_relaxed);
      return m;
    }
    const wire::ChunkHeader c = f.chunk();
    const auto data = f.data();
    if (c.index == 0) {
      if (assembling_) ++dropped_partial_;
      assembling_ = false;
      skipping_ = false;
      if (c.count == 0 || c.message_size == 0) {
        cur_.corrupt = true;
        return Errc::corrupt;
      }
      if (c.message_size > max_message_) {
        skipping_ = c.count > 1;  // drop the rest of this message's chunks
        return Errc::message_too_large;
      }
      if (assembly_cap_ < c.message_size) {
        if (assembly_) ::munmap(assembly_, assembly_cap_);
        assembly_cap_ = 0;
        void* m = ::mmap(nullptr, c.message_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
        if (m == MAP_FAILED) {
          assembly_ = nullptr;
          skipping_ = c.count > 1;
          return Errc::message_too_large;
        }
        assembly_ = static_cast<std::byte*>(m);
        assembly_cap_ = c.message_size;
      }
      assembling_ = true;
      asm_size_ = c.message_size;
      asm_count_ = c.count;
      asm_next_ = 0;
      asm_off_ = 0;
      asm_seq_ = f.seq();
    } else if (skipping_) {
      if (c.index + 1 >= c.count) skipping_ = false;
      continue;
    } else if (!assembling_) {
      continue;  // tail of a message whose start a previous reader consumed
    }
    if (c.index != asm_next_ || c.count != asm_count_ || c.message_size != asm_size_ ||
        data.size() > asm_size_ - asm_off_) {
      cur_.corrupt = true;
      assembling_ = false;
      return Errc::corrupt;
    }
    std::memcpy(assembly_ + asm_off_, data.data(), data.size());
    asm_off_ += data.size();
    ++asm_next_;
    chunks_done_ = asm_next_;
    if (asm_next_ == asm_count_) {
      assembling_ = false;
      if (asm_off_ != asm_size_) {
        cur_.corrupt = true;
        return Errc::corrupt;
      }
      Message m;
      m.data_ = {assembly_, asm_size_};
      m.seq_ = asm_seq_;
      ++messages_;
      bytes_ += asm_size_;
      me_->messages.store(messages_, std::memory_order_relaxed);
      me_->bytes.store(bytes_, std::memory_order_relaxed);
      return m;
    }
  }
}

void Reader::close() noexcept {
  if (closed_.exchange(true)) return;
  detail::force_wake(seg_.data_event());  // interrupt our own blocked read()
  set_role_state(*me_, owner_, wire::kRoleClosed);
  detail::force_wake(seg_.space_event());  // let a writer blocked on a full ring see peer_closed
}

bool Reader::peer_attached() const noexcept { return role_live(*peer_); }

EndpointStats Reader::stats() const noexcept {
  EndpointStats s;
  s.frames = cur_.released_frames + cur_.held;
  s.messages = messages_;
  s.bytes = bytes_;
  s.occupancy_bytes = peer_->pos.load(std::memory_order_relaxed) - me_->pos.load(std::memory_order_relaxed);
  s.capacity_bytes = cap_;
  return s;
}

}  // namespace flatlane
