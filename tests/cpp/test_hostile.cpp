// A hostile or buggy peer scribbles over shared memory. Whatever it writes, the library must not
// crash, hang, touch memory outside the mapping or hand out a frame that is not inside the ring;
// violations of the protocol are reported as Errc::corrupt (or a timeout when nothing valid is
// visible).
//
// The tests play the hostile peer through the Writer's own mapping of the segment: writes there
// are what the Reader (a separate mapping of the same pages) sees, and vice versa.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <pthread.h>
#include <sched.h>
#include <memory>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "test_util.hpp"

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

// A live channel: writer and reader attached, plus raw access to the shared memory.
struct Chan {
  TempName name{"hostile"};
  std::unique_ptr<Writer> w;
  std::unique_ptr<Reader> r;

  explicit Chan(uint64_t capacity = 1 << 16, uint32_t max_frame = 0, uint32_t chunk = 0,
                uint64_t max_message = 1ull << 32) {
    ChannelOptions wo = opts(OpenMode::create, capacity);
    wo.segment.max_frame_payload = max_frame;
    wo.segment.chunk_size = chunk;
    w = std::make_unique<Writer>(name, wo);
    ChannelOptions ro = opts(OpenMode::open, capacity);
    ro.max_message_size = max_message;
    r = std::make_unique<Reader>(name, ro);
  }

  const Segment& seg() const { return w->segment(); }
  uint64_t cap() const { return seg().ring_capacity(); }
  std::byte* ring() const { return seg().ring(); }
  wire::FrameHeader& hdr(uint64_t pos) const {
    return *reinterpret_cast<wire::FrameHeader*>(ring() + (pos & (cap() - 1)));
  }
  wire::ChunkHeader& chunk_hdr(uint64_t frame_pos) const {
    return *reinterpret_cast<wire::ChunkHeader*>(ring() + (frame_pos & (cap() - 1)) + wire::kFrameHeaderSize);
  }
  wire::EndpointBlock& wb() const { return seg().writer_block(); }
  wire::EndpointBlock& rb() const { return seg().reader_block(); }

  // Whether `data` lies inside the reader's mapping of the ring.
  bool in_reader_ring(std::span<const std::byte> data) const {
    const auto* lo = r->segment().ring();
    const auto* hi = lo + r->segment().ring_capacity();
    return data.data() >= lo && data.data() <= hi && static_cast<size_t>(hi - data.data()) >= data.size();
  }
};

// Writes one frame of n bytes filled with `fill`; returns the position of its header.
uint64_t put(Chan& c, size_t n, uint8_t fill = 0xAB) {
  auto span = c.w->reserve(n, 1s);
  EXPECT_TRUE(span.ok()) << to_string(span.error());
  if (!span) return ~0ull;
  std::memset(span->data(), fill, n);
  const uint64_t pos = static_cast<uint64_t>(span->data() - c.ring()) - wire::kFrameHeaderSize;
  c.w->commit(n);
  return pos;
}

// Reads and releases n frames.
void drain(Chan& c, int n) {
  for (int i = 0; i < n; ++i) {
    auto f = c.r->read(1s);
    ASSERT_TRUE(f.ok()) << to_string(f.error());
  }
}

void expect_corrupt_now_and_after(Chan& c) {
  auto f = c.r->read(100ms);
  EXPECT_EQ(f.error(), Errc::corrupt);
  EXPECT_FALSE(f.ok());
  // Sticky: the reader does not go on trusting a writer that broke the protocol.
  auto g = c.r->read(10ms);
  EXPECT_EQ(g.error(), Errc::corrupt);
  auto m = c.r->read_message(10ms);
  EXPECT_EQ(m.error(), Errc::corrupt);
}

int64_t vm_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Garbage frame headers

