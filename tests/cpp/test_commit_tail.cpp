// commit_tail(): publishing the end of a reservation, where a FlatBuffers builder leaves its
// finished buffer, without moving it.
#include <gtest/gtest.h>

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "test_util.hpp"

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

TEST(CommitTail, PublishesTheTailInPlaceAtEveryOffsetAndSize) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 8192));
  Reader r(name, opts(OpenMode::open));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20000; ++i) {
    const size_t n = (rng() % 200) * 8;  // builders reserve in multiples of their alignment
    auto span = w.reserve(n, 1s);
    ASSERT_TRUE(span.ok());
    const size_t used = n == 0 ? 0 : (rng() % (n / 8 + 1)) * 8;
    std::byte* tail = span->data() + n - used;
    for (size_t k = 0; k < used; ++k) tail[k] = static_cast<std::byte>(i + k);
    w.commit_tail(used);
    auto f = r.read(0ns);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at " << i;
    ASSERT_EQ(f->size(), used);
    if (used) {
      // Zero copy: the very same bytes (writer and reader map the segment at different addresses).
      EXPECT_EQ(f->ptr() - r.segment().ring(), tail - w.segment().ring()) << "payload moved";
    }
    for (size_t k = 0; k < used; ++k) ASSERT_EQ(f->ptr()[k], static_cast<std::byte>(i + k));
  }
  EXPECT_EQ(w.stats().occupancy_bytes, 0u);
}

namespace {

// Hands the builder the reserved frame and nothing else: it builds in shared memory, and running
// out of room is an error instead of a silent move to the heap.
class FrameAllocator : public flatbuffers::Allocator {
 public:
  explicit FrameAllocator(std::span<std::byte> frame) : frame_(frame) {}
  uint8_t* allocate(size_t size) override {
    if (size > frame_.size()) throw std::length_error("message does not fit the frame");
    return reinterpret_cast<uint8_t*>(frame_.data());
  }
  void deallocate(uint8_t*, size_t) override {}
  uint8_t* reallocate_downward(uint8_t*, size_t, size_t, size_t, size_t) override {
    throw std::length_error("message outgrew its frame");
  }

 private:
  std::span<std::byte> frame_;
};

}  // namespace

TEST(CommitTail, FlatBufferBuiltInTheFrameIsReadInPlace) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 1 << 16));
  Reader r(name, opts(OpenMode::open));
  for (int i = 0; i < 500; ++i) {
    auto span = w.reserve(1024);
    ASSERT_TRUE(span.ok());
    FrameAllocator alloc(*span);
    flatbuffers::FlatBufferBuilder fbb(span->size(), &alloc, false);
    auto text = fbb.CreateString("message " + std::to_string(i));
    const auto start = fbb.StartTable();
    fbb.AddElement<int32_t>(4, i, -1);  // field 0 (default -1, so 0 is stored too)
    fbb.AddOffset(6, text);            // field 1
    fbb.Finish(flatbuffers::Offset<flatbuffers::Table>(fbb.EndTable(start)));
    const uint8_t* built = fbb.GetBufferPointer();
    // The finished buffer ends exactly at the end of the reserved frame: nothing to copy.
    ASSERT_EQ(reinterpret_cast<const std::byte*>(built) + fbb.GetSize(), span->data() + span->size());
    w.commit_tail(fbb.GetSize());

    auto f = r.read(1s);
    ASSERT_TRUE(f.ok());
    ASSERT_EQ(f->ptr() - r.segment().ring(), reinterpret_cast<const std::byte*>(built) - w.segment().ring());
    flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(f->ptr()), f->size());
    const auto* table = flatbuffers::GetRoot<flatbuffers::Table>(f->ptr());
    ASSERT_TRUE(table->VerifyTableStart(v));
    ASSERT_TRUE(table->VerifyField<int32_t>(v, 4, 4));
    ASSERT_TRUE(table->VerifyOffset(v, 6));
    EXPECT_EQ(table->GetField<int32_t>(4, -1), i);
    const auto* s = table->GetPointer<const flatbuffers::String*>(6);
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(v.VerifyString(s));
    EXPECT_EQ(s->str(), "message " + std::to_string(i));
  }
}

// Writer and reader in two threads: commits with a wrap padding and a gap padding in front of the
// frame are found through their commit words while the writer's position still lags behind.
TEST(CommitTail, ConcurrentReaderSeesEveryTailIntact) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 4096, WaitStrategy::busy_spin));
  Reader r(name, opts(OpenMode::open, 4096, WaitStrategy::busy_spin));
  constexpr int kMessages = 100000;
  std::thread producer([&] {
    std::mt19937_64 rng(11);
    for (int i = 0; i < kMessages; ++i) {
      const size_t n = (rng() % 100) * 8;
      auto span = w.reserve(n, 5s);
      ASSERT_TRUE(span.ok());
      const size_t used = n == 0 ? 0 : (rng() % (n / 8 + 1)) * 8;
      std::byte* tail = span->data() + n - used;
      for (size_t k = 0; k < used; ++k) tail[k] = static_cast<std::byte>(i * 7 + k);
      w.commit_tail(used);
    }
  });
  std::mt19937_64 rng(11);
  for (int i = 0; i < kMessages; ++i) {
    const size_t n = (rng() % 100) * 8;
    const size_t used = n == 0 ? 0 : (rng() % (n / 8 + 1)) * 8;
    auto f = r.read(5s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at message " << i;
    ASSERT_EQ(f->size(), used);
    for (size_t k = 0; k < used; ++k) ASSERT_EQ(f->ptr()[k], static_cast<std::byte>(i * 7 + k));
  }
  producer.join();
}

// Fronts up to 2047 bytes travel as the frame's lead (one record); longer ones become a padding
// record in front of the frame. Both, mixed at random, with a concurrent reader.
TEST(CommitTail, ShortAndLongLeadsBothArriveIntact) {
  TempName name;
  Writer w(name, opts(OpenMode::create, 1 << 16, WaitStrategy::busy_spin));
  Reader r(name, opts(OpenMode::open, 1 << 16, WaitStrategy::busy_spin));
  EXPECT_EQ(wire::decode_lead(wire::encode_lead(2047)), 2047u);
  constexpr int kMessages = 20000;
  std::thread producer([&] {
    std::mt19937_64 rng(5);
    for (int i = 0; i < kMessages; ++i) {
      const size_t n = (rng() % 1500) * 8;  // up to 12 KiB: fronts on both sides of 2047
      auto span = w.reserve(n, 5s);
      ASSERT_TRUE(span.ok());
      const size_t used = n == 0 ? 0 : (rng() % (n / 8 + 1)) * 8;
      std::byte* tail = span->data() + n - used;
      for (size_t k = 0; k < used; ++k) tail[k] = static_cast<std::byte>(i * 13 + k);
      w.commit_tail(used);
    }
  });
  std::mt19937_64 rng(5);
  for (int i = 0; i < kMessages; ++i) {
    const size_t n = (rng() % 1500) * 8;
    const size_t used = n == 0 ? 0 : (rng() % (n / 8 + 1)) * 8;
    auto f = r.read(5s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at message " << i;
    ASSERT_EQ(f->size(), used);
    for (size_t k = 0; k < used; ++k) ASSERT_EQ(f->ptr()[k], static_cast<std::byte>(i * 13 + k));
  }
  producer.join();
}
