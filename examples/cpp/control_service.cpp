// Example: a control service over request/reply (schema/examples/robot_cell.fbs, robot.Control).
//
//   build/examples/cpp/flatlane_example_control [calls]
//
// A server process answers SetMode (the previous mode comes back) and PlanTrajectory (a stream
// of waypoints, the last one marked). The client calls SetMode `calls` times, checking every
// answer, then asks for a 5-point trajectory, and prints the round-trip latency.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>

using namespace std::chrono_literals;
namespace ctl = robot::Control;

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  flatlane::EndpointOptions o;
  o.wait = flatlane::WaitStrategy::spin_then_sleep;
  flatlane::EndpointOptions set_mode = o, plan = o;
  set_mode.name = example::unique_name("setmode");
  plan.name = example::unique_name("plan");

  // The server process says when it is attached, so the first call finds it.
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  const pid_t server = example::spawn([&] {
    ctl::SetMode::Server modes(set_mode);
    ctl::PlanTrajectory::Server trajectories(plan);
    (void)!::write(ready[1], "r", 1);
    robot::Mode current = robot::Mode_Idle;
    for (int i = 0; i < calls; ++i) {
      auto req = modes.receive(10s);
      if (!req) return 2;
      const robot::Mode previous = current;
      current = (*req)->mode();
      (void)modes.reply(*req, [&](auto& b) { return robot::CreateSetModeReply(b, true, previous); });
    }
    auto req = trajectories.receive(10s);
    if (!req) return 3;
    const uint32_t n = (*req)->max_points();
    for (uint32_t k = 0; k < n; ++k) {
      const bool last = k + 1 == n;
      (void)trajectories.reply(
          *req, [&](auto& b) { return robot::CreateWaypoint(b, k, nullptr, 0.1 * k, last); }, !last);
    }
    return 0;
  });
  char c;
  if (::read(ready[0], &c, 1) != 1) return 1;

  ctl::SetMode::Client client(set_mode);
  std::vector<uint64_t> rtt;
  rtt.reserve(static_cast<size_t>(calls));
  robot::Mode sent = robot::Mode_Idle;
  int wrong = 0;
  for (int i = 0; i < calls; ++i) {
    const robot::Mode next = static_cast<robot::Mode>((i % 2) + 1);  // Manual, Auto, Manual, ...
    const uint64_t t0 = example::now_ns();
    auto rep = client.call([&](auto& b) { return robot::CreateSetModeRequestDirect(b, next, "example"); }, 5s);
    rtt.push_back(example::now_ns() - t0);
    if (!rep || !(*rep)->accepted() || (*rep)->previous() != sent) ++wrong;
    sent = next;
  }
  ctl::PlanTrajectory::Client planner(plan);
  auto id = planner.send([](auto& b) { return robot::CreateTrajectoryRequest(b, nullptr, 5); });
  int points = 0;
  bool ended = false;
  while (id && !ended) {
    auto wp = planner.receive(*id, 5s);
    if (!wp) break;
    ++points;
    ended = !wp->more() && (*wp)->last();
  }
  const bool server_ok = example::wait_ok(server);
  std::printf("control service (request/reply, robot.Control):\n");
  std::printf("  SetMode: %d calls, %d wrong; round trip p50 %.2f us, p99 %.2f us\n", calls, wrong,
              example::percentile_us(rtt, 0.5), example::percentile_us(rtt, 0.99));
  std::printf("  PlanTrajectory: %d streamed waypoints, last one marked: %s\n", points, ended ? "yes" : "no");
  const bool ok = wrong == 0 && points == 5 && ended && server_ok;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
