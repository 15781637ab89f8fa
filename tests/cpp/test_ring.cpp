// Ring arithmetic and property tests in one process: random frame sizes, random release orders,
// many wraps. Every held frame is re-checked after more writes to prove it was never overwritten.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <thread>
#include <random>
#include <memory>
#include <ctime>
#include <vector>

#include "test_util.hpp"

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

// Payload bytes are a function of (seq, index) so any overwrite or misplacement shows.
std::byte pattern(uint64_t seq, size_t i) { return static_cast<std::byte>((seq * 131 + i * 7) & 0xFF); }

void fill(std::span<std::byte> s, uint64_t seq) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = pattern(seq, i);
}

bool intact(std::span<const std::byte> s, uint64_t seq) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != pattern(seq, i)) return false;
  return true;
}

}  // namespace

TEST(Layout, OffsetsAndConstants) {
  EXPECT_EQ(sizeof(wire::SegmentHeader), 256u);
  EXPECT_EQ(offsetof(wire::SegmentHeader, state), 60u);
  EXPECT_EQ(offsetof(wire::SegmentHeader, type_name), 96u);
  EXPECT_EQ(offsetof(wire::EndpointBlock, pos), 0u);
  EXPECT_EQ(offsetof(wire::EndpointBlock, epoch), 24u);
  EXPECT_EQ(offsetof(wire::EndpointBlock, count), 64u);
  EXPECT_EQ(sizeof(wire::EndpointBlock), 128u);
  EXPECT_EQ(wire::kReaderBlockOffset - wire::kWriterBlockOffset, 128u);
  EXPECT_EQ(wire::kHeaderRegionSize % 4096, 0u);
  EXPECT_EQ(wire::frame_extent(0), 16u);
  EXPECT_EQ(wire::frame_extent(1), 32u);
  EXPECT_EQ(wire::frame_extent(16), 32u);
  EXPECT_EQ(wire::frame_extent(17), 48u);
  // The hash is part of the contract with other languages: it must not change silently.
  EXPECT_EQ(wire::kLayoutHash, wire::fnv1a(wire::kLayoutDescription));
  EXPECT_EQ(wire::fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(wire::fnv1a("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Ring, PayloadsAre16ByteAlignedAtEveryOffset) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  for (size_t n = 0; n < 600; ++n) {
    auto s = w.reserve(n % 300);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data()) % 16, 0u);
    w.commit(n % 300);
    auto f = r.read(0ns);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f->ptr()) % 16, 0u);
    EXPECT_EQ(f->size(), n % 300);
  }
}

TEST(Ring, MaxFrameFitsFromEveryStartOffset) {
  // The largest frame (capacity/2 - 32) must be placeable wherever the writer stands.
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  ASSERT_EQ(w.max_frame_payload(), 4096u / 2 - 32);
  for (size_t shift = 0; shift < 4096 / 16; ++shift) {
    auto small = w.reserve(0);
    ASSERT_TRUE(small.ok());
    w.commit(0);
    ASSERT_TRUE(r.read(0ns).ok());
    // An empty read() publishes the freed space (the reader batches it otherwise).
    ASSERT_EQ(r.read(0ns).error(), Errc::timeout);
    auto big = w.reserve(w.max_frame_payload(), 0ns);
    ASSERT_TRUE(big.ok()) << "shift " << shift;
    fill(*big, shift);
    w.commit(big->size());
    auto f = r.read(0ns);
    ASSERT_TRUE(f.ok());
    ASSERT_EQ(f->size(), w.max_frame_payload());
    EXPECT_TRUE(intact(f->data(), shift));
  }
  EXPECT_EQ(w.reserve(w.max_frame_payload() + 1).error(), Errc::message_too_large);
}

TEST(Ring, FullRingTimesOutAndRecovers) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  int written = 0;
  for (;; ++written) {
    auto s = w.reserve(100, 0ns);
    if (!s) {
      EXPECT_EQ(s.error(), Errc::timeout);
      break;
    }
    w.commit(100);
  }
  EXPECT_EQ(written, (4096 - 16) / 128);  // 100 B payload -> 128 B frames; 16 B stay free
  auto t0 = Clock::now();
  EXPECT_EQ(w.reserve(100, 20ms).error(), Errc::timeout);
  EXPECT_GE(Clock::now() - t0, 20ms);
  { auto f = r.read(0ns); ASSERT_TRUE(f.ok()); }
  EXPECT_TRUE(w.reserve(100, 0ns).ok());
}

