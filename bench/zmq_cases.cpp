// ZeroMQ over ipc:// (Unix domain sockets) as the "conventional IPC" point
// of comparison, through the plain C API.
//
// Messages are built with zmq_msg_init_size and written in place, and
// received with zmq_msg_recv and read in place: the cheapest way to use
// the API, so ZeroMQ's own copies through the socket are what is measured.
// Each process creates its context after fork (ZeroMQ contexts must not
// cross fork) and its I/O thread shares the process's pinned core.
#include "bench.hpp"

#ifdef FLATLANE_BENCH_HAVE_ZMQ

#include <new>

#include <unistd.h>
#include <zmq.h>

#include "fanout.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

std::string zmq_error(const char* what) { return std::string(what) + ": " + zmq_strerror(zmq_errno()); }

// A context + one socket, closed on scope exit. The sending child keeps
// the default infinite linger so its last messages are delivered before
// zmq_ctx_term returns (the parent is still reading them then; if the
// parent fails, run_pair kills the child). The parent needs no linger.
enum class Linger { Drop, Deliver };

class ZmqSocket {
 public:
  ZmqSocket(int type, Linger linger) : ctx_(zmq_ctx_new()), linger_(linger) {
    if (ctx_ != nullptr) sock_ = zmq_socket(ctx_, type);
  }
  ~ZmqSocket() {
    if (sock_ != nullptr) {
      if (linger_ == Linger::Drop) {
        int zero = 0;
        zmq_setsockopt(sock_, ZMQ_LINGER, &zero, sizeof(zero));
      }
      zmq_close(sock_);
    }
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
  }
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;

  void* get() const { return sock_; }
  bool valid() const { return sock_ != nullptr; }

 private:
  void* ctx_ = nullptr;
  void* sock_ = nullptr;
  Linger linger_;
};

// A unique ipc endpoint under /tmp, registered for signal-time cleanup and
// unlinked when the case ends.
class IpcEndpoint {
 public:
  IpcEndpoint() : path_("/tmp/flatlane-bench-" + unique_suffix() + ".ipc") {
    register_cleanup_path(path_);
  }
  ~IpcEndpoint() {
    unlink(path_.c_str());
    unregister_cleanup_path(path_);
  }
  IpcEndpoint(const IpcEndpoint&) = delete;
  IpcEndpoint& operator=(const IpcEndpoint&) = delete;

  std::string url() const { return "ipc://" + path_; }

 private:
  std::string path_;
};

// Sends one `size`-byte message whose payload is written in place.
bool send_msg(void* sock, std::size_t size, std::uint64_t seq) {
  zmq_msg_t m;
  if (zmq_msg_init_size(&m, size) != 0) return false;
  fill_payload(static_cast<std::byte*>(zmq_msg_data(&m)), size, seq);
  if (zmq_msg_send(&m, sock, 0) < 0) {
    zmq_msg_close(&m);
    return false;
  }
  return true;
}

// Receives one message and checks it in place. -1: transport error,
// 0: wrong contents, 1: ok.
int recv_msg(void* sock, std::size_t size, std::uint64_t seq) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, sock, 0) < 0) {
    zmq_msg_close(&m);
    return -1;
  }
  const bool good = zmq_msg_size(&m) == size &&
                    payload_ok(static_cast<const std::byte*>(zmq_msg_data(&m)), size, seq);
  zmq_msg_close(&m);
  return good ? 1 : 0;
}