TEST(HostileFrame, SizeLargerThanAvailable) {
  Chan c;
  const uint64_t p = put(c, 8);
  c.hdr(p).size = 1000;  // extent 1024, but only 32 bytes were published
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, SizeNearUint32Max) {
  Chan c;
  const uint64_t p = put(c, 8);
  c.hdr(p).size = 0xFFFFFFFFu;  // frame_extent must not wrap to something small
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, SizeLargerThanMaxFrame) {
  Chan c(1 << 16, /*max_frame=*/256);
  ASSERT_EQ(c.w->max_frame_payload(), 256u);
  const uint64_t p = put(c, 200);
  for (int i = 0; i < 3; ++i) put(c, 200);
  c.hdr(p).size = 400;  // fits in what was published (4 * 224 bytes), but exceeds max_frame
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, ExtentPastRingEnd) {
  Chan c(4096);
  ASSERT_EQ(c.cap(), 4096u);
  // Walk the cursor to 32 bytes before the end of the ring.
  for (int i = 0; i < 127; ++i) {
    put(c, 16);
    drain(c, 1);
  }
  const uint64_t p = put(c, 16);
  ASSERT_EQ(p & (c.cap() - 1), c.cap() - 32);
  put(c, 16);  // wraps to offset 0, so 64 bytes are now published after the cursor
  c.hdr(p).size = 48;  // extent 64: within what was published, but runs past the ring's end
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, PaddingPastRingEnd) {
  Chan c(4096);
  for (int i = 0; i < 127; ++i) {
    put(c, 16);
    drain(c, 1);
  }
  const uint64_t p = put(c, 16);
  put(c, 16);
  c.hdr(p).size = 48;
  c.hdr(p).flags = wire::kFramePadding;  // skip records are bounded like frames
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, WrongSequenceNumber) {
  Chan c;
  put(c, 8);
  const uint64_t p2 = put(c, 8);
  put(c, 8);
  auto f1 = c.r->read(1s);
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(f1->seq(), 1u);
  c.hdr(p2).seq = 7;
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, SequenceNumberReplayed) {
  Chan c;
  put(c, 8);
  const uint64_t p2 = put(c, 8);
  drain(c, 1);
  c.hdr(p2).seq = 1;  // same as the frame before
  expect_corrupt_now_and_after(c);
}

TEST(HostileFrame, ChunkedFlagWithSizeSmallerThanChunkHeader) {
  for (uint32_t size : {0u, 1u, 8u, 15u}) {
    SCOPED_TRACE(size);
    Chan c;
    const uint64_t p = put(c, 16);
    c.hdr(p).size = size;
    c.hdr(p).flags |= wire::kFrameChunked;
    expect_corrupt_now_and_after(c);
  }
}

// The header of a frame the reader already delivered is rewritten before the frame is released.
// Releasing must not trust the new value: the reader may never hand the writer space beyond what
// it has read. (Whether the lie is noticed depends on whether release re-reads the header; either
// way nothing more is visible, so the next read is corrupt or a timeout, never a frame.)
TEST(HostileFrame, HeaderRewrittenWhileFrameIsHeld) {
  for (bool in_order : {true, false}) {
    for (uint32_t lie : {1000u, 0xFFFFFFF0u, 0u}) {
      SCOPED_TRACE(std::string(in_order ? "in order" : "out of order") + ", size " + std::to_string(lie));
      Chan c;
      put(c, 8);
      put(c, 8);
      auto f1 = c.r->read(1s);
      auto f2 = c.r->read(1s);
      ASSERT_TRUE(f1.ok() && f2.ok());
      if (in_order) {
        c.hdr(0).size = lie;
        f1->release();
        f2->release();
      } else {
        c.hdr(32).size = lie;
        f2->release();
        f1->release();
      }
      EXPECT_LE(c.rb().pos.load(), 64u) << "reader released space it never read";
      EXPECT_EQ(c.rb().pos.load() % 16, 0u);
      auto g = c.r->read(10ms);
      EXPECT_FALSE(g.ok());
      EXPECT_TRUE(g.error() == Errc::corrupt || g.error() == Errc::timeout) << to_string(g.error());
      // The writer is never told about space that was not freed: 64 bytes are at most reusable.
      int frames = 0;
      while (c.w->reserve(16, 0ns)) {
        c.w->commit(16);
        if (++frames > 4096) break;
      }
      EXPECT_LE(static_cast<uint64_t>(frames) * 32, c.cap()) << "writer overran frames the reader still holds";
    }
  }
}

