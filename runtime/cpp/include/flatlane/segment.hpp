// Named shared-memory segments: creation with space checks and prefaulting, validated opening.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "flatlane/error.hpp"
#include "flatlane/layout.hpp"

namespace flatlane {

// Identity of the message type carried by a channel; empty name = untyped (accepts any peer
// that is also untyped or asks for no check).
struct TypeId {
  std::string name;   // e.g. "robot.Command" (max 127 bytes)
  uint64_t hash = 0;  // e.g. hash of the type's reflection definition
  // Opening only: compare the name and ignore the hash, for wire-compatible schema evolution
  // during rolling upgrades (docs/SCHEMA.md, "Evolving a schema"). Creating always records both.
  bool name_only = false;
};

struct SegmentConfig {
  uint64_t ring_capacity = 1u << 20;  // rounded up to a power of two, >= 4096
  uint32_t max_frame_payload = 0;     // 0 = largest allowed: capacity/2 - 32
  uint32_t chunk_size = 0;            // 0 = min(max_frame_payload, 1 MiB)
  mode_t mode = 0600;
  TypeId type;
  // wire::kKindSpsc, or wire::kKindTopic: then ring_capacity is the exact size of the region
  // after the 4 KiB header (a multiple of 4096), max_frame_payload the slot size, and the caller
  // writes the topic header (topic.cpp) before the segment is marked ready.
  uint32_t kind = 1;
};

// The header values a Segment uses, copied out of shared memory once and validated, so a peer
// rewriting the header later cannot change them under us.
struct SegmentGeometry {
  uint32_t kind = 0;
  uint64_t segment_size = 0;
  uint64_t ring_capacity = 0;
  uint32_t max_frame_payload = 0;
  uint32_t chunk_size = 0;
};

// RAII owner of one mapping of a segment. Moving transfers the mapping.
class Segment {
 public:
  // Creates "/dev/shm/flatlane.<name>". A leftover segment whose recorded processes are all dead
  // is reclaimed; a live one gives already_exists. Throws Error.
  // `init` runs after the common header is written and before the segment is marked ready.
  static Segment create(std::string_view name, const SegmentConfig& cfg,
                        const std::function<void(Segment&)>& init = {});
  // Opens and validates every header field. `expected` with an empty name skips the type check.
  static Segment open(std::string_view name, const TypeId& expected);
  // Removes the name; mappings stay valid. Returns false if it did not exist.
  static bool unlink(std::string_view name);
  // "/flatlane.<name>" after validating the name (throws invalid_argument).
  static std::string shm_name(std::string_view name);

  Segment() = default;
  Segment(Segment&& o) noexcept;
  Segment& operator=(Segment&& o) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  bool valid() const noexcept { return base_ != nullptr; }
  std::byte* base() const noexcept { return base_; }
  uint64_t size() const noexcept { return size_; }
  const std::string& name() const noexcept { return name_; }
  wire::SegmentHeader& header() const noexcept { return *reinterpret_cast<wire::SegmentHeader*>(base_); }
  wire::EndpointBlock& writer_block() const noexcept { return at<wire::EndpointBlock>(wire::kWriterBlockOffset); }
  wire::EndpointBlock& reader_block() const noexcept { return at<wire::EndpointBlock>(wire::kReaderBlockOffset); }
  wire::EventCount& data_event() const noexcept { return at<wire::EventCount>(wire::kDataEventOffset); }
  wire::EventCount& space_event() const noexcept { return at<wire::EventCount>(wire::kSpaceEventOffset); }
  std::byte* ring() const noexcept { return base_ + wire::kHeaderRegionSize; }
  uint64_t ring_capacity() const noexcept { return geo_.ring_capacity; }
  uint32_t max_frame_payload() const noexcept { return geo_.max_frame_payload; }
  uint32_t chunk_size() const noexcept { return geo_.chunk_size; }
  uint32_t kind() const noexcept { return geo_.kind; }

  // Unlinks the name only if it still refers to this very segment (same inode).
  bool unlink_if_same() const;

 private:
  template <class T>
  T& at(uint64_t off) const noexcept { return *reinterpret_cast<T*>(base_ + off); }
  void release() noexcept;

  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  SegmentGeometry geo_;  // validated copy: never re-read from shared memory
  uint64_t inode_ = 0;
  std::string name_;
};

// Validates a mapped header against the file size; returns ok or the specific error with a
// message. Every field is read exactly once; `geo` receives the validated values.
Errc validate_header(const wire::SegmentHeader& h, uint64_t file_size, std::string* why,
                     SegmentGeometry* geo = nullptr);

}  // namespace flatlane
