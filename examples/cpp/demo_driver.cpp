// The README's demo, C++ side: sends typed demo.Ping messages round C++ -> Python -> C# -> C++
// (schema/examples/demo.fbs) one at a time, checks every reply and prints the latency.
//
//   flatlane_demo_driver [--count N] [--warmup N] [--prefix P] [--startup-timeout S]
//
// The other two stages are examples/python/demo_stage.py and examples/csharp/DemoStage;
// scripts/demo.sh (through examples/run_demo.sh) starts all three. Every endpoint uses the
// default mode create_or_open, so the processes may start in any order. Exit status: 0 when every
// reply came back right, 1 when one was wrong or missing, 2 on bad arguments. The three channels
// are pipelines (push/pull work queues): every message is built in a loaned slot and read there.
#include "demo.flatlane.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono;

namespace {

constexpr size_t kPayload = 64;
constexpr std::string_view kPythonSuffix = " -> Python";  // what examples/python/demo_stage.py appends

int64_t now_ns() { return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count(); }

uint8_t payload_byte(uint64_t seq, size_t j) { return static_cast<uint8_t>(seq * 131 + j * 7 + 1); }

std::string text_for(uint64_t seq) { return "ping " + std::to_string(seq) + " from C++"; }

struct Options {
  uint64_t count = 10000;
  uint64_t warmup = 1000;
  std::string prefix;       // segment names: "<prefix>.demo.Demo.requests", ...
  int startup_timeout = 60;  // seconds to wait for the first reply (the other stages start)
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--count") o.count = std::strtoull(v, nullptr, 10);
    else if (a == "--warmup") o.warmup = std::strtoull(v, nullptr, 10);
    else if (a == "--prefix") o.prefix = v;
    else if (a == "--startup-timeout") o.startup_timeout = std::atoi(v);
    else return false;
  }
  return o.count > 0 && o.startup_timeout > 0;
}

std::string segment(const Options& o, std::string_view channel) {
  return o.prefix.empty() ? std::string(channel) : o.prefix + "." + std::string(channel);
}

flatlane::EndpointOptions endpoint(const Options& o, std::string_view channel) {
  flatlane::EndpointOptions e;
  e.name = segment(o, channel);
  return e;
}

// Nearest-rank percentile of sorted samples.
double pct(const std::vector<double>& s, double p) {
  size_t rank = static_cast<size_t>(p * static_cast<double>(s.size()) + 0.999999);
  return s[std::clamp<size_t>(rank, 1, s.size()) - 1];
}

void print_row(const char* label, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const double mean = std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size());
  std::printf("  %-22s p50 %8.1f us   p99 %8.1f us   p99.9 %8.1f us   mean %8.1f us\n", label, pct(us, 0.50),
              pct(us, 0.99), pct(us, 0.999), mean);
}

// What the reply should look like; an empty string when it does.
std::string check(const demo::Ping& m, uint64_t seq, int64_t sent_ns, int64_t recv_ns) {
  char why[256];
  if (m.seq() != seq) {
    std::snprintf(why, sizeof why, "seq %" PRIu64 ", expected %" PRIu64, m.seq(), seq);
    return why;
  }
  if (m.hops() != 2) return "hops " + std::to_string(m.hops()) + ", expected 2 (Python and C# each add one)";
  if (m.sent_ns() != sent_ns) return "sent_ns changed on the way";
  const std::string want = text_for(seq) + std::string(kPythonSuffix);
  if (!m.text() || m.text()->string_view() != want)
    return "text \"" + (m.text() ? m.text()->str() : std::string("(none)")) + "\", expected \"" + want + "\"";
  if (!m.payload() || m.payload()->size() != kPayload) return "payload missing or resized";
  for (size_t j = 0; j < kPayload; ++j)
    if (m.payload()->Get(static_cast<flatbuffers::uoffset_t>(j)) != payload_byte(seq, j))
      return "payload byte " + std::to_string(j) + " changed";
  const demo::Trace* t = m.trace();
  if (!t) return "no trace (the Python stage writes it)";
  if (t->python_ns() < sent_ns || t->csharp_ns() < t->python_ns() || recv_ns < t->csharp_ns())
    return "trace stamps out of order (python_ns " + std::to_string(t->python_ns()) + ", csharp_ns " +
           std::to_string(t->csharp_ns()) + ")";
  return {};
}

