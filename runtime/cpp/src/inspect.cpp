// Read-only inspection of segments, and the name removal behind `flatlane rm` / `flatlane gc`
// (inspect.hpp, docs/CLI.md).
//
// Safety rules, all from docs/PROTOCOL.md:
// - Inspection opens O_RDONLY and maps PROT_READ: a bug here faults instead of corrupting a peer.
// - The header is checked with validate_header (3.4) and a topic's geometry with TopicView (14.2)
//   before any offset derived from shared memory is used.
// - Removal follows stale reclamation (10.2): an exclusive flock on the object, the name re-checked
//   to still point at the locked inode, classification under the lock, and a 0-byte or all-zero
//   object younger than 2 s is left to the creator that is still writing it.
#include "flatlane/inspect.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "flatlane/layout.hpp"
#include "flatlane/liveness.hpp"
#include "flatlane/segment.hpp"
#include "flatlane/topic_layout.hpp"
#include "topic_view.hpp"

namespace flatlane::inspect {

namespace {

constexpr const char* kShmDir = "/dev/shm";
constexpr std::string_view kPrefix = "flatlane.";
// The runtime's grace for objects that look unfinished (PROTOCOL.md 10.2, compared in whole
// seconds of st_ctime like segment.cpp does).
constexpr auto kYoungGrace = std::chrono::seconds(2);

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A read-only shared mapping; PROT_READ makes any accidental store fault instead of reaching a peer.
class Mapping {
 public:
  Mapping(int fd, uint64_t len) : len_(len) {
    void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) base_ = static_cast<std::byte*>(m);
    else err_ = errno;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base_) ::munmap(base_, len_);
  }
  explicit operator bool() const noexcept { return base_ != nullptr; }
  const std::byte* data() const noexcept { return base_; }
  // TopicView's accessors are typed non-const; it only loads through them here, and the
  // mapping's protection enforces that.
  std::byte* mutable_data() const noexcept { return base_; }
  int error() const noexcept { return err_; }

 private:
  std::byte* base_ = nullptr;
  uint64_t len_ = 0;
  int err_ = 0;
};

template <class T>
const T& at(const std::byte* base, uint64_t off) noexcept {
  return *reinterpret_cast<const T*>(base + off);
}

// One read of a plain (non-atomic) header field that a peer may rewrite concurrently.
template <class T>
T read_once(const T& field) noexcept {
  return *static_cast<const volatile T*>(&field);
}

// Built by appending: GCC 12 reports a false -Wrestrict for `"/" + std::string(...)`.
std::string shm_of(std::string_view name) {
  std::string s = "/";
  s.append(kPrefix).append(name);
  return s;
}
std::string path_of(std::string_view name) { return std::string(kShmDir).append(shm_of(name)); }

bool is_young(const struct stat& st) {
  const auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_ctime);
  return age <= kYoungGrace;
}

ProcessInfo recorded(uint32_t pid, uint64_t start_time) {
  return ProcessInfo{pid, start_time, is_alive({pid, start_time})};
}

// Owner word, start time and epoch of a block. A claimant stores its start time after winning the
// CAS, so while the state is claiming the process is judged by pid alone, as the runtime does.
PeerInfo peer_from(Role role, uint32_t index, const std::atomic<uint64_t>& owner_word,
                   const std::atomic<uint64_t>& start_word, const std::atomic<uint32_t>& epoch_word, uint32_t mode) {
  const uint64_t owner = owner_word.load(std::memory_order_acquire);
  PeerInfo p;
  p.role = role;
  p.index = index;
  p.state = wire::owner_state(owner);
  p.epoch = epoch_word.load(std::memory_order_relaxed);
  p.mode = mode;
  const uint64_t start = p.state == wire::kRoleClaiming ? 0 : start_word.load(std::memory_order_relaxed);
  p.process = recorded(wire::owner_pid(owner), start);
  return p;
}

PeerInfo endpoint_peer(const wire::EndpointBlock& b, Role role) {
  return peer_from(role, 0, b.owner, b.start_time, b.epoch, 0);
}

