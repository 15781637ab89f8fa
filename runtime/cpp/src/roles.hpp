// Role ownership of an endpoint block (PROTOCOL.md 9.4), shared by every kind whose roles are
// one-per-segment: the one-to-one channel (writer, reader) and the duplex channel (client, server).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "flatlane/error.hpp"
#include "flatlane/layout.hpp"
#include "flatlane/liveness.hpp"
#include "flatlane/channel.hpp"
#include "flatlane/segment.hpp"

namespace flatlane::detail {

// Claims the writer or reader role with one CAS on the owner word (pid | state), so two
// processes racing for a role left by a dead owner cannot both win. A role held by a live
// process gives `busy`; one left by a dead or closed owner is taken over and its epoch bumped.
inline uint32_t claim_role(wire::EndpointBlock& b, uint64_t& owner, const char* role, std::string_view name) {
  ProcessIdentity self = self_identity();
  for (;;) {
    uint64_t cur = b.owner.load(std::memory_order_acquire);
    const uint32_t st = wire::owner_state(cur);
    const uint32_t pid = wire::owner_pid(cur);
    // A claimer has not written its start time yet: judge it by pid alone.
    const uint64_t start = st == wire::kRoleClaiming ? 0 : b.start_time.load(std::memory_order_relaxed);
    if ((st == wire::kRoleAttached || st == wire::kRoleClaiming) && is_alive({pid, start}))
      throw Error(Errc::busy, "flatlane: channel '" + std::string(name) + "' already has a live " + role + " (pid " +
                                  std::to_string(pid) + ")");
    if (b.owner.compare_exchange_strong(cur, wire::make_owner(self.pid, wire::kRoleClaiming),
                                        std::memory_order_acq_rel))
      break;
  }
  b.start_time.store(self.start_time, std::memory_order_relaxed);
  uint32_t epoch = b.epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  owner = wire::make_owner(self.pid, wire::kRoleAttached);
  b.owner.store(owner, std::memory_order_release);
  return epoch;
}

// Moves our role to `state`, but only while the owner word is still the one we wrote: after our
// close() another endpoint (even in this process) may have claimed the role, and it is not ours
// to change any more.
inline void set_role_state(wire::EndpointBlock& b, uint64_t& owner, uint32_t state) noexcept {
  const uint64_t want = wire::make_owner(wire::owner_pid(owner), state);
  if (owner == want) return;
  uint64_t expected = owner;
  if (b.owner.compare_exchange_strong(expected, want, std::memory_order_seq_cst)) owner = want;
}

// What a waiter reports about its peer: ok while it is alive or has never attached.
inline Errc role_error(const wire::EndpointBlock& b) noexcept {
  const uint64_t o = b.owner.load(std::memory_order_acquire);
  switch (wire::owner_state(o)) {
    case wire::kRoleAttached:
      return is_alive({wire::owner_pid(o), b.start_time.load(std::memory_order_relaxed)}) ? Errc::ok : Errc::peer_dead;
    case wire::kRoleClosed: return Errc::peer_closed;
    default: return Errc::ok;  // never attached, or a new peer is claiming the role right now
  }
}

// The cheap part of role_error (no /proc read): used where a syscall would cost too much.
inline Errc role_closed(const wire::EndpointBlock& b) noexcept {
  return wire::owner_state(b.owner.load(std::memory_order_acquire)) == wire::kRoleClosed ? Errc::peer_closed
                                                                                          : Errc::ok;
}

inline bool role_live(const wire::EndpointBlock& b) noexcept {
  return wire::owner_state(b.owner.load(std::memory_order_acquire)) == wire::kRoleAttached &&
         role_error(b) == Errc::ok;
}

// Marks our role closed and removes the name when the peer has come and gone: a segment whose
// peer never attached is kept so queued messages reach a late reader (reclaimed later when stale).
inline void detach(Segment& seg, wire::EndpointBlock* me, uint64_t& owner, wire::EndpointBlock* peer, bool unlink) {
  set_role_state(*me, owner, wire::kRoleClosed);
  if (!unlink) return;
  const uint32_t ps = wire::owner_state(peer->owner.load(std::memory_order_seq_cst));
  if (ps == wire::kRoleClosed || (ps == wire::kRoleAttached && !role_live(*peer))) seg.unlink_if_same();
}

// Opens a segment of one kind by `mode` (OpenMode, channel.hpp); create_or_open retries both
// ways, since another process may create or remove the name between our attempts. `open` must
// refuse a segment of another kind.
template <class Open>
Segment open_or_create_segment(std::string_view name, OpenMode mode, const SegmentConfig& cfg, Open&& open) {
  switch (mode) {
    case OpenMode::create: return Segment::create(name, cfg);
    case OpenMode::open: return open(name, cfg.type);
    case OpenMode::create_or_open: break;
  }
  for (int attempt = 0;; ++attempt) {
    try {
      return open(name, cfg.type);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found || attempt > 3) throw;
    }
    try {
      return Segment::create(name, cfg);
    } catch (const Error& e) {
      if (e.code() != Errc::already_exists || attempt > 3) throw;  // lost a creation race: open it
    }
  }
}

}  // namespace flatlane::detail
