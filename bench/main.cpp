// flatlane_bench: Flatlane channel latency/throughput next to the floors
// (raw shared memory, futex, bare SPSC ring) and ZeroMQ ipc://, measured
// between two processes pinned to two different cores.
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <string>

#include <sys/utsname.h>
#include <unistd.h>

#include "bench.hpp"
#include "platform.hpp"
#include "report.hpp"

namespace {

using namespace flbench;

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: flatlane_bench [options]\n"
               "  --quick          few iterations, one throughput trial (smoke test, < 20 s)\n"
               "  --iters N        base iteration count (default 100000, --quick 2000);\n"
               "                   big payloads and throughput scale from it\n"
               "  --only SUBSTR    run only cases whose id contains SUBSTR (see --list)\n"
               "  --no-zmq         skip the ZeroMQ cases\n"
               "  --json PATH      where to write all results (default bench-results.json)\n"
               "  --list           print case ids and exit\n"
               "  --peer produce|consume|tproduce|tconsume NAME SIZE WARMUP COUNT\n"
               "                   (internal) one side of a stream with another program (C# bench)\n"
               "  --help\n");
}

bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0 || s[0] == '-') return false;
  out = v;
  return true;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 7 && std::string(argv[1]) == "--peer") {
    std::uint64_t size = 0, warmup = 0, count = 0;
    if (!parse_u64(argv[4], size) || !parse_u64(argv[5], warmup) || !parse_u64(argv[6], count)) {
      std::fprintf(stderr, "flatlane_bench: --peer produce|consume|tproduce|tconsume NAME SIZE WARMUP COUNT\n");
      return 2;
    }
    // A peer is the second process of a pair (the C# bench measures in the first): it runs on
    // the second CPU, as a case's child does.
    if (const CpuPair pair = setup_cpus(); pair.child >= 0) pin_to_cpu(pair.child);
    const std::string role = argv[2];
    try {
      if (role == "tproduce" || role == "tconsume")
        return typed_stream_peer(role, argv[3], static_cast<std::size_t>(size), warmup, count);
      return flatlane_stream_peer(role, argv[3], static_cast<std::size_t>(size), warmup, count);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flatlane_bench --peer %s: %s\n", role.c_str(), e.what());
      return 1;
    }
  }
  Options opt;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto need_value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "flatlane_bench: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--no-zmq") {
      opt.zmq = false;
    } else if (a == "--iters") {
      if (!parse_u64(need_value("--iters"), opt.iters)) {
        std::fprintf(stderr, "flatlane_bench: --iters needs a positive integer\n");
        return 2;
      }
    } else if (a == "--only") {
      opt.only = need_value("--only");
    } else if (a == "--json") {
      opt.json_path = need_value("--json");
    } else if (a == "--list") {
      list = true;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "flatlane_bench: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }

  Plan plan;
  plan.base_iters = opt.iters != 0 ? opt.iters : (opt.quick ? 2000 : 100000);
  plan.tput_trials = opt.quick ? 1 : 3;
  // Generous: the slowest case (~100 us round trips) needs well under
  // 1 ms per base iteration.
  plan.watchdog_s = static_cast<unsigned>(std::min<std::uint64_t>(60 + plan.base_iters / 1000, 86400));

  std::vector<Case> all;
  add_baseline_cases(all);
  add_zmq_cases(all, opt);
  add_flatlane_cases(all);
  add_typed_cases(all);
  add_topic_cases(all);
  add_pattern_cases(all);
  add_duplex_cases(all);
  std::vector<const Case*> selected;
  for (const Case& c : all) {
    if (opt.only.empty() || case_id(c).find(opt.only) != std::string::npos) selected.push_back(&c);
  }
  if (list) {
    for (const Case* c : selected) std::printf("%s\n", case_id(*c).c_str());
    return 0;
  }
  if (selected.empty()) {
    std::fprintf(stderr, "flatlane_bench: no case id contains '%s' (try --list)\n", opt.only.c_str());
    return 2;
  }

  install_signal_handlers();
  RunInfo info;
  info.cpus = setup_cpus();
  if (!info.cpus.separate_cores) {
    std::fprintf(stderr, "flatlane_bench: fewer than 2 usable CPUs; running unpinned, spin loops yield\n");
  }
  info.date_utc = utc_now();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  info.host = host;
  utsname u{};
  if (uname(&u) == 0) info.kernel = std::string(u.sysname) + " " + u.release;
  info.cpu_model = cpu_model();
  info.nproc = sysconf(_SC_NPROCESSORS_ONLN);
  info.options = opt;
  info.plan = plan;
  info.zmq_version = zmq_version_text();
  info.flatlane_status = flatlane_status();

  info.load_before = load_average_1min();
  const auto run_start = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  rows.reserve(selected.size());
  bool all_ok = true;
  for (const Case* c : selected) {
    const std::string id = case_id(*c);
    std::fprintf(stderr, "running %-28s ", id.c_str());
    std::fflush(stderr);
    const auto t0 = std::chrono::steady_clock::now();
    Result r;
    try {
      r = c->run(plan);
    } catch (const std::exception& e) {
      r.ok = false;
      r.error = e.what();
    }
    const double took = seconds_since(t0);
    const std::string status = r.ok ? "ok" : (r.skipped ? "skipped: " : "FAILED: ") + r.error;
    std::fprintf(stderr, "%s (%.1f s)\n", status.c_str(), took);
    all_ok = all_ok && (r.ok || r.skipped);
    rows.push_back(summarize(*c, std::move(r), took));
  }
  info.wall_seconds = seconds_since(run_start);
  info.load_after = load_average_1min();

  print_report(rows, info);
  if (!write_json(opt.json_path, rows, info)) {
    std::fprintf(stderr, "flatlane_bench: cannot write %s\n", opt.json_path.c_str());
    return 1;
  }
  std::printf("\nresults written to %s (%.1f s total)\n", opt.json_path.c_str(), info.wall_seconds);
  return all_ok ? 0 : 1;
}
