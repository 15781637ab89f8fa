// Typed sending: the message is built by FlatBuffers directly inside a reserved ring frame.
//
//   flatlane::Sender<robot::Command> tx(spec);
//   tx.send([&](flatbuffers::FlatBufferBuilder& b) {
//     return robot::CreateCommand(b, ..., b.CreateVector(joints));
//   });
//
// The build function runs once per message with a builder whose memory is the frame; it returns
// the root offset. Nothing is copied unless the message outgrows a frame (frame_allocator.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <flatbuffers/flatbuffer_builder.h>

#include "flatlane/channel.hpp"
#include "flatlane/typed/frame_allocator.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

struct SenderStats {
  uint64_t sent = 0;       // messages published
  uint64_t dropped = 0;    // messages not sent because the ring was full (overflow != block)
  uint64_t regrown = 0;    // messages that outgrew their first reservation (moved once)
  uint64_t chunked = 0;    // messages larger than a frame, sent in chunks
};

template <FlatlaneMessage Msg>
class Sender {
 public:
  explicit Sender(const ChannelSpec& spec, const EndpointOptions& o = {})
      : w_(endpoint_name(spec, o), channel_options<Msg>(spec, o)),
        alloc_(w_, channel_options<Msg>(spec, o).max_message_size),
        max_message_(channel_options<Msg>(spec, o).max_message_size),
        overflow_(o.overflow.value_or(spec.overflow)),
        send_timeout_(o.send_timeout),
        hint_(clamp_hint(o.size_hint ? o.size_hint : kInitialHint)) {}

  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Builds and publishes one message; waits for ring space as the overflow policy says.
  // `build(flatbuffers::FlatBufferBuilder&)` returns flatbuffers::Offset<Msg>.
  // Errors: timeout (ring full: waited send_timeout, or overflow = fail), message_too_large,
  // peer_dead / peer_closed, closed. With overflow = drop_oldest a full ring counts a drop and
  // returns success: publishing never waits.
  template <class Build>
  Result<void> send(Build&& build) {
    const bool waits = overflow_ == Overflow::block;
    auto r = send(std::forward<Build>(build), waits ? send_timeout_ : std::chrono::nanoseconds{0});
    if (!r && r.error() == Errc::timeout && overflow_ == Overflow::drop_oldest) {
      ++stats_.dropped;
      return {};
    }
    if (!r && r.error() == Errc::timeout && overflow_ == Overflow::fail) ++stats_.dropped;
    return r;
  }

  // The same with an explicit timeout for ring space (kInfinite: wait as long as it takes).
  // flatten: FlatBuffers' builder calls (make_space per field, EndTable) are small functions
  // GCC keeps out of line at -O2; inlining them into the build cuts the instructions per message
  // by about a third (callgrind, bench Tick message).
  template <class Build>
  [[gnu::flatten]] Result<void> send(Build&& build, std::chrono::nanoseconds timeout) {
    using Root = decltype(build(std::declval<flatbuffers::FlatBufferBuilder&>()));
    static_assert(std::is_same_v<Root, flatbuffers::Offset<Msg>>,
                  "the build function must return flatbuffers::Offset of the channel's message type");
    alloc_.begin(timeout);
    flatbuffers::FlatBufferBuilder fbb(hint_, &alloc_, false, detail::FrameAllocator::kAlign);
    try {
      const Root root = build(fbb);
      fbb.Finish(root, MessageTraits<Msg>::file_identifier);
    } catch (const detail::BuildFailure& f) {
      alloc_.abandon();
      return f.code;
    } catch (...) {
      alloc_.abandon();  // the user's exception: nothing was published
      throw;
    }
    const size_t size = fbb.GetSize();
    if (alloc_.grew()) ++stats_.regrown;
    if (size > max_message_) {
      alloc_.abandon();
      return Errc::message_too_large;
    }
    if (alloc_.in_frame()) {
      w_.commit_tail(size);
      ++stats_.sent;
      learn(size, alloc_.grew());
      return {};
    }
    // Built in heap memory (frame_allocator.hpp): one copy, into a frame or in chunks.
    learn(size, alloc_.grew());
    auto r = w_.write_message({reinterpret_cast<const std::byte*>(fbb.GetBufferPointer()), size}, alloc_.remaining());
    if (r) {
      ++stats_.sent;
      if (size > w_.max_frame_payload()) ++stats_.chunked;
    }
    return r;
  }

  const SenderStats& stats() const noexcept { return stats_; }
  uint64_t dropped() const noexcept { return stats_.dropped; }
  bool peer_attached() const noexcept { return w_.peer_attached(); }
  void close() noexcept { w_.close(); }
  Writer& writer() noexcept { return w_; }

 private:
  static constexpr size_t kInitialHint = 256;
  static constexpr size_t kMaxMargin = 64 * 1024;

  // Sizes the next reservation: the last message's size plus room for the builder's scratch
  // (field records and vtable offsets live at the front of the buffer while a table is built).
  // A reservation that proves too small costs a move, so the margin doubles each time one does;
  // room left over costs a padding record in front of the frame (commit_tail).
  void learn(size_t size, bool grew) noexcept {
    if (grew && margin_ < kMaxMargin) margin_ *= 2;
    hint_ = clamp_hint(size + margin_);
  }

  size_t clamp_hint(size_t n) const noexcept {
    const size_t a = detail::FrameAllocator::kAlign;
    n = (n + a - 1) & ~(a - 1);
    const size_t cap = w_.max_frame_payload() & ~(a - 1);
    return n < 64 ? 64 : n > cap ? cap : n;
  }

  Writer w_;
  detail::FrameAllocator alloc_;
  uint64_t max_message_;
  Overflow overflow_;
  std::chrono::nanoseconds send_timeout_;
  size_t hint_;
  size_t margin_ = 32;
  SenderStats stats_;
};

}  // namespace flatlane