ChannelEndpointCounters endpoint_counters(const wire::EndpointBlock& b) {
  return {b.pos.load(std::memory_order_acquire), b.count.load(std::memory_order_relaxed),
          b.messages.load(std::memory_order_relaxed), b.bytes.load(std::memory_order_relaxed)};
}

// W - R, clamped to what the ring can hold; impossible positions are reported, not trusted.
void compute_occupancy(ChannelInfo& c, std::vector<std::string>& warnings) {
  const uint64_t w = c.writer_counters.position, r = c.reader_counters.position;
  if ((w | r) % wire::kFrameAlign != 0)
    warnings.push_back("positions are not 16-byte aligned (W " + std::to_string(w) + ", R " + std::to_string(r) + ")");
  if (w < r) {
    warnings.push_back("writer position " + std::to_string(w) + " is behind reader position " + std::to_string(r));
    c.occupancy_bytes = 0;
  } else if (w - r > c.ring_capacity) {
    warnings.push_back("W - R = " + std::to_string(w - r) + " exceeds the ring capacity");
    c.occupancy_bytes = c.ring_capacity;
  } else {
    c.occupancy_bytes = w - r;
  }
  c.occupancy_percent = 100.0 * static_cast<double>(c.occupancy_bytes) / static_cast<double>(c.ring_capacity);
}

// `base` maps at least the 4096-byte header region.
ChannelInfo read_channel(const std::byte* base, const SegmentGeometry& geo, std::vector<std::string>& warnings) {
  const auto& wb = at<wire::EndpointBlock>(base, wire::kWriterBlockOffset);
  const auto& rb = at<wire::EndpointBlock>(base, wire::kReaderBlockOffset);
  const bool duplex = geo.kind == wire::kKindDuplex;
  ChannelInfo c;
  c.ring_capacity = geo.ring_capacity;
  c.max_frame_payload = geo.max_frame_payload;
  c.chunk_size = geo.chunk_size;
  c.writer = endpoint_peer(wb, duplex ? Role::client : Role::writer);
  c.reader = endpoint_peer(rb, duplex ? Role::server : Role::reader);
  c.writer_counters = endpoint_counters(wb);
  c.reader_counters = endpoint_counters(rb);
  if (duplex) {
    // The space in use runs from the client's released position to its committed one.
    ChannelInfo span = c;
    span.reader_counters.position = std::atomic_ref<const uint64_t>(
        *reinterpret_cast<const uint64_t*>(reinterpret_cast<const std::byte*>(&wb) + wire::kEndpointCursorOffset))
                                        .load(std::memory_order_relaxed);
    compute_occupancy(span, warnings);
    c.occupancy_bytes = span.occupancy_bytes;
    c.occupancy_percent = span.occupancy_percent;
    return c;
  }
  compute_occupancy(c, warnings);
  return c;
}

PublisherInfo read_publisher(const detail::TopicView& v, uint32_t p, const PeerInfo& peer) {
  const auto& pb = v.pub(p);
  PublisherInfo out;
  out.peer = peer;
  out.seq = pb.seq.load(std::memory_order_relaxed);
  out.messages = pb.messages.load(std::memory_order_relaxed);
  out.bytes = pb.bytes.load(std::memory_order_relaxed);
  out.no_receiver = pb.no_receiver.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < v.slot_count; ++i)
    if (v.slot(p, i).state.load(std::memory_order_relaxed) & wire::kSlotFree) ++out.free_slots;
  return out;
}

SubscriberInfo read_subscriber(const detail::TopicView& v, uint32_t s, const PeerInfo& peer,
                               std::vector<std::string>& warnings) {
  const auto& sb = v.sub(s);
  SubscriberInfo out;
  out.peer = peer;
  out.received = sb.received.load(std::memory_order_relaxed);
  out.bytes = sb.bytes.load(std::memory_order_relaxed);
  out.dropped = sb.dropped.load(std::memory_order_relaxed);
  for (uint32_t p = 0; p < v.pubs; ++p) {
    const auto& q = v.queue(p, v.queue_of(s));
    const uint64_t h = q.head.load(std::memory_order_acquire), t = q.tail.load(std::memory_order_acquire);
    // Valid queues satisfy head <= tail <= head + depth (PROTOCOL.md 14.3); clamp anything else.
    if (t < h || t - h > v.depth)
      warnings.push_back("queue (publisher " + std::to_string(p) + ", subscriber " + std::to_string(s) +
                         ") has head " + std::to_string(h) + ", tail " + std::to_string(t));
    if (t > h) out.queued += std::min<uint64_t>(t - h, v.depth);
  }
  for (uint32_t k = 0; k < v.max_held; ++k)
    if (v.held(s, k).slot.load(std::memory_order_relaxed) != 0) ++out.held;
  return out;
}