TEST(HostileFrame, GarbageOutsidePublishedRangeIsNotRead) {
  Chan c;
  std::memset(c.ring(), 0xFF, c.cap());  // nothing was published: garbage must stay unseen
  auto f = c.r->read(20ms);
  EXPECT_EQ(f.error(), Errc::timeout);
  auto m = c.r->read_message(20ms);
  EXPECT_EQ(m.error(), Errc::timeout);
  // The writer overwrites the garbage and everything works.
  const uint64_t p = put(c, 5, 0x11);
  EXPECT_EQ(p, 0u);
  auto g = c.r->read(1s);
  ASSERT_TRUE(g.ok()) << to_string(g.error());
  EXPECT_EQ(g->size(), 5u);
  EXPECT_EQ(g->seq(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Garbage positions

TEST(HostilePosition, WriterPosMisaligned) {
  {
    Chan c;
    put(c, 8);
    c.wb().pos.store(40);  // 32 valid bytes plus 8
    expect_corrupt_now_and_after(c);
  }
  {
    Chan c;
    c.wb().pos.store(8);  // less than one frame header
    expect_corrupt_now_and_after(c);
  }
  {
    Chan c;
    put(c, 8);
    drain(c, 1);
    c.wb().pos.store(32 + 24);
    expect_corrupt_now_and_after(c);
  }
}

TEST(HostilePosition, WriterPosMoreThanCapacityAhead) {
  for (uint64_t ahead : {(uint64_t{1} << 16) + 16, uint64_t{1} << 17, uint64_t{1} << 40, ~uint64_t{15}}) {
    SCOPED_TRACE(ahead);
    Chan c;
    ASSERT_EQ(c.cap(), uint64_t{1} << 16);
    put(c, 8);
    drain(c, 1);
    c.wb().pos.store(32 + ahead);
    expect_corrupt_now_and_after(c);
  }
}

TEST(HostilePosition, WriterPosBehindReader) {
  for (uint64_t back : {uint64_t{32}, uint64_t{64}, uint64_t{16}}) {
    SCOPED_TRACE(back);
    Chan c;
    put(c, 8);
    put(c, 8);
    drain(c, 2);  // cursor at 64
    c.wb().pos.store(64 - back);
    expect_corrupt_now_and_after(c);
  }
}

TEST(HostilePosition, WriterPosBehindReaderWhileFramesAreStillQueued) {
  Chan c;
  put(c, 8);
  put(c, 8);
  auto f1 = c.r->read(1s);  // caches the writer position 64
  ASSERT_TRUE(f1.ok());
  c.wb().pos.store(0);
  // The second frame was published before the position went backwards and is intact.
  auto f2 = c.r->read(1s);
  ASSERT_TRUE(f2.ok()) << to_string(f2.error());
  EXPECT_EQ(f2->seq(), 2u);
  EXPECT_TRUE(c.in_reader_ring(f2->data()));
  // Then the backwards position is noticed.
  auto g = c.r->read(100ms);
  EXPECT_EQ(g.error(), Errc::corrupt);
}

TEST(HostilePosition, ReaderPosBeyondWriterPosMakesReserveCorrupt) {
  for (uint64_t beyond : {uint64_t{16}, uint64_t{4096}, uint64_t{1} << 40}) {
    SCOPED_TRACE(beyond);
    Chan c(4096);
    int frames = 0;
    for (;; ++frames) {  // fill the ring so the next reserve must look at the reader's position
      auto s = c.w->reserve(16, 0ns);
      if (!s) {
        EXPECT_EQ(s.error(), Errc::timeout);
        break;
      }
      c.w->commit(16);
    }
    EXPECT_EQ(frames, 127);  // (4096 - 16 reserved) / 32
    c.rb().pos.store(c.wb().pos.load() + beyond);
    auto s = c.w->reserve(16, 200ms);
    EXPECT_EQ(s.error(), Errc::corrupt);
    auto m = c.w->write_message(std::as_bytes(std::span("x", 1)), 200ms);
    EXPECT_EQ(m.error(), Errc::corrupt);
  }
}

TEST(HostilePosition, ReaderPosMoreThanCapacityBehindMakesReserveCorrupt) {
  Chan c(4096);
  for (int i = 0; i < 300; ++i) {
    put(c, 16);
    drain(c, 1);
  }
  c.rb().pos.store(0);  // the writer is 9600 bytes ahead of that
  int ok = 0;
  Errc last = Errc::ok;
  for (int i = 0; i < 200; ++i) {
    auto s = c.w->reserve(16, 200ms);
    if (!s) {
      last = s.error();
      break;
    }
    c.w->commit(16);
    ++ok;
  }
  EXPECT_EQ(last, Errc::corrupt);
  EXPECT_LE(ok, 128) << "the writer used more than a ring's worth of space";
}

TEST(HostilePosition, ReaderAttachToInconsistentPositionsIsCorruptAndLeavesTheRoleFree) {
  TempName name("hostile");
  Writer w(name, opts(OpenMode::create));
  auto span = w.reserve(8, 1s);
  ASSERT_TRUE(span.ok());
  w.commit(8);
  auto& rb = w.segment().reader_block();
  rb.pos.store(48);  // beyond the writer's 32
  std::string what;
  try {
    Reader r(name, opts(OpenMode::open));
    ADD_FAILURE() << "reader attached to inconsistent positions";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::corrupt) << e.what();
  }
  // Trying again must give the same answer, not `busy` from a role the failed attempt kept.
  try {
    Reader r(name, opts(OpenMode::open));
    ADD_FAILURE() << "reader attached to inconsistent positions";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::corrupt) << e.what();
  }
  EXPECT_FALSE(w.peer_attached()) << "a reader that failed to attach still holds the role";
  // Once the positions are sane again a reader can attach.
  rb.pos.store(0);
  try {
    Reader r(name, opts(OpenMode::open));
    auto f = r.read(1s);
    EXPECT_TRUE(f.ok()) << to_string(f.error());
  } catch (const Error& e) {
    ADD_FAILURE() << "reader could not attach after the positions were repaired: " << e.what();
  }
}

TEST(HostilePosition, WriterAttachToInconsistentPositionsIsCorruptAndLeavesTheRoleFree) {
  TempName name("hostile");
  auto w = std::make_unique<Writer>(name, opts(OpenMode::create));
  Reader r(name, opts(OpenMode::open));
  auto span = w->reserve(8, 1s);
  ASSERT_TRUE(span.ok());
  w->commit(8);
  w.reset();
  auto& wb = r.segment().writer_block();
  wb.pos.store(40);  // misaligned
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      Writer w2(name, opts(OpenMode::open));
      ADD_FAILURE() << "writer attached to inconsistent positions";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt) << "attempt " << attempt << ": " << e.what();
    }
  }
  EXPECT_FALSE(r.peer_attached()) << "a writer that failed to attach still holds the role";
  wb.pos.store(32);
  try {
    Writer w3(name, opts(OpenMode::open));
  } catch (const Error& e) {
    ADD_FAILURE() << "writer could not attach after the positions were repaired: " << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Lying chunk headers

namespace {

// 64 KiB ring, 256-byte frames and chunks (240 data bytes each): a 1000-byte message is 5
// chunk frames at ring positions 0, 272, 544, 816 (extent 272) and 1088 (40 data bytes).
constexpr uint32_t kChunk = 256;
constexpr size_t kMsg = 1000;
constexpr uint64_t kChunkPos[5] = {0, 272, 544, 816, 1088};

std::vector<std::byte> pattern(size_t n, uint8_t salt = 0) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + salt) & 0xFF);
  return v;
}

