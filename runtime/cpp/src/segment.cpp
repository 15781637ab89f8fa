#include "flatlane/segment.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <thread>
#include <unistd.h>

#include "flatlane/liveness.hpp"
#include "flatlane/topic_layout.hpp"
#include "topic_members.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace flatlane {

namespace {

constexpr const char* kShmDir = "/dev/shm";
constexpr uint64_t kPage = 4096;

std::string errno_text(int e) { return std::string(std::strerror(e)); }

[[noreturn]] void fail(Errc code, const std::string& msg) { throw Error(code, "flatlane: " + msg); }

struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

uint64_t next_pow2(uint64_t v) {
  uint64_t p = wire::kMinRingCapacity;
  while (p < v && p < wire::kMaxRingCapacity) p <<= 1;
  return p;
}

bool role_alive(const wire::EndpointBlock& b) {
  const uint64_t o = b.owner.load(std::memory_order_acquire);
  if (wire::owner_state(o) == wire::kRoleClaiming) return is_alive({wire::owner_pid(o), 0});
  if (wire::owner_state(o) != wire::kRoleAttached) return false;
  return is_alive({wire::owner_pid(o), b.start_time.load(std::memory_order_relaxed)});
}

// Touch every page once so the first messages do not pay ~12 us per page fault. Writing is only
// safe for the creator (nobody else is attached yet); openers populate without changing data.
void prefault(std::byte* base, uint64_t size, bool may_write) {
  if (::madvise(base, size, MADV_POPULATE_WRITE) == 0) return;
  volatile std::byte* p = base;
  for (uint64_t off = 0; off < size; off += kPage) {
    if (may_write) p[off] = std::byte{0};
    else (void)p[off];
  }
}

enum class Stale { missing, live, foreign, stale };

// Decides whether an existing "flatlane.<name>" object may be reclaimed: only a Flatlane segment
// whose creator, writer and reader are all dead (or never attached) is, or the empty/all-zero
// leftover of a creator that died before writing its header.
Stale classify_open(int fd, const struct stat& st, std::string* who);

// Reclaims a stale object under an exclusive flock on it, so that of several processes creating
// the same name at once only one unlinks it, and none unlinks the fresh segment another has just
// created in its place (the name must still point at the locked inode).
Stale reclaim_if_stale(const std::string& shm, std::string* who) {
  Fd f;
  f.fd = ::shm_open(shm.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (f.fd < 0) return errno == ENOENT ? Stale::missing : Stale::foreign;
  if (::flock(f.fd, LOCK_EX) != 0) return Stale::foreign;
  struct stat st{}, now{};
  if (::fstat(f.fd, &st) != 0) return Stale::foreign;
  const std::string path = std::string(kShmDir) + shm;
  if (::stat(path.c_str(), &now) != 0 || now.st_ino != st.st_ino) return Stale::missing;  // already replaced
  Stale s = classify_open(f.fd, st, who);
  if (s == Stale::stale) ::shm_unlink(shm.c_str());  // every process recorded in it is dead
  return s;
}

Stale classify_open(int fd, const struct stat& st, std::string* who) {
  // A creator that died between shm_open and writing the header leaves a short or all-zero
  // object. Leave a young one alone: its creator may still be working on it.
  auto by_age = [&] {
    auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_ctime);
    *who = "being created right now";
    return age > std::chrono::seconds(2) ? Stale::stale : Stale::live;
  };
  if (st.st_size == 0) return by_age();
  if (static_cast<uint64_t>(st.st_size) < wire::kHeaderRegionSize) return Stale::foreign;  // not ours: keep it
  void* m = ::mmap(nullptr, wire::kHeaderRegionSize, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return Stale::foreign;
  auto* base = static_cast<std::byte*>(m);
  auto& h = *reinterpret_cast<wire::SegmentHeader*>(base);
  Stale result = Stale::stale;
  const bool all_zero = std::all_of(base, base + sizeof(wire::SegmentHeader), [](std::byte b) { return b == std::byte{0}; });
  if (all_zero) {
    result = by_age();
  } else if (h.magic != wire::kMagic || h.protocol_version != wire::kProtocolVersion ||
             h.layout_hash != wire::layout_hash_for(h.kind)) {
    result = Stale::foreign;  // not ours, or another version's: its role blocks cannot be read safely
  } else if (is_alive({h.creator_pid, h.creator_start_time}) &&
             h.state.load(std::memory_order_acquire) != wire::kStateReady) {
    result = Stale::live;
    *who = "creator pid " + std::to_string(h.creator_pid) + " is initializing it";
  } else if (h.kind == wire::kKindTopic) {
    result = detail::topic_has_live_members(fd, static_cast<uint64_t>(st.st_size), who) ? Stale::live : Stale::stale;
    if (result == Stale::stale && is_alive({h.creator_pid, h.creator_start_time}) && who->empty()) {
      result = Stale::live;  // created, nobody attached yet, creator still running
      *who = "creator pid " + std::to_string(h.creator_pid);
    }
  } else {
    auto& w = *reinterpret_cast<wire::EndpointBlock*>(base + wire::kWriterBlockOffset);
    auto& r = *reinterpret_cast<wire::EndpointBlock*>(base + wire::kReaderBlockOffset);
    if (role_alive(w)) {
      result = Stale::live;
      *who = "writer pid " + std::to_string(wire::owner_pid(w.owner.load()));
    } else if (role_alive(r)) {
      result = Stale::live;
      *who = "reader pid " + std::to_string(wire::owner_pid(r.owner.load()));
    } else if (wire::owner_state(w.owner.load()) == wire::kRoleNever &&
               wire::owner_state(r.owner.load()) == wire::kRoleNever &&
               is_alive({h.creator_pid, h.creator_start_time})) {
      result = Stale::live;  // created, nobody attached yet, creator still running
      *who = "creator pid " + std::to_string(h.creator_pid);
    }
  }
  ::munmap(m, wire::kHeaderRegionSize);
  return result;
}

}  // namespace

std::string Segment::shm_name(std::string_view name) {
  if (name.empty() || name.size() > 200)
    fail(Errc::invalid_argument, "channel name must be 1..200 characters, got " + std::to_string(name.size()));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.';
    if (!ok) fail(Errc::invalid_argument, "channel name '" + std::string(name) + "' may only use [A-Za-z0-9_.-]");
  }
  return "/flatlane." + std::string(name);
}

