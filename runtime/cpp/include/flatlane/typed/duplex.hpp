// Typed in-place duplex endpoints: the client builds a FlatBuffer inside the shared frame, the
// server receives a verified, mutable view of it and modifies it where it lies (FlatBuffers'
// mutate_ accessors, or the bytes of a vector), and the client reads the same buffer back.
//
//   robot::ImageFilter::blur::Client c;                 robot::ImageFilter::blur::Server s;
//   auto seq = c.send([&](auto& b) { ... });            auto call = s.receive();
//   auto reply = c.receive();  // verified, in place    blur(call->mutable_pixels()); s.respond(*call);
//
// A message must fit one frame (docs/SCHEMA.md): it is never chunked, since a reassembled copy
// could not be modified in place.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>

#include <flatbuffers/allocator.h>
#include <flatbuffers/buffer.h>
#include <flatbuffers/flatbuffer_builder.h>
#include <flatbuffers/verifier.h>

#include "flatlane/duplex.hpp"
#include "flatlane/typed/frame_allocator.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

template <FlatlaneMessage Msg>
DuplexOptions duplex_options(const ChannelSpec& spec, const EndpointOptions& o) {
  DuplexOptions d;
  d.mode = o.mode;
  d.segment.ring_capacity = o.ring_capacity ? o.ring_capacity : spec.ring_capacity;
  d.segment.type.name = std::string(MessageTraits<Msg>::type_name);
  d.segment.type.hash = MessageTraits<Msg>::type_hash;
  d.segment.type.name_only = o.type_check == TypeCheck::name_only;
  d.wait.strategy = o.wait.value_or(spec.wait);
  d.unlink_on_close = o.unlink_on_close;
  return d;
}

namespace detail {

// Hands the FlatBufferBuilder the client's reserved frame; growth moves the bytes built so far
// once into a larger reservation. Beyond one frame building stops with message_too_large.
class DuplexFrameAllocator final : public flatbuffers::Allocator {
 public:
  static constexpr size_t kAlign = 32;  // duplex frames are 32-aligned; so are reservation ends
  explicit DuplexFrameAllocator(DuplexClient& c) noexcept : c_(c) {}

  void begin(std::chrono::nanoseconds timeout) noexcept {
    timeout_ = timeout;
    grew_ = false;
  }
  uint8_t* allocate(size_t size) override { return reserve(size); }
  void deallocate(uint8_t*, size_t) override {}  // frames are committed or aborted by the client
  uint8_t* reallocate_downward(uint8_t* old_p, size_t old_size, size_t new_size, size_t in_use_back,
                               size_t in_use_front) override {
    grew_ = true;
    c_.abort();
    uint8_t* p = reserve(new_size);
    // Same start, or the ring's beginning after a wrap: memmove is right either way.
    std::memmove(p + new_size - in_use_back, old_p + old_size - in_use_back, in_use_back);
    if (p != old_p) std::memmove(p, old_p, in_use_front);
    return p;
  }
  bool grew() const noexcept { return grew_; }

 private:
  // The builder's region ends where the reservation ends (commit_tail publishes the end), so a
  // size that is not a multiple of kAlign starts a little into the reservation.
  uint8_t* reserve(size_t size) {
    const size_t rounded = (size + kAlign - 1) & ~(kAlign - 1);
    if (rounded > c_.max_frame_payload()) throw BuildFailure{Errc::message_too_large};
    auto r = c_.reserve(rounded, timeout_);
    if (!r) throw BuildFailure{r.error()};
    return reinterpret_cast<uint8_t*>(r->data()) + (rounded - size);
  }
  DuplexClient& c_;
  std::chrono::nanoseconds timeout_{0};
  bool grew_ = false;
};

template <FlatlaneMessage Msg>
bool verify_flatbuffer(const std::byte* data, size_t size) {
  if (size < sizeof(flatbuffers::uoffset_t) || size > kMaxFlatBufferSize) return false;
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(data), size);
  return v.VerifyBuffer<Msg>(MessageTraits<Msg>::file_identifier);
}

}  // namespace detail

