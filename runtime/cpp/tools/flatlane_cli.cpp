// `flatlane`: list, inspect and clean up Flatlane segments in /dev/shm (docs/CLI.md).
//
//   flatlane ls [--json] [--prefix P]
//   flatlane stat NAME [--json] [--interval MS | --watch SECONDS [--count N]]
//   flatlane rm NAME... [--force]
//   flatlane gc [--dry-run] [--json] [--prefix P]
//
// Exit codes: 0 ok, 1 error (message on stderr), 2 usage.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli_render.hpp"
#include "flatlane/inspect.hpp"

namespace {

using namespace flatlane;
namespace fi = flatlane::inspect;

constexpr const char* kUsage =
    "usage: flatlane <command> [options]\n"
    "\n"
    "commands:\n"
    "  ls [--json] [--prefix P]           list the segments in /dev/shm, their peers and liveness\n"
    "  stat NAME [--json] [--interval MS | --watch SECONDS [--count N]]\n"
    "                                     counters of one segment; with an interval, rates too\n"
    "  rm NAME... [--force]               remove segments; a live one only with --force\n"
    "  gc [--dry-run] [--json] [--prefix P]\n"
    "                                     remove every segment whose processes are all dead\n"
    "  help, --help, --version\n"
    "\n"
    "exit codes: 0 ok, 1 error, 2 usage. See docs/CLI.md.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parsed command line: positional arguments, boolean flags and valued options, each checked
// against what the command accepts.
struct Args {
  std::vector<std::string> positional;
  std::set<std::string> flags;
  std::map<std::string, std::string> options;

  bool has(const std::string& f) const { return flags.count(f) != 0; }
  const std::string* option(const std::string& o) const {
    auto it = options.find(o);
    return it == options.end() ? nullptr : &it->second;
  }
};

Args parse(const std::vector<std::string>& argv, const std::set<std::string>& flags,
           const std::set<std::string>& valued) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      a.positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (flags.count(name) && eq == std::string::npos) {
      a.flags.insert(name);
    } else if (valued.count(name)) {
      if (eq != std::string::npos) a.options[name] = arg.substr(eq + 1);
      else if (i + 1 < argv.size()) a.options[name] = argv[++i];
      else throw UsageError(name + " needs a value");
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
  return a;
}

double positive_number(const std::string& opt, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v > 0) || v > 1e9) throw UsageError(opt + " needs a positive number, got '" + text + "'");
  return v;
}

uint64_t positive_count(const std::string& opt, const std::string& text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || v == 0) throw UsageError(opt + " needs a positive integer, got '" + text + "'");
  return v;
}

void out(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// Accepts the path of the object too (/dev/shm/flatlane.NAME), which shells complete.
std::string segment_name(const std::string& arg) {
  const std::string path = "/dev/shm/flatlane.";
  return arg.compare(0, path.size(), path) == 0 ? arg.substr(path.size()) : arg;
}

std::string prefix_of(const Args& a) { return a.option("--prefix") ? *a.option("--prefix") : std::string(); }

// ---- ls ------------------------------------------------------------------------------------------

int cmd_ls(const std::vector<std::string>& argv) {
  const Args a = parse(argv, {"--json"}, {"--prefix"});
  if (!a.positional.empty()) throw UsageError("ls takes no arguments");
  const std::string prefix = prefix_of(a);
  std::vector<fi::Probe> rows;
  for (const std::string& name : fi::list_segments()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    fi::Probe p = fi::probe(name);
    if (p.error == Errc::not_found) continue;  // removed since it was listed
    rows.push_back(std::move(p));
  }
  out(a.has("--json") ? cli::ls_json(rows) : cli::ls_text(rows));
  return 0;
}

// ---- stat ----------------------------------------------------------------------------------------

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted.store(true); }

// A probe that must describe a readable segment; anything else is the command's error.
fi::Probe sample(const std::string& name) {
  fi::Probe p = fi::probe(name);
  if (p.info) return p;
  if (p.error == Errc::not_found) throw Error(p.error, "flatlane: no channel named " + name);
  throw Error(p.error, "flatlane: " + name + ": " + std::string(fi::to_string(p.health)) + ": " + p.message);
}

// Sleeps up to `d`; false if interrupted (Ctrl-C ends a watch cleanly, with exit code 0).
bool pause_for(std::chrono::duration<double> d) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  while (std::chrono::steady_clock::now() < until) {
    if (g_interrupted.load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(20),
                                                                               until - std::chrono::steady_clock::now()));
  }
  return !g_interrupted.load();
}