Errc validate_header(const wire::SegmentHeader& hdr, uint64_t file_size, std::string* why, SegmentGeometry* geo) {
  auto bad = [&](Errc e, std::string m) {
    if (why) *why = std::move(m);
    return e;
  };
  // Snapshot first: a hostile peer may rewrite the header while we look at it.
  const volatile wire::SegmentHeader& h = hdr;
  const uint64_t magic = h.magic;
  const uint32_t version = h.protocol_version;
  const uint64_t layout = h.layout_hash;
  const uint32_t header_size = h.header_size;
  const uint64_t ring_offset = h.ring_offset;
  const uint64_t cap = h.ring_capacity;
  const uint64_t seg_size = h.segment_size;
  const uint32_t max_frame = h.max_frame_payload;
  const uint32_t chunk = h.chunk_size;
  const uint32_t kind = h.kind;
  if (magic != wire::kMagic) return bad(Errc::not_flatlane, "bad magic");
  if (version != wire::kProtocolVersion)
    return bad(Errc::incompatible_version, "protocol version " + std::to_string(version) +
                                               ", this library speaks " + std::to_string(wire::kProtocolVersion));
  if (kind != wire::kKindSpsc && kind != wire::kKindTopic && kind != wire::kKindDuplex)
    return bad(Errc::corrupt, "unknown channel kind " + std::to_string(kind));
  if (layout != wire::layout_hash_for(kind)) return bad(Errc::layout_mismatch, "layout hash differs from this build's");
  if (header_size != wire::kHeaderRegionSize || ring_offset != wire::kHeaderRegionSize)
    return bad(Errc::corrupt, "header size / ring offset is not 4096");
  if (kind == wire::kKindTopic) {
    // The region holds the topic's blocks, queues and slots (topic_layout.hpp); topic.cpp
    // validates its own header against this size.
    if (cap < wire::kMinRingCapacity || cap > wire::kMaxRingCapacity || cap % 4096 != 0)
      return bad(Errc::corrupt, "topic region " + std::to_string(cap) + " bytes is not a multiple of 4096 in range");
  } else if (cap < wire::kMinRingCapacity || cap > wire::kMaxRingCapacity || (cap & (cap - 1)) != 0 ||
             (kind == wire::kKindDuplex && cap > wire::kMaxDuplexRingCapacity)) {
    return bad(Errc::corrupt, "ring capacity " + std::to_string(cap) + " is not a power of two in range");
  }
  if (seg_size != wire::kHeaderRegionSize + cap)
    return bad(Errc::corrupt, "segment size " + std::to_string(seg_size) + " does not match ring capacity");
  if (file_size < seg_size)
    return bad(Errc::truncated, "file is " + std::to_string(file_size) + " bytes, header says " +
                                    std::to_string(seg_size));
  const uint64_t frame_limit = kind == wire::kKindTopic    ? cap
                               : kind == wire::kKindDuplex ? wire::duplex_max_frame_limit(cap)
                                                           : wire::max_frame_limit(cap);
  if (max_frame < wire::kChunkHeaderSize + 16 || max_frame > frame_limit)
    return bad(Errc::corrupt, "max frame payload " + std::to_string(max_frame) + " out of range");
  if (chunk <= wire::kChunkHeaderSize || chunk > max_frame)
    return bad(Errc::corrupt, "chunk size " + std::to_string(chunk) + " out of range");
  if (std::memchr(hdr.type_name, 0, wire::kTypeNameSize) == nullptr) return bad(Errc::corrupt, "type name not terminated");
  if (geo) *geo = SegmentGeometry{kind, seg_size, cap, max_frame, chunk};
  return Errc::ok;
}

