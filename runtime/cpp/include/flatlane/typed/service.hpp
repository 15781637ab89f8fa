// Typed request/reply: generated `Client` / `Server` for the schema's service methods.
//
//   robot::Control::SetMode::Client client;
//   auto reply = client.call([&](auto& b) { return robot::CreateSetModeRequest(b, robot::Mode_Auto); });
//   if (reply) use((*reply)->accepted());                  // verified view in the reply ring
//
//   robot::Control::SetMode::Server server;
//   auto req = server.receive();                           // verified view of the request
//   server.reply(*req, [&](auto& b) { return robot::CreateSetModeReply(b, true); });
//
// Requests are built in the request slot and replies in the client's reply ring, back to front,
// and published where they end (service.hpp: send_prepared_tail, commit_reply_tail). A message
// larger than the channel's max_message fails with message_too_large; services do not chunk.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <flatbuffers/flatbuffer_builder.h>
#include <flatbuffers/verifier.h>

#include "flatlane/service.hpp"
#include "flatlane/typed/frame_allocator.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

template <class Ch>
concept ServiceChannel = requires {
  typename Ch::request_type;
  typename Ch::response_type;
  { Ch::spec } -> std::convertible_to<ChannelSpec>;
} && FlatlaneMessage<typename Ch::request_type> && FlatlaneMessage<typename Ch::response_type>;

namespace detail {

// Hands the builder one fixed region; a message that needs more fails (no growth, no chunking).
class SpanAllocator final : public flatbuffers::Allocator {
 public:
  explicit SpanAllocator(std::span<std::byte> s) noexcept : s_(s) {}
  uint8_t* allocate(size_t size) override {
    if (size > s_.size()) throw BuildFailure{Errc::message_too_large};
    return reinterpret_cast<uint8_t*>(s_.data() + s_.size() - size);
  }
  void deallocate(uint8_t*, size_t) override {}
  uint8_t* reallocate_downward(uint8_t*, size_t, size_t, size_t, size_t) override {
    throw BuildFailure{Errc::message_too_large};
  }

 private:
  std::span<std::byte> s_;
};

// Builds a message into `region` (ends at its end); returns the FlatBuffer's size or an error.
template <class Msg, class Build>
Result<size_t> build_into(std::span<std::byte> region, Build&& build) {
  using Root = decltype(build(std::declval<flatbuffers::FlatBufferBuilder&>()));
  static_assert(std::is_same_v<Root, flatbuffers::Offset<Msg>>,
                "the build function must return flatbuffers::Offset of the message type");
  // The builder rounds its region to 16 bytes: hand it a multiple of 16.
  region = region.subspan(region.size() % FrameAllocator::kAlign);
  SpanAllocator alloc(region);
  flatbuffers::FlatBufferBuilder fbb(region.size(), &alloc, false, FrameAllocator::kAlign);
  try {
    fbb.Finish(build(fbb), MessageTraits<Msg>::file_identifier);
  } catch (const BuildFailure& f) {
    return f.code;
  }
  return static_cast<size_t>(fbb.GetSize());
}

template <class Msg>
const Msg* verified_root(std::span<const std::byte> data, bool verify) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  if (data.size() < sizeof(flatbuffers::uoffset_t) || data.size() >= kMaxFlatBufferSize) return nullptr;
  if (verify) {
    flatbuffers::Verifier::Options vo;
    vo.check_alignment = true;
    flatbuffers::Verifier v(p, data.size(), vo);
    if (!v.VerifyBuffer<Msg>(MessageTraits<Msg>::file_identifier)) return nullptr;
  } else if (flatbuffers::ReadScalar<flatbuffers::uoffset_t>(p) >= data.size()) {
    return nullptr;
  }
  return flatbuffers::GetRoot<Msg>(p);
}

template <class Ch>
ServiceOptions service_options(const EndpointOptions& o) {
  // Services carry one message per slot / frame: a schema without flatlane_max_message gets
  // 64 KiB per message rather than the 4 GiB default of streams.
  constexpr uint64_t kDefaultMax = 64 * 1024;
  const uint64_t schema_max = Ch::spec.max_message >= (1ull << 32) ? kDefaultMax : Ch::spec.max_message;
  const uint64_t max = std::min<uint64_t>(o.max_message ? o.max_message : schema_max, 1u << 30);
  ServiceOptions s;
  s.mode = o.mode;
  s.max_request = static_cast<uint32_t>((max + 15) & ~uint64_t{15});
  const uint64_t ring = o.ring_capacity ? o.ring_capacity : Ch::spec.ring_capacity;
  s.reply_ring = std::max<uint64_t>(ring, std::bit_ceil(2 * (s.max_request + 64)));  // one reply fits a frame
  s.request_type = {std::string(MessageTraits<typename Ch::request_type>::type_name),
                    MessageTraits<typename Ch::request_type>::type_hash, o.type_check == TypeCheck::name_only};
  s.reply_type = {std::string(MessageTraits<typename Ch::response_type>::type_name),
                  MessageTraits<typename Ch::response_type>::type_hash, o.type_check == TypeCheck::name_only};
  s.wait.strategy = o.wait.value_or(Ch::spec.wait);
  if (o.send_timeout.count() >= 0) s.send_timeout = o.send_timeout;
  return s;
}

}  // namespace detail