// `base` maps the whole segment (geometry validated by validate_header). Throws Error(corrupt)
// when the topic header disagrees with its counts or does not fit.
TopicInfo read_topic(std::byte* base, uint64_t segment_size, const std::string& name,
                     std::vector<std::string>& warnings) {
  const detail::TopicView v(base, segment_size, name);
  TopicInfo t;
  t.slot_size = v.slot_size;
  t.slot_count = v.slot_count;
  t.max_publishers = v.pubs;
  t.max_subscribers = v.subs;
  t.queue_depth = v.depth;
  t.max_held = v.max_held;
  t.history = v.history;
  t.work_queue = v.work_queue();
  t.lost = v.state().lost.load(std::memory_order_relaxed);
  t.members_gen = v.state().members_gen.load(std::memory_order_relaxed);
  for (uint32_t p = 0; p < v.pubs; ++p) {
    const auto& m = v.pub(p).member;
    PeerInfo peer = peer_from(Role::publisher, p, m.owner, m.start_time, m.epoch, 0);
    if (peer.state != wire::kRoleNever) t.publishers.push_back(read_publisher(v, p, peer));
  }
  for (uint32_t s = 0; s < v.subs; ++s) {
    const auto& m = v.sub(s).member;
    PeerInfo peer = peer_from(Role::subscriber, s, m.owner, m.start_time, m.epoch, m.mode.load(std::memory_order_relaxed));
    if (peer.state != wire::kRoleNever) t.subscribers.push_back(read_subscriber(v, s, peer, warnings));
  }
  return t;
}

// Fields every segment has, copied out once (the type name with a forced terminator).
void read_common(const wire::SegmentHeader& h, SegmentInfo& info) {
  info.creator = recorded(read_once(h.creator_pid), read_once(h.creator_start_time));
  info.created_unix_ns = read_once(h.created_unix_ns);
  info.type_hash = read_once(h.type_hash);
  char type_name[wire::kTypeNameSize];
  std::memcpy(type_name, h.type_name, sizeof type_name);
  type_name[sizeof type_name - 1] = '\0';
  info.type_name = type_name;
}

// Who keeps the segment alive, for messages ("writer pid 12 is alive").
std::string keeper(const SegmentInfo& info) {
  for (const PeerInfo& p : info.peers())
    if (p.holds_role()) return std::string(to_string(p.role)) + " pid " + std::to_string(p.process.pid) + " is alive";
  if (info.creator.alive) return "creator pid " + std::to_string(info.creator.pid) + " is alive";
  return "every recorded process is dead";
}

bool all_zero(const std::byte* p, size_t n) {
  return std::all_of(p, p + n, [](std::byte b) { return b == std::byte{0}; });
}

// A channel's role blocks sit in the header region, so they can be checked even before the
// segment is ready; used to keep a (hostile) not-ready segment with a live role off gc's list.
bool channel_role_alive(const std::byte* base) {
  return endpoint_peer(at<wire::EndpointBlock>(base, wire::kWriterBlockOffset), Role::writer).holds_role() ||
         endpoint_peer(at<wire::EndpointBlock>(base, wire::kReaderBlockOffset), Role::reader).holds_role();
}

class Classifier {
 public:
  Classifier(int fd, const struct stat& st, std::string_view name) : fd_(fd), st_(st) {
    p_.name = std::string(name);
    p_.file_size = static_cast<uint64_t>(st.st_size);
  }