// The client's view of an answered request: the FlatBuffer as the server left it, verified.
template <FlatlaneMessage Msg>
class InPlaceReply {
 public:
  InPlaceReply() = default;
  const Msg& operator*() const noexcept { return *root_; }
  const Msg* operator->() const noexcept { return root_; }
  const Msg* get() const noexcept { return root_; }  // nullptr when rejected
  bool rejected() const noexcept { return r_.rejected(); }
  uint64_t seq() const noexcept { return r_.seq(); }
  std::span<std::byte> bytes() const noexcept { return r_.data(); }

 private:
  template <class>
  friend class InPlaceClient;
  InPlaceReply(DuplexResponse r, const Msg* root) noexcept : r_(std::move(r)), root_(root) {}
  DuplexResponse r_;
  const Msg* root_ = nullptr;
};

// The server's view of a request: a verified, mutable FlatBuffer inside the client's frame.
template <FlatlaneMessage Msg>
class InPlaceCall {
 public:
  InPlaceCall() = default;
  Msg& operator*() const noexcept { return *root_; }
  Msg* operator->() const noexcept { return root_; }
  Msg* get() const noexcept { return root_; }
  uint64_t seq() const noexcept { return req_.seq(); }
  std::span<std::byte> bytes() const noexcept { return req_.data(); }
  DuplexRequest& request() noexcept { return req_; }

 private:
  template <class>
  friend class InPlaceServer;
  InPlaceCall(DuplexRequest r, Msg* root) noexcept : req_(std::move(r)), root_(root) {}
  DuplexRequest req_;
  Msg* root_ = nullptr;
};

struct InPlaceStats {
  uint64_t sent = 0;      // client: requests built and published
  uint64_t received = 0;  // client: replies; server: calls handed out
  uint64_t rejected = 0;  // client: replies that came back rejected; server: requests that failed verification
  uint64_t corrupt = 0;   // client: replies that failed verification
  uint64_t regrown = 0;   // client: messages that outgrew their first reservation (moved once)
};

template <class Channel>
class InPlaceClient {
 public:
  using message_type = typename Channel::request_type;
  using Msg = message_type;
  static_assert(std::is_same_v<typename Channel::request_type, typename Channel::response_type>,
                "a duplex channel hands its request back");

  explicit InPlaceClient(const EndpointOptions& o = {})
      : c_(endpoint_name(Channel::spec, o), duplex_options<Msg>(Channel::spec, o)),
        alloc_(c_),
        max_message_(std::min<uint64_t>(o.max_message ? o.max_message : Channel::spec.max_message,
                                        c_.max_frame_payload())),
        verify_(o.verify),
        send_timeout_(o.send_timeout),
        hint_(o.size_hint ? o.size_hint : 256) {}

  InPlaceClient(const InPlaceClient&) = delete;
  InPlaceClient& operator=(const InPlaceClient&) = delete;

  // Builds the request inside a frame and publishes it; returns its seq (replies come back in
  // request order). `build(flatbuffers::FlatBufferBuilder&)` returns flatbuffers::Offset<Msg>.
  // Errors: message_too_large (over max_message or a frame), timeout (the ring is full of
  // requests whose replies were not received and released), closed.
  template <class Build>
  [[gnu::flatten]] Result<uint64_t> send(Build&& build) {
    using Root = decltype(build(std::declval<flatbuffers::FlatBufferBuilder&>()));
    static_assert(std::is_same_v<Root, flatbuffers::Offset<Msg>>,
                  "the build function must return flatbuffers::Offset of the channel's message type");
    alloc_.begin(send_timeout_);
    flatbuffers::FlatBufferBuilder fbb(hint_, &alloc_, false, detail::DuplexFrameAllocator::kAlign);
    try {
      const Root root = build(fbb);
      fbb.Finish(root, MessageTraits<Msg>::file_identifier);
    } catch (const detail::BuildFailure& f) {
      c_.abort();
      return f.code;
    } catch (...) {
      c_.abort();
      throw;
    }
    const size_t size = fbb.GetSize();
    if (alloc_.grew()) ++stats_.regrown;
    if (size > max_message_) {
      c_.abort();
      return Errc::message_too_large;
    }
    hint_ = size + 64;  // the next request is likely the same size
    ++stats_.sent;
    return c_.commit_tail(size);
  }

