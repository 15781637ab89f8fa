// A flatbuffers::Allocator that hands the FlatBufferBuilder a reserved ring frame, so a message
// is built where the receiver will read it.
//
// FlatBuffers build back to front: the finished buffer ends at the end of the allocation, which
// is the end of the reservation, and Writer::commit_tail publishes it where it lies.
//
// Growth: the builder asks for a larger region when the message outgrows the reservation. While
// the larger size still fits a frame, the reservation is replaced by a larger one (same start
// unless it has to wrap) and the bytes built so far move once; the sender then reserves more for
// the next message. Beyond a frame, if the channel accepts messages that large, building goes on
// in heap memory and the finished message is sent chunked (one copy, the price of not fitting).
// Otherwise building stops with message_too_large.
//
// reallocate_downward has no error return, so failures throw BuildFailure, which Sender catches;
// the builder is discarded afterwards.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>

#include <flatbuffers/allocator.h>

#include "flatlane/channel.hpp"

namespace flatlane::detail {

struct BuildFailure {
  Errc code;
};

class FrameAllocator final : public flatbuffers::Allocator {
 public:
  // FlatBuffers' largest scalar is 8 bytes, but `force_align` structs may ask for 16; reserving
  // multiples of 16 keeps the end of every buffer 16-aligned.
  static constexpr size_t kAlign = 16;

  FrameAllocator(Writer& w, uint64_t max_message) noexcept : w_(w), max_message_(max_message) {}
  FrameAllocator(const FrameAllocator&) = delete;
  FrameAllocator& operator=(const FrameAllocator&) = delete;
  ~FrameAllocator() override { free_heap(); }

  // Starts a message: every reservation made while building shares one deadline.
  void begin(std::chrono::nanoseconds timeout) noexcept {
    deadline_ = timeout.count() < 0 ? Clock::time_point::max() : Clock::now() + timeout;
    zero_timeout_ = timeout.count() == 0;
    frame_ = {};
    in_heap_ = false;
    grew_ = false;
  }

  uint8_t* allocate(size_t size) override {
    if (size <= w_.max_frame_payload()) return reserve(size);
    return to_heap(nullptr, 0, size, 0, 0);
  }

  void deallocate(uint8_t* p, size_t) override {
    // Frames are published or aborted by the sender; only heap memory is ours to free.
    if (p != nullptr && p == heap_) free_heap();
  }

  uint8_t* reallocate_downward(uint8_t* old_p, size_t old_size, size_t new_size, size_t in_use_back,
                               size_t in_use_front) override {
    grew_ = true;
    if (!in_heap_ && new_size <= w_.max_frame_payload()) {
      w_.abort();
      uint8_t* p = reserve(new_size);
      // Same start (no wrap): the regions overlap, the back moves up. A wrapped reservation
      // starts at the ring's beginning and cannot overlap the old one (frames are at most half
      // the ring), so memmove is right in both cases and nothing wrote over the old bytes.
      std::memmove(p + new_size - in_use_back, old_p + old_size - in_use_back, in_use_back);
      if (p != old_p) std::memmove(p, old_p, in_use_front);
      return p;
    }
    return to_heap(old_p, old_size, new_size, in_use_back, in_use_front);
  }

  bool in_frame() const noexcept { return !frame_.empty() && !in_heap_; }
  bool grew() const noexcept { return grew_; }
  std::span<std::byte> frame() const noexcept { return frame_; }

  // The reservation is given up (build failed or the message went out another way).
  void abandon() noexcept {
    if (in_frame()) w_.abort();
    frame_ = {};
  }

  std::chrono::nanoseconds remaining() const noexcept {
    if (deadline_ == Clock::time_point::max()) return kInfinite;
    if (zero_timeout_) return std::chrono::nanoseconds{0};
    const auto left = deadline_ - Clock::now();
    return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left) : std::chrono::nanoseconds{0};
  }

 private:
  uint8_t* reserve(size_t size) {
    auto r = w_.reserve(size, remaining());
    if (!r) throw BuildFailure{r.error()};
    frame_ = *r;
    return reinterpret_cast<uint8_t*>(frame_.data());
  }

  uint8_t* to_heap(uint8_t* old_p, size_t old_size, size_t new_size, size_t in_use_back, size_t in_use_front) {
    // The builder over-allocates by half on each growth, so only the bytes built so far can
    // prove the message too large; Sender checks the finished size against the limit.
    if (in_use_back > max_message_) throw BuildFailure{Errc::message_too_large};
    auto* p = static_cast<uint8_t*>(::operator new(new_size, std::align_val_t{kAlign}, std::nothrow));
    if (p == nullptr) throw BuildFailure{Errc::no_space};
    if (old_p != nullptr) {
      std::memcpy(p + new_size - in_use_back, old_p + old_size - in_use_back, in_use_back);
      std::memcpy(p, old_p, in_use_front);
    }
    if (!in_heap_) {
      abandon();
    } else {
      free_heap();
    }
    heap_ = p;
    in_heap_ = true;
    return p;
  }

  void free_heap() noexcept {
    if (heap_ != nullptr) ::operator delete(heap_, std::align_val_t{kAlign});
    heap_ = nullptr;
  }

  Writer& w_;
  uint64_t max_message_;
  Clock::time_point deadline_{};
  bool zero_timeout_ = false;
  std::span<std::byte> frame_;
  uint8_t* heap_ = nullptr;
  bool in_heap_ = false;
  bool grew_ = false;
};

}  // namespace flatlane::detail
