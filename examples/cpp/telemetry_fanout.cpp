// Example: robot telemetry over publish/subscribe (robot.Telemetry from robot_cell.fbs).
//
//   build/examples/cpp/flatlane_example_telemetry [messages]
//
// The generated robot::ArmTopics::telemetry Publisher builds each Telemetry message in a loaned
// slot of its pool and publishes it to three generated Subscriber processes: a fast one that sees
// everything (block_publisher), a slow one that keeps only the newest (drop_oldest, its drop
// counter says how many it lost), and a late joiner that starts at the newest message plus the 4
// retained ones. Every subscriber gets a verified view of the slot; nobody copies a message.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

using Telemetry = robot::ArmTopics::telemetry;  // generated: Publisher / Subscriber of robot.Telemetry

// Small slots and a short history for the example (the schema's defaults are 64 KiB slots).
flatlane::EndpointOptions options(const std::string& name) {
  flatlane::EndpointOptions o;
  o.name = name;
  o.max_message = 512;  // the slot size
  o.slot_count = 64;
  o.queue_depth = 16;
  o.history = 4;
  o.wait = flatlane::WaitStrategy::spin_then_sleep;  // the schema says busy_spin; be kind to a small VM
  return o;
}

// Reads until the publisher leaves; checks every message; prints a summary line.
int subscribe(const flatlane::EndpointOptions& o, const char* label, int pause_us) {
  Telemetry::Subscriber sub(o);
  std::printf("  %s attached\n", label);
  std::fflush(stdout);
  uint64_t got = 0, bad = 0, last = 0;
  for (;;) {
    auto m = sub.receive(5s);  // a verified robot::Telemetry over the publisher's slot
    if (!m && m.error() == flatlane::Errc::corrupt) {
      ++bad;
      continue;
    }
    if (!m) break;  // peer_closed once the publisher is done
    const auto* joints = (*m)->joint_positions();
    if (joints == nullptr || joints->size() != 6) ++bad;
    else last = static_cast<uint64_t>(joints->Get(0));
    ++got;
    if (pause_us) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
  const auto st = sub.stats();
  std::printf("  %-28s received %6llu, dropped %6llu, last sample %llu, bad %llu\n", label,
              static_cast<unsigned long long>(got), static_cast<unsigned long long>(st.dropped),
              static_cast<unsigned long long>(last), static_cast<unsigned long long>(bad));
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::string name = example::unique_name("telemetry");
  // The schema drops the oldest for late telemetry (flatlane_overflow: "drop_oldest"); this
  // publisher waits for its blocking subscriber instead, so that one sees everything.
  flatlane::EndpointOptions po = options(name);
  po.overflow = flatlane::Overflow::block;
  po.send_timeout = 1s;
  Telemetry::Publisher pub(po);
  std::printf("telemetry (publish/subscribe, robot.Telemetry, %d messages):\n", messages);

  flatlane::EndpointOptions fast = options(name), slow = options(name);
  fast.subscriber_mode = flatlane::SubscriberMode::block_publisher;
  slow.subscriber_mode = flatlane::SubscriberMode::drop_oldest;
  const pid_t a = example::spawn([&] { return subscribe(fast, "fast (block_publisher)", 0); });
  const pid_t b = example::spawn([&] { return subscribe(slow, "slow (drop_oldest)", 200); });
  while (pub.subscriber_count() < 2) std::this_thread::sleep_for(1ms);

  pid_t c = -1;
  for (int i = 0; i < messages; ++i) {
    if (i == messages / 2) {  // a late joiner: the newest message onwards, after 4 retained ones
      flatlane::EndpointOptions late = options(name);
      late.subscriber_mode = flatlane::SubscriberMode::drop_oldest;
      late.history_request = 4;
      c = example::spawn([&] { return subscribe(late, "late joiner (history 4)", 0); });
      while (pub.subscriber_count() < 3) std::this_thread::sleep_for(1ms);
    }
    auto r = pub.send([&](flatbuffers::FlatBufferBuilder& fbb) {  // built in the loaned slot
      const double joints[6] = {static_cast<double>(i), 0.1, 0.2, 0.3, 0.4, 0.5};
      return robot::CreateTelemetry(fbb, 0, nullptr, fbb.CreateVector(joints, 6), 0, robot::Mode_Auto);
    });
    if (!r) {
      std::printf("publish failed: %s\n", flatlane::to_string(r.error()));
      return 1;
    }
  }
  pub.close();  // subscribers see peer_closed after the last message
  const bool ok = example::wait_ok(a) && example::wait_ok(b) && (c < 0 || example::wait_ok(c));
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