Segment Segment::create(std::string_view name, const SegmentConfig& cfg, const std::function<void(Segment&)>& init) {
  std::string shm = shm_name(name);
  if (cfg.kind != wire::kKindSpsc && cfg.kind != wire::kKindTopic && cfg.kind != wire::kKindDuplex)
    fail(Errc::invalid_argument, "unknown channel kind " + std::to_string(cfg.kind));
  if (cfg.ring_capacity == 0 || cfg.ring_capacity > wire::kMaxRingCapacity)
    fail(Errc::invalid_argument, "ring capacity " + std::to_string(cfg.ring_capacity) + " out of range");
  const bool topic = cfg.kind == wire::kKindTopic;
  if (topic && (cfg.ring_capacity % 4096 != 0 || cfg.max_frame_payload == 0))
    fail(Errc::invalid_argument, "topic region must be a multiple of 4096 with a slot size");
  const bool duplex = cfg.kind == wire::kKindDuplex;
  uint64_t cap = topic ? cfg.ring_capacity : next_pow2(cfg.ring_capacity);
  if (duplex && cap > wire::kMaxDuplexRingCapacity)
    fail(Errc::invalid_argument, "a duplex ring holds at most 2 GiB, asked for " + std::to_string(cap));
  uint64_t frame_limit = std::min<uint64_t>(topic    ? cap
                                            : duplex ? wire::duplex_max_frame_limit(cap)
                                                     : wire::max_frame_limit(cap),
                                            UINT32_MAX - 4096);
  uint64_t max_frame = cfg.max_frame_payload ? cfg.max_frame_payload : frame_limit;
  if (max_frame > frame_limit || max_frame < wire::kChunkHeaderSize + 16)
    fail(Errc::invalid_argument, "max_frame_payload " + std::to_string(max_frame) + " must be in [32, " +
                                     std::to_string(frame_limit) + "] for a ring of " + std::to_string(cap));
  uint64_t chunk = cfg.chunk_size ? cfg.chunk_size : std::min<uint64_t>(max_frame, 1u << 20);
  if (chunk <= wire::kChunkHeaderSize || chunk > max_frame)
    fail(Errc::invalid_argument, "chunk_size " + std::to_string(chunk) + " must be in [17, max_frame_payload=" +
                                     std::to_string(max_frame) + "]");
  if (cfg.type.name.size() >= wire::kTypeNameSize)
    fail(Errc::invalid_argument, "type name longer than 127 bytes: " + cfg.type.name);
  const uint64_t total = wire::kHeaderRegionSize + cap;

  struct statvfs vfs{};
  if (::statvfs(kShmDir, &vfs) == 0) {
    uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (free_bytes < total)
      fail(Errc::no_space, "segment '" + std::string(name) + "' needs " + std::to_string(total) + " bytes but " +
                               kShmDir + " has " + std::to_string(free_bytes) + " free");
  }

  Fd f;
  for (int attempt = 0;; ++attempt) {
    f.fd = ::shm_open(shm.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, cfg.mode);
    if (f.fd >= 0) break;
    int e = errno;
    if (e == EACCES) fail(Errc::permission_denied, "cannot create " + shm + ": " + errno_text(e));
    if (e != EEXIST) fail(Errc::system, "shm_open(" + shm + "): " + errno_text(e));
    std::string who;
    Stale s = reclaim_if_stale(shm, &who);
    if ((s == Stale::missing || s == Stale::stale) && attempt < 3) continue;
    if (s == Stale::foreign) fail(Errc::already_exists,
                                  shm + " exists and is not a Flatlane segment of this protocol version; not touching it");
    fail(Errc::already_exists, "channel '" + std::string(name) + "' is in use (" + who + ")");
  }
  auto cleanup = [&] { ::shm_unlink(shm.c_str()); };
  ::fchmod(f.fd, cfg.mode);  // the umask must not widen or narrow what the user asked for
  // Reserve the pages now: a full /dev/shm becomes ENOSPC here instead of SIGBUS on first touch.
  if (int e = ::posix_fallocate(f.fd, 0, static_cast<off_t>(total)); e != 0) {
    cleanup();
    if (e == ENOSPC) fail(Errc::no_space, "no space in /dev/shm for " + std::to_string(total) + " bytes");
    fail(Errc::system, "posix_fallocate: " + errno_text(e));
  }
  void* m = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    cleanup();
    fail(Errc::system, "mmap: " + errno_text(e));
  }
  struct stat st{};
  ::fstat(f.fd, &st);

  Segment s;
  s.base_ = static_cast<std::byte*>(m);
  s.size_ = total;
  s.geo_ = SegmentGeometry{cfg.kind, total, cap, static_cast<uint32_t>(max_frame), static_cast<uint32_t>(chunk)};
  s.inode_ = st.st_ino;
  s.name_ = std::string(name);
  prefault(s.base_, total, true);

  auto& h = s.header();
  ProcessIdentity self = self_identity();
  h.magic = wire::kMagic;
  h.protocol_version = wire::kProtocolVersion;
  h.header_size = wire::kHeaderRegionSize;
  h.layout_hash = wire::layout_hash_for(cfg.kind);
  h.segment_size = total;
  h.ring_offset = wire::kHeaderRegionSize;
  h.ring_capacity = cap;
  h.max_frame_payload = static_cast<uint32_t>(max_frame);
  h.chunk_size = static_cast<uint32_t>(chunk);
  h.kind = cfg.kind;
  h.creator_pid = self.pid;
  h.flags = 0;
  h.creator_start_time = self.start_time;
  h.created_unix_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  h.type_hash = cfg.type.hash;
  std::memset(h.type_name, 0, sizeof h.type_name);
  std::memcpy(h.type_name, cfg.type.name.data(), cfg.type.name.size());
  if (init) {
    try {
      init(s);
    } catch (...) {
      cleanup();
      throw;
    }
  }
  h.state.store(wire::kStateReady, std::memory_order_release);
  return s;
}