// A verified reply (zero-copy in the client's reply ring).
template <FlatlaneMessage Msg>
class TypedReply {
 public:
  const Msg& operator*() const noexcept { return *root_; }
  const Msg* operator->() const noexcept { return root_; }
  const Msg* get() const noexcept { return root_; }
  std::span<const std::byte> bytes() const noexcept { return r_.data(); }
  uint64_t id() const noexcept { return r_.id(); }
  bool more() const noexcept { return r_.more(); }  // streaming: another reply follows

 private:
  template <ServiceChannel>
  friend class Client;
  TypedReply(Reply r, const Msg* root) noexcept : r_(std::move(r)), root_(root) {}
  Reply r_;
  const Msg* root_;
};

// A verified request (zero-copy in the server's request slot, held until destroyed).
template <FlatlaneMessage Msg>
class TypedRequest {
 public:
  const Msg& operator*() const noexcept { return *root_; }
  const Msg* operator->() const noexcept { return root_; }
  const Msg* get() const noexcept { return root_; }
  std::span<const std::byte> bytes() const noexcept { return r_.data(); }
  uint64_t id() const noexcept { return r_.id(); }
  uint32_t client() const noexcept { return r_.client(); }
  const Request& raw() const noexcept { return r_; }

 private:
  template <ServiceChannel>
  friend class Server;
  TypedRequest(Request r, const Msg* root) noexcept : r_(std::move(r)), root_(root) {}
  Request r_;
  const Msg* root_;
};

template <ServiceChannel Ch>
class Client {
  static_assert(Ch::spec.kind == ChannelKind::service, "Client needs a service channel");

 public:
  using Req = typename Ch::request_type;
  using Resp = typename Ch::response_type;

  explicit Client(const EndpointOptions& o = {})
      : c_(endpoint_name(Ch::spec, o), detail::service_options<Ch>(o)), verify_(o.verify) {}

  // Builds the request in its slot and sends it; returns the request id.
  template <class Build>
  Result<uint64_t> send(Build&& build) {
    auto span = c_.prepare(c_.max_request());
    if (!span) return span.error();
    auto size = detail::build_into<Req>(*span, std::forward<Build>(build));
    if (!size) {
      c_.abort_prepared();
      return size.error();
    }
    return c_.send_prepared_tail(*size);
  }

  // The next reply to `id` (streaming methods: call again while more()).
  Result<TypedReply<Resp>> receive(uint64_t id, std::chrono::nanoseconds timeout = kInfinite) {
    auto r = c_.receive(id, timeout);
    if (!r) return r.error();
    const Resp* root = detail::verified_root<Resp>(r->data(), verify_);
    if (root == nullptr) return Errc::corrupt;
    return TypedReply<Resp>(std::move(*r), root);
  }

  template <class Build>
  Result<TypedReply<Resp>> call(Build&& build, std::chrono::nanoseconds timeout = kInfinite) {
    auto id = send(std::forward<Build>(build));
    if (!id) return id.error();
    return receive(*id, timeout);
  }

  ServiceClient& raw() noexcept { return c_; }

 private:
  ServiceClient c_;
  bool verify_;
};

template <ServiceChannel Ch>
class Server {
  static_assert(Ch::spec.kind == ChannelKind::service, "Server needs a service channel");

 public:
  using Req = typename Ch::request_type;
  using Resp = typename Ch::response_type;

  explicit Server(const EndpointOptions& o = {})
      : s_(endpoint_name(Ch::spec, o), detail::service_options<Ch>(o)),
        max_reply_(detail::service_options<Ch>(o).max_request),
        verify_(o.verify) {}

  // The next request. A request that fails verification is dropped and reported as corrupt.
  Result<TypedRequest<Req>> receive(std::chrono::nanoseconds timeout = kInfinite) {
    auto r = s_.receive(timeout);
    if (!r) return r.error();
    const Req* root = detail::verified_root<Req>(r->data(), verify_);
    if (root == nullptr) return Errc::corrupt;
    return TypedRequest<Req>(std::move(*r), root);
  }

  // Builds the reply in the client's reply ring. `more`: another reply to this request follows
  // (streaming methods). A client that is gone or whose ring is full loses the reply (counted).
  template <class Build>
  Result<void> reply(const TypedRequest<Req>& req, Build&& build, bool more = false) {
    auto span = s_.prepare_reply(req.raw(), max_reply_);
    if (!span) return span.error();
    auto size = detail::build_into<Resp>(*span, std::forward<Build>(build));
    if (!size) {
      s_.abort_reply();
      return size.error();
    }
    return s_.commit_reply_tail(*size, more);
  }

  ServiceServer& raw() noexcept { return s_; }

 private:
  ServiceServer s_;
  size_t max_reply_;
  bool verify_;
};

}  // namespace flatlane
