// Typed receiving: a verified, zero-copy view of a FlatBuffers message in the ring.
//
//   flatlane::Receiver<robot::Command> rx(spec);
//   auto m = rx.receive();           // Result<Received<robot::Command>>
//   if (m) use(m->speed());          // reads the frame in shared memory
//
// The frame stays reserved for the reader until the Received is destroyed. A message that came
// in chunks is reassembled in the reader's buffer and valid until the next receive().
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include <flatbuffers/buffer.h>
#include <flatbuffers/verifier.h>

#include "flatlane/channel.hpp"
#include "flatlane/typed/spec.hpp"

namespace flatlane {

template <FlatlaneMessage Msg>
class Received {
 public:
  Received() = default;
  const Msg& operator*() const noexcept { return *root_; }
  const Msg* operator->() const noexcept { return root_; }
  const Msg* get() const noexcept { return root_; }
  // The whole FlatBuffer as it lies in shared memory (or in the reassembly buffer).
  std::span<const std::byte> bytes() const noexcept { return m_.data(); }
  uint64_t seq() const noexcept { return m_.seq(); }
  bool zero_copy() const noexcept { return m_.zero_copy(); }

 private:
  template <FlatlaneMessage>
  friend class Receiver;
  Received(Message m, const Msg* root) noexcept : m_(std::move(m)), root_(root) {}
  Message m_;
  const Msg* root_ = nullptr;
};

struct ReceiverStats {
  uint64_t received = 0;  // messages handed out
  uint64_t rejected = 0;  // messages that failed verification (consumed, not handed out)
};

template <FlatlaneMessage Msg>
class Receiver {
 public:
  explicit Receiver(const ChannelSpec& spec, const EndpointOptions& o = {})
      : r_(endpoint_name(spec, o), channel_options<Msg>(spec, o)), verify_(o.verify) {}

  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Next message. Errors: timeout, peer_dead / peer_closed (after everything sent was read),
  // closed, message_too_large (chunked message over the limit), corrupt (failed verification:
  // the message is consumed and counted in stats().rejected).
  // flatten: the verifier's small helpers, inlined (see Sender::send).
  [[gnu::flatten]] Result<Received<Msg>> receive(std::chrono::nanoseconds timeout = kInfinite) {
    auto m = r_.read_message(timeout);
    if (!m) return m.error();
    const auto data = m->data();
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    if (!accept(p, data.size())) {
      ++stats_.rejected;
      return Errc::corrupt;
    }
    ++stats_.received;
    return Received<Msg>(std::move(*m), flatbuffers::GetRoot<Msg>(p));
  }

  const ReceiverStats& stats() const noexcept { return stats_; }
  bool peer_attached() const noexcept { return r_.peer_attached(); }
  void close() noexcept { r_.close(); }
  Reader& reader() noexcept { return r_; }

 private:
  bool accept(const uint8_t* p, size_t n) const {
    // Even a trusted peer's frame must hold a root offset inside the frame.
    if (n < sizeof(flatbuffers::uoffset_t) || n >= kMaxFlatBufferSize) return false;
    if (!verify_) return flatbuffers::ReadScalar<flatbuffers::uoffset_t>(p) < n;
    flatbuffers::Verifier::Options vo;
    vo.check_alignment = true;
    flatbuffers::Verifier v(p, n, vo);
    return v.VerifyBuffer<Msg>(MessageTraits<Msg>::file_identifier);
  }

  Reader r_;
  bool verify_;
  ReceiverStats stats_;
};

}  // namespace flatlane