TEST(Ring, CommitLessThanReservedAndAbort) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  auto s = w.reserve(1000);
  ASSERT_TRUE(s.ok());
  fill(s->first(10), 1);
  w.commit(10);
  auto s2 = w.reserve(50);
  ASSERT_TRUE(s2.ok());
  w.abort();
  auto f = r.read(0ns);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), 10u);
  EXPECT_TRUE(intact(f->data(), 1));
  EXPECT_EQ(r.read(0ns).error(), Errc::timeout);  // aborted frame never becomes visible
}

// The core property: random sizes, frames held and released in random order, many wraps; the
// writer never overwrites a held frame and every frame arrives once, in order, intact.
class RingProperty : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RingProperty, RandomSizesRandomReleaseOrder) {
  const uint32_t seed = GetParam();
  std::mt19937_64 rng(seed);
  TempName name;
  const uint64_t cap = 1u << (12 + seed % 5);  // 4 KiB .. 64 KiB
  Writer w(name, opts(OpenMode::create, cap));
  Reader r(name, opts(OpenMode::open));
  const size_t max_payload = w.max_frame_payload();

  std::deque<Frame> held;
  uint64_t next_write_seq = 1, next_read_seq = 1, total_bytes = 0;
  const uint64_t target = cap * 300;  // hundreds of wraps
  while (total_bytes < target) {
    // Write a burst until full (or a random count).
    int burst = static_cast<int>(rng() % 16) + 1;
    for (int i = 0; i < burst; ++i) {
      size_t n = rng() % 4 == 0 ? rng() % (max_payload + 1) : rng() % 200;
      auto s = w.reserve(n, 0ns);
      if (!s) {
        ASSERT_EQ(s.error(), Errc::timeout);
        break;
      }
      fill(*s, next_write_seq);
      w.commit(n);
      ++next_write_seq;
      total_bytes += n;
    }
    // Read some frames, keep a random subset held.
    int reads = static_cast<int>(rng() % 16) + 1;
    for (int i = 0; i < reads; ++i) {
      auto f = r.read(0ns);
      if (!f) {
        ASSERT_EQ(f.error(), Errc::timeout);
        break;
      }
      ASSERT_EQ(f->seq(), next_read_seq);
      ++next_read_seq;
      held.push_back(std::move(f).value());
    }
    // Every held frame is still intact after the writes above.
    for (auto& h : held) ASSERT_TRUE(intact(h.data(), h.seq())) << "held frame " << h.seq() << " overwritten";
    // Release a random subset in random order.
    std::shuffle(held.begin(), held.end(), rng);
    size_t keep = held.empty() ? 0 : rng() % (held.size() + 1);
    if (held.size() > 64) keep = std::min<size_t>(keep, 8);  // make sure we make progress
    while (held.size() > keep) held.pop_back();
    EXPECT_EQ(r.held_frames(), held.size());
  }
  held.clear();
  while (true) {
    auto f = r.read(0ns);
    if (!f) break;
    ASSERT_EQ(f->seq(), next_read_seq++);
    ASSERT_TRUE(intact(f->data(), f->seq()));
  }
  EXPECT_EQ(next_read_seq, next_write_seq);
  EXPECT_EQ(w.stats().occupancy_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RingProperty, ::testing::Range(1u, 11u));

TEST(Chunking, LargeMessagesRoundTripInOneProcess) {
  TempName name;
  ChannelOptions o = opts(OpenMode::create, 1 << 16);
  o.segment.chunk_size = 4096;
  Writer w(name, o);
  Reader r(name, opts(OpenMode::open));
  std::mt19937_64 rng(7);
  for (size_t size : {size_t{0}, size_t{1}, size_t{32751}, size_t{32752}, size_t{32753}, size_t{100000},
                      size_t{4080 * 3}, size_t{4080 * 3 + 1}}) {
    std::vector<std::byte> msg(size);
    for (auto& b : msg) b = static_cast<std::byte>(rng());
    // Interleave: the ring is smaller than some messages, so write in a thread.
    std::thread t([&] { ASSERT_TRUE(w.write_message(msg, 5s).ok()); });
    auto m = r.read_message(5s);
    t.join();
    ASSERT_TRUE(m.ok()) << size;
    ASSERT_EQ(m->size(), size);
    EXPECT_TRUE(std::equal(msg.begin(), msg.end(), m->data().begin()));
    EXPECT_EQ(m->zero_copy(), size <= w.max_frame_payload());
  }
  EXPECT_EQ(r.dropped_partial_messages(), 0u);
}

TEST(Chunking, ReaderRefusesMessagesAboveItsLimit) {
  TempName name;
  ChannelOptions o = opts(OpenMode::create, 1 << 16);
  o.segment.chunk_size = 1024;
  Writer w(name, o);
  ChannelOptions ro = opts(OpenMode::open);
  ro.max_message_size = 5000;
  Reader r(name, ro);
  std::vector<std::byte> big(40000, std::byte{1}), small(3000, std::byte{2});
  ASSERT_TRUE(w.write_message(big, 1s).ok());
  ASSERT_TRUE(w.write_message(small, 1s).ok());
  EXPECT_EQ(r.read_message(1s).error(), Errc::message_too_large);
  auto m = r.read_message(1s);  // the rest of the big message is skipped, the next one arrives
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 3000u);
}