int run(const Options& o) {
  namespace Demo = demo::Demo;
  Demo::requests::Pusher out(endpoint(o, Demo::requests::spec.name));
  Demo::replies::Puller in(endpoint(o, Demo::replies::spec.name));
  using Traits = flatlane::MessageTraits<demo::Ping>;
  std::printf("C++ driver: %" PRIu64 " pings (after %" PRIu64 " warm-up) round C++ -> Python -> C# -> C++, one at a time\n",
              o.count, o.warmup);
  std::printf("  message %s (type hash 0x%016" PRIx64 "); channels %s, %s, %s\n",
              std::string(Traits::type_name).c_str(), Traits::type_hash, segment(o, Demo::requests::spec.name).c_str(),
              segment(o, Demo::forward::spec.name).c_str(), segment(o, Demo::replies::spec.name).c_str());
  std::fflush(stdout);

  std::vector<double> rtt, hop_py, hop_cs, hop_cpp;
  rtt.reserve(o.count);
  hop_py.reserve(o.count);
  hop_cs.reserve(o.count);
  hop_cpp.reserve(o.count);
  std::string sample_sent, sample_python, sample_csharp;
  size_t message_bytes = 0;
  steady_clock::time_point measured_start;

  const uint64_t total = o.warmup + o.count;
  for (uint64_t seq = 0; seq < total; ++seq) {
    if (seq == o.warmup) measured_start = steady_clock::now();
    const int64_t sent_ns = now_ns();
    const std::string text = text_for(seq);
    auto sent = out.send([&](flatbuffers::FlatBufferBuilder& b) {
      uint8_t* p = nullptr;
      auto payload = b.CreateUninitializedVector<uint8_t>(kPayload, &p);
      for (size_t j = 0; j < kPayload; ++j) p[j] = payload_byte(seq, j);  // before the next builder call
      auto t = b.CreateString(text);
      return demo::CreatePing(b, seq, sent_ns, 0, t, payload, nullptr);
    });
    if (!sent) {
      std::fprintf(stderr, "C++ driver: send of ping %" PRIu64 " failed: %s\n", seq, flatlane::to_string(sent.error()));
      return 1;
    }
    const auto timeout = seq == 0 ? seconds(o.startup_timeout) : seconds(10);
    auto reply = in.receive(timeout);
    const int64_t recv_ns = now_ns();
    if (!reply) {
      std::fprintf(stderr, "C++ driver: no reply to ping %" PRIu64 ": %s%s\n", seq, flatlane::to_string(reply.error()),
                   reply.error() == flatlane::Errc::timeout ? " (are the Python and C# stages running?)" : "");
      return 1;
    }
    if (std::string why = check(**reply, seq, sent_ns, recv_ns); !why.empty()) {
      std::fprintf(stderr, "C++ driver: reply to ping %" PRIu64 " is wrong: %s\n", seq, why.c_str());
      return 1;
    }
    if (seq < o.warmup) continue;
    const demo::Trace& t = *(*reply)->trace();
    rtt.push_back(static_cast<double>(recv_ns - sent_ns) / 1e3);
    hop_py.push_back(static_cast<double>(t.python_ns() - sent_ns) / 1e3);
    hop_cs.push_back(static_cast<double>(t.csharp_ns() - t.python_ns()) / 1e3);
    hop_cpp.push_back(static_cast<double>(recv_ns - t.csharp_ns()) / 1e3);
    if (seq == o.warmup) {
      message_bytes = reply->bytes().size();
      sample_sent = "\"" + text + "\", " + std::to_string(kPayload) + "-byte payload, hops 0";
      sample_python = "text \"" + (*reply)->text()->str() + "\", hops 1, trace.python_ns stamped";
      sample_csharp = "hops " + std::to_string((*reply)->hops()) + ", trace.csharp_ns stamped (" +
                      std::to_string((t.csharp_ns() - t.python_ns()) / 1000) + " us after trace.python_ns)";
    }
  }
  const double elapsed = duration<double>(steady_clock::now() - measured_start).count();

  std::printf("  one message each stage saw (seq %" PRIu64 ", %zu bytes as a FlatBuffer):\n", o.warmup, message_bytes);
  std::printf("    C++    built in the slot:      %s\n", sample_sent.c_str());
  std::printf("    Python rebuilt in a slot:      %s\n", sample_python.c_str());
  std::printf("    C#     rebuilt in a slot:      %s\n", sample_csharp.c_str());
  std::printf("  latency over %" PRIu64 " round trips (every reply checked: seq, hops, text, payload, trace):\n", o.count);
  print_row("round trip", rtt);
  std::vector<double> per_hop(rtt);
  for (double& v : per_hop) v /= 3;
  print_row("per hop (rtt / 3)", per_hop);
  print_row("hop C++ -> Python", hop_py);
  print_row("hop Python -> C#", hop_cs);
  print_row("hop C# -> C++", hop_cpp);
  std::printf("  throughput, one message in flight: %.0f round trips/s = %.0f messages/s\n",
              static_cast<double>(o.count) / elapsed, 3 * static_cast<double>(o.count) / elapsed);
  std::printf("  (a hop runs from the sender's stamp to the receiver's: it includes the sender building its message)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: %s [--count N] [--warmup N] [--prefix P] [--startup-timeout SECONDS]\n", argv[0]);
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {  // attach failures: type mismatch, busy channel, ...
    std::fprintf(stderr, "C++ driver: %s\n", e.what());
    return 1;
  }
}