// REQ (parent, binds) <-> REP (child, connects); both directions carry
// `size` bytes, like every other latency case.
Result reqrep_latency(const Plan& plan, std::size_t size) {
  IpcEndpoint ep;
  const std::string url = ep.url();
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);

  Result res;
  auto parent = [&]() -> std::string {
    ZmqSocket req(ZMQ_REQ, Linger::Drop);
    if (!req.valid()) return zmq_error("zmq_socket");
    if (zmq_bind(req.get(), url.c_str()) != 0) return zmq_error("zmq_bind");
    bool bad = false;
    bool ok = measure_round_trips(
        warmup, iters,
        [&](std::uint64_t seq) {
          if (!send_msg(req.get(), size, seq)) return false;
          const int r = recv_msg(req.get(), size, seq);
          if (r == 0) bad = true;
          return r >= 0;
        },
        res.rtt_ns);
    if (!ok) return zmq_error("zmq send/recv");
    if (bad) return "payload mismatch seen by parent";
    return {};
  };
  auto child = [&]() -> int {
    ZmqSocket rep(ZMQ_REP, Linger::Deliver);
    if (!rep.valid() || zmq_connect(rep.get(), url.c_str()) != 0) return 1;
    int rc = 0;
    for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
      const int r = recv_msg(rep.get(), size, seq);
      if (r < 0) return 1;
      if (r == 0) rc = 2;
      if (!send_msg(rep.get(), size, seq)) return 1;
    }
    return rc;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// PUSH (child, connects) -> PULL (parent, binds). The go signal travels
// through a small shared mapping so the child starts the timed batch only
// after the parent has taken t0; nothing is queued ahead of the clock.
Result pushpull_trial(const Plan& plan, std::size_t size) {
  IpcEndpoint ep;
  const std::string url = ep.url();
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t n = plan.tput_messages(size);
  const std::uint64_t warmup = plan.warmup_iters(n);

  Result res;
  auto parent = [&]() -> std::string {
    ZmqSocket pull(ZMQ_PULL, Linger::Drop);
    if (!pull.valid()) return zmq_error("zmq_socket");
    if (zmq_bind(pull.get(), url.c_str()) != 0) return zmq_error("zmq_bind");
    bool bad = false;
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      const int r = recv_msg(pull.get(), size, seq);
      if (r < 0) return zmq_error("zmq_msg_recv");
      if (r == 0) bad = true;
    }
    spin_until_equal(sync->child_ready.value, 1u);
    const std::uint64_t t0 = now_ns();
    std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
    for (; seq <= warmup + n; ++seq) {
      const int r = recv_msg(pull.get(), size, seq);
      if (r < 0) return zmq_error("zmq_msg_recv");
      if (r == 0) bad = true;
    }
    const std::uint64_t t1 = now_ns();
    if (bad) return "payload mismatch seen by consumer";
    res.messages = n;
    res.bytes = n * size;
    res.seconds = static_cast<double>(t1 - t0) * 1e-9;
    return {};
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    ZmqSocket push(ZMQ_PUSH, Linger::Deliver);
    if (!push.valid() || zmq_connect(push.get(), url.c_str()) != 0) return 1;
    std::uint64_t seq = 1;
    for (; seq <= warmup; ++seq) {
      if (!send_msg(push.get(), size, seq)) return 1;
    }
    std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
    spin_until_equal(sync->go.value, 1u);
    for (; seq <= warmup + n; ++seq) {
      if (!send_msg(push.get(), size, seq)) return 1;
    }
    return 0;
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// PUB (this process, binds) -> `subs` SUB processes, paced like topic/fanout-4 (fanout.hpp). PUB
// drops messages for subscriptions that have not arrived yet (the slow joiner), so the publisher
// first sends probe messages (seq 0) until every subscriber has seen one.
Result pubsub_fanout(const Plan& plan, std::size_t size, int subs) {
  const std::uint64_t iters = plan.latency_iters(size) / 4 + 200;
  const std::uint64_t warmup = plan.warmup_iters(iters);
  FanoutRun run(subs, warmup + iters);
  IpcEndpoint ep;
  Result res;
  auto parent = [&]() -> std::string {
    ZmqSocket pub(ZMQ_PUB, Linger::Drop);
    if (!pub.valid()) return zmq_error("zmq_socket");
    if (zmq_bind(pub.get(), ep.url().c_str()) != 0) return zmq_error("zmq_bind");
    run.add(run.sync().ready);  // bound: subscribers may connect
    for (int probes = 0; std::atomic_ref<std::uint32_t>(run.sync().synced.value).load() <
                         static_cast<std::uint32_t>(subs); ++probes) {
      if (probes > 20000) return "subscribers never saw a probe";
      if (!send_msg(pub.get(), size, 0)) return zmq_error("zmq_msg_send");
      usleep(500);
    }
    for (std::uint64_t seq = 1; seq <= run.total(); ++seq) {
      zmq_msg_t m;
      if (zmq_msg_init_size(&m, size) != 0) return zmq_error("zmq_msg_init_size");
      stamp_payload(static_cast<std::byte*>(zmq_msg_data(&m)), size, seq);
      if (zmq_msg_send(&m, pub.get(), 0) < 0) {
        zmq_msg_close(&m);
        return zmq_error("zmq_msg_send");
      }
      FanoutRun::wait_at_least(run.sync().done, static_cast<std::uint32_t>(seq * static_cast<std::uint64_t>(subs)));
    }
    return {};
  };
  auto child = [&](int i) -> int {
    FanoutRun::wait_at_least(run.sync().ready, 1);
    ZmqSocket sub(ZMQ_SUB, Linger::Drop);
    if (!sub.valid() || zmq_setsockopt(sub.get(), ZMQ_SUBSCRIBE, "", 0) != 0) return 1;
    if (zmq_connect(sub.get(), ep.url().c_str()) != 0) return 1;
    bool synced = false;
    for (std::uint64_t seq = 1; seq <= run.total();) {
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, sub.get(), 0) < 0) return 1;
      const auto* p = static_cast<const std::byte*>(zmq_msg_data(&m));
      std::uint64_t word1 = 0;
      if (zmq_msg_size(&m) == size) std::memcpy(&word1, p + 8, 8);
      if (word1 == 0) {  // a probe
        if (!synced) run.add(run.sync().synced);
        synced = true;
        zmq_msg_close(&m);
        continue;
      }
      std::uint64_t stamp = 0;
      const bool good = zmq_msg_size(&m) == size && stamped_payload_ok(p, size, seq, &stamp);
      const std::uint64_t t = now_ns();
      zmq_msg_close(&m);
      if (!good) return 3;
      run.record(i, seq, t - stamp);
      ++seq;
    }
    return 0;
  };
  res.error = run_fanout(subs, parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  if (res.ok) res.rtt_ns = run.last_subscriber_rtt(warmup);
  return res;
}

}  // namespace