namespace {
std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

// An idle endpoint may spin for its budget (50 us) and then sleeps: waiting half a second must
// cost only a few milliseconds of CPU (liveness re-checks every 50 ms included).
TEST(Wait, IdleReaderAndWriterBurnNoCpuBeyondTheSpinBudget) {
  for (WaitStrategy ws : {WaitStrategy::spin_then_sleep, WaitStrategy::blocking}) {
    TempName name;
    Writer w(name, opts(OpenMode::create, 4096, ws));
    Reader r(name, opts(OpenMode::open, 4096, ws));
    auto cpu0 = thread_cpu_time();
    EXPECT_EQ(r.read(500ms).error(), Errc::timeout);
    auto reader_cpu = thread_cpu_time() - cpu0;
    EXPECT_LT(reader_cpu, 20ms) << "idle read() burned " << reader_cpu.count() << " ns";
    while (w.reserve(1000, 0ns)) w.commit(1000);  // fill the ring
    cpu0 = thread_cpu_time();
    EXPECT_EQ(w.reserve(1000, 500ms).error(), Errc::timeout);
    auto writer_cpu = thread_cpu_time() - cpu0;
    EXPECT_LT(writer_cpu, 20ms) << "idle reserve() burned " << writer_cpu.count() << " ns";
  }
}

// A reader that has consumed everything publishes at once: a writer that needs the whole ring
// (here: from a process that is about to block elsewhere) is not held back by batching.
// try_reserve: the poll a binding makes before a blocking reserve. On a full ring it fails without
// asking the reader to publish (`demand`), where a zero-timeout reserve raises it; it sees space
// the reader has published since, and refuses what reserve refuses.
TEST(Ring, TryReserveDoesNotRaiseDemand) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  auto& demand = r.segment().space_event().demand;
  EXPECT_EQ(w.try_reserve(w.max_frame_payload() + 1).error(), Errc::message_too_large);
  int written = 0;
  for (;; ++written) {
    auto s = w.try_reserve(100);
    if (!s) {
      EXPECT_EQ(s.error(), Errc::timeout);
      break;
    }
    w.commit(100);
  }
  EXPECT_EQ(written, (4096 - 16) / 128);
  EXPECT_EQ(demand.load(), 0u);
  EXPECT_EQ(w.try_reserve(100).error(), Errc::timeout);
  EXPECT_EQ(demand.load(), 0u);
  EXPECT_EQ(w.reserve(100, 0ns).error(), Errc::timeout);  // the zero-timeout reserve asks
  EXPECT_EQ(demand.load(), 1u);
  // The reader releases two frames and, asked to, publishes at once: try_reserve re-reads R.
  { auto f = r.read(0ns); ASSERT_TRUE(f.ok()); }
  { auto f = r.read(0ns); ASSERT_TRUE(f.ok()); }
  auto s = w.try_reserve(100);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(demand.load(), 0u);  // cleared once space was there, as after a wait
  w.commit(100);
  w.close();
  EXPECT_EQ(w.try_reserve(100).error(), Errc::closed);
}

TEST(Ring, CaughtUpReaderPublishesFreedSpaceAtOnce) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096));
  Reader r(name, opts(OpenMode::open));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(w.reserve(100).ok());
    w.commit(100);
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(r.read(0ns).ok());  // each frame released at once
  EXPECT_EQ(w.stats().occupancy_bytes, 0u);
  EXPECT_TRUE(w.reserve(w.max_frame_payload(), 0ns).ok());
}

// After close(), the role is free; a later endpoint that claims it must not be detached by the
// destruction of the closed one.
TEST(Roles, DestroyingAClosedWriterLeavesItsSuccessorAttached) {
  TempName name;
  Reader r(name, opts(OpenMode::create));
  auto a = std::make_unique<Writer>(name, opts(OpenMode::open));
  a->close();
  Writer b(name, opts(OpenMode::open));
  a.reset();
  EXPECT_TRUE(r.peer_attached());
  try {
    Writer c(name, opts(OpenMode::open));
    ADD_FAILURE() << "a third writer attached while b is live";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::busy);
  }
  ASSERT_TRUE(b.reserve(8).ok());
  b.commit(8);
  EXPECT_TRUE(r.read(1s).ok());
}

