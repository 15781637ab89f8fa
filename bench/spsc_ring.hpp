// Minimal single-producer/single-consumer byte ring in shared memory: the
// "bare ring" floor that Flatlane's channel throughput is compared with.
//
// Records are [8-byte length][payload, padded to 8 bytes] and always
// contiguous, so a reader can use a payload in place. A record that would
// cross the end of the buffer is preceded by a padding record (length
// kPadMarker) that fills the rest of the buffer.
//
// head (written only by the producer) and tail (written only by the
// consumer) are monotonic byte counters on separate 128-byte blocks: 128
// rather than 64 because Intel's adjacent-line prefetcher moves lines in
// pairs, which would otherwise bring back false sharing. Each side keeps a
// cached copy of the other side's counter and only re-reads the shared one
// when the cached value says the ring looks full (producer) or empty
// (consumer), so the common case touches no line owned by the other core.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "platform.hpp"

namespace flbench {

struct alignas(128) RingControl {
  alignas(128) std::uint64_t head = 0;
  alignas(128) std::uint64_t tail = 0;
};

class SpscRing {
 public:
  static constexpr std::size_t kDataOffset = 4096;  // data starts page aligned
  static constexpr std::uint64_t kPadMarker = ~std::uint64_t{0};

  static constexpr std::uint64_t record_bytes(std::size_t payload) {
    return 8 + ((payload + 7) & ~std::uint64_t{7});
  }
  // Shared bytes needed for a ring with `capacity` (a power of two) data bytes.
  static constexpr std::size_t region_bytes(std::size_t capacity) {
    return kDataOffset + capacity;
  }

  // `region` must be zeroed and `region_bytes(capacity)` long.
  SpscRing(std::byte* region, std::size_t capacity)
      : ctl_(reinterpret_cast<RingControl*>(region)),
        data_(region + kDataOffset),
        cap_(capacity),
        mask_(capacity - 1) {}

  // ---- producer side ----

  // Space for one `size`-byte payload; spins while the ring is full.
  // `size` must leave room: record_bytes(size) <= capacity.
  std::byte* reserve(std::size_t size) {
    const std::uint64_t rec = record_bytes(size);
    std::uint64_t pos = head_ & mask_;
    const std::uint64_t pad = (cap_ - pos < rec) ? cap_ - pos : 0;
    while (head_ + pad + rec - cached_tail_ > cap_) {
      cached_tail_ = std::atomic_ref<std::uint64_t>(ctl_->tail).load(std::memory_order_acquire);
      if (head_ + pad + rec - cached_tail_ <= cap_) break;
      cpu_relax();
    }
    if (pad != 0) {
      std::memcpy(data_ + pos, &kPadMarker, 8);
      head_ += pad;  // published together with the record by commit()
      pos = 0;
    }
    const std::uint64_t len = size;
    std::memcpy(data_ + pos, &len, 8);
    pending_ = rec;
    return data_ + pos + 8;
  }

  void commit() {
    head_ += pending_;
    std::atomic_ref<std::uint64_t>(ctl_->head).store(head_, std::memory_order_release);
  }

  // ---- consumer side ----

  // Next payload in place, or nullptr if the ring is empty right now.
  const std::byte* try_read(std::size_t& size) {
    for (;;) {
      if (tail_ == cached_head_) {
        cached_head_ = std::atomic_ref<std::uint64_t>(ctl_->head).load(std::memory_order_acquire);
        if (tail_ == cached_head_) return nullptr;
      }
      const std::uint64_t pos = tail_ & mask_;
      std::uint64_t len;
      std::memcpy(&len, data_ + pos, 8);
      if (len == kPadMarker) {
        tail_ += cap_ - pos;  // skip; the producer learns of it on release()
        continue;
      }
      size = static_cast<std::size_t>(len);
      pending_ = record_bytes(size);
      return data_ + pos + 8;
    }
  }

  const std::byte* read_spin(std::size_t& size) {
    const std::byte* p;
    while ((p = try_read(size)) == nullptr) cpu_relax();
    return p;
  }

  // Hands the record returned by the last try_read back to the producer.
  void release() {
    tail_ += pending_;
    std::atomic_ref<std::uint64_t>(ctl_->tail).store(tail_, std::memory_order_release);
  }

 private:
  RingControl* ctl_;
  std::byte* data_;
  std::uint64_t cap_;
  std::uint64_t mask_;
  // Side-local state (each process has its own copy of this object).
  std::uint64_t head_ = 0;         // producer: next write position
  std::uint64_t cached_tail_ = 0;  // producer: last seen consumer position
  std::uint64_t tail_ = 0;         // consumer: next read position
  std::uint64_t cached_head_ = 0;  // consumer: last seen producer position
  std::uint64_t pending_ = 0;      // bytes of the record in progress
};

}  // namespace flbench