void add_zmq_cases(std::vector<Case>& out, const Options& opt) {
  if (!opt.zmq) return;
  for (std::size_t size : kLatencySizes) {
    out.push_back({"zmq/reqrep", "zmq REQ/REP ipc", size, "block", Kind::Latency, false,
                   [size](const Plan& p) { return reqrep_latency(p, size); }});
  }
  out.push_back({"zmq/pubsub-1", "zmq PUB/SUB 1->1 (stamped)", 64, "block", Kind::Latency, false,
                 [](const Plan& p) { return pubsub_fanout(p, 64, 1); }});
  out.push_back({"zmq/pubsub-4", "zmq PUB/SUB 1->4 (last sub)", 64, "block", Kind::Latency, false,
                 [](const Plan& p) { return pubsub_fanout(p, 64, 4); }});
  // The duplex cases' largest size (duplex_cases.cpp).
  out.push_back({"zmq/reqrep", "zmq REQ/REP ipc", 8 * kMiB, "block", Kind::Latency, false,
                 [](const Plan& p) { return reqrep_latency(p, 8 * kMiB); }});

  for (std::size_t size : kTputSizes) {
    out.push_back({"zmq/pushpull", "zmq PUSH/PULL ipc", size, "block", Kind::Throughput, false,
                   [size](const Plan& p) {
                     return run_throughput_trials(p, [&] { return pushpull_trial(p, size); });
                   }});
  }
}

std::string zmq_version_text() {
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace flbench

#else  // built without ZeroMQ

namespace flbench {
void add_zmq_cases(std::vector<Case>&, const Options&) {}
std::string zmq_version_text() { return {}; }
}  // namespace flbench

#endif