void write_chunked(Chan& c) {
  auto data = pattern(kMsg);
  auto r = c.w->write_message(data, 1s);
  ASSERT_TRUE(r.ok()) << to_string(r.error());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.hdr(kChunkPos[i]).flags & wire::kFrameChunked) << i;
    ASSERT_EQ(c.chunk_hdr(kChunkPos[i]).index, static_cast<uint32_t>(i));
  }
}

struct ChunkLie {
  const char* name;
  void (*mutate)(Chan&);
  Errc expected;
  friend void PrintTo(const ChunkLie& l, std::ostream* os) { *os << l.name; }
};

class HostileChunk : public ::testing::TestWithParam<ChunkLie> {};

}  // namespace

TEST(HostileChunkFlow, HonestChunkedMessageReassembles) {
  Chan c(1 << 16, kChunk, kChunk);
  write_chunked(c);
  auto m = c.r->read_message(1s);
  ASSERT_TRUE(m.ok()) << to_string(m.error());
  EXPECT_FALSE(m->zero_copy());
  auto want = pattern(kMsg);
  ASSERT_EQ(m->size(), kMsg);
  EXPECT_EQ(std::memcmp(m->data().data(), want.data(), kMsg), 0);
}

TEST_P(HostileChunk, ReadMessageRejectsTheLie) {
  const ChunkLie& lie = GetParam();
  Chan c(1 << 16, kChunk, kChunk, /*max_message=*/500);
  write_chunked(c);
  lie.mutate(c);
  auto m = c.r->read_message(100ms);
  ASSERT_FALSE(m.ok()) << "a message was delivered from lying chunk headers (" << m->size() << " bytes)";
  EXPECT_EQ(m.error(), lie.expected) << to_string(m.error());
  if (lie.expected == Errc::corrupt) {
    EXPECT_EQ(c.r->read_message(10ms).error(), Errc::corrupt);
    EXPECT_EQ(c.r->read(10ms).error(), Errc::corrupt);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lies, HostileChunk,
    ::testing::Values(
        // (The reader here accepts messages up to 500 bytes; the honest message is 1000, so every
        // lie that keeps message_size at 1000 would give message_too_large: those lies use the
        // second suite below with the default limit.)
        ChunkLie{"message_size_above_max_message",
                 [](Chan&) {},  // 1000 > 500
                 Errc::message_too_large},
        ChunkLie{"message_size_huge",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).message_size = 1ull << 62;
                 },
                 Errc::message_too_large},
        ChunkLie{"message_size_max",
                 [](Chan& c) { c.chunk_hdr(0).message_size = ~0ull; },
                 Errc::message_too_large}),
    [](const ::testing::TestParamInfo<ChunkLie>& p) { return std::string(p.param.name); });