// A writer that died after a frame's commit word but before its position store: the next writer
// publishes that frame instead of overwriting it, and numbering continues after it.
TEST(Roles, NewWriterRecoversACommitWhosePositionWasNeverStored) {
  TempName name;
  Reader r(name, opts(OpenMode::create));
  uint64_t frame2_start = 0;
  {
    Writer a(name, opts(OpenMode::open));
    ASSERT_TRUE(a.reserve(8).ok());
    a.commit(8);
    frame2_start = a.segment().writer_block().pos.load();
    auto s = a.reserve(24);
    ASSERT_TRUE(s.ok());
    fill(*s, 2);
    a.commit(24);
    // Undo the position store, as if a had been killed right before it, and leave the role as a
    // dead writer would (attached, pid of a process that no longer exists).
    a.segment().writer_block().pos.store(frame2_start);
    a.close();
  }
  auto f1 = r.read(0ns);
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(f1->seq(), 1u);
  Writer b(name, opts(OpenMode::open));
  EXPECT_GT(b.segment().writer_block().pos.load(), frame2_start);
  ASSERT_TRUE(b.reserve(8).ok());
  b.commit(8);
  f1 = Frame{};
  auto f2 = r.read(1s);
  ASSERT_TRUE(f2.ok()) << to_string(f2.error());
  EXPECT_EQ(f2->seq(), 2u);
  EXPECT_TRUE(intact(f2->data(), 2));
  f2 = Frame{};
  auto f3 = r.read(1s);
  ASSERT_TRUE(f3.ok()) << to_string(f3.error());
  EXPECT_EQ(f3->seq(), 3u);
}

// A peer that closes while we spin is reported at the next spin check, not one liveness interval
// (50 ms) later.
TEST(Wait, CloseDuringSpinIsSeenPromptly) {
  TempName name;
  auto w = std::make_unique<Writer>(name, opts(OpenMode::create, 4096, WaitStrategy::busy_spin));
  Reader r(name, opts(OpenMode::open, 4096, WaitStrategy::busy_spin));
  std::thread closer([&] {
    std::this_thread::sleep_for(5ms);
    w->close();
  });
  auto t0 = Clock::now();
  auto f = r.read(2s);
  auto waited = Clock::now() - t0;
  closer.join();
  EXPECT_EQ(f.error(), Errc::peer_closed);
  EXPECT_LT(waited, 30ms);
}

// A reader that closes cleanly hands its released frames back: the next reader does not get them.
TEST(Roles, CleanlyClosedReaderDoesNotCauseRedelivery) {
  TempName name;
  Writer w(name, opts(OpenMode::create));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(w.reserve(8).ok());
    w.commit(8);
  }
  {
    Reader r(name, opts(OpenMode::open));
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(r.read(0ns).ok());
    r.close();
  }
  Reader r2(name, opts(OpenMode::open));
  auto f = r2.read(0ns);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->seq(), 3u);
}

// Same, but the reader already consumed and released the unannounced frame (it found it through
// the commit word), so its published position is ahead of the dead writer's: attach must succeed.
TEST(Roles, NewWriterAttachesAfterTheReaderConsumedAnUnannouncedCommit) {
  TempName name;
  Reader r(name, opts(OpenMode::create));
  {
    Writer a(name, opts(OpenMode::open));
    ASSERT_TRUE(a.reserve(8).ok());
    a.commit(8);
    const uint64_t frame2_start = a.segment().writer_block().pos.load();
    ASSERT_TRUE(a.reserve(24).ok());
    a.commit(24);
    a.segment().writer_block().pos.store(frame2_start);  // as if killed before the store
    a.close();
  }
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    auto f = r.read(0ns);
    ASSERT_TRUE(f.ok()) << to_string(f.error());
    EXPECT_EQ(f->seq(), seq);
  }
  EXPECT_EQ(r.read(0ns).error(), Errc::peer_closed);  // publishes the release position
  Writer b(name, opts(OpenMode::open));
  ASSERT_TRUE(b.reserve(8).ok());
  b.commit(8);
  auto f3 = r.read(1s);
  ASSERT_TRUE(f3.ok()) << to_string(f3.error());
  EXPECT_EQ(f3->seq(), 3u);
}
