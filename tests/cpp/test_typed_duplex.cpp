// Generated in-place duplex endpoints (fltest::Inplace::invert over a 64 KiB ring): the client
// builds a Blob in the frame, the server verifies it and modifies it where it lies through
// FlatBuffers' mutable accessors, the client reads the same bytes back, verified.
#include "test_util.hpp"
#include "typed_test_util.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <thread>

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;
using Invert = fltest::Inplace::invert;

namespace {

EndpointOptions at(const TempName& n, OpenMode mode = OpenMode::create_or_open) {
  EndpointOptions o;
  o.name = n.str();
  o.mode = mode;
  return o;
}

flatbuffers::Offset<fltest::Blob> make_blob(flatbuffers::FlatBufferBuilder& b, uint64_t id, size_t n) {
  uint8_t* data = nullptr;
  auto vec = b.CreateUninitializedVector(n, &data);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    data[i] = static_cast<uint8_t>(mix64(id + i));
    sum += data[i];
  }
  return fltest::CreateBlob(b, id, vec, sum);
}

// What the servers do: invert every byte of the vector and rewrite the checksum, in place.
void invert_blob(fltest::Blob& blob) {
  auto* data = blob.mutable_data();
  uint64_t sum = 0;
  for (flatbuffers::uoffset_t i = 0; i < data->size(); ++i) {
    const auto v = static_cast<uint8_t>(~data->Get(i));
    data->Mutate(i, v);
    sum += v;
  }
  ASSERT_TRUE(blob.mutate_checksum(sum));
}

std::string check_inverted_blob(const fltest::Blob& blob, uint64_t id, size_t n) {
  if (blob.id() != id) return "id";
  if (!blob.data() || blob.data()->size() != n) return "size";
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (blob.data()->Get(static_cast<flatbuffers::uoffset_t>(i)) != static_cast<uint8_t>(~mix64(id + i)))
      return "byte " + std::to_string(i);
    sum += blob.data()->Get(static_cast<flatbuffers::uoffset_t>(i));
  }
  return sum == blob.checksum() ? "" : "checksum";
}

}  // namespace

TEST(TypedDuplex, TheServerModifiesTheMessageInTheClientsFrame) {
  TempName n;
  Invert::Client client(at(n));
  Invert::Server server(at(n, OpenMode::open));
  auto seq = client.send([](auto& b) { return make_blob(b, 42, 1000); });
  ASSERT_TRUE(seq.ok()) << to_string(seq.error());
  auto call = server.receive(1s);
  ASSERT_TRUE(call.ok()) << to_string(call.error());
  EXPECT_EQ(call->seq(), *seq);
  EXPECT_EQ(call->get()->id(), 42u);
  // The FlatBuffer lies inside the shared segment: zero copy on the server side.
  const std::byte* base = server.endpoint().segment().base();
  EXPECT_GE(call->bytes().data(), base);
  EXPECT_LE(call->bytes().data() + call->bytes().size(), base + server.endpoint().segment().size());
  const auto server_offset = call->bytes().data() - base;
  invert_blob(**call);
  ASSERT_TRUE(server.respond(*call).ok());
  auto reply = client.receive(1s);
  ASSERT_TRUE(reply.ok()) << to_string(reply.error());
  EXPECT_FALSE(reply->rejected());
  EXPECT_EQ(reply->seq(), *seq);
  EXPECT_EQ(check_inverted_blob(**reply, 42, 1000), "");
  // ... and the client reads it at the same offset: the response is the request frame.
  EXPECT_EQ(reply->bytes().data() - client.endpoint().segment().base(), server_offset);
}

TEST(TypedDuplex, PipelinedCallsWrapTheRingAndCorrelate) {
  TempName n;
  Invert::Client client(at(n));
  std::thread srv([&] {
    Invert::Server server(at(n, OpenMode::open));
    for (int i = 0; i < 2000; ++i) {
      auto call = server.receive(5s);
      ASSERT_TRUE(call.ok()) << to_string(call.error());
      invert_blob(**call);
      ASSERT_TRUE(server.respond(*call).ok());
    }
  });
  std::deque<std::pair<uint64_t, size_t>> in_flight;  // (id, size)
  uint64_t id = 0, done = 0;
  while (done < 2000) {
    while (id < 2000 && in_flight.size() < 4) {
      const size_t sz = static_cast<size_t>(mix64(id) % 6000);  // many laps of 64 KiB
      auto s = client.send([&](auto& b) { return make_blob(b, id, sz); });
      if (!s) break;  // ring full: receive first
      in_flight.emplace_back(id++, sz);
    }
    auto reply = client.receive(5s);
    ASSERT_TRUE(reply.ok()) << to_string(reply.error());
    ASSERT_EQ(check_inverted_blob(**reply, in_flight.front().first, in_flight.front().second), "");
    in_flight.pop_front();
    ++done;
  }
  srv.join();
  EXPECT_EQ(client.outstanding(), 0u);
  EXPECT_EQ(client.endpoint().stats().occupancy_bytes, 0u);
}

TEST(TypedDuplex, LimitsAndVerification) {
  TempName n;
  Invert::Client client(at(n));
  Invert::Server server(at(n, OpenMode::open));
  // Larger than one frame of the 64 KiB ring: never chunked, a clear error, nothing sent.
  auto big = client.send([](auto& b) { return make_blob(b, 1, 40000); });
  EXPECT_EQ(big.error(), Errc::message_too_large);
  EXPECT_EQ(client.outstanding(), 0u);
  // A request whose bytes were damaged after it was built fails verification on the server,
  // which rejects it: the client is told instead of waiting.
  ASSERT_TRUE(client.send([](auto& b) { return make_blob(b, 2, 100); }).ok());
  // Corrupt the root offset of the message in place (the first 4 bytes of the FlatBuffer); it
  // is the first frame of the ring.
  auto* seg = client.endpoint().segment().base();
  auto* hdr = reinterpret_cast<wire::DuplexFrameHeader*>(seg + wire::kHeaderRegionSize);
  auto* payload = reinterpret_cast<std::byte*>(hdr) + wire::kDuplexFrameHeaderSize + hdr->request_offset;
  const uint32_t bad_root = 0x7ffffff0u;
  std::memcpy(payload, &bad_root, 4);
  EXPECT_EQ(server.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(server.stats().rejected, 1u);
  {
    auto reply = client.receive(1s);
    ASSERT_TRUE(reply.ok());
    EXPECT_TRUE(reply->rejected());
    EXPECT_EQ(reply->get(), nullptr);
  }
  // A server that damages the reply: the client's verifier catches it.
  ASSERT_TRUE(client.send([](auto& b) { return make_blob(b, 3, 100); }).ok());
  auto call = server.receive(1s);
  ASSERT_TRUE(call.ok());
  std::memcpy(call->bytes().data(), &bad_root, 4);
  ASSERT_TRUE(server.respond(*call).ok());
  EXPECT_EQ(client.receive(1s).error(), Errc::corrupt);
  EXPECT_EQ(client.stats().corrupt, 1u);
  EXPECT_EQ(client.endpoint().stats().occupancy_bytes, 0u);
}

TEST(TypedDuplex, AnotherMessageTypeCannotAttach) {
  TempName n;
  Invert::Client client(at(n));
  DuplexOptions o;
  o.mode = OpenMode::open;
  o.segment.type = {"fltest.Sample", MessageTraits<fltest::Sample>::type_hash};
  try {
    DuplexServer s(n, o);
    FAIL() << "attached with another type";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("fltest.Blob"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fltest.Sample"), std::string::npos) << e.what();
  }
}
