// Turning raw results into the stdout table and the JSON file.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bench.hpp"
#include "platform.hpp"

namespace flbench {

// One finished case with its summary numbers. Latency numbers are one-way
// (round trip / 2) in microseconds, taken from the sorted samples.
struct Row {
  const Case* c = nullptr;
  std::string id;
  Result r;
  double case_seconds = 0.0;  // wall time the case took, setup included

  std::size_t samples = 0;
  double min_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
  double msgs_per_s = 0, gb_per_s = 0;  // throughput cases; GB = 1e9 bytes

  // Paired cases: the reference's one-way percentiles and the ratios (case / reference).
  std::size_t ref_samples = 0;
  double ref_p50_us = 0, ref_p99_us = 0, ref_p999_us = 0;
  double block_ratio_median = 0, block_ratio_min = 0, block_ratio_max = 0;
  bool paired() const { return !r.ref_label.empty() && ref_samples > 0; }
};

Row summarize(const Case& c, Result r, double case_seconds);

// The floor a row is compared with: a "floor/" case of the same kind and
// size (and, for latency, the same busy/block mode). nullptr if none ran.
const Row* floor_for(const std::vector<Row>& rows, const Row& row);
// How many times slower than `ref` a row is: latency p50 / ref p50;
// throughput ref msg/s / msg/s. 0 when either failed.
double slowdown(const Row& row, const Row& ref);
// slowdown() against floor_for(row); 0 when there is no floor.
double slowdown_vs_floor(const std::vector<Row>& rows, const Row& row);

struct RunInfo {
  std::string date_utc;
  std::string host;
  std::string kernel;
  std::string cpu_model;
  long nproc = 0;
  CpuPair cpus;
  Options options;
  Plan plan;
  std::string zmq_version;
  std::string flatlane_status;
  double wall_seconds = 0.0;
  // /proc/loadavg's 1-minute load before and after the run: other work on
  // the machine shows up in the tails, so it is recorded with the numbers.
  double load_before = -1.0;
  double load_after = -1.0;
};

// 1-minute load average, or -1 if unavailable.
double load_average_1min();

void print_report(const std::vector<Row>& rows, const RunInfo& info);
bool write_json(const std::string& path, const std::vector<Row>& rows, const RunInfo& info);

}  // namespace flbench