  Probe run() {
    const uint64_t size = p_.file_size;
    if (size == 0) return unfinished(Errc::truncated, "0 bytes");
    if (size < sizeof(wire::SegmentHeader))
      return verdict(Health::foreign, Errc::truncated, std::to_string(size) + " bytes, smaller than a Flatlane header");
    const Mapping head(fd_, std::min<uint64_t>(size, wire::kHeaderRegionSize));
    if (!head) return verdict(Health::unreadable, Errc::system, std::string("mmap: ") + std::strerror(head.error()));
    const auto& h = at<wire::SegmentHeader>(head.data(), 0);
    if (size >= wire::kHeaderRegionSize && all_zero(head.data(), sizeof(wire::SegmentHeader)))
      return unfinished(Errc::not_flatlane, "header is all zero");
    if (read_once(h.magic) != wire::kMagic)
      return verdict(Health::foreign, Errc::not_flatlane, "not a Flatlane segment (bad magic)");
    if (size < wire::kHeaderRegionSize)
      return verdict(Health::invalid, Errc::truncated, std::to_string(size) + " bytes, smaller than its header region");
    return classify_header(head, h);
  }

 private:
  Probe verdict(Health health, Errc e, std::string message) {
    p_.health = health;
    p_.error = e;
    p_.message = std::move(message);
    return std::move(p_);
  }

  // An empty or all-zero object: a creator between shm_open and its header stores, or one that
  // died there. Only age tells them apart (PROTOCOL.md 10.2 rows 1 and 4).
  Probe unfinished(Errc e, const std::string& what) {
    if (is_young(st_)) return verdict(Health::initializing, e, what + ": being created");
    return verdict(Health::abandoned, e, what + ": left by a creator that died before writing its header");
  }

  Probe classify_header(const Mapping& head, const wire::SegmentHeader& h) {
    std::string why;
    SegmentGeometry geo;
    const Errc e = validate_header(h, p_.file_size, &why, &geo);
    if (e == Errc::not_flatlane || e == Errc::incompatible_version || e == Errc::layout_mismatch)
      return verdict(Health::foreign, e, why);  // another version's blocks cannot be read safely
    if (const uint32_t state = h.state.load(std::memory_order_acquire); state != wire::kStateReady) {
      const uint32_t creator = read_once(h.creator_pid);
      const std::string what = "not marked ready (state " + std::to_string(state) + ")";
      // Nobody can attach before `state` is 1 (open refuses), so only the creator can be at work.
      if (is_alive({creator, read_once(h.creator_start_time)}))
        return verdict(Health::initializing, Errc::corrupt, what + ": creator pid " + std::to_string(creator) + " is initializing it");
      if (channel_role_alive(head.data()))  // impossible for an honest peer: keep it, but say so
        return verdict(Health::initializing, Errc::corrupt, what + " yet an endpoint of it is alive");
      return verdict(Health::abandoned, Errc::corrupt, what + ": creator pid " + std::to_string(creator) + " died");
    }
    if (e != Errc::ok) return verdict(Health::invalid, e, why);
    return read_segment(head, h, geo);
  }

  Probe read_segment(const Mapping& head, const wire::SegmentHeader& h, const SegmentGeometry& geo) {
    SegmentInfo info;
    info.name = p_.name;
    info.kind = geo.kind == wire::kKindTopic ? Kind::topic : geo.kind == wire::kKindDuplex ? Kind::duplex : Kind::channel;
    info.segment_size = geo.segment_size;
    info.file_size = p_.file_size;
    read_common(h, info);
    if (info.kind != Kind::topic) {
      info.channel = read_channel(head.data(), geo, info.warnings);
    } else {
      const Mapping whole(fd_, geo.segment_size);
      if (!whole) return verdict(Health::unreadable, Errc::system, std::string("mmap: ") + std::strerror(whole.error()));
      try {
        info.topic = read_topic(whole.mutable_data(), geo.segment_size, p_.name, info.warnings);
      } catch (const Error& err) {
        std::string why = err.what();
        if (why.rfind("flatlane: ", 0) == 0) why.erase(0, 10);  // inspect() adds its own prefix
        return verdict(Health::invalid, err.code(), why);
      }
    }
    const bool is_stale = stale(info);
    p_.message = keeper(info);
    p_.health = is_stale ? Health::stale : Health::live;
    p_.info = std::move(info);
    return std::move(p_);
  }

  int fd_;
  const struct stat& st_;
  Probe p_;
};

