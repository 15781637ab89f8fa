// Example: robot telemetry over publish/subscribe (robot.Telemetry from robot_cell.fbs).
//
//   build/examples/cpp/flatlane_example_telemetry [messages]
//
// One publisher builds each Telemetry message in a slot of its pool and publishes it to three
// subscriber processes: a fast one that sees everything (block_publisher), a slow one that keeps
// only the newest (drop_oldest, its drop counter says how many it lost), and a late joiner that
// starts at the newest message plus the 4 retained ones. Nobody copies a message.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

flatlane::TopicOptions options() {
  flatlane::TopicOptions o;
  o.topic.slot_size = 512;
  o.topic.slot_count = 64;
  o.topic.queue_depth = 16;
  o.topic.history = 4;
  o.topic.type = {std::string(flatlane::MessageTraits<robot::Telemetry>::type_name),
                  flatlane::MessageTraits<robot::Telemetry>::type_hash};
  o.wait.strategy = flatlane::WaitStrategy::spin_then_sleep;
  return o;
}

// Reads until the publisher leaves; checks every message; prints a summary line.
int subscribe(const std::string& name, const char* label, flatlane::TopicOptions o, int pause_us) {
  flatlane::TopicSubscriber sub(name, o);
  std::printf("  %s attached\n", label);
  std::fflush(stdout);
  uint64_t got = 0, bad = 0, last = 0;
  for (;;) {
    auto s = sub.receive(5s);
    if (!s) break;  // peer_closed once the publisher is done
    const auto* t = example::root_of<robot::Telemetry>(*s);
    if (t == nullptr || t->joint_positions() == nullptr || t->joint_positions()->size() != 6) ++bad;
    else last = static_cast<uint64_t>(t->joint_positions()->Get(0));
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
  flatlane::TopicPublisher pub(name, options());
  std::printf("telemetry (publish/subscribe, robot.Telemetry, %d messages):\n", messages);

  flatlane::TopicOptions fast = options();
  fast.subscriber_mode = flatlane::SubscriberMode::block_publisher;
  const pid_t a = example::spawn([&] { return subscribe(name, "fast (block_publisher)", fast, 0); });
  const pid_t b = example::spawn([&] { return subscribe(name, "slow (drop_oldest)", options(), 200); });
  while (pub.subscriber_count() < 2) std::this_thread::sleep_for(1ms);

  pid_t c = -1;
  for (int i = 0; i < messages; ++i) {
    if (i == messages / 2) {  // a late joiner: the newest message onwards, after 4 retained ones
      flatlane::TopicOptions late = options();
      late.history_request = 4;
      c = example::spawn([&] { return subscribe(name, "late joiner (history 4)", late, 0); });
      while (pub.subscriber_count() < 3) std::this_thread::sleep_for(1ms);
    }
    auto r = example::publish_built<robot::Telemetry>(pub, [&](flatbuffers::FlatBufferBuilder& fbb) {
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
