// Publish/subscribe topics (topic.hpp, docs/PROTOCOL.md section 14).
//
// Ownership of shared words:
//   slot state      CAS by everybody (publisher allocates, holders release, recovery)
//   slot contents   the owning publisher, between allocation and publication
//   free stack      pushed by whoever releases a slot last, emptied (exchange) by its publisher
//   queue tail      its publisher only; queue head: CAS by the subscriber and by the publisher
//                   dropping the oldest entry for a drop_oldest subscriber
//   held table      its subscriber only (read by whoever cleans up after it died)
//   history         its publisher only (read by subscribers attaching)
#include "flatlane/topic.hpp"

#include <algorithm>
#include <cstring>
#include <sys/mman.h>

#include "flatlane/liveness.hpp"
#include "topic_members.hpp"
#include "topic_view.hpp"
#include "wait_until.hpp"

namespace flatlane {

using std::chrono::nanoseconds;

namespace detail {

bool topic_has_live_members(int fd, uint64_t size, std::string* who) {
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return true;
  bool live = false;
  try {
    TopicView v(static_cast<std::byte*>(m), size, "?");
    auto check = [&](const wire::MemberLine& ml, const char* role) {
      const uint64_t o = ml.owner.load(std::memory_order_acquire);
      const uint32_t st = wire::owner_state(o);
      if (st != wire::kRoleAttached && st != wire::kRoleClaiming) return;
      const uint64_t start = st == wire::kRoleClaiming ? 0 : ml.start_time.load(std::memory_order_relaxed);
      if (is_alive({wire::owner_pid(o), start})) {
        live = true;
        *who = std::string(role) + " pid " + std::to_string(wire::owner_pid(o));
      }
    };
    for (uint32_t p = 0; p < v.pubs && !live; ++p) check(v.pub(p).member, "publisher");
    for (uint32_t s = 0; s < v.subs && !live; ++s) check(v.sub(s).member, "subscriber");
  } catch (const Error&) {
    live = true;  // not a topic we understand: leave it alone
    *who = "a topic with an invalid header";
  }
  ::munmap(m, size);
  return live;
}

}  // namespace detail

namespace {

using detail::TopicView;

enum class Claim { fresh, took_dead };

bool member_alive(const wire::MemberLine& m, uint64_t o) noexcept {
  const uint32_t st = wire::owner_state(o);
  const uint64_t start = st == wire::kRoleClaiming ? 0 : m.start_time.load(std::memory_order_relaxed);
  return is_alive({wire::owner_pid(o), start});
}

// Claims a free block, or one whose owner died (the caller then cleans up after it). Returns
// false if the block is in use by a live process.
bool claim_member(wire::MemberLine& m, Claim& how) noexcept {
  const ProcessIdentity self = self_identity();
  for (;;) {
    uint64_t cur = m.owner.load(std::memory_order_acquire);
    const uint32_t st = wire::owner_state(cur);
    if (st == wire::kRoleAttached || st == wire::kRoleClaiming) {
      if (member_alive(m, cur)) return false;
      how = Claim::took_dead;
    } else {
      how = Claim::fresh;
    }
    if (m.owner.compare_exchange_strong(cur, wire::make_owner(self.pid, wire::kRoleClaiming), std::memory_order_acq_rel))
      return true;
  }
}

uint32_t attach_member(wire::MemberLine& m, uint64_t& owner, uint32_t mode) noexcept {
  const ProcessIdentity self = self_identity();
  m.start_time.store(self.start_time, std::memory_order_relaxed);
  m.mode.store(mode, std::memory_order_relaxed);
  const uint32_t epoch = m.epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  owner = wire::make_owner(self.pid, wire::kRoleAttached);
  m.owner.store(owner, std::memory_order_seq_cst);
  return epoch;
}

void set_member_state(wire::MemberLine& m, uint64_t& owner, uint32_t state) noexcept {
  uint64_t expected = owner;
  const uint64_t want = wire::make_owner(wire::owner_pid(owner), state);
  if (m.owner.compare_exchange_strong(expected, want, std::memory_order_seq_cst)) owner = want;
}

// Cleans up after subscriber s, whose block we have claimed (its previous owner died or left).
// A work queue is shared: its entries stay for the other subscribers, and what the departed one
// held is lost, which is counted (PROTOCOL.md 14.6).
void clean_subscriber(const TopicView& v, uint32_t s) noexcept {
  if (!v.work_queue()) v.drain_queues(s);
  const uint32_t held = v.release_held(s);
  if (v.work_queue() && held != 0) v.state().lost.fetch_add(held, std::memory_order_relaxed);
}

// Removes the name when no live member is left.
void unlink_if_unused(const Segment& seg, const TopicView& v) noexcept {
  auto busy = [&](const wire::MemberLine& m) {
    const uint64_t o = m.owner.load(std::memory_order_seq_cst);
    const uint32_t st = wire::owner_state(o);
    return (st == wire::kRoleAttached || st == wire::kRoleClaiming) && member_alive(m, o);
  };
  for (uint32_t p = 0; p < v.pubs; ++p)
    if (busy(v.pub(p).member)) return;
  for (uint32_t s = 0; s < v.subs; ++s)
    if (busy(v.sub(s).member)) return;
  seg.unlink_if_same();
}

uint32_t round_pow2(uint32_t v) {
  uint32_t p = 2;
  while (p < v && p < (1u << 16)) p <<= 1;
  return p;
}

Segment open_or_create_topic(std::string_view name, const TopicOptions& o) {
  const TopicConfig& c = o.topic;
  auto create = [&] {
    const uint32_t slot_size = static_cast<uint32_t>((uint64_t{c.slot_size} + 63) & ~uint64_t{63});
    const uint32_t depth = round_pow2(c.queue_depth);
    auto arg = [&](bool ok, const std::string& what) {
      if (!ok) throw Error(Errc::invalid_argument, "flatlane: topic '" + std::string(name) + "': " + what);
    };
    arg(slot_size >= 64 && slot_size <= (1u << 30), "slot_size must be in [1, 1 GiB]");
    arg(c.slot_count >= 1 && c.slot_count <= wire::kMaxTopicSlots, "slot_count must be in [1, 2^24]");
    arg(c.max_publishers >= 1 && c.max_publishers <= wire::kMaxTopicPublishers, "max_publishers must be in [1, 64]");
    arg(c.max_subscribers >= 1 && c.max_subscribers <= wire::kMaxTopicSubscribers,
        "max_subscribers must be in [1, 1024]");
    arg(c.max_held >= 1 && c.max_held <= wire::kMaxTopicHeld, "max_held must be in [1, 1024]");
    arg(c.history <= wire::kMaxTopicHistory && c.history < c.slot_count, "history must be below slot_count");
    arg(c.distribution != Distribution::work_queue || c.history == 0, "a work queue keeps no history");
    const auto l = detail::compute_layout(slot_size, c.slot_count, c.max_publishers, c.max_subscribers, depth,
                                          c.max_held, c.history);
    SegmentConfig sc;
    sc.kind = wire::kKindTopic;
    sc.ring_capacity = (l.end - wire::kHeaderRegionSize + 4095) & ~uint64_t{4095};
    sc.max_frame_payload = slot_size;
    sc.chunk_size = slot_size;
    sc.mode = c.mode;
    sc.type = c.type;
    return Segment::create(name, sc, [&](Segment& s) {
      auto& h = *reinterpret_cast<wire::TopicHeader*>(s.base() + wire::kTopicHeaderOffset);
      h.slot_size = slot_size;
      h.slot_count = c.slot_count;
      h.max_publishers = c.max_publishers;
      h.max_subscribers = c.max_subscribers;
      h.queue_depth = depth;
      h.max_held = c.max_held;
      h.history = c.history;
      h.distribution = static_cast<uint32_t>(c.distribution);
      h.publishers_offset = l.publishers_offset;
      h.subscribers_offset = l.subscribers_offset;
      h.queues_offset = l.queues_offset;
      h.history_offset = l.history_offset;
      h.slots_offset = l.slots_offset;
      h.publisher_stride = l.publisher_stride;
      h.subscriber_stride = l.subscriber_stride;
      h.queue_stride = l.queue_stride;
      h.history_stride = l.history_stride;
      h.slot_stride = l.slot_stride;
      for (uint64_t i = 0; i < uint64_t{c.max_publishers} * c.slot_count; ++i) {
        auto& sl = *reinterpret_cast<wire::SlotHeader*>(s.base() + l.slots_offset + i * l.slot_stride);
        sl.state.store(wire::kSlotFree, std::memory_order_relaxed);
      }
    });
  };
  auto open = [&] {
    Segment s = Segment::open(name, c.type);
    if (s.kind() != wire::kKindTopic)
      throw Error(Errc::invalid_argument, "flatlane: '" + std::string(name) +
                                              "' is a one-to-one channel, not a publish/subscribe topic");
    return s;
  };
  switch (o.mode) {
    case OpenMode::create: return create();
    case OpenMode::open: return open();
    case OpenMode::create_or_open: break;
  }
  for (int attempt = 0;; ++attempt) {
    try {
      return open();
    } catch (const Error& e) {
      if (e.code() != Errc::not_found || attempt > 3) throw;
    }
    try {
      return create();
    } catch (const Error& e) {
      if (e.code() != Errc::already_exists || attempt > 3) throw;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sample

void Sample::release() noexcept {
  if (sub_) std::exchange(sub_, nullptr)->release(*this);
}

// ---------------------------------------------------------------------------------------------
// Publisher

TopicPublisher::TopicPublisher(std::string_view name, const TopicOptions& o)
    : seg_(open_or_create_topic(name, o)),
      wait_(o.wait),
      block_timeout_(o.block_timeout),
      unlink_on_close_(o.unlink_on_close) {
  v_ = new TopicView(seg_.base(), seg_.size(), std::string(name));
  free_.reserve(v_->slot_count);
  members_.reserve(v_->subs);
  Claim how{};
  bool found = false;
  for (uint32_t p = 0; p < v_->pubs && !found; ++p) {
    if (claim_member(v_->pub(p).member, how)) {
      me_ = p;
      found = true;
    }
  }
  if (!found) {
    const uint32_t pubs = v_->pubs;
    delete v_;
    throw Error(Errc::busy, "flatlane: topic '" + std::string(name) + "' already has " + std::to_string(pubs) +
                                " live publishers, its configured maximum");
  }
  recover_pool();
  auto& pb = v_->pub(me_);
  seq_ = pb.seq.load(std::memory_order_relaxed);
  messages_ = pb.messages.load(std::memory_order_relaxed);
  bytes_ = pb.bytes.load(std::memory_order_relaxed);
  no_receiver_ = pb.no_receiver.load(std::memory_order_relaxed);
  pb.pool_event.waiters.store(0, std::memory_order_relaxed);
  epoch_ = attach_member(pb.member, owner_, 0);
}

TopicPublisher::~TopicPublisher() {
  close();
  delete v_;
}

// Rebuilds this block's free list: whatever a previous publisher of this block left (its private
// free list, a slot it was filling) is free again. Slots still referenced stay as they are.
void TopicPublisher::recover_pool() noexcept {
  auto& pb = v_->pub(me_);
  if (const uint32_t in = pb.inflight_slot.load(std::memory_order_acquire); in != 0 && in <= v_->slot_count) {
    // The previous publisher died while handing out slot in-1: drop the references it counted
    // but never handed out. `remaining` was stored before the announced action; if the action
    // did not happen, its reference is not out either.
    uint32_t undelivered = pb.inflight_remaining.load(std::memory_order_relaxed);
    const uint32_t action = pb.inflight_action.load(std::memory_order_relaxed);
    if (action == 1) {
      const uint32_t s = pb.inflight_sub.load(std::memory_order_relaxed);
      if (s < v_->subs && v_->queue(me_, s).tail.load(std::memory_order_acquire) ==
                              pb.inflight_tail.load(std::memory_order_relaxed))
        ++undelivered;
    } else if (action == 2) {
      const uint64_t seq = v_->slot(me_, in - 1).seq.load(std::memory_order_relaxed);
      auto& e = v_->hist(me_, static_cast<uint32_t>(seq % std::max<uint32_t>(v_->history, 1)));
      if (v_->history == 0 || e.seq.load(std::memory_order_acquire) != seq || e.slot.load(std::memory_order_relaxed) != in)
        ++undelivered;
    }
    for (uint32_t k = 0; k < undelivered; ++k)
      if (!v_->unref(me_, in - 1)) break;
    pb.inflight_slot.store(0, std::memory_order_relaxed);
  }
  std::vector<bool> listed(v_->slot_count, false);
  free_.clear();
  uint64_t h = v_->pub(me_).free_head.exchange(0, std::memory_order_acquire);
  for (uint32_t n = 0; h != 0 && n < v_->slot_count; ++n) {
    const uint32_t i = static_cast<uint32_t>(h - 1);
    if (i >= v_->slot_count || listed[i]) break;  // a corrupt or cyclic stack: the scan below covers the rest
    auto& sl = v_->slot(me_, i);
    h = sl.next.load(std::memory_order_relaxed);
    uint32_t st = wire::kSlotFree | wire::kSlotOnStack;
    if (sl.state.compare_exchange_strong(st, wire::kSlotFree, std::memory_order_acq_rel)) {
      listed[i] = true;
      free_.push_back(i);
    }
  }
  for (uint32_t i = 0; i < v_->slot_count; ++i) {
    if (listed[i]) continue;
    auto& st = v_->slot(me_, i).state;
    uint32_t cur = st.load(std::memory_order_acquire);
    // Free but on nobody's list (the dead publisher's private list), or allocated and never
    // published (its loan): ours. On the stack: pushed after our exchange; taken later.
    if (cur == wire::kSlotFree || (cur == 0 && st.compare_exchange_strong(cur, wire::kSlotFree))) free_.push_back(i);
  }
}

bool TopicPublisher::pop_free(uint32_t& slot) noexcept {
  // A plain load first: a publisher waiting for slots calls this in its spin loop, and an
  // exchange on every turn would take the line away from the subscriber pushing the next free
  // slot onto it.
  if (free_.empty() && v_->pub(me_).free_head.load(std::memory_order_relaxed) != 0) {
    uint64_t h = v_->pub(me_).free_head.exchange(0, std::memory_order_acquire);
    for (uint32_t n = 0; h != 0 && n < v_->slot_count; ++n) {
      const uint32_t i = static_cast<uint32_t>(h - 1);
      if (i >= v_->slot_count) break;
      auto& sl = v_->slot(me_, i);
      h = sl.next.load(std::memory_order_relaxed);
      uint32_t st = wire::kSlotFree | wire::kSlotOnStack;
      if (sl.state.compare_exchange_strong(st, wire::kSlotFree, std::memory_order_acq_rel)) free_.push_back(i);
    }
  }
  while (!free_.empty()) {
    const uint32_t i = free_.back();
    free_.pop_back();
    uint32_t st = wire::kSlotFree;
    if (v_->slot(me_, i).state.compare_exchange_strong(st, 0, std::memory_order_acquire)) {
      slot = i;
      return true;
    }
  }
  return false;
}

void TopicPublisher::refresh_members() noexcept {
  const uint64_t gen = v_->state().members_gen.load(std::memory_order_acquire);
  if (gen == members_gen_) return;
  members_gen_ = gen;
  members_.clear();
  for (uint32_t s = 0; s < v_->subs; ++s) {
    if (wire::owner_state(v_->sub(s).member.owner.load(std::memory_order_acquire)) == wire::kRoleAttached)
      members_.push_back(s);
  }
}

// Frees slots when the pool is empty: reclaims dead subscribers, empties the queues of departed
// ones, and drops the oldest queued message of each drop_oldest subscriber. True if it did any.
bool TopicPublisher::reap_dead_subscribers() noexcept {
  bool any = false;
  for (uint32_t s = 0; s < v_->subs; ++s) {
    auto& sb = v_->sub(s);
    const uint64_t o = sb.member.owner.load(std::memory_order_acquire);
    const uint32_t st = wire::owner_state(o);
    if ((st != wire::kRoleAttached && st != wire::kRoleClaiming) || member_alive(sb.member, o)) continue;
    Claim how{};
    if (claim_member(sb.member, how)) {  // still dead: clean up and free the block
      clean_subscriber(*v_, s);
      uint64_t mine = sb.member.owner.load(std::memory_order_relaxed);
      set_member_state(sb.member, mine, wire::kRoleClosed);
      v_->state().members_gen.fetch_add(1, std::memory_order_seq_cst);
      any = true;
    }
  }
  return any;
}

bool TopicPublisher::reclaim_for_pool() noexcept {
  bool any = false;
  const auto now = Clock::now();
  if (now >= next_poll_check_) {
    next_poll_check_ = now + wait_.liveness_interval;
    any = reap_dead_subscribers();
  }
  if (v_->work_queue()) return any;  // queued work is never dropped to free a slot
  for (uint32_t s = 0; s < v_->subs; ++s) {
    auto& sb = v_->sub(s);
    const uint32_t st = wire::owner_state(sb.member.owner.load(std::memory_order_acquire));
    const bool gone = st != wire::kRoleAttached && st != wire::kRoleClaiming;
    const bool drops = st == wire::kRoleAttached &&
                       sb.member.mode.load(std::memory_order_relaxed) == static_cast<uint32_t>(SubscriberMode::drop_oldest);
    // Decided before the queue is read: a publisher spinning here for a slot would otherwise
    // read the head a live blocking subscriber advances on every take, pulling the line away.
    if (!gone && !drops) continue;
    auto& q = v_->queue(me_, s);
    uint64_t h = q.head.load(std::memory_order_acquire);
    const uint64_t t = q.tail.load(std::memory_order_relaxed);
    while (h < t) {
      const uint32_t idx = v_->cell(me_, s, h).load(std::memory_order_relaxed);
      if (q.head.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel)) {
        if (idx != 0) v_->unref(me_, idx - 1);
        if (drops) sb.dropped.fetch_add(1, std::memory_order_relaxed);
        any = true;
        ++h;
        if (drops) break;  // one message per subscriber and round: the oldest
      }
    }
  }
  return any;
}

uint32_t TopicPublisher::max_message() const noexcept { return v_->slot_size; }

Result<std::span<std::byte>> TopicPublisher::loan(size_t n, nanoseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (n > v_->slot_size) return Errc::message_too_large;
  if (loaned_) discard();
  uint32_t slot = 0;
  if (!pop_free(slot)) {
    auto ready = [&] { return pop_free(slot) || (reclaim_for_pool() && pop_free(slot)); };
    auto r = detail::wait_until(ready, v_->pub(me_).pool_event, wait_, timeout, closed_, next_poll_check_, nullptr,
                                [] { return Errc::ok; }, [] { return Errc::ok; });
    if (!r) return r.error();
  }
  loaned_ = true;
  loan_slot_ = slot;
  loan_size_ = n;
  return std::span<std::byte>(v_->slot_data(me_, slot), n);
}

void TopicPublisher::discard() noexcept {
  if (!loaned_) return;
  loaned_ = false;
  v_->slot(me_, loan_slot_).state.store(wire::kSlotFree, std::memory_order_release);
  free_.push_back(loan_slot_);
}

Result<void> TopicPublisher::publish(size_t used) {
  if (!loaned_) return Errc::invalid_argument;
  return deliver(loan_slot_, 0, std::min(used, loan_size_));
}

Result<void> TopicPublisher::publish_tail(size_t used) {
  if (!loaned_) return Errc::invalid_argument;
  used = std::min(used, loan_size_);
  return deliver(loan_slot_, static_cast<uint32_t>(loan_size_ - used), used);
}

Result<void> TopicPublisher::send(std::span<const std::byte> data, nanoseconds timeout) {
  auto s = loan(data.size(), timeout);
  if (!s) return s.error();
  if (!data.empty()) std::memcpy(s->data(), data.data(), data.size());
  return publish(data.size());
}

Result<void> TopicPublisher::deliver(uint32_t slot, uint32_t offset, size_t used) {
  loaned_ = false;
  auto& sl = v_->slot(me_, slot);
  sl.size = static_cast<uint32_t>(used);
  sl.offset = offset;
  sl.epoch = epoch_;
  sl.seq.store(++seq_, std::memory_order_relaxed);
  // A subscriber killed while attached keeps its queue and held slots until someone notices:
  // look at most once per liveness interval (the clock is read every 64 messages).
  if ((seq_ & 63) == 0) {
    const auto now = Clock::now();
    if (now >= next_poll_check_) {
      next_poll_check_ = now + wait_.liveness_interval;
      reap_dead_subscribers();
    }
  }
  if (v_->work_queue()) return deliver_work(slot);
  refresh_members();
  const uint32_t keep = v_->history != 0 ? 1 : 0;
  const uint32_t refs = static_cast<uint32_t>(members_.size()) + keep;
  ++messages_;
  bytes_ += used;
  auto& pb = v_->pub(me_);
  pb.seq.store(seq_, std::memory_order_relaxed);
  pb.messages.store(messages_, std::memory_order_relaxed);
  pb.bytes.store(bytes_, std::memory_order_relaxed);
  if (members_.empty()) {
    pb.no_receiver.store(++no_receiver_, std::memory_order_relaxed);
    if (refs == 0) {
      sl.state.store(wire::kSlotFree, std::memory_order_release);
      free_.push_back(slot);
      return {};
    }
  }
  // Each hand-out is announced before it is made (action, then the count of references left
  // after it), so a successor can tell exactly which references we never handed out.
  uint32_t remaining = refs;
  pb.inflight_action.store(0, std::memory_order_relaxed);
  pb.inflight_remaining.store(remaining, std::memory_order_relaxed);
  pb.inflight_slot.store(slot + 1, std::memory_order_relaxed);
  // Every reference exists before the first subscriber can see (and release) the slot.
  sl.state.store(refs, std::memory_order_release);
  if (keep) {
    auto& e = v_->hist(me_, static_cast<uint32_t>(seq_ % v_->history));
    const uint32_t old = e.slot.load(std::memory_order_relaxed);
    pb.inflight_action.store(2, std::memory_order_relaxed);
    pb.inflight_remaining.store(--remaining, std::memory_order_release);
    e.seq.store(0, std::memory_order_release);  // readers skip the entry while it changes
    e.slot.store(slot + 1, std::memory_order_relaxed);
    e.seq.store(seq_, std::memory_order_release);
    if (old != 0) v_->unref(me_, old - 1);
  }
  Errc result = Errc::ok;
  for (uint32_t s : members_) {
    auto& q = v_->queue(me_, s);
    auto& sb = v_->sub(s);
    const uint64_t t = q.tail.load(std::memory_order_relaxed);  // ours alone
    uint64_t h = q.head.load(std::memory_order_acquire);
    bool ok = true;
    while (t - h >= v_->depth) {
      if (sb.member.mode.load(std::memory_order_relaxed) == static_cast<uint32_t>(SubscriberMode::drop_oldest)) {
        const uint32_t idx = v_->cell(me_, s, h).load(std::memory_order_relaxed);
        if (q.head.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel)) {
          if (idx != 0) v_->unref(me_, idx - 1);
          sb.dropped.fetch_add(1, std::memory_order_relaxed);
          ++h;
        }
        continue;
      }
      // block_publisher: wait for the subscriber to take an entry, while it stays attached.
      const uint64_t owner = sb.member.owner.load(std::memory_order_acquire);
      auto ready = [&] {
        h = q.head.load(std::memory_order_acquire);
        return t - h < v_->depth;
      };
      auto left = [&] {
        return sb.member.owner.load(std::memory_order_acquire) != owner ? Errc::peer_closed : Errc::ok;
      };
      auto dead = [&] { return member_alive(sb.member, owner) ? Errc::ok : Errc::peer_dead; };
      Clock::time_point next_check{};
      auto r = detail::wait_until(ready, sb.space_event, wait_, block_timeout_, closed_, next_check, nullptr, left, dead);
      if (!r) {
        ok = false;
        if (r.error() == Errc::timeout) {
          sb.dropped.fetch_add(1, std::memory_order_relaxed);
          ++timeouts_;
          result = Errc::timeout;
        }
        break;
      }
    }
    if (!ok) {
      // Not handed out: count it first (dying here leaks one reference rather than freeing a slot
      // that others still read).
      pb.inflight_action.store(0, std::memory_order_relaxed);
      pb.inflight_remaining.store(--remaining, std::memory_order_release);
      v_->unref(me_, slot);
      continue;
    }
    pb.inflight_sub.store(s, std::memory_order_relaxed);
    pb.inflight_tail.store(t, std::memory_order_relaxed);
    pb.inflight_action.store(1, std::memory_order_relaxed);
    pb.inflight_remaining.store(--remaining, std::memory_order_release);
    v_->cell(me_, s, t).store(slot + 1, std::memory_order_relaxed);
    q.tail.store(t + 1, std::memory_order_release);
  }
  pb.inflight_slot.store(0, std::memory_order_release);
  // One fence for all subscribers, then wake only those asleep.
  detail::full_fence();
  for (uint32_t s : members_) {
    auto& ev = v_->sub(s).data_event;
    if (ev.waiters.load(std::memory_order_relaxed) != 0) {
      ev.seq.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(&ev.seq);
    }
  }
  return result == Errc::ok ? Result<void>{} : Result<void>{result};
}

// Work queue: one reference, one shared queue; wait for space while it is full (work is never
// dropped), then wake one sleeping subscriber.
Result<void> TopicPublisher::deliver_work(uint32_t slot) {
  auto& sl = v_->slot(me_, slot);
  auto& pb = v_->pub(me_);
  ++messages_;
  bytes_ += sl.size;
  pb.seq.store(seq_, std::memory_order_relaxed);
  pb.messages.store(messages_, std::memory_order_relaxed);
  pb.bytes.store(bytes_, std::memory_order_relaxed);
  pb.inflight_action.store(0, std::memory_order_relaxed);
  pb.inflight_remaining.store(1, std::memory_order_relaxed);
  pb.inflight_slot.store(slot + 1, std::memory_order_relaxed);
  sl.state.store(1, std::memory_order_release);
  auto& q = v_->queue(me_, 0);
  const uint64_t t = q.tail.load(std::memory_order_relaxed);  // ours alone
  auto space = [&] { return t - q.head.load(std::memory_order_acquire) < v_->depth; };
  if (!space()) {
    Clock::time_point next_check{};
    auto r = detail::wait_until(space, pb.pool_event, wait_, block_timeout_, closed_, next_check, nullptr,
                                [] { return Errc::ok; }, [] { return Errc::ok; });
    if (!r) {
      pb.inflight_remaining.store(0, std::memory_order_release);
      v_->unref(me_, slot);
      pb.inflight_slot.store(0, std::memory_order_release);
      ++timeouts_;
      return r.error();
    }
  }
  pb.inflight_sub.store(0, std::memory_order_relaxed);
  pb.inflight_tail.store(t, std::memory_order_relaxed);
  pb.inflight_action.store(1, std::memory_order_relaxed);
  pb.inflight_remaining.store(0, std::memory_order_release);
  v_->cell(me_, 0, t).store(slot + 1, std::memory_order_relaxed);
  q.tail.store(t + 1, std::memory_order_release);
  pb.inflight_slot.store(0, std::memory_order_release);
  // Wake one sleeping subscriber, the next after the last one woken: any of them may take it.
  detail::full_fence();
  for (uint32_t i = 0; i < v_->subs; ++i) {
    const uint32_t s = (wake_next_ + i) % v_->subs;
    auto& ev = v_->sub(s).data_event;
    if (ev.waiters.load(std::memory_order_relaxed) != 0) {
      ev.seq.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(&ev.seq);
      wake_next_ = s + 1;
      break;
    }
  }
  return {};
}

uint32_t TopicPublisher::subscriber_count() noexcept {
  refresh_members();
  return static_cast<uint32_t>(members_.size());
}

uint32_t TopicPublisher::live_subscribers() noexcept {
  uint32_t n = 0;
  for (uint32_t s = 0; s < v_->subs; ++s) {
    auto& m = v_->sub(s).member;
    const uint64_t o = m.owner.load(std::memory_order_acquire);
    if (wire::owner_state(o) == wire::kRoleAttached && member_alive(m, o)) ++n;
  }
  return n;
}

PublisherStats TopicPublisher::stats() noexcept {
  PublisherStats st;
  st.messages = messages_;
  st.bytes = bytes_;
  st.no_receiver = no_receiver_;
  st.timeouts = timeouts_;
  st.subscribers = subscriber_count();
  st.slot_count = v_->slot_count;
  st.lost = v_->state().lost.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < v_->slot_count; ++i)
    if (v_->slot(me_, i).state.load(std::memory_order_relaxed) & wire::kSlotFree) ++st.free_slots;
  return st;
}

void TopicPublisher::close() noexcept {
  if (closed_.exchange(true)) return;
  discard();
  set_member_state(v_->pub(me_).member, owner_, wire::kRoleClosed);
  // Wake subscribers so that they notice (peer_closed) without waiting for a liveness slice.
  detail::full_fence();
  for (uint32_t s = 0; s < v_->subs; ++s) {
    auto& ev = v_->sub(s).data_event;
    if (ev.waiters.load(std::memory_order_relaxed) != 0) {
      ev.seq.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(&ev.seq);
    }
  }
  if (unlink_on_close_) unlink_if_unused(seg_, *v_);
}

// ---------------------------------------------------------------------------------------------
// Subscriber

TopicSubscriber::TopicSubscriber(std::string_view name, const TopicOptions& o)
    : seg_(open_or_create_topic(name, o)), wait_(o.wait), unlink_on_close_(o.unlink_on_close) {
  v_ = new TopicView(seg_.base(), seg_.size(), std::string(name));
  history_.reserve(std::min(v_->max_held, v_->history * v_->pubs));
  bool found = false;
  // A free block first; only if there is none, one left by a dead subscriber.
  for (int pass = 0; pass < 2 && !found; ++pass) {
    for (uint32_t s = 0; s < v_->subs && !found; ++s) {
      auto& m = v_->sub(s).member;
      const uint32_t st = wire::owner_state(m.owner.load(std::memory_order_acquire));
      if (pass == 0 && (st == wire::kRoleAttached || st == wire::kRoleClaiming)) continue;
      Claim how{};
      if (claim_member(m, how)) {
        me_ = s;
        found = true;
      }
    }
  }
  if (!found) {
    const uint32_t subs = v_->subs;
    delete v_;
    throw Error(Errc::busy, "flatlane: topic '" + std::string(name) + "' already has " + std::to_string(subs) +
                                " live subscribers, its configured maximum");
  }
  // Whatever the previous owner of this block left (queued or held) is returned first, so this
  // subscriber starts at the newest message.
  clean_subscriber(*v_, me_);
  auto& sb = v_->sub(me_);
  sb.received.store(0, std::memory_order_relaxed);
  sb.bytes.store(0, std::memory_order_relaxed);
  sb.dropped.store(0, std::memory_order_relaxed);
  sb.data_event.waiters.store(0, std::memory_order_relaxed);
  sb.space_event.waiters.store(0, std::memory_order_relaxed);
  attach_member(sb.member, owner_, static_cast<uint32_t>(o.subscriber_mode));
  v_->state().members_gen.fetch_add(1, std::memory_order_seq_cst);
  if (o.history_request != 0 && v_->history != 0) take_history(o.history_request);
}

TopicSubscriber::~TopicSubscriber() {
  close();
  history_.clear();
  if (held_ != 0) {  // samples outlived us (a caller bug): return their references anyway
    v_->release_held(me_);
    held_ = 0;
  }
  set_member_state(v_->sub(me_).member, owner_, wire::kRoleClosed);
  if (unlink_on_close_) unlink_if_unused(seg_, *v_);
  delete v_;
}

// Retained messages of every publisher, oldest first, held like received samples.
void TopicSubscriber::take_history(uint32_t per_publisher) noexcept {
  struct Found {
    uint64_t seq;
    uint32_t pub, slot;
  };
  std::vector<Found> found;
  for (uint32_t p = 0; p < v_->pubs; ++p) {
    std::vector<Found> mine;
    for (uint32_t i = 0; i < v_->history; ++i) {
      auto& e = v_->hist(p, i);
      const uint64_t seq = e.seq.load(std::memory_order_acquire);
      const uint32_t idx = e.slot.load(std::memory_order_relaxed);
      if (seq != 0 && idx != 0 && idx <= v_->slot_count) mine.push_back({seq, p, idx - 1});
    }
    std::sort(mine.begin(), mine.end(), [](const Found& a, const Found& b) { return a.seq < b.seq; });
    if (mine.size() > per_publisher) mine.erase(mine.begin(), mine.end() - per_publisher);
    found.insert(found.end(), mine.begin(), mine.end());
  }
  std::vector<Sample> got;
  for (const Found& f : found) {
    if (held_ >= v_->max_held) break;
    auto& sl = v_->slot(f.pub, f.slot);
    // Take a reference only while the slot is in use, then make sure it still holds that message:
    // the publisher may have evicted and reused it meanwhile.
    uint32_t cur = sl.state.load(std::memory_order_relaxed);
    bool ok = false;
    while ((cur & (wire::kSlotFree | wire::kSlotOnStack)) == 0 && (cur & wire::kSlotRefMask) != 0) {
      if (sl.state.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        ok = true;
        break;
      }
    }
    if (!ok) continue;
    const uint32_t size = sl.size, offset = sl.offset;
    if (sl.seq.load(std::memory_order_relaxed) != f.seq || uint64_t{offset} + size > v_->slot_size) {
      v_->unref(f.pub, f.slot);
      continue;
    }
    uint32_t k = 0;
    while (k < v_->max_held && v_->held(me_, k).slot.load(std::memory_order_relaxed) != 0) ++k;
    if (k == v_->max_held) {
      v_->unref(f.pub, f.slot);
      break;
    }
    v_->held(me_, k).publisher.store(f.pub, std::memory_order_relaxed);
    v_->held(me_, k).slot.store(f.slot + 1, std::memory_order_release);
    ++held_;
    Sample s;
    s.sub_ = this;
    s.data_ = {v_->slot_data(f.pub, f.slot) + offset, size};
    s.seq_ = f.seq;
    s.held_ = k;
    s.publisher_ = f.pub;
    s.slot_ = f.slot;
    s.epoch_ = sl.epoch;
    got.push_back(std::move(s));
  }
  // Stored newest first: receive() takes from the back.
  for (auto it = got.rbegin(); it != got.rend(); ++it) history_.push_back(std::move(*it));
}

bool TopicSubscriber::try_take(Sample& out, Errc& err) noexcept {
  for (uint32_t i = 0; i < v_->pubs; ++i) {
    const uint32_t p = (next_pub_ + i) % v_->pubs;
    const uint32_t qs = v_->queue_of(me_);
    auto& q = v_->queue(p, qs);
    for (;;) {
      uint64_t h = q.head.load(std::memory_order_acquire);
      const uint64_t t = q.tail.load(std::memory_order_acquire);
      if (h == t) break;
      if (t < h || t - h > v_->depth) {
        err = Errc::corrupt;
        return false;
      }
      if (held_ >= v_->max_held) {
        err = Errc::busy;  // the caller holds max_held samples already
        return false;
      }
      const uint32_t idx = v_->cell(p, qs, h).load(std::memory_order_relaxed);
      // Fails when a publisher dropped the entry, or (work queue) another subscriber took it.
      if (!q.head.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel)) continue;
      if (idx == 0 || idx > v_->slot_count) {
        err = Errc::corrupt;
        return false;
      }
      uint32_t k = 0;
      while (v_->held(me_, k).slot.load(std::memory_order_relaxed) != 0) ++k;  // held_ < max_held: one is free
      v_->held(me_, k).publisher.store(p, std::memory_order_relaxed);
      v_->held(me_, k).slot.store(idx, std::memory_order_release);
      ++held_;
      auto& sl = v_->slot(p, idx - 1);
      const uint32_t size = sl.size, offset = sl.offset;
      out.sub_ = this;
      out.held_ = k;
      out.publisher_ = p;
      out.slot_ = idx - 1;
      if (uint64_t{offset} + size > v_->slot_size) {
        out.release();
        err = Errc::corrupt;
        return false;
      }
      out.data_ = {v_->slot_data(p, idx - 1) + offset, size};
      // The caller reads the message next (verification first): start fetching its first line
      // from the publisher's core now, so the miss overlaps the bookkeeping below.
      __builtin_prefetch(out.data_.data());
      out.seq_ = sl.seq.load(std::memory_order_relaxed);
      out.epoch_ = sl.epoch;
      auto& sb = v_->sub(me_);
      sb.received.store(++received_, std::memory_order_relaxed);
      bytes_ += size;
      sb.bytes.store(bytes_, std::memory_order_relaxed);
      if (v_->work_queue()) {
        detail::notify(v_->pub(p).pool_event);  // a publisher may wait for queue space
      } else if (sb.member.mode.load(std::memory_order_relaxed) ==
                 static_cast<uint32_t>(SubscriberMode::block_publisher)) {
        detail::notify(sb.space_event);
      }
      next_pub_ = p + 1;
      return true;
    }
  }
  return false;
}

// ok while a publisher may still send; peer_dead / peer_closed once every publisher that ever
// attached has died / left.
Errc TopicSubscriber::publishers_gone() noexcept {
  bool seen = false, dead = false;
  for (uint32_t p = 0; p < v_->pubs; ++p) {
    auto& m = v_->pub(p).member;
    const uint64_t o = m.owner.load(std::memory_order_acquire);
    switch (wire::owner_state(o)) {
      case wire::kRoleNever: break;
      case wire::kRoleClosed: seen = true; break;
      default:
        if (member_alive(m, o)) return Errc::ok;
        seen = dead = true;
    }
  }
  return dead ? Errc::peer_dead : seen ? Errc::peer_closed : Errc::ok;
}

Result<Sample> TopicSubscriber::receive(nanoseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return Errc::closed;
  if (!history_.empty()) {
    Sample s = std::move(history_.back());
    history_.pop_back();
    return s;
  }
  Sample out;
  Errc err = Errc::ok;
  if (try_take(out, err)) return out;
  if (err != Errc::ok) return err;
  auto ready = [&] { return try_take(out, err) || err != Errc::ok; };
  // Cheap check (no /proc): all publishers that attached have closed.
  auto closed_cheap = [&] {
    bool seen = false;
    for (uint32_t p = 0; p < v_->pubs; ++p) {
      const uint32_t st = wire::owner_state(v_->pub(p).member.owner.load(std::memory_order_acquire));
      if (st == wire::kRoleAttached || st == wire::kRoleClaiming) return Errc::ok;
      seen |= st == wire::kRoleClosed;
    }
    return seen ? Errc::peer_closed : Errc::ok;
  };
  auto r = detail::wait_until(ready, v_->sub(me_).data_event, wait_, timeout, closed_, next_poll_check_, nullptr,
                              closed_cheap, [&] { return publishers_gone(); });
  if (out.valid()) return out;
  if (err != Errc::ok) return err;
  return r.error();
}

void TopicSubscriber::release(const Sample& s) noexcept {
  v_->held(me_, s.held_).slot.store(0, std::memory_order_release);
  v_->unref(s.publisher_, s.slot_);
  --held_;
}

SubscriberStats TopicSubscriber::stats() noexcept {
  SubscriberStats st;
  auto& sb = v_->sub(me_);
  st.received = received_;
  st.bytes = bytes_;
  st.dropped = sb.dropped.load(std::memory_order_relaxed);
  st.held = held_;
  for (uint32_t p = 0; p < v_->pubs; ++p) {
    auto& q = v_->queue(p, v_->queue_of(me_));
    const uint64_t h = q.head.load(std::memory_order_relaxed), t = q.tail.load(std::memory_order_relaxed);
    if (t > h) st.queued += static_cast<uint32_t>(std::min<uint64_t>(t - h, v_->depth));
  }
  return st;
}

void TopicSubscriber::close() noexcept {
  if (closed_.exchange(true)) return;
  auto& sb = v_->sub(me_);
  // Not a member any more: publishers stop queueing for us. Claiming (not closed) until our
  // held samples are released, so no other subscriber takes the block and its held table.
  set_member_state(sb.member, owner_, wire::kRoleClaiming);
  v_->state().members_gen.fetch_add(1, std::memory_order_seq_cst);
  sb.data_event.seq.fetch_add(1, std::memory_order_release);
  detail::futex_wake_all(&sb.data_event.seq);
  history_.clear();
  if (!v_->work_queue()) v_->drain_queues(me_);
}

}  // namespace flatlane
