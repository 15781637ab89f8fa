// Read-only inspection of Flatlane segments from outside the processes that use them: what the
// `flatlane` command-line tool (docs/CLI.md) shows, and what a monitoring agent can poll.
//
//   for (auto& name : inspect::list_segments()) {
//     inspect::Probe p = inspect::probe(name);          // never throws: a row with a health
//     if (p.info) std::printf("%s %s\n", name.c_str(), inspect::to_string(p.health));
//   }
//   inspect::SegmentInfo i = inspect::inspect("camera.frames");  // throws Error if not a valid segment
//
// Inspection opens the object O_RDONLY and maps it PROT_READ: it never attaches, never claims a
// role, never writes a byte, and never changes what the endpoints see. Every value it reads from
// shared memory is untrusted: geometry is validated before anything is indexed with it, and
// counters are clamped where they feed a derived value (occupancy, queued). Counters are read
// with relaxed loads while the endpoints run, so one snapshot is not atomic across fields.
//
// remove() and gc() are the only calls that change anything: they unlink names, with the same
// flock and inode re-check as the runtime's stale reclamation (docs/PROTOCOL.md 10.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flatlane/error.hpp"

namespace flatlane::inspect {

enum class Kind : uint8_t { channel, topic, duplex };
// Duplex channels (kind 3) report their client as the writer block and their server as the reader
// block, with roles client/server; their occupancy is committed - released by the client.
enum class Role : uint8_t { writer, reader, publisher, subscriber, client, server };

// A recorded process (creator, or the owner of an endpoint/member block).
struct ProcessInfo {
  uint32_t pid = 0;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22, 0 = unknown
  bool alive = false;       // liveness.hpp is_alive() at the time of the snapshot
};

// One endpoint block (channels) or member block (topics) that was ever claimed.
struct PeerInfo {
  Role role = Role::writer;
  uint32_t index = 0;       // block index for topics (publisher/subscriber number); 0 for channels
  ProcessInfo process;      // last recorded owner; alive says whether that process still runs
  uint32_t state = 0;       // wire::RoleState: 0 never, 1 attached, 2 closed, 3 claiming; others as read
  uint32_t epoch = 0;       // incremented on every claim
  uint32_t mode = 0;        // subscribers: 0 drop_oldest, 1 block_publisher (others as read)
  // Attached or claiming by a live process: the block is in use.
  bool holds_role() const noexcept;
};

struct ChannelEndpointCounters {
  uint64_t position = 0;  // writer: W, bytes committed; reader: R, bytes released
  uint64_t count = 0;     // writer: frames committed (last seq); reader: frames released
  uint64_t messages = 0;  // writer: whole messages committed; reader: messages via read_message
  uint64_t bytes = 0;     // writer: frame payload bytes committed; reader: bytes via read_message
};

struct ChannelInfo {
  uint64_t ring_capacity = 0;
  uint32_t max_frame_payload = 0;
  uint32_t chunk_size = 0;
  PeerInfo writer, reader;  // always present (state 0 = never claimed)
  ChannelEndpointCounters writer_counters, reader_counters;
  uint64_t occupancy_bytes = 0;    // W - R, clamped to [0, ring_capacity]
  double occupancy_percent = 0.0;  // of ring_capacity
};

struct PublisherInfo {
  PeerInfo peer;
  uint64_t seq = 0;          // last published sequence number
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t no_receiver = 0;  // published while no subscriber was attached
  uint32_t free_slots = 0;   // slots of its pool with the FREE bit
};

struct SubscriberInfo {
  PeerInfo peer;
  uint64_t received = 0;
  uint64_t bytes = 0;
  uint64_t dropped = 0;
  uint64_t queued = 0;  // sum over publishers of tail - head, each clamped to [0, queue_depth]
                        // (work queue: the shared queues, the same for every subscriber)
  uint32_t held = 0;    // non-empty held-table entries
};

struct TopicInfo {
  uint32_t slot_size = 0, slot_count = 0, max_publishers = 0, max_subscribers = 0;
  uint32_t queue_depth = 0, max_held = 0, history = 0;
  bool work_queue = false;  // push/pull (PROTOCOL.md 14.6)
  uint64_t lost = 0;        // work queue: messages that died with their subscriber
  uint64_t members_gen = 0;
  std::vector<PublisherInfo> publishers;    // blocks ever claimed (state != never), by index
  std::vector<SubscriberInfo> subscribers;  // same
};

struct SegmentInfo {
  std::string name;        // without the "flatlane." prefix
  Kind kind = Kind::channel;
  std::string type_name;   // empty = untyped
  uint64_t type_hash = 0;
  uint64_t segment_size = 0;  // from the validated header
  uint64_t file_size = 0;     // from fstat (may be larger)
  ProcessInfo creator;
  uint64_t created_unix_ns = 0;
  std::optional<ChannelInfo> channel;  // kind == channel or duplex
  std::optional<TopicInfo> topic;      // kind == topic
  // Values that violate the protocol but do not stop inspection (e.g. W behind R).
  std::vector<std::string> warnings;