Probe open_failure(std::string_view name, int e) {
  Probe p;
  p.name = std::string(name);
  p.health = Health::unreadable;
  if (e == ENOENT) {
    p.error = Errc::not_found;
    p.message = "no channel named " + std::string(name);
  } else {
    p.error = e == EACCES ? Errc::permission_denied : Errc::system;
    p.message = "cannot open " + shm_of(name) + ": " + std::strerror(e);
  }
  return p;
}

// Names outside [A-Za-z0-9_.-]{1,200} are never created by Flatlane and are refused here too, so a
// name can never reach outside /dev/shm/flatlane.*.
bool valid_name(std::string_view name) {
  try {
    (void)Segment::shm_name(name);
    return true;
  } catch (const Error&) {
    return false;
  }
}

Probe invalid_name(std::string_view name) {
  Probe p;
  p.name = std::string(name);
  p.health = Health::foreign;
  p.error = Errc::invalid_argument;
  p.message = "not a valid channel name (1..200 characters of [A-Za-z0-9_.-])";
  return p;
}

Probe probe_fd(int fd, std::string_view name) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    Probe p = open_failure(name, errno);
    p.error = Errc::system;
    return p;
  }
  return Classifier(fd, st, name).run();
}

// flock with a bounded wait: the runtime holds it only while classifying (microseconds), and a
// process that holds it forever must not hang the tool.
bool lock_exclusive(int fd) {
  for (int i = 0; i < 200; ++i) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

enum class Outcome { removed, kept, missing };
struct Reclaimed {
  Outcome outcome = Outcome::missing;
  Probe probe;
};

bool removable(Health h) { return h == Health::stale || h == Health::abandoned; }

void unlink_or_throw(std::string_view name) {
  if (::shm_unlink(shm_of(name).c_str()) != 0 && errno != ENOENT)
    throw Error(errno == EACCES || errno == EPERM ? Errc::permission_denied : Errc::system,
                "flatlane: cannot remove " + shm_of(name) + ": " + std::strerror(errno));
}

// The runtime's reclaim_if_stale (segment.cpp) with a policy: lock the object, make sure the name
// still points at it, classify it under the lock, and unlink it if stale/abandoned (or forced).
Reclaimed reclaim(std::string_view name, bool force, bool dry_run) {
  Reclaimed r;
  Fd f;
  f.fd = ::shm_open(shm_of(name).c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (f.fd < 0) {
    const int e = errno;
    if (e == ENOENT) return r;
    r.probe = open_failure(name, e);
    r.outcome = force ? Outcome::removed : Outcome::kept;  // unreadable: only a forced removal tries
    if (force && !dry_run) unlink_or_throw(name);
    return r;
  }
  if (!lock_exclusive(f.fd)) {
    r.probe.name = std::string(name);
    r.probe.error = Errc::busy;
    r.probe.message = "locked by another process (being reclaimed)";
    r.outcome = Outcome::kept;
    return r;
  }
  struct stat mine{}, now{};
  if (::fstat(f.fd, &mine) != 0 || ::stat(path_of(name).c_str(), &now) != 0 || now.st_ino != mine.st_ino)
    return r;  // gone or replaced by a new segment meanwhile: not the object we locked
  r.probe = Classifier(f.fd, mine, name).run();
  r.outcome = force || removable(r.probe.health) ? Outcome::removed : Outcome::kept;
  if (r.outcome == Outcome::removed && !dry_run) unlink_or_throw(name);
  return r;
}

}  // namespace

bool PeerInfo::holds_role() const noexcept {
  return (state == wire::kRoleAttached || state == wire::kRoleClaiming) && process.alive;
}

std::vector<PeerInfo> SegmentInfo::peers() const {
  std::vector<PeerInfo> out;
  if (channel) {
    for (const PeerInfo* p : {&channel->writer, &channel->reader})
      if (p->state != wire::kRoleNever) out.push_back(*p);
  }
  if (topic) {
    for (const auto& p : topic->publishers) out.push_back(p.peer);
    for (const auto& s : topic->subscribers) out.push_back(s.peer);
  }
  return out;
}

std::vector<std::string> list_segments() {
  std::vector<std::string> names;
  DIR* d = ::opendir(kShmDir);
  if (!d) throw Error(Errc::system, std::string("flatlane: cannot list ") + kShmDir + ": " + std::strerror(errno));
  while (const dirent* e = ::readdir(d)) {
    const std::string_view entry(e->d_name);
    if (entry.size() <= kPrefix.size() || entry.substr(0, kPrefix.size()) != kPrefix) continue;
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;  // shm objects are regular files
    names.emplace_back(entry.substr(kPrefix.size()));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Probe probe(std::string_view name) noexcept {
  try {
    if (!valid_name(name)) return invalid_name(name);
    Fd f;
    f.fd = ::shm_open(shm_of(name).c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (f.fd < 0) return open_failure(name, errno);
    return probe_fd(f.fd, name);
  } catch (const std::exception& e) {  // allocation failure: still a row, never a crash
    Probe p;
    p.name = std::string(name);
    p.error = Errc::system;
    p.message = e.what();
    return p;
  }
}

SegmentInfo inspect(std::string_view name) {
  Probe p = probe(name);
  if (p.info) return std::move(*p.info);
  if (p.error == Errc::not_found) throw Error(p.error, "flatlane: " + p.message);
  throw Error(p.error, "flatlane: " + std::string(name) + ": " + p.message);
}

bool stale(const SegmentInfo& info) noexcept {
  if (info.creator.alive) return false;
  const auto holds = [](const PeerInfo& p) { return p.holds_role(); };
  if (info.channel && (holds(info.channel->writer) || holds(info.channel->reader))) return false;
  if (info.topic) {
    for (const auto& p : info.topic->publishers)
      if (holds(p.peer)) return false;
    for (const auto& s : info.topic->subscribers)
      if (holds(s.peer)) return false;
  }
  return true;
}

void remove(std::string_view name, bool force) {
  (void)Segment::shm_name(name);  // throws invalid_argument for a name Flatlane never creates
  const Reclaimed r = reclaim(name, force, false);
  if (r.outcome == Outcome::removed) return;
  if (r.outcome == Outcome::missing) throw Error(Errc::not_found, "flatlane: no channel named " + std::string(name));
  const Probe& p = r.probe;
  switch (p.health) {
    case Health::live:
      throw Error(Errc::busy, "flatlane: " + std::string(name) + " is in use: " + p.message);
    case Health::initializing:
      throw Error(Errc::busy, "flatlane: " + std::string(name) + " is being created: " + p.message);
    default:
      throw Error(p.error == Errc::ok ? Errc::busy : p.error, "flatlane: " + std::string(name) + ": " + p.message);
  }
}

std::vector<std::string> gc(const GcOptions& options) {
  std::vector<std::string> removed;
  for (const std::string& name : list_segments()) {
    if (name.compare(0, options.prefix.size(), options.prefix) != 0 || !valid_name(name)) continue;
    if (reclaim(name, false, options.dry_run).outcome == Outcome::removed) removed.push_back(name);
  }
  return removed;
}

const char* to_string(Kind k) noexcept {
  return k == Kind::topic ? "topic" : k == Kind::duplex ? "duplex" : "channel";
}

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::writer: return "writer";
    case Role::reader: return "reader";
    case Role::publisher: return "publisher";
    case Role::subscriber: return "subscriber";
    case Role::client: return "client";
    case Role::server: return "server";
  }
  return "unknown";
}

const char* to_string(Health h) noexcept {
  switch (h) {
    case Health::live: return "live";
    case Health::stale: return "stale";
    case Health::initializing: return "initializing";
    case Health::abandoned: return "abandoned";
    case Health::foreign: return "foreign";
    case Health::invalid: return "invalid";
    case Health::unreadable: return "unreadable";
  }
  return "unknown";
}

const char* role_state_name(uint32_t state) noexcept {
  switch (state) {
    case wire::kRoleNever: return "never";
    case wire::kRoleAttached: return "attached";
    case wire::kRoleClosed: return "closed";
    case wire::kRoleClaiming: return "claiming";
    default: return "unknown";
  }
}

const char* subscriber_mode_name(uint32_t mode) noexcept {
  switch (mode) {
    case 0: return "drop_oldest";
    case 1: return "block_publisher";
    default: return "unknown";
  }
}

}  // namespace flatlane::inspect