class HostileChunkDefaultLimit : public ::testing::TestWithParam<ChunkLie> {};

TEST_P(HostileChunkDefaultLimit, ReadMessageRejectsTheLie) {
  const ChunkLie& lie = GetParam();
  Chan c(1 << 16, kChunk, kChunk);
  write_chunked(c);
  lie.mutate(c);
  auto m = c.r->read_message(100ms);
  ASSERT_FALSE(m.ok()) << "a message was delivered from lying chunk headers (" << m->size() << " bytes)";
  EXPECT_EQ(m.error(), lie.expected) << to_string(m.error());
  if (lie.expected == Errc::corrupt) {
    EXPECT_EQ(c.r->read_message(10ms).error(), Errc::corrupt);
    EXPECT_EQ(c.r->read(10ms).error(), Errc::corrupt);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lies, HostileChunkDefaultLimit,
    ::testing::Values(
        ChunkLie{"index_skips", [](Chan& c) { c.chunk_hdr(kChunkPos[1]).index = 2; }, Errc::corrupt},
        ChunkLie{"index_repeats", [](Chan& c) { c.chunk_hdr(kChunkPos[2]).index = 1; }, Errc::corrupt},
        ChunkLie{"index_goes_back_to_zero_mid_message",
                 [](Chan& c) {
                   // A restart with index 0 drops the partial message; the restarted one then
                   // continues with index 3: out of order.
                   c.chunk_hdr(kChunkPos[2]).index = 0;
                 },
                 Errc::corrupt},
        ChunkLie{"index_beyond_count", [](Chan& c) { c.chunk_hdr(kChunkPos[4]).index = 9; }, Errc::corrupt},
        ChunkLie{"count_changes", [](Chan& c) { c.chunk_hdr(kChunkPos[2]).count = 6; }, Errc::corrupt},
        ChunkLie{"count_shrinks_mid_message", [](Chan& c) { c.chunk_hdr(kChunkPos[3]).count = 4; }, Errc::corrupt},
        ChunkLie{"count_zero", [](Chan& c) { c.chunk_hdr(kChunkPos[0]).count = 0; }, Errc::corrupt},
        ChunkLie{"count_smaller_everywhere",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).count = 3;
                 },
                 Errc::corrupt},
        ChunkLie{"message_size_zero", [](Chan& c) { c.chunk_hdr(kChunkPos[0]).message_size = 0; }, Errc::corrupt},
        ChunkLie{"message_size_smaller_than_first_chunk",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).message_size = 100;
                 },
                 Errc::corrupt},
        ChunkLie{"message_size_smaller_than_data",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).message_size = kMsg - 1;
                 },
                 Errc::corrupt},
        ChunkLie{"message_size_larger_than_data",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).message_size = kMsg + 1;
                 },
                 Errc::corrupt},
        ChunkLie{"message_size_changes", [](Chan& c) { c.chunk_hdr(kChunkPos[3]).message_size = kMsg + 16; },
                 Errc::corrupt},
        ChunkLie{"message_size_above_default_max",
                 [](Chan& c) {
                   for (uint64_t p : kChunkPos) c.chunk_hdr(p).message_size = (1ull << 32) + 1;
                 },
                 Errc::message_too_large}),
    [](const ::testing::TestParamInfo<ChunkLie>& p) { return std::string(p.param.name); });

