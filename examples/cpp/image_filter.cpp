// Example: an image filter over in-place duplex (schema/examples/robot_cell.fbs, robot.ImageFilter).
//
//   build/examples/cpp/flatlane_example_image_filter [frames] [width] [height]
//
// A camera process (this one) builds each robot.Image directly in the 32 MiB duplex ring; a
// filter process receives a mutable view of it, blurs the pixels where they lie (a 3-tap
// horizontal box blur, row by row) and hands the same frame back. No pixel is copied between the
// processes, and the ring holds each image once. Up to three images are in flight; every blurred
// image is checked against the blur computed here, and the round trip is printed.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>
#include <cstring>
#include <deque>

using namespace std::chrono_literals;
using Blur = robot::ImageFilter::blur;

namespace {

uint8_t pixel(uint64_t frame, size_t i) { return static_cast<uint8_t>((frame * 29 + i * 7 + i / 640) & 0xFF); }

// In place: each row keeps a copy of its left neighbour's old value in a register.
void blur_row(uint8_t* row, size_t width, size_t channels) {
  for (size_t c = 0; c < channels; ++c) {
    uint8_t left = row[c];
    for (size_t x = 0; x < width; ++x) {
      const size_t i = x * channels + c;
      const uint8_t here = row[i];
      const uint8_t right = x + 1 < width ? row[i + channels] : here;
      row[i] = static_cast<uint8_t>((left + here + right) / 3);
      left = here;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int frames = argc > 1 ? std::atoi(argv[1]) : 300;
  const uint32_t width = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 640;
  const uint32_t height = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 480;
  constexpr uint32_t kChannels = 3;  // Rgb8
  const size_t bytes = size_t{width} * height * kChannels;
  flatlane::EndpointOptions o;
  o.name = example::unique_name("imagefilter");

  int ready[2];
  if (::pipe(ready) != 0) return 1;
  const pid_t filter = example::spawn([&] {
    Blur::Server server(o);
    (void)!::write(ready[1], "r", 1);
    for (int i = 0; i < frames; ++i) {
      auto call = server.receive(10s);
      if (!call) return 2;
      robot::Image& img = **call;
      auto* px = img.mutable_pixels();  // a mutable view into the camera's frame
      const size_t row_bytes = size_t{img.stride()};
      if (!px || row_bytes < size_t{img.width()} * kChannels ||
          px->size() < row_bytes * img.height())
        return 3;
      for (uint32_t y = 0; y < img.height(); ++y) blur_row(px->data() + y * row_bytes, img.width(), kChannels);
      if (!server.respond(*call)) return 4;
    }
    return 0;
  });
  char c;
  if (::read(ready[0], &c, 1) != 1) return 1;

  Blur::Client camera(o);
  std::vector<uint8_t> expected(bytes);
  std::deque<std::pair<uint64_t, uint64_t>> in_flight;  // (frame number, send time)
  std::vector<uint64_t> rtt;
  int wrong = 0, got = 0;
  uint64_t next = 0;
  const uint64_t t_start = example::now_ns();
  while (got < frames) {
    while (next < static_cast<uint64_t>(frames) && in_flight.size() < 3) {
      const uint64_t t0 = example::now_ns();
      auto seq = camera.send([&](flatbuffers::FlatBufferBuilder& b) {
        uint8_t* px = nullptr;
        auto pixels = b.CreateUninitializedVector(bytes, &px);  // the sensor writes into the ring
        for (size_t i = 0; i < bytes; ++i) px[i] = pixel(next, i);
        auto header = common::CreateHeader(b, next, static_cast<int64_t>(t0));
        return robot::CreateImage(b, header, width, height, width * kChannels, robot::PixelFormat_Rgb8, pixels);
      });
      if (!seq) break;  // ring full: take a reply first
      in_flight.emplace_back(next++, t0);
    }
    auto reply = camera.receive(10s);
    if (!reply || reply->rejected()) {
      std::printf("reply failed: %s\n", reply ? "rejected" : flatlane::to_string(reply.error()));
      return 1;
    }
    const uint64_t t1 = example::now_ns();
    const auto [frame, t0] = in_flight.front();
    in_flight.pop_front();
    rtt.push_back(t1 - t0);
    for (size_t i = 0; i < bytes; ++i) expected[i] = pixel(frame, i);
    for (uint32_t y = 0; y < height; ++y) blur_row(expected.data() + size_t{y} * width * kChannels, width, kChannels);
    const auto* px = (*reply)->pixels();
    if ((*reply)->header()->seq() != frame || !px || px->size() != bytes ||
        std::memcmp(px->data(), expected.data(), bytes) != 0)
      ++wrong;
    ++got;
  }
  const double secs = static_cast<double>(example::now_ns() - t_start) / 1e9;
  const bool filter_ok = example::wait_ok(filter);
  std::printf("image filter (in-place duplex, robot.ImageFilter.blur):\n");
  std::printf("  %d frames of %ux%u Rgb8 (%zu bytes) blurred in place by the filter process, %d wrong\n", frames,
              width, height, bytes, wrong);
  std::printf("  round trip incl. building and blurring p50 %.1f us, p99 %.1f us; %.0f frames/s with up to 3 in flight\n",
              example::percentile_us(rtt, 0.5), example::percentile_us(rtt, 0.99), frames / secs);
  const bool ok = wrong == 0 && filter_ok;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