std::string render_stat(const fi::Probe& p, const cli::Rates* rates, bool json) {
  return json ? cli::stat_json(p, rates) : cli::stat_text(p, rates);
}

int cmd_stat(const std::vector<std::string>& argv) {
  const Args a = parse(argv, {"--json"}, {"--interval", "--watch", "--count"});
  if (a.positional.size() != 1) throw UsageError("stat takes one NAME");
  if (a.option("--interval") && a.option("--watch")) throw UsageError("use --interval or --watch, not both");
  if (a.option("--count") && !a.option("--watch")) throw UsageError("--count goes with --watch");
  const std::string name = segment_name(a.positional[0]);
  const bool json = a.has("--json");
  const bool watch = a.option("--watch") != nullptr;
  if (!watch && !a.option("--interval")) {
    out(render_stat(sample(name), nullptr, json));
    return 0;
  }
  const std::chrono::duration<double> period =
      watch ? std::chrono::duration<double>(positive_number("--watch", *a.option("--watch")))
            : std::chrono::duration<double>(positive_number("--interval", *a.option("--interval")) / 1000.0);
  // Reports to print; 0 = until interrupted (--watch without --count).
  const uint64_t count = a.option("--count") ? positive_count("--count", *a.option("--count")) : (watch ? 0 : 1);
  std::signal(SIGINT, on_interrupt);
  fi::Probe prev = sample(name);
  auto prev_t = std::chrono::steady_clock::now();
  for (uint64_t n = 0; count == 0 || n < count; ++n) {
    if (!pause_for(period)) break;
    fi::Probe cur = sample(name);
    const auto now = std::chrono::steady_clock::now();
    const cli::Rates rates = cli::compute_rates(*prev.info, *cur.info, std::chrono::duration<double>(now - prev_t).count());
    if (watch && !json && n > 0) out("\n");
    out(render_stat(cur, &rates, json));
    prev = std::move(cur);
    prev_t = now;
  }
  return 0;
}

// ---- rm, gc --------------------------------------------------------------------------------------

int cmd_rm(const std::vector<std::string>& argv) {
  const Args a = parse(argv, {"--force"}, {});
  if (a.positional.empty()) throw UsageError("rm needs at least one NAME");
  int rc = 0;
  for (const std::string& arg : a.positional) {
    const std::string name = segment_name(arg);
    try {
      fi::remove(name, a.has("--force"));
      out("removed " + cli::printable(name) + "\n");
    } catch (const Error& e) {
      const bool refusal = e.code() != Errc::not_found && e.code() != Errc::invalid_argument && e.code() != Errc::system &&
                           e.code() != Errc::permission_denied;
      std::fprintf(stderr, "%s%s\n", cli::printable(e.what()).c_str(), refusal ? " (use --force to remove it anyway)" : "");
      rc = 1;
    }
  }
  return rc;
}

int cmd_gc(const std::vector<std::string>& argv) {
  const Args a = parse(argv, {"--dry-run", "--json"}, {"--prefix"});
  if (!a.positional.empty()) throw UsageError("gc takes no arguments");
  fi::GcOptions o;
  o.dry_run = a.has("--dry-run");
  o.prefix = prefix_of(a);
  const std::vector<std::string> removed = fi::gc(o);
  out(a.has("--json") ? cli::gc_json(removed, o.dry_run) : cli::gc_text(removed, o.dry_run));
  return 0;
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError("missing command");
  const std::string& cmd = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    out(kUsage);
    return 0;
  }
  if (cmd == "--version") {
    out(std::string("flatlane ") + FLATLANE_VERSION + " (protocol 1)\n");
    return 0;
  }
  if (cmd == "ls") return cmd_ls(rest);
  if (cmd == "stat") return cmd_stat(rest);
  if (cmd == "rm") return cmd_rm(rest);
  if (cmd == "gc") return cmd_gc(rest);
  throw UsageError("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "flatlane: %s\n%s", cli::printable(e.what()).c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {  // flatlane::Error messages already start with "flatlane: "
    const std::string msg = cli::printable(e.what());
    std::fprintf(stderr, "%s%s\n", msg.rfind("flatlane: ", 0) == 0 ? "" : "flatlane: ", msg.c_str());
    return 1;
  }
}