TEST(HostileChunkFlow, CountLargerEverywhereWaitsThenRecoversOnTheNextMessage) {
  Chan c(1 << 16, kChunk, kChunk);
  write_chunked(c);
  for (uint64_t p : kChunkPos) c.chunk_hdr(p).count = 6;
  auto m = c.r->read_message(50ms);
  EXPECT_EQ(m.error(), Errc::timeout);
  // The writer moves on to a small message: the half-assembled one is dropped, not delivered.
  auto r = c.w->write_message(std::as_bytes(std::span("next", 4)), 1s);
  ASSERT_TRUE(r.ok());
  auto n = c.r->read_message(1s);
  ASSERT_TRUE(n.ok()) << to_string(n.error());
  EXPECT_EQ(n->size(), 4u);
  EXPECT_EQ(c.r->dropped_partial_messages(), 1u);
}

TEST(HostileChunkFlow, TooLargeMessageIsSkippedAndTheNextOneIsDelivered) {
  Chan c(1 << 16, kChunk, kChunk, /*max_message=*/500);
  write_chunked(c);
  auto big = c.r->read_message(1s);
  EXPECT_EQ(big.error(), Errc::message_too_large);
  auto small = pattern(300, 3);
  ASSERT_TRUE(c.w->write_message(small, 1s).ok());
  auto m = c.r->read_message(1s);
  ASSERT_TRUE(m.ok()) << to_string(m.error());
  ASSERT_EQ(m->size(), small.size());
  EXPECT_EQ(std::memcmp(m->data().data(), small.data(), small.size()), 0);
}

// A single 32-byte chunk frame that claims a huge (but allowed) message size must not make the
// reader commit that much memory before the data actually arrives: otherwise one flipped byte in
// shared memory costs the reader gigabytes (the default limit is 4 GiB).
TEST(HostileChunkFlow, LyingMessageSizeDoesNotMakeTheReaderAllocateIt) {
  constexpr uint64_t kLie = 256ull << 20;
  for (bool huge_count : {false, true}) {
    SCOPED_TRACE(huge_count ? "count = 2^32-1" : "count = 5");
    Chan c(1 << 16, kChunk, kChunk);
    write_chunked(c);
    c.chunk_hdr(kChunkPos[0]).message_size = kLie;
    if (huge_count) c.chunk_hdr(kChunkPos[0]).count = 0xFFFFFFFFu;
    const int64_t before = vm_rss_bytes();
    auto m = c.r->read_message(100ms);
    const int64_t after = vm_rss_bytes();
    EXPECT_EQ(m.error(), Errc::corrupt);
    EXPECT_LT(after - before, int64_t{32} << 20)
        << "reading one lying chunk header grew the reader's RSS by " << ((after - before) >> 20) << " MiB";
  }
}

// ---------------------------------------------------------------------------------------------
// A header rewritten while another process opens the segment: validation must apply to the
// values that are then used (read once, validate, use the copy), or a racing peer gets a
// validated header swapped under the opener.

