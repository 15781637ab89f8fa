#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

namespace flbench {

namespace {

// Nearest-rank percentile of sorted samples: the smallest sample such that
// at least p% of all samples are <= it. No interpolation, so every reported
// value is a sample that was actually measured.
std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  std::size_t idx = rank < 1.0 ? 0 : static_cast<std::size_t>(rank) - 1;
  idx = std::min(idx, sorted.size() - 1);
  return sorted[idx];
}

double one_way_us(std::uint64_t rtt_ns) { return static_cast<double>(rtt_ns) / 2000.0; }

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

double load_average_1min() {
  std::ifstream in("/proc/loadavg");
  double load = -1.0;
  if (!(in >> load)) return -1.0;
  return load;
}

Row summarize(const Case& c, Result r, double case_seconds) {
  Row row;
  row.c = &c;
  row.id = case_id(c);
  row.case_seconds = case_seconds;
  if (r.ok && c.kind == Kind::Latency && !r.rtt_ns.empty()) {
    std::vector<std::uint64_t> s = r.rtt_ns;
    std::sort(s.begin(), s.end());
    row.samples = s.size();
    row.min_us = one_way_us(s.front());
    row.p50_us = one_way_us(percentile(s, 50));
    row.p90_us = one_way_us(percentile(s, 90));
    row.p99_us = one_way_us(percentile(s, 99));
    row.p999_us = one_way_us(percentile(s, 99.9));
    row.max_us = one_way_us(s.back());
    const double total = std::accumulate(s.begin(), s.end(), 0.0,
                                         [](double a, std::uint64_t b) { return a + static_cast<double>(b); });
    row.mean_us = total / static_cast<double>(s.size()) / 2000.0;
  }
  if (r.ok && c.kind == Kind::Throughput && r.seconds > 0) {
    row.msgs_per_s = static_cast<double>(r.messages) / r.seconds;
    row.gb_per_s = static_cast<double>(r.bytes) / r.seconds / 1e9;
  }
  if (r.ok && c.kind == Kind::Latency && !r.ref_rtt_ns.empty()) {
    std::vector<std::uint64_t> s = r.ref_rtt_ns;
    std::sort(s.begin(), s.end());
    row.ref_samples = s.size();
    row.ref_p50_us = one_way_us(percentile(s, 50));
    row.ref_p99_us = one_way_us(percentile(s, 99));
    row.ref_p999_us = one_way_us(percentile(s, 99.9));
  }
  if (!r.block_ratio.empty()) {
    std::vector<double> b = r.block_ratio;
    std::sort(b.begin(), b.end());
    row.block_ratio_median = b[b.size() / 2];
    row.block_ratio_min = b.front();
    row.block_ratio_max = b.back();
  }
  r.rtt_ns.clear();  // summarized; the raw samples are not kept
  r.rtt_ns.shrink_to_fit();
  r.ref_rtt_ns.clear();
  r.ref_rtt_ns.shrink_to_fit();
  row.r = std::move(r);
  return row;
}

const Row* floor_for(const std::vector<Row>& rows, const Row& row) {
  for (const Row& f : rows) {
    if (!f.r.ok || !starts_with(f.c->name, "floor/")) continue;
    if (f.c->kind != row.c->kind || f.c->size != row.c->size) continue;
    if (row.c->kind == Kind::Latency && f.c->mode != row.c->mode) continue;
    return &f;
  }
  return nullptr;
}

double slowdown(const Row& row, const Row& ref) {
  if (!row.r.ok || !ref.r.ok) return 0;
  if (row.c->kind == Kind::Latency) return ref.p50_us > 0 ? row.p50_us / ref.p50_us : 0;
  return row.msgs_per_s > 0 ? ref.msgs_per_s / row.msgs_per_s : 0;
}

double slowdown_vs_floor(const std::vector<Row>& rows, const Row& row) {
  const Row* f = floor_for(rows, row);
  return f == nullptr ? 0 : slowdown(row, *f);
}

// ---- stdout table ---------------------------------------------------------

namespace {

void print_header() {
  std::printf("%-20s %8s %6s %10s %10s %10s %12s %9s %10s\n", "case", "size", "mode", "p50 us",
              "p99 us", "p99.9 us", "msg/s", "GB/s", "vs floor");
  std::printf("%s\n", std::string(111, '-').c_str());
}

// `ref` is the row the "vs floor" column divides by (nullptr: none).
void print_row(const Row& row, const Row* ref) {
  const Case& c = *row.c;
  std::printf("%-20s %8s %6s ", c.label.c_str(), size_text(c.size).c_str(), c.mode.c_str());
  if (!row.r.ok) {
    std::printf("%s: %s\n", row.r.skipped ? "SKIPPED" : "FAILED", row.r.error.c_str());
    return;
  }
  if (c.kind == Kind::Latency) {
    std::printf("%10.2f %10.2f %10.2f %12s %9s ", row.p50_us, row.p99_us, row.p999_us, "-", "-");
  } else {
    std::printf("%10s %10s %10s %12.0f %9.2f ", "-", "-", "-", row.msgs_per_s, row.gb_per_s);
  }
  if (ref == &row) {
    std::printf("%10s\n", "floor");
  } else if (ref != nullptr && ref->r.ok) {
    std::printf("%9.2fx\n", slowdown(row, *ref));
  } else {
    std::printf("%10s\n", "-");
  }
}

// The reference a paired case ran against, and the ratios that judge it.
void print_paired(const Row& row) {
  std::printf("%-20s %8s %6s %10.2f %10.2f %10.2f %12s %9s %10s\n", row.r.ref_label.c_str(),
              size_text(row.c->size).c_str(), row.c->mode.c_str(), row.ref_p50_us, row.ref_p99_us,
              row.ref_p999_us, "-", "-", "(paired)");
  std::printf("  %s / %s, same processes, alternating blocks: p50 %.2fx, p99 %.2fx; "
              "per block pair p50 ratio median %.2fx (min %.2fx, max %.2fx, %zu pairs)\n",
              row.c->label.c_str(), row.r.ref_label.c_str(), row.ref_p50_us > 0 ? row.p50_us / row.ref_p50_us : 0.0,
              row.ref_p99_us > 0 ? row.p99_us / row.ref_p99_us : 0.0, row.block_ratio_median, row.block_ratio_min,
              row.block_ratio_max, row.r.block_ratio.size());
}

}  // namespace

void print_report(const std::vector<Row>& rows, const RunInfo& info) {
  std::printf("\nflatlane_bench  %s  host %s  %s\n", info.date_utc.c_str(), info.host.c_str(),
              info.kernel.c_str());
  std::printf("cpu: %s, nproc %ld, ", info.cpu_model.c_str(), info.nproc);
  if (info.cpus.separate_cores) {
    std::printf("parent pinned to CPU %d, child to CPU %d\n", info.cpus.parent, info.cpus.child);
  } else {
    std::printf("single CPU: processes NOT pinned, spin loops yield (numbers are not representative)\n");
  }
  std::printf("load average (1 min): %.2f before, %.2f after the run\n", info.load_before,
              info.load_after);
  std::printf("latency = one-way = round trip / 2 (payload written by sender, read in place by receiver)\n");
  std::printf("vs floor = times slower than the matching floor (latency: p50 / floor p50; "
              "throughput: floor msg/s / msg/s)\n");
  std::printf("flatlane: %s\n\n", info.flatlane_status.c_str());

  std::printf("== Baselines ==\n");
  print_header();
  for (const Row& row : rows) {
    if (!row.c->is_flatlane) print_row(row, floor_for(rows, row));
  }

  bool any_flatlane = false;
  for (const Row& row : rows) any_flatlane = any_flatlane || row.c->is_flatlane;
  if (!any_flatlane) return;

  // Each Flatlane row beside what it should be judged against: the floor of
  // the same size/mode and ZeroMQ doing the same job. Every ratio in a group
  // is relative to the group's reference floor (its first row).
  std::printf("\n== Flatlane beside its baselines ==\n");
  print_header();
  for (const Row& row : rows) {
    if (!row.c->is_flatlane) continue;
    // The reference floor first, then any other floor of the same shape
    // (e.g. the 64 B ring ping-pong), then ZeroMQ.
    const Row* ref = floor_for(rows, row);
    if (ref != nullptr) print_row(*ref, ref);
    for (const Row& b : rows) {
      if (&b == ref || b.c->is_flatlane || b.c->kind != row.c->kind || b.c->size != row.c->size) continue;
      const bool is_floor = starts_with(b.c->name, "floor/");
      if (is_floor && row.c->kind == Kind::Latency && b.c->mode != row.c->mode) continue;
      if (is_floor || starts_with(b.c->name, "zmq/")) print_row(b, ref);
    }
    print_row(row, ref);
    if (row.paired()) print_paired(row);
    std::printf("\n");
  }
}

// ---- JSON -----------------------------------------------------------------

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

bool write_json(const std::string& path, const std::vector<Row>& rows, const RunInfo& info) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fprintf(f, "{\n  \"tool\": \"flatlane_bench\",\n");
  std::fprintf(f, "  \"date_utc\": %s,\n", json_string(info.date_utc).c_str());
  std::fprintf(f, "  \"host\": %s,\n", json_string(info.host).c_str());
  std::fprintf(f, "  \"kernel\": %s,\n", json_string(info.kernel).c_str());
  std::fprintf(f, "  \"cpu_model\": %s,\n", json_string(info.cpu_model).c_str());
  std::fprintf(f, "  \"nproc\": %ld,\n", info.nproc);
  std::fprintf(f, "  \"pinned\": %s,\n  \"parent_cpu\": %d,\n  \"child_cpu\": %d,\n",
               info.cpus.separate_cores ? "true" : "false", info.cpus.parent, info.cpus.child);
  std::fprintf(f, "  \"quick\": %s,\n  \"base_iters\": %llu,\n  \"throughput_trials\": %d,\n",
               info.options.quick ? "true" : "false",
               static_cast<unsigned long long>(info.plan.base_iters), info.plan.tput_trials);
  std::fprintf(f, "  \"only\": %s,\n", json_string(info.options.only).c_str());
  std::fprintf(f, "  \"zmq_version\": %s,\n", json_string(info.zmq_version).c_str());
  std::fprintf(f, "  \"flatlane_status\": %s,\n", json_string(info.flatlane_status).c_str());
  std::fprintf(f, "  \"wall_seconds\": %s,\n", json_number(info.wall_seconds).c_str());
  std::fprintf(f, "  \"loadavg_1min_before\": %s,\n  \"loadavg_1min_after\": %s,\n",
               json_number(info.load_before).c_str(), json_number(info.load_after).c_str());
  std::fprintf(f,
               "  \"units\": {\"latency\": \"microseconds, one-way = round trip / 2, nearest-rank "
               "percentiles\", \"gb_per_s\": \"1e9 payload bytes per second\"},\n");
  std::fprintf(f, "  \"results\": [");
  bool first = true;
  for (const Row& row : rows) {
    const Case& c = *row.c;
    std::fprintf(f, "%s\n    {\"id\": %s, \"name\": %s, \"label\": %s, \"size\": %zu, \"mode\": %s, ",
                 first ? "" : ",", json_string(row.id).c_str(), json_string(c.name).c_str(),
                 json_string(c.label).c_str(), c.size, json_string(c.mode).c_str());
    first = false;
    std::fprintf(f,
                 "\"kind\": \"%s\", \"flatlane\": %s, \"ok\": %s, \"skipped\": %s, "
                 "\"case_seconds\": %s",
                 c.kind == Kind::Latency ? "latency" : "throughput", c.is_flatlane ? "true" : "false",
                 row.r.ok ? "true" : "false", row.r.skipped ? "true" : "false",
                 json_number(row.case_seconds).c_str());
    if (!row.r.ok) {
      std::fprintf(f, ", \"error\": %s}", json_string(row.r.error).c_str());
      continue;
    }
    if (c.kind == Kind::Latency) {
      std::fprintf(f,
                   ", \"samples\": %zu, \"min_us\": %s, \"p50_us\": %s, \"p90_us\": %s, "
                   "\"p99_us\": %s, \"p999_us\": %s, \"max_us\": %s, \"mean_us\": %s",
                   row.samples, json_number(row.min_us).c_str(), json_number(row.p50_us).c_str(),
                   json_number(row.p90_us).c_str(), json_number(row.p99_us).c_str(),
                   json_number(row.p999_us).c_str(), json_number(row.max_us).c_str(),
                   json_number(row.mean_us).c_str());
    } else {
      std::fprintf(f, ", \"messages\": %llu, \"bytes\": %llu, \"seconds\": %s, \"msgs_per_s\": %s, "
                      "\"gb_per_s\": %s, \"trial_msgs_per_s\": [",
                   static_cast<unsigned long long>(row.r.messages),
                   static_cast<unsigned long long>(row.r.bytes), json_number(row.r.seconds).c_str(),
                   json_number(row.msgs_per_s).c_str(), json_number(row.gb_per_s).c_str());
      for (std::size_t i = 0; i < row.r.trial_msgs_per_s.size(); ++i) {
        std::fprintf(f, "%s%s", i ? ", " : "", json_number(row.r.trial_msgs_per_s[i]).c_str());
      }
      std::fprintf(f, "]");
    }
    if (row.paired()) {
      std::fprintf(f,
                   ", \"paired\": {\"reference\": %s, \"samples\": %zu, \"p50_us\": %s, \"p99_us\": %s, "
                   "\"p999_us\": %s, \"block_pairs\": %zu, \"block_ratio_median\": %s, \"block_ratio_min\": %s, "
                   "\"block_ratio_max\": %s}",
                   json_string(row.r.ref_label).c_str(), row.ref_samples, json_number(row.ref_p50_us).c_str(),
                   json_number(row.ref_p99_us).c_str(), json_number(row.ref_p999_us).c_str(),
                   row.r.block_ratio.size(), json_number(row.block_ratio_median).c_str(),
                   json_number(row.block_ratio_min).c_str(), json_number(row.block_ratio_max).c_str());
    }
    if (const Row* fl = floor_for(rows, row); fl != nullptr && fl != &row) {
      std::fprintf(f, ", \"floor\": %s, \"slowdown_vs_floor\": %s", json_string(fl->id).c_str(),
                   json_number(slowdown_vs_floor(rows, row)).c_str());
    }
    std::fprintf(f, "}");
  }
  std::fprintf(f, "\n  ]\n}\n");
  const bool ok = std::ferror(f) == 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace flbench
