// Example: planning jobs over push/pull (robot.PlanJob / robot.PlanResult from robot_cell.fbs).
//
//   build/examples/cpp/flatlane_example_workers [jobs]
//
// The dispatcher pushes PlanJob messages into a work queue; three worker processes pull them
// (each job goes to exactly one worker, whoever is free) and push a PlanResult back on a second
// work queue. The dispatcher checks that every job came back exactly once and prints how the
// work was shared.
#include "example_util.hpp"
#include "robot_cell.flatlane.hpp"

#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

template <class Msg>
flatlane::TopicOptions work_queue() {
  flatlane::TopicOptions o;
  o.topic.distribution = flatlane::Distribution::work_queue;
  o.topic.slot_size = 512;
  o.topic.slot_count = 64;
  o.topic.queue_depth = 32;
  o.topic.max_publishers = 4;
  o.topic.type = {std::string(flatlane::MessageTraits<Msg>::type_name), flatlane::MessageTraits<Msg>::type_hash};
  o.wait.strategy = flatlane::WaitStrategy::blocking;
  o.block_timeout = 10s;
  return o;
}

int work(const std::string& jobs_name, const std::string& results_name, int worker) {
  flatlane::TopicSubscriber jobs(jobs_name, work_queue<robot::PlanJob>());
  flatlane::TopicPublisher results(results_name, work_queue<robot::PlanResult>());
  for (;;) {
    auto s = jobs.receive(5s);
    if (!s) break;  // the dispatcher has left
    const auto* job = example::root_of<robot::PlanJob>(*s);
    if (job == nullptr) return 2;
    const uint64_t id = job->id();
    s->release();
    auto r = example::publish_built<robot::PlanResult>(results, [&](flatbuffers::FlatBufferBuilder& b) {
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
  flatlane::TopicPublisher jobs(jobs_name, work_queue<robot::PlanJob>());
  flatlane::TopicSubscriber results(results_name, work_queue<robot::PlanResult>());
  std::vector<pid_t> workers;
  for (int w = 0; w < 3; ++w) workers.push_back(example::spawn([&, w] { return work(jobs_name, results_name, w); }));

  std::thread dispatcher([&] {
    for (int i = 0; i < n; ++i) {
      auto r = example::publish_built<robot::PlanJob>(jobs, [&](flatbuffers::FlatBufferBuilder& b) {
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
    if (!s) break;
    const auto* res = example::root_of<robot::PlanResult>(*s);
    if (res == nullptr || res->id() >= static_cast<uint64_t>(n) || res->error() == nullptr) {
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