TEST(HostileSegment, HeaderRewrittenDuringOpenNeverCrashes) {
  TempName name("toctou");
  constexpr uint64_t kGoodCap = 1 << 16;
  {
    SegmentConfig cfg;
    cfg.ring_capacity = kGoodCap;
    Segment s = Segment::create(name, cfg);
  }
  // The opener runs in a child so that a crash is a test failure, not the end of the test run.
  // Exit codes: 0 fine, 92 open returned a ring that does not fit its mapping, 9x setup failures.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(("/dev/shm/flatlane." + name.str()).c_str(), O_RDWR);
    if (fd < 0) ::_exit(90);
    void* m = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) ::_exit(91);
    auto* h = static_cast<wire::SegmentHeader*>(m);
    // The peer flips between the real geometry and a self-consistent but much larger one (which
    // on its own open rejects as truncated: the file is only 68 KiB).
    constexpr uint64_t kBadCap = 1ull << 30;
    std::atomic<bool> stop{false};
    std::atomic<bool> started{false};
    // Opener and flipper on different CPUs, so that on a busy machine they still run at the same
    // time instead of taking turns on one CPU (which would hide the race).
    auto pin = [](int cpu) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      (void)::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
    };
    const bool can_pin = std::thread::hardware_concurrency() >= 2;
    if (can_pin) pin(0);
    std::thread flipper([&] {
      if (can_pin) pin(1);
      std::atomic_ref<uint64_t> cap(h->ring_capacity);
      std::atomic_ref<uint64_t> size(h->segment_size);
      started = true;
      while (!stop.load(std::memory_order_relaxed)) {
        cap.store(kBadCap, std::memory_order_relaxed);
        size.store(wire::kHeaderRegionSize + kBadCap, std::memory_order_relaxed);
        cap.store(kGoodCap, std::memory_order_relaxed);
        size.store(wire::kHeaderRegionSize + kGoodCap, std::memory_order_relaxed);
      }
    });
    while (!started) std::this_thread::yield();
    int code = 0;
    const auto end = std::chrono::steady_clock::now() + 1500ms;
    while (code == 0 && std::chrono::steady_clock::now() < end) {
      try {
        Segment s = Segment::open(name, {});
        // Whatever open accepted, the ring it hands out must lie inside the mapping it made.
        if (s.ring_capacity() != kGoodCap || wire::kHeaderRegionSize + s.ring_capacity() > s.size()) code = 92;
      } catch (const Error&) {
        // corrupt / truncated while the values are being flipped: fine
      }
    }
    stop = true;
    flipper.join();
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) {
    ADD_FAILURE() << "Segment::open crashed with signal " << WTERMSIG(status) << " (" << strsignal(WTERMSIG(status))
                  << ") while a peer rewrote ring_capacity / segment_size";
  } else {
    EXPECT_NE(WEXITSTATUS(status), 92) << "Segment::open returned a ring_capacity other than the one it validated "
                                          "(larger than its mapping)";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child exit status (ASan reports exit with 1)";
  }
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random bytes of the header page and the ring change between operations of a live channel.

