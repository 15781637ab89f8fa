// Example: planning jobs over push/pull (robot.PlanJob / robot.PlanResult from robot_cell.fbs).
//
//   build/examples/cpp/flatlane_example_workers [jobs]
//
// The dispatcher pushes PlanJob messages with the generated robot::Planners::jobs Pusher into a
// work queue; three worker processes pull them with the generated Puller (each job goes to exactly
// one worker, whoever is free) and push a PlanResult back on robot::Planners::results. The
// dispatcher checks that every job came back exactly once and prints how the work was shared.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

using Jobs = robot::Planners::jobs;        // generated: Pusher / Puller of robot.PlanJob
using Results = robot::Planners::results;  // generated: Pusher / Puller of robot.PlanResult

// Small slots for the example (the schema allows 16 MiB results); the schema's waits (blocking)
// and overflow (block) stay.
flatlane::EndpointOptions options(const std::string& name) {
  flatlane::EndpointOptions o;
  o.name = name;
  o.max_message = 512;
  o.slot_count = 64;
  o.queue_depth = 32;
  o.max_publishers = 4;
  o.send_timeout = 10s;
  return o;
}

int work(const std::string& jobs_name, const std::string& results_name, int worker) {
  Jobs::Puller jobs(options(jobs_name));
  Results::Pusher results(options(results_name));
  for (;;) {
    auto m = jobs.receive(5s);  // a verified PlanJob over the dispatcher's slot
    if (!m && m.error() == flatlane::Errc::corrupt) return 2;
    if (!m) break;  // the dispatcher has left
    const uint64_t id = (*m)->id();
    m->release();
    auto r = results.send([&](flatbuffers::FlatBufferBuilder& b) {
      return robot::CreatePlanResult(b, id, 0, b.CreateString("worker " + std::to_string(worker)));
    });
    if (!r) return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 3000;
  const std::string jobs_name = example::unique_name("jobs"), results_name = example::unique_name("results");
  Jobs::Pusher jobs(options(jobs_name));
  Results::Puller results(options(results_name));
  std::vector<pid_t> workers;
  for (int w = 0; w < 3; ++w) workers.push_back(example::spawn([&, w] { return work(jobs_name, results_name, w); }));

  std::thread dispatcher([&] {
    for (int i = 0; i < n; ++i) {
      auto r = jobs.send([&](flatbuffers::FlatBufferBuilder& b) {  // built in the loaned slot
        return robot::CreatePlanJob(b, static_cast<uint64_t>(i));
      });
      if (!r) std::printf("push failed: %s\n", flatlane::to_string(r.error()));
    }
  });
  std::vector<int> seen(static_cast<size_t>(n), 0);
  std::vector<int> per_worker(3, 0);
  int got = 0, bad = 0;
  while (got < n) {
    auto s = results.receive(10s);
    if (!s && s.error() == flatlane::Errc::corrupt) {
      ++bad;
      continue;
    }
    if (!s) break;
    const robot::PlanResult* res = s->get();
    if (res->id() >= static_cast<uint64_t>(n) || res->error() == nullptr) {
      ++bad;
      continue;
    }
    ++seen[res->id()];
    const std::string who = res->error()->str();  // "worker k"
    ++per_worker[static_cast<size_t>(who.back() - '0') % 3];
    ++got;
  }
  dispatcher.join();
  jobs.close();  // workers see peer_closed and exit
  bool ok = bad == 0 && got == n;
  for (int v : seen) ok = ok && v == 1;
  for (pid_t p : workers) ok = example::wait_ok(p) && ok;
  std::printf("plan workers (push/pull, robot.PlanJob -> robot.PlanResult):\n");
  std::printf("  %d jobs, %d results, each job exactly once: %s\n", n, got, ok ? "yes" : "no");
  std::printf("  shared: worker 0 %d, worker 1 %d, worker 2 %d\n", per_worker[0], per_worker[1], per_worker[2]);
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