  std::vector<PeerInfo> peers() const;  // every claimed block, channel or topic
};

// What a name in /dev/shm is, as far as `ls`, `rm` and `gc` are concerned.
enum class Health : uint8_t {
  live,          // valid segment; the creator or a block owner (attached/claiming) is alive
  stale,         // valid segment; every recorded process is dead: gc removes it
  initializing,  // being created: 0-byte or all-zero header younger than 2 s, or not ready and the creator is alive
  abandoned,     // 0-byte or all-zero older than 2 s, or never marked ready and its creator is dead: gc removes it
  foreign,       // not a Flatlane segment, or another protocol version or layout: never removed by gc
  invalid,       // a Flatlane v1 header that fails validation (corrupt, truncated): never removed by gc
  unreadable,    // cannot be opened or mapped (permissions, vanished meanwhile)
};

struct Probe {
  std::string name;
  Health health = Health::unreadable;
  Errc error = Errc::ok;  // why `info` is absent (ok when it is present)
  std::string message;    // human explanation of `error` or of the health
  uint64_t file_size = 0;
  std::optional<SegmentInfo> info;
};

// Names of the /dev/shm/flatlane.* objects (without the prefix), sorted.
std::vector<std::string> list_segments();

// Inspects one name. Throws Error: not_found ("no channel named X"), not_flatlane, truncated,
// incompatible_version, layout_mismatch, corrupt (also: not initialised yet), permission_denied,
// invalid_argument (bad name), system.
SegmentInfo inspect(std::string_view name);

// Like inspect, but reports every outcome in the result instead of throwing.
Probe probe(std::string_view name) noexcept;

// True when no recorded process is alive: neither the creator nor the owner of any block that is
// attached or claiming. (Closed or never-claimed blocks do not keep a segment alive.)
bool stale(const SegmentInfo& info) noexcept;

// Unlinks the name. Without `force`, only a stale or abandoned segment is removed; anything else
// (live, being created, foreign, invalid) throws Error (busy, not_flatlane, corrupt, ...) saying
// why. Throws not_found if there is no such name.
void remove(std::string_view name, bool force = false);

struct GcOptions {
  bool dry_run = false;  // report what would be removed, remove nothing
  std::string prefix;    // only names starting with this (empty: all)
};

// Unlinks every stale or abandoned Flatlane segment; returns the names removed (or that would be).
// Never removes live, initializing, foreign, invalid or unreadable objects.
std::vector<std::string> gc(const GcOptions& options = {});

const char* to_string(Kind k) noexcept;
const char* to_string(Role r) noexcept;
const char* to_string(Health h) noexcept;
const char* role_state_name(uint32_t state) noexcept;  // "never", "attached", "closed", "claiming", "unknown"
const char* subscriber_mode_name(uint32_t mode) noexcept;  // "drop_oldest", "block_publisher", "unknown"

}  // namespace flatlane::inspect
