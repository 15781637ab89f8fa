// A one-publisher, N-subscriber harness for fan-out latency (Flatlane topics in
// pattern_cases.cpp, ZeroMQ PUB/SUB in zmq_cases.cpp).
//
// The publisher (this process) stamps each message with CLOCK_MONOTONIC and publishes it only
// after every subscriber has taken the previous one, so each sample is an unloaded fan-out: the
// time from the stamp until the LAST subscriber has the message in hand. Subscribers are forked
// processes and record their own receive times in a shared array. The publisher runs on the
// parent's core, every subscriber on the child's core. The report's one-way latency is
// rtt_ns / 2, so the case stores twice the measured one-way time.
#pragma once

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <climits>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "bench.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {

struct alignas(64) FanoutWord {
  std::uint32_t value = 0;
};

struct FanoutSync {
  FanoutWord ready;   // subscribers attached
  FanoutWord synced;  // subscribers that have seen a first message (ZeroMQ's slow-joiner probe)
  FanoutWord done;    // messages taken, summed over subscribers
};

// Shared state of one fan-out case: the sync words and subs x total receive latencies (ns).
class FanoutRun {
 public:
  FanoutRun(int subs, std::uint64_t total)
      : subs_(subs), total_(total), region_(sizeof(FanoutSync) + sizeof(std::uint64_t) * subs * total) {
    sync_ = new (region_.data()) FanoutSync;
    samples_ = reinterpret_cast<std::uint64_t*>(region_.data() + sizeof(FanoutSync));
  }
  int subs() const { return subs_; }
  std::uint64_t total() const { return total_; }
  FanoutSync& sync() { return *sync_; }

  // Subscriber side: message `seq` (1-based) arrived `ns` after its stamp.
  void record(int sub, std::uint64_t seq, std::uint64_t ns) {
    samples_[static_cast<std::uint64_t>(sub) * total_ + (seq - 1)] = ns;
    const std::uint32_t n = std::atomic_ref<std::uint32_t>(sync_->done.value).fetch_add(1, std::memory_order_acq_rel) + 1;
    if (n % static_cast<std::uint32_t>(subs_) == 0) wake_all(&sync_->done.value);
  }
  void add(FanoutWord& w) {
    std::atomic_ref<std::uint32_t>(w.value).fetch_add(1, std::memory_order_acq_rel);
    wake_all(&w.value);  // several subscribers may wait on `ready`
  }
  static void wake_all(std::uint32_t* word) {
    syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  }
  // Publisher side: sleep until `word` reaches at least `want`.
  static void wait_at_least(FanoutWord& w, std::uint32_t want) {
    std::atomic_ref<std::uint32_t> ref(w.value);
    for (;;) {
      const std::uint32_t v = ref.load(std::memory_order_acquire);
      if (v >= want) return;
      futex_wait(&w.value, v);
    }
  }
  // Time until the last subscriber had message k, for the timed messages.
  std::vector<std::uint64_t> last_subscriber_rtt(std::uint64_t warmup) const {
    std::vector<std::uint64_t> out;
    for (std::uint64_t k = warmup; k < total_; ++k) {
      std::uint64_t worst = 0;
      for (int s = 0; s < subs_; ++s) worst = std::max(worst, samples_[static_cast<std::uint64_t>(s) * total_ + k]);
      out.push_back(2 * worst);  // the report halves rtt_ns
    }
    return out;
  }

 private:
  int subs_;
  std::uint64_t total_;
  SharedRegion region_;
  FanoutSync* sync_ = nullptr;
  std::uint64_t* samples_ = nullptr;
};

// Message payload: word 0 the stamp, word 1 the seq, the rest filled with the seq.
inline void stamp_payload(std::byte* p, std::size_t size, std::uint64_t seq) {
  fill_payload(p, size, seq);
  const std::uint64_t t = now_ns();
  std::memcpy(p, &t, 8);
}
inline bool stamped_payload_ok(const std::byte* p, std::size_t size, std::uint64_t seq, std::uint64_t* stamp) {
  std::memcpy(stamp, p, 8);
  std::uint64_t s = 0;
  std::memcpy(&s, p + 8, 8);
  return s == seq && sum_payload(p + 8, size - 8) == static_cast<std::uint64_t>((size - 8) / 8) * seq;
}

// Forks one process per subscriber running child(i) (its exit status), runs parent() here, and
// reaps them all; a watchdog alarm ends a hung case. Returns "" or an error.
inline std::string run_fanout(int subs, const std::function<std::string()>& parent,
                              const std::function<int(int)>& child, unsigned watchdog_s) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids;
  const pid_t me = getpid();
  for (int i = 0; i < subs; ++i) {
    const pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != me) _exit(1);
      // The publisher keeps its core; the subscribers share the other one (as the pair cases'
      // child does), so a wake-up crosses cores as it would between real processes.
      if (cpus().child >= 0 && !pin_to_cpu(cpus().child)) _exit(1);
      int rc = 1;
      try {
        rc = child(i);
      } catch (...) {
      }
      _exit(rc);
    }
    pids.push_back(pid);
  }
  std::string err;
  if (static_cast<int>(pids.size()) != subs) {
    err = "fork failed";
  } else {
    alarm(watchdog_s);
    try {
      err = parent();
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  if (!err.empty())
    for (pid_t p : pids) kill(p, SIGKILL);
  for (pid_t p : pids) {
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
    }
    if (err.empty() && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) err = "subscriber process failed";
  }
  alarm(0);
  return err;
}

}  // namespace flbench