Segment Segment::open(std::string_view name, const TypeId& expected) {
  std::string shm = shm_name(name);
  Fd f;
  f.fd = ::shm_open(shm.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (f.fd < 0) {
    int e = errno;
    if (e == ENOENT) fail(Errc::not_found, "channel '" + std::string(name) + "' does not exist (" + shm + ")");
    if (e == EACCES) fail(Errc::permission_denied, "cannot open " + shm + ": " + errno_text(e));
    fail(Errc::system, "shm_open(" + shm + "): " + errno_text(e));
  }
  struct stat st{};
  // A creator publishes size, then header, then `state`; give one that is mid-setup up to 1 s.
  for (int i = 0;; ++i) {
    if (::fstat(f.fd, &st) != 0) fail(Errc::system, "fstat: " + errno_text(errno));
    if (static_cast<uint64_t>(st.st_size) >= wire::kHeaderRegionSize) {
      void* hm = ::mmap(nullptr, wire::kHeaderRegionSize, PROT_READ, MAP_SHARED, f.fd, 0);
      if (hm == MAP_FAILED) fail(Errc::system, "mmap: " + errno_text(errno));
      const auto* hh = static_cast<const wire::SegmentHeader*>(hm);
      const bool settled = hh->magic != 0 && (hh->magic != wire::kMagic ||
                                              hh->state.load(std::memory_order_acquire) == wire::kStateReady);
      ::munmap(hm, wire::kHeaderRegionSize);
      if (settled) break;
    }
    if (i >= 1000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < sizeof(wire::SegmentHeader)) {
    fail(Errc::truncated, shm + " is " + std::to_string(file_size) + " bytes, smaller than a Flatlane header");
  }
  void* m = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
  if (m == MAP_FAILED) fail(Errc::system, "mmap: " + errno_text(errno));
  Segment s;
  s.base_ = static_cast<std::byte*>(m);
  s.size_ = file_size;
  s.inode_ = st.st_ino;
  s.name_ = std::string(name);
  auto& h = s.header();
  if (h.magic != wire::kMagic) fail(Errc::not_flatlane, shm + " is not a Flatlane segment (bad magic)");
  if (h.state.load(std::memory_order_acquire) != wire::kStateReady)
    fail(Errc::corrupt, "channel '" + std::string(name) + "' was never fully initialized by its creator (pid " +
                            std::to_string(h.creator_pid) + ")");
  if (file_size < wire::kHeaderRegionSize)
    fail(Errc::truncated, shm + " is " + std::to_string(file_size) + " bytes, smaller than its header region");
  std::string why;
  if (Errc e = validate_header(h, file_size, &why, &s.geo_); e != Errc::ok)
    fail(e, "channel '" + std::string(name) + "': " + std::string(to_string(e)) + ": " + why);
  // Copy the type identity out before comparing: a peer may rewrite it concurrently.
  char type_name[wire::kTypeNameSize];
  std::memcpy(type_name, h.type_name, sizeof type_name);
  type_name[sizeof type_name - 1] = '\0';
  const uint64_t type_hash = h.type_hash;
  if (!expected.name.empty() && (expected.name != type_name || (!expected.name_only && expected.hash != type_hash))) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(type_hash));
    char mine[64];
    std::snprintf(mine, sizeof mine, "%016llx", static_cast<unsigned long long>(expected.hash));
    fail(Errc::type_mismatch, "channel '" + std::string(name) + "' carries '" + type_name + "' (hash " + buf +
                                  "), this endpoint expects '" + expected.name + "' (hash " + mine + ")");
  }
  prefault(s.base_, s.geo_.segment_size, false);
  return s;
}

bool Segment::unlink(std::string_view name) { return ::shm_unlink(shm_name(name).c_str()) == 0; }

bool Segment::unlink_if_same() const {
  if (!base_) return false;
  std::string path = std::string(kShmDir) + "/flatlane." + name_;
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || st.st_ino != inode_) return false;
  return ::shm_unlink(shm_name(name_).c_str()) == 0;
}

Segment::Segment(Segment&& o) noexcept { *this = std::move(o); }

Segment& Segment::operator=(Segment&& o) noexcept {
  if (this != &o) {
    release();
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    geo_ = std::exchange(o.geo_, SegmentGeometry{});
    inode_ = std::exchange(o.inode_, 0);
    name_ = std::move(o.name_);
  }
  return *this;
}

Segment::~Segment() { release(); }

void Segment::release() noexcept {
  if (base_) ::munmap(base_, size_);
  base_ = nullptr;
}

}  // namespace flatlane
