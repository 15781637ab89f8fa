// Shared vocabulary of the flatlane_bench program: options, per-case results,
// and the case registry that baselines.cpp, zmq_cases.cpp and
// flatlane_cases.cpp fill in.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace flbench {

struct Options {
  bool quick = false;
  bool zmq = true;
  std::uint64_t iters = 0;  // base iteration count; 0 = pick a default
  std::string only;         // run only cases whose id contains this
  std::string json_path = "bench-results.json";
};

enum class Kind { Latency, Throughput };

// What a case measured. Latency cases fill `rtt_ns` (one sample per round
// trip); the report halves it to get one-way latency. Throughput cases fill
// messages/bytes/seconds (median trial) plus the spread of all trials.
struct Result {
  bool ok = false;
  bool skipped = false;  // not run on this machine (error says why); not a failure
  std::string error;     // set when !ok

  std::vector<std::uint64_t> rtt_ns;

  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;  // payload bytes moved in the reported trial
  double seconds = 0.0;
  std::vector<double> trial_msgs_per_s;  // every throughput trial, in run order

  // Paired cases (pair_cases.hpp, paired_ping_pong_case): a reference measured in alternating
  // blocks inside the same processes, and p50(case) / p50(reference) of each pair of blocks.
  std::string ref_label;  // empty: not a paired case
  std::vector<std::uint64_t> ref_rtt_ns;
  std::vector<double> block_ratio;
};

inline Result skipped_result(std::string why) {
  Result r;
  r.skipped = true;
  r.error = std::move(why);
  return r;
}

// Per-run sizing derived from Options (see main.cpp for the defaults).
struct Plan {
  std::uint64_t base_iters = 0;
  int tput_trials = 3;
  unsigned watchdog_s = 120;  // a case running longer than this is taken as hung

  // Round trips for a latency case whose payload is `size` bytes. Larger
  // payloads take proportionally longer per round trip, so they get fewer.
  std::uint64_t latency_iters(std::size_t size) const;
  std::uint64_t warmup_iters(std::uint64_t iters) const { return iters / 10 + 50; }
  // Messages per throughput trial.
  std::uint64_t tput_messages(std::size_t size) const;
};

struct Case {
  std::string name;   // e.g. "floor/cacheline"; unique together with size
  std::string label;  // short text for the table's "case" column
  std::size_t size = 0;
  std::string mode;   // "busy" (spinning waits) or "block" (sleeping waits)
  Kind kind = Kind::Latency;
  bool is_flatlane = false;
  std::function<Result(const Plan&)> run;
};

// Each translation unit appends its cases. They are called in this order,
// which is also the order the cases run in.
void add_baseline_cases(std::vector<Case>& out);
void add_zmq_cases(std::vector<Case>& out, const Options& opt);
void add_flatlane_cases(std::vector<Case>& out);
void add_typed_cases(std::vector<Case>& out);  // generated endpoints, FlatBuffers messages
void add_topic_cases(std::vector<Case>& out);  // publish/subscribe topics
void add_duplex_cases(std::vector<Case>& out);
void add_pattern_cases(std::vector<Case>& out);  // fan-out 1->4, services, push/pull  // in-place duplex beside a two-ring copying duplex
// One line describing why Flatlane cases are (not) present, for the report.
const char* flatlane_status();
// --peer produce|consume NAME SIZE WARMUP COUNT: one busy-spin side of a raw 64 B-style stream
// (payload words = seq) on a channel another program created; consume prints "msgs_per_s N".
int flatlane_stream_peer(const std::string& role, const std::string& name, std::size_t size,
                         std::uint64_t warmup, std::uint64_t count);
// --peer tproduce|tconsume NAME SIZE WARMUP COUNT: the same with SIZE-byte Tick messages over the
// generated bench.ping topic endpoints (typed_cases.cpp).
int typed_stream_peer(const std::string& role, const std::string& name, std::size_t size, std::uint64_t warmup,
                      std::uint64_t count);
// "4.3.4", or "" when built without ZeroMQ.
std::string zmq_version_text();

// Payload sizes used throughout.
inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = 1024 * 1024;
inline constexpr std::size_t kLatencySizes[] = {64, 4 * kKiB, 64 * kKiB, kMiB};
inline constexpr std::size_t kTputSizes[] = {64, kMiB};
inline constexpr std::size_t kDuplexSizes[] = {64, kMiB, 8 * kMiB};  // duplex cases and their zmq peer

// Data bytes of the ring used for `size`-byte messages, by the bare ring
// and by Flatlane channels alike so both get the same buffering: room for
// at least 4 messages in flight, never below 256 KiB.
inline std::size_t ring_capacity_for(std::size_t size) {
  return std::max<std::size_t>(256 * kKiB, std::bit_ceil(4 * (size + 64)));
}

std::string size_text(std::size_t size);  // "64 B", "4 KiB", "1 MiB"
// Unique case id used by --only and in the JSON: name + "/" + "64B"|"4K"|"1M".
std::string case_id(const Case& c);

// Runs `trial` plan.tput_trials times (each trial is a fresh process pair)
// and returns the trial with the median msg/s, with every trial's rate
// recorded in trial_msgs_per_s. Stops at the first failed trial.
Result run_throughput_trials(const Plan& plan, const std::function<Result()>& trial);

}  // namespace flbench