  // The reply to the oldest outstanding request, verified (unless verify = false) and read in
  // place. A rejected reply (the server refused it, or died holding it) has rejected() set and
  // no message. Errors: timeout, peer_dead, peer_closed, closed, corrupt (failed verification;
  // the frame is released), invalid_argument (nothing outstanding).
  Result<InPlaceReply<Msg>> receive(std::chrono::nanoseconds timeout = kInfinite) {
    auto r = c_.receive(timeout);
    if (!r) return r.error();
    ++stats_.received;
    if (r->rejected()) {
      ++stats_.rejected;
      return InPlaceReply<Msg>(std::move(*r), nullptr);
    }
    const auto d = r->data();
    if (verify_ && !detail::verify_flatbuffer<Msg>(d.data(), d.size())) {
      ++stats_.corrupt;
      return Errc::corrupt;
    }
    const Msg* root = flatbuffers::GetRoot<Msg>(reinterpret_cast<const uint8_t*>(d.data()));
    return InPlaceReply<Msg>(std::move(*r), root);
  }

  uint64_t outstanding() const noexcept { return c_.outstanding(); }
  const InPlaceStats& stats() const noexcept { return stats_; }
  bool peer_attached() const noexcept { return c_.peer_attached(); }
  void close() noexcept { c_.close(); }
  DuplexClient& endpoint() noexcept { return c_; }

 private:
  DuplexClient c_;
  detail::DuplexFrameAllocator alloc_;
  uint64_t max_message_;
  bool verify_;
  std::chrono::nanoseconds send_timeout_;
  size_t hint_;
  InPlaceStats stats_;
};

template <class Channel>
class InPlaceServer {
 public:
  using message_type = typename Channel::request_type;
  using Msg = message_type;

  explicit InPlaceServer(const EndpointOptions& o = {})
      : s_(endpoint_name(Channel::spec, o), duplex_options<Msg>(Channel::spec, o)), verify_(o.verify) {}

  InPlaceServer(const InPlaceServer&) = delete;
  InPlaceServer& operator=(const InPlaceServer&) = delete;

  // The next request as a mutable, verified FlatBuffer in the client's frame. A request that
  // fails verification is rejected (the client is told) and reported as corrupt.
  Result<InPlaceCall<Msg>> receive(std::chrono::nanoseconds timeout = kInfinite) {
    auto r = s_.receive(timeout);
    if (!r) return r.error();
    const auto d = r->data();
    if (verify_ && !detail::verify_flatbuffer<Msg>(d.data(), d.size())) {
      ++stats_.rejected;
      r->reject();
      return Errc::corrupt;
    }
    ++stats_.received;
    Msg* root = flatbuffers::GetMutableRoot<Msg>(reinterpret_cast<uint8_t*>(d.data()));
    return InPlaceCall<Msg>(std::move(*r), root);
  }

  // Hands the modified message back to the client. Mutating a FlatBuffer in place keeps its
  // size, so the reply is the request's bytes as they are now.
  Result<void> respond(InPlaceCall<Msg>& call) noexcept { return s_.respond(call.req_); }
  void reject(InPlaceCall<Msg>& call) noexcept { call.req_.reject(); }

  uint64_t outstanding() const noexcept { return s_.outstanding(); }
  const InPlaceStats& stats() const noexcept { return stats_; }
  bool peer_attached() const noexcept { return s_.peer_attached(); }
  void close() noexcept { s_.close(); }
  DuplexServer& endpoint() noexcept { return s_; }

 private:
  DuplexServer s_;
  bool verify_;
  InPlaceStats stats_;
};

}  // namespace flatlane
