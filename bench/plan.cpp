// Iteration sizing and the throughput-trial helper shared by all cases.
#include <algorithm>
#include <numeric>

#include "bench.hpp"

namespace flbench {

std::uint64_t Plan::latency_iters(std::size_t size) const {
  // A 1 MiB round trip moves ~16k cache lines each way, a 64 B one moves 1,
  // so big payloads get fewer round trips to keep each case to seconds.
  // The floor of 200 keeps p99.9 meaningful-ish in --quick mode.
  std::uint64_t n = base_iters;
  if (size > 64 * 1024) {
    n = base_iters / 50;
  } else if (size > 4 * 1024) {
    n = base_iters / 10;
  } else if (size > 64) {
    n = base_iters / 2;
  }
  return std::max<std::uint64_t>(n, 200);
}

std::uint64_t Plan::tput_messages(std::size_t size) const {
  if (size <= 4 * 1024) return std::max<std::uint64_t>(base_iters * 20, 10000);
  return std::max<std::uint64_t>(base_iters / 50, 50);
}

std::string size_text(std::size_t size) {
  if (size >= kMiB && size % kMiB == 0) return std::to_string(size / kMiB) + " MiB";
  if (size >= kKiB && size % kKiB == 0) return std::to_string(size / kKiB) + " KiB";
  return std::to_string(size) + " B";
}

std::string case_id(const Case& c) {
  std::string tag;
  if (c.size >= kMiB && c.size % kMiB == 0) {
    tag = std::to_string(c.size / kMiB) + "M";
  } else if (c.size >= kKiB && c.size % kKiB == 0) {
    tag = std::to_string(c.size / kKiB) + "K";
  } else {
    tag = std::to_string(c.size) + "B";
  }
  return c.name + "/" + tag;
}

Result run_throughput_trials(const Plan& plan, const std::function<Result()>& trial) {
  std::vector<Result> runs;
  for (int i = 0; i < plan.tput_trials; ++i) {
    Result r = trial();
    if (!r.ok) return r;
    runs.push_back(std::move(r));
  }
  auto rate = [](const Result& r) { return static_cast<double>(r.messages) / r.seconds; };
  std::vector<std::size_t> order(runs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return rate(runs[a]) < rate(runs[b]); });
  Result median = runs[order[order.size() / 2]];
  median.trial_msgs_per_s.clear();
  for (const Result& r : runs) median.trial_msgs_per_s.push_back(rate(r));
  return median;
}

}  // namespace flbench
