// Message contents the typed tests and peer_typed agree on: derived from an id, checkable on
// the other side without sending the expectation along.
#pragma once

#include "typed_test.flatlane.hpp"

#include <cstdint>
#include <string>

namespace flatlane::test {

inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::string sample_label(uint64_t id) { return "sample-" + std::to_string(id); }
inline size_t sample_values(uint64_t id) { return static_cast<size_t>(mix64(id) % 64); }
inline float sample_value(uint64_t id, size_t k) { return static_cast<float>(id) * 0.5f + static_cast<float>(k); }

inline flatbuffers::Offset<fltest::Sample> build_sample(flatbuffers::FlatBufferBuilder& b, uint64_t id,
                                                         size_t n_values) {
  float* values = nullptr;
  auto vec = b.CreateUninitializedVector(n_values, &values);  // written in place, in the frame
  for (size_t k = 0; k < n_values; ++k) values[k] = sample_value(id, k);
  auto label = b.CreateString(sample_label(id));
  const fltest::Vec3 pos(static_cast<double>(id), -static_cast<double>(id), 0.25);
  return fltest::CreateSample(b, id, label, &pos, vec);
}
inline flatbuffers::Offset<fltest::Sample> build_sample(flatbuffers::FlatBufferBuilder& b, uint64_t id) {
  return build_sample(b, id, sample_values(id));
}

// Empty string if the sample is what build_sample(id, n_values) made, else what differs.
inline std::string check_sample(const fltest::Sample& s, uint64_t id, size_t n_values) {
  if (s.id() != id) return "id " + std::to_string(s.id()) + " != " + std::to_string(id);
  if (!s.label() || s.label()->str() != sample_label(id)) return "label of " + std::to_string(id);
  if (!s.position() || s.position()->x() != static_cast<double>(id) || s.position()->z() != 0.25)
    return "position of " + std::to_string(id);
  if (!s.values() || s.values()->size() != n_values) return "values size of " + std::to_string(id);
  for (size_t k = 0; k < n_values; ++k)
    if (s.values()->Get(static_cast<flatbuffers::uoffset_t>(k)) != sample_value(id, k))
      return "value " + std::to_string(k) + " of " + std::to_string(id);
  return {};
}
inline std::string check_sample(const fltest::Sample& s, uint64_t id) { return check_sample(s, id, sample_values(id)); }

// Sizes of the blobs peer_typed pushes: 0 .. 200 KiB, most larger than a 64 KiB ring's frame.
inline size_t blob_size(uint64_t id) { return static_cast<size_t>(mix64(id) % (200 * 1024)); }

inline uint8_t blob_byte(uint64_t id, size_t i) { return static_cast<uint8_t>(mix64(id * 1'000'003 + i / 8) >> (8 * (i % 8))); }

inline flatbuffers::Offset<fltest::Blob> build_blob(flatbuffers::FlatBufferBuilder& b, uint64_t id, size_t size) {
  uint8_t* data = nullptr;
  auto vec = b.CreateUninitializedVector(size, &data);
  uint64_t sum = 0;
  for (size_t i = 0; i < size; ++i) {
    data[i] = blob_byte(id, i);
    sum = sum * 31 + data[i];
  }
  return fltest::CreateBlob(b, id, vec, sum);
}

inline std::string check_blob(const fltest::Blob& m, uint64_t id, size_t size) {
  if (m.id() != id) return "blob id " + std::to_string(m.id()) + " != " + std::to_string(id);
  if (!m.data() || m.data()->size() != size) return "blob size of " + std::to_string(id);
  uint64_t sum = 0;
  for (size_t i = 0; i < size; ++i) {
    const uint8_t v = m.data()->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (v != blob_byte(id, i)) return "blob byte " + std::to_string(i) + " of " + std::to_string(id);
    sum = sum * 31 + v;
  }
  if (sum != m.checksum()) return "blob checksum of " + std::to_string(id);
  return {};
}

}  // namespace flatlane::test