TEST(HostileFuzz, RandomMutationsNeverCrashOrEscapeTheRing) {
  constexpr int kIterations = 200000;
  std::mt19937_64 rng(0x5eed'f1a7'1a4eull);
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };

  struct Counters {
    uint64_t frames = 0, messages = 0, written = 0, corrupt_reads = 0, corrupt_writes = 0, too_large = 0,
             other_errors = 0, channels = 0, mutations = 0;
  } n;

  std::unique_ptr<Chan> c;
  std::vector<Frame> held;
  uint64_t ops_on_channel = 0;
  uint64_t mutation_rate = 28;  // percent of operations that scribble on shared memory
  auto fresh = [&] {
    held.clear();  // frames must go before their reader
    c.reset();
    const uint64_t cap = (rng() & 1) ? 4096 : 8192;
    const uint32_t max_frame = (rng() & 1) ? 0 : 256;
    const uint32_t chunk = max_frame ? 64 : 0;
    c = std::make_unique<Chan>(cap, max_frame, chunk, /*max_message=*/1 << 20);
    ++n.channels;
    ops_on_channel = 0;
    // Some channels are scribbled on rarely (long runs of traffic between lies), some often.
    const uint64_t rates[] = {1, 5, 28};
    mutation_rate = rates[pick(3)];
  };
  auto check_frame = [&](const Frame& f) {
    ASSERT_TRUE(c->in_reader_ring(f.data())) << "frame of " << f.size() << " bytes outside the ring";
    ASSERT_LE(f.size(), c->w->max_frame_payload());
    if (f.chunked()) {
      ASSERT_TRUE(c->in_reader_ring({f.ptr() - wire::kChunkHeaderSize, f.size() + wire::kChunkHeaderSize}));
    }
  };
  auto settle = [&](Errc e, bool reading) {
    if (e == Errc::ok || e == Errc::timeout) return;
    if (e == Errc::message_too_large) {
      ++n.too_large;
      return;
    }
    if (e == Errc::corrupt) ++(reading ? n.corrupt_reads : n.corrupt_writes);
    else ++n.other_errors;  // peer_dead / peer_closed from a scribbled endpoint block
    fresh();
  };

  fresh();
  const auto start = std::chrono::steady_clock::now();
  for (int it = 0; it < kIterations; ++it) {
    if (++ops_on_channel > 500) fresh();
    const uint64_t op = pick(100) < mutation_rate ? 100 : pick(72);
    const auto tmo = pick(50) == 0 ? std::chrono::nanoseconds(100us) : std::chrono::nanoseconds(0);
    if (op < 25) {
      const size_t want = pick(4) == 0 ? pick(c->w->max_frame_payload() + 1) : pick(48);
      auto s = c->w->reserve(want, tmo);
      if (s) {
        ASSERT_GE(s->data(), c->ring());
        ASSERT_LE(s->data() + s->size(), c->ring() + c->cap());
        std::memset(s->data(), static_cast<int>(pick(256)), s->size());
        if (pick(10) == 0) {
          c->w->abort();
        } else {
          c->w->commit(pick(want + 1));
          ++n.written;
        }
      } else {
        settle(s.error(), false);
      }
    } else if (op < 33) {
      std::vector<std::byte> msg(pick(3 * c->w->max_frame_payload()), std::byte{0x5A});
      settle(c->w->write_message(msg, tmo).error(), false);
    } else if (op < 55) {
      auto f = c->r->read(tmo);
      if (f) {
        check_frame(*f);
        ++n.frames;
        if (held.size() < 8 && pick(2) == 0) held.push_back(std::move(f).value());
      } else {
        settle(f.error(), true);
      }
    } else if (op < 65) {
      auto m = c->r->read_message(tmo);
      if (m) {
        ++n.messages;
        if (m->zero_copy()) {
          ASSERT_TRUE(c->in_reader_ring(m->data()));
        } else {
          ASSERT_LE(m->size(), 1u << 20);
        }
      } else {
        settle(m.error(), true);
      }
    } else if (op < 72) {
      if (!held.empty()) held.erase(held.begin() + static_cast<std::ptrdiff_t>(pick(held.size())));
    } else {
      // Mutate shared memory.
      ++n.mutations;
      std::byte* base = c->seg().base();
      const uint64_t cap = c->cap();
      const uint64_t which = pick(100);
      const auto rnd_byte = [&] { return static_cast<std::byte>(pick(256)); };
      if (which < 30) {
        // Anywhere in the ring.
        c->ring()[pick(cap)] = rnd_byte();
      } else if (which < 60) {
        // A frame-header-sized slot in or near the live region, where headers sit.
        const uint64_t lo = c->rb().pos.load(std::memory_order_relaxed);
        const uint64_t hi = c->wb().pos.load(std::memory_order_relaxed) + 64;
        const uint64_t span = hi > lo ? std::min<uint64_t>(hi - lo, cap) : 64;
        const uint64_t slot = wire::align_up(lo + pick(span), 16);
        c->ring()[(slot + pick(16)) & (cap - 1)] = rnd_byte();
      } else if (which < 75) {
        // The positions: a byte flip, or a small nudge.
        auto& blk = pick(2) ? c->wb() : c->rb();
        if (pick(2)) {
          reinterpret_cast<std::byte*>(&blk)[pick(8)] = rnd_byte();
        } else {
          const uint64_t delta = pick(5) * 16 + (pick(3) == 0 ? pick(16) : 0);
          blk.pos.store(pick(2) ? blk.pos.load() + delta : blk.pos.load() - delta);
        }
      } else if (which < 90) {
        // The rest of the endpoint blocks and the event counts.
        base[wire::kWriterBlockOffset + pick(512)] = rnd_byte();
      } else {
        // Anywhere in the header page.
        base[pick(wire::kHeaderRegionSize)] = rnd_byte();
      }
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  held.clear();
  c.reset();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "fuzz: %d iterations in %.2f s, %llu channels, %llu mutations, %llu frames written, %llu frames and %llu "
      "messages delivered, corrupt detected %llu on read / %llu on write, %llu too large, %llu other errors\n",
      kIterations, secs, static_cast<unsigned long long>(n.channels), static_cast<unsigned long long>(n.mutations),
      static_cast<unsigned long long>(n.written), static_cast<unsigned long long>(n.frames),
      static_cast<unsigned long long>(n.messages), static_cast<unsigned long long>(n.corrupt_reads),
      static_cast<unsigned long long>(n.corrupt_writes), static_cast<unsigned long long>(n.too_large),
      static_cast<unsigned long long>(n.other_errors));
  // The fuzz must actually exercise both the happy path and the corruption checks.
  EXPECT_GT(n.frames, 1000u);
  EXPECT_GT(n.corrupt_reads, 50u);
}
