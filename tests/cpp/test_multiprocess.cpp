// Multi-process tests: every endpoint pair spans two real processes. The peer side is
// flatlane_peer_process (tests/cpp/peer_process.cpp), started with fork + exec; every child is
// reaped with waitpid (the Peer destructor kills and reaps whatever a test left running).
//
// Payloads are derived from (seed, seq): the size is a hash of seq in [0, 3072] and the bytes are a
// 64-bit hash stream, so any reordered, torn, stale or foreign frame fails verification.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <ostream>
#include <poll.h>
#include <random>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "payload_pattern.hpp"
#include "test_util.hpp"

namespace flatlane {
// Readable wait strategies in test names and messages (Errc's printer is in test_util.hpp).
[[maybe_unused]] static void PrintTo(WaitStrategy s, std::ostream* os) {
  *os << (s == WaitStrategy::busy_spin ? "busy_spin" : s == WaitStrategy::blocking ? "blocking" : "spin_then_sleep");
}
}  // namespace flatlane

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr size_t kMaxPayload = 3072;  // payload sizes are 0..3072 bytes
constexpr uint64_t kRing = 1u << 16;  // 64 KiB ring unless a test says otherwise
// Detection bound for a blocked call: the runtime re-checks peer liveness every
// WaitOptions::liveness_interval (50 ms), so a dead peer is reported at most ~50 ms after it died.
constexpr nanoseconds kDetectBound = 100ms;
// close() force-wakes the sleeper, so a blocked call returns within scheduling latency.
constexpr nanoseconds kCloseBound = 50ms;

// ---- payload pattern: payload_pattern.hpp, with this file's default size limit -------------------
size_t payload_size(uint64_t seed, uint64_t seq, size_t max = kMaxPayload) {
  return flatlane::test::payload_size(seed, seq, max);
}
// -------------------------------------------------------------------------------------------------

int64_t now_ns() {
  return std::chrono::duration_cast<nanoseconds>(Clock::now().time_since_epoch()).count();
}
double ms_of(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Frame check: expected seq (0 = any), size and bytes derived from (seed, seq).
testing::AssertionResult frame_ok(const Frame& f, uint64_t seed, uint64_t want_seq) {
  if (want_seq != 0 && f.seq() != want_seq)
    return testing::AssertionFailure() << "seq " << f.seq() << ", expected " << want_seq;
  const size_t want = payload_size(seed, f.seq());
  if (f.size() != want)
    return testing::AssertionFailure() << "seq " << f.seq() << ": size " << f.size() << ", expected " << want;
  if (!check_payload(seed, f.seq(), f.ptr(), f.size()))
    return testing::AssertionFailure() << "seq " << f.seq() << ": payload bytes corrupt (size " << f.size() << ")";
  return testing::AssertionSuccess();
}

// Writes one pattern message; the seq the writer will stamp is its committed count + 1.
Errc write_one(Writer& w, uint64_t seed, nanoseconds timeout) {
  const uint64_t seq = w.stats().frames + 1;
  const size_t sz = payload_size(seed, seq);
  auto span = w.reserve(sz, timeout);
  if (!span) return span.error();
  fill_payload(seed, seq, span->data(), sz);
  w.commit(sz);
  return Errc::ok;
}

template <class F>
Errc thrown_code(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

const char* strategy_arg(WaitStrategy s) {
  switch (s) {
    case WaitStrategy::busy_spin: return "strategy=busy";
    case WaitStrategy::blocking: return "strategy=block";
    case WaitStrategy::spin_then_sleep: break;
  }
  return "strategy=spin";
}
std::string strategy_name(WaitStrategy s) {
  switch (s) {
    case WaitStrategy::busy_spin: return "busy_spin";
    case WaitStrategy::blocking: return "blocking";
    case WaitStrategy::spin_then_sleep: break;
  }
  return "spin_then_sleep";
}

std::string describe_status(int st) {
  std::ostringstream o;
  if (WIFEXITED(st)) o << "exit code " << WEXITSTATUS(st);
  else if (WIFSIGNALED(st)) o << "killed by signal " << WTERMSIG(st);
  else o << "status 0x" << std::hex << st;
  return o.str();
}
bool exited_zero(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }
bool killed_by(int st, int sig) { return WIFSIGNALED(st) && WTERMSIG(st) == sig; }

// One child process running flatlane_peer_process. Non-movable; must be created and destroyed on
// the test's main thread (PR_SET_PDEATHSIG in the peer is tied to the forking thread).
class Peer {
 public:
  explicit Peer(const std::vector<std::string>& args) {
    const std::string exe = std::string(FLATLANE_TEST_BIN_DIR) + "/flatlane_peer_process";
    std::vector<std::string> all{exe};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : all) argv.push_back(s.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Child: async-signal-safe calls only until exec.
      ::dup2(fds[1], STDOUT_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    for (auto& s : args) cmd_ += s + " ";
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
    if (fd_ >= 0) ::close(fd_);
  }

  pid_t pid() const { return pid_; }
  const std::string& cmd() const { return cmd_; }
  const std::vector<std::string>& lines() const { return seen_; }

  // Next stdout line; nullopt on EOF or timeout.
  std::optional<std::string> next_line(nanoseconds timeout) {
    const int64_t deadline = now_ns() + timeout.count();
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        seen_.push_back(line);
        return line;
      }
      const int64_t left = deadline - now_ns();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left / 1'000'000 + 1));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      char tmp[512];
      ssize_t n = ::read(fd_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;  // EOF: the peer is gone
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  // Skips lines until one starts with `prefix`.
  std::optional<std::string> await(const std::string& prefix, nanoseconds timeout = 10s) {
    const int64_t deadline = now_ns() + timeout.count();
    for (;;) {
      auto l = next_line(nanoseconds(std::max<int64_t>(0, deadline - now_ns())));
      if (!l) return std::nullopt;
      if (l->rfind(prefix, 0) == 0) return l;
    }
  }
  // Thread-safe: only sends the signal.
  void signal(int sig) const { ::kill(pid_, sig); }
  void kill9() const { ::kill(pid_, SIGKILL); }
  // Blocking reap; may run on a helper thread as long as the main thread leaves this Peer alone
  // until that thread is joined.
  void reap() {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = st;
  }

  // Reaps the child; returns its wait status, or nullopt if it is still running after `timeout`.
  std::optional<int> wait_exit(nanoseconds timeout = 10s) {
    if (reaped_) return status_;
    const int64_t deadline = now_ns() + timeout.count();
    for (;;) {
      int st = 0;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_ = st;
        return st;
      }
      if (now_ns() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }
  // Waits until the child has terminated but leaves it a zombie (not reaped).
  bool wait_zombie(nanoseconds timeout = 5s) {
    const int64_t deadline = now_ns() + timeout.count();
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
        return true;
      if (now_ns() >= deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
  }
  // The number after `key` in a line like "closing 12345" or the n-th field of it.
  static uint64_t field(const std::string& line, size_t index) {
    std::istringstream in(line);
    std::string tok;
    for (size_t i = 0; i <= index; ++i)
      if (!(in >> tok)) return 0;
    return std::strtoull(tok.c_str(), nullptr, 10);
  }
  static std::string word(const std::string& line, size_t index) {
    std::istringstream in(line);
    std::string tok;
    for (size_t i = 0; i <= index; ++i)
      if (!(in >> tok)) return {};
    return tok;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  std::string cmd_;
  std::vector<std::string> seen_;
  bool reaped_ = false;
  int status_ = 0;
};

std::string shm_prefix() { return "flatlane.test.mp." + std::to_string(::getpid()) + "."; }

// Every test checks that it left no segment of its own behind in /dev/shm.
class MultiProcess : public testing::Test {
 protected:
  void TearDown() override {
    const std::string prefix = shm_prefix();
    if (DIR* d = ::opendir("/dev/shm")) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind(prefix, 0) == 0) {
          ADD_FAILURE() << "segment left behind: /dev/shm/" << n;
          ::shm_unlink(("/" + n).c_str());
        }
      }
      ::closedir(d);
    }
  }
};

class MultiProcessTransfer : public MultiProcess, public testing::WithParamInterface<WaitStrategy> {};
class MultiProcessClose : public MultiProcess, public testing::WithParamInterface<WaitStrategy> {};
// (strategy, reap the killed peer right away instead of leaving it a zombie)
class MultiProcessDeath : public MultiProcess, public testing::WithParamInterface<std::tuple<WaitStrategy, bool>> {};
// (writer A is killed (true) or exits cleanly (false), reader drains A before B starts)
class MultiProcessRestart : public MultiProcess, public testing::WithParamInterface<std::tuple<bool, bool>> {};
using MultiProcessChaos = MultiProcess;
using MultiProcessRestartChunked = MultiProcess;
using MultiProcessReclaim = MultiProcess;
using MultiProcessLarge = MultiProcess;
using MultiProcessCleanExit = MultiProcess;

std::string strategy_param_name(const testing::TestParamInfo<WaitStrategy>& info) {
  return strategy_name(info.param);
}

constexpr WaitStrategy kAllStrategies[] = {WaitStrategy::busy_spin, WaitStrategy::spin_then_sleep,
                                           WaitStrategy::blocking};

// =================================================================================================
// 1. Bulk transfer across processes, every payload verified, seqs consecutive.

constexpr uint64_t kBulkMessages = 200'000;

TEST_P(MultiProcessTransfer, WriterPeerToReader200kRandomSizes) {
  const WaitStrategy ws = GetParam();
  TempName name("mp");
  Reader r(name, opts(OpenMode::create, kRing, ws));
  Peer w({"write", name.str(), "count=" + std::to_string(kBulkMessages), "seed=11", strategy_arg(ws), "then=exit"});
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  uint64_t bytes = 0, empty = 0, big = 0;
  for (uint64_t seq = 1; seq <= kBulkMessages; ++seq) {
    auto f = r.read(10s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at message " << seq;
    ASSERT_TRUE(frame_ok(*f, 11, seq));
    bytes += f->size();
    empty += f->size() == 0;
    big += f->size() > 3000;
  }
  EXPECT_GT(empty, 0u);  // the size distribution really covers both ends
  EXPECT_GT(big, 0u);
  auto end = r.read(10s);
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
  std::printf("  %llu messages, %.1f MiB verified\n", static_cast<unsigned long long>(kBulkMessages),
              static_cast<double>(bytes) / (1 << 20));
}

TEST_P(MultiProcessTransfer, WriterToReaderPeer200kRandomSizes) {
  const WaitStrategy ws = GetParam();
  TempName name("mp");
  Writer w(name, opts(OpenMode::create, kRing, ws));
  Peer r({"read", name.str(), "count=" + std::to_string(kBulkMessages), "seed=12", strategy_arg(ws), "then=exit"});
  ASSERT_TRUE(r.await("ready")) << r.cmd();
  for (uint64_t i = 0; i < kBulkMessages; ++i) {
    Errc e = write_one(w, 12, 10s);
    ASSERT_EQ(e, Errc::ok) << to_string(e) << " at message " << i + 1;
  }
  auto done = r.await("done", 20s);
  ASSERT_TRUE(done.has_value()) << "reader peer did not finish";
  EXPECT_EQ(Peer::field(*done, 1), kBulkMessages);
  EXPECT_EQ(Peer::field(*done, 2), kBulkMessages);  // last seq
  auto st = r.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
}

INSTANTIATE_TEST_SUITE_P(Strategies, MultiProcessTransfer, testing::ValuesIn(kAllStrategies),
                         strategy_param_name);

// =================================================================================================
// 2./3. kill -9 of one side while the other is blocked.

std::string death_name(const testing::TestParamInfo<std::tuple<WaitStrategy, bool>>& info) {
  return strategy_name(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_reaped" : "_zombie");
}

TEST_P(MultiProcessDeath, WriterKilledWhileReaderBlockedGivesPeerDeadWithin100ms) {
  const auto [ws, reap] = GetParam();
  TempName name("mp");
  Reader r(name, opts(OpenMode::create, kRing, ws));
  Peer w({"write", name.str(), "count=300", "seed=21", strategy_arg(ws), "then=hang"});
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  // Everything committed before the kill is delivered intact and in order.
  for (uint64_t seq = 1; seq <= 300; ++seq) {
    auto f = r.read(10s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at " << seq;
    ASSERT_TRUE(frame_ok(*f, 21, seq));
  }
  ASSERT_TRUE(w.await("done 300 300"));

  std::atomic<int64_t> kill_ns{0};
  std::atomic<bool> started{false};
  std::jthread killer([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(150ms);  // the reader is asleep in read() by now
    w.kill9();
    kill_ns.store(now_ns());
    if (reap) w.reap();  // pid gone from /proc instead of a zombie
  });
  started.store(true);
  auto f = r.read(5s);
  const int64_t ret_ns = now_ns();
  killer.join();
  EXPECT_EQ(f.error(), Errc::peer_dead) << to_string(f.error());
  EXPECT_GT(ret_ns, kill_ns.load()) << "read() returned before the writer was killed";
  const int64_t latency = ret_ns - kill_ns.load();
  EXPECT_LT(latency, kDetectBound.count()) << "peer_dead after " << ms_of(latency) << " ms";
  std::printf("  kill -> peer_dead: %.2f ms (%s)\n", ms_of(latency), reap ? "reaped" : "zombie");
  // Still dead on the next call, and reported well within the bound.
  const int64_t t0 = now_ns();
  auto again = r.read(5s);
  EXPECT_EQ(again.error(), Errc::peer_dead);
  EXPECT_LT(now_ns() - t0, kDetectBound.count());
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
}

TEST_P(MultiProcessDeath, ReaderKilledWhileWriterBlockedGivesPeerDeadWithin100ms) {
  const auto [ws, reap] = GetParam();
  TempName name("mp");
  Writer w(name, opts(OpenMode::create, kRing, ws));
  // The reader peer takes 3 frames and holds them, then sits there without reading.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write_one(w, 31, 1s), Errc::ok);
  Peer r({"hold", name.str(), "frames=3", strategy_arg(ws)});
  ASSERT_TRUE(r.await("ready")) << r.cmd();
  Errc e;
  int n = 0;
  while ((e = write_one(w, 31, 0ns)) == Errc::ok) ++n;
  ASSERT_EQ(e, Errc::timeout) << to_string(e);  // ring full
  ASSERT_GT(n, 10);

  std::atomic<int64_t> kill_ns{0};
  std::atomic<bool> started{false};
  std::jthread killer([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(150ms);
    r.kill9();
    kill_ns.store(now_ns());
    if (reap) r.reap();
  });
  started.store(true);
  auto span = w.reserve(1000, 5s);
  const int64_t ret_ns = now_ns();
  killer.join();
  EXPECT_EQ(span.error(), Errc::peer_dead) << to_string(span.error());
  const int64_t latency = ret_ns - kill_ns.load();
  EXPECT_GT(latency, 0) << "reserve() returned before the reader was killed";
  EXPECT_LT(latency, kDetectBound.count()) << "peer_dead after " << ms_of(latency) << " ms";
  std::printf("  kill -> peer_dead: %.2f ms (%s)\n", ms_of(latency), reap ? "reaped" : "zombie");
  EXPECT_FALSE(w.peer_attached());
  auto st = r.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
}

INSTANTIATE_TEST_SUITE_P(Strategies, MultiProcessDeath,
                         testing::Combine(testing::ValuesIn(kAllStrategies), testing::Bool()), death_name);

// Committed-but-unread data outlives its writer: the reader gets all of it, then peer_dead.
TEST_F(MultiProcessChaos, CommittedFramesOfKilledWriterAreDeliveredBeforePeerDead) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  Peer w({"write", name.str(), "fill=1", "seed=22", "then=hang"});
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  auto full = w.await("full");
  ASSERT_TRUE(full.has_value());
  const uint64_t committed = Peer::field(*full, 1);
  ASSERT_GT(committed, 10u);
  w.kill9();
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
  for (uint64_t seq = 1; seq <= committed; ++seq) {
    auto f = r.read(1s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at " << seq << " of " << committed;
    ASSERT_TRUE(frame_ok(*f, 22, seq));
  }
  auto end = r.read(1s);
  EXPECT_EQ(end.error(), Errc::peer_dead) << to_string(end.error());
}

// Writer killed while blocked on a full ring (mid-stream, not at a clean boundary of ours).
TEST_F(MultiProcessChaos, WriterKilledWhileBlockedOnFullRingLosesNothingCommitted) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  Peer w({"write", name.str(), "count=inf", "seed=23", "then=hang"});
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  // Wait until the ring is (nearly) full, i.e. the writer is blocked in reserve().
  const int64_t deadline = now_ns() + 5'000'000'000;
  while (r.stats().occupancy_bytes + wire::frame_extent(kMaxPayload) * 2 < kRing && now_ns() < deadline)
    std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);
  w.kill9();
  ASSERT_TRUE(w.wait_exit().has_value());
  const uint64_t committed = r.segment().writer_block().count.load();
  uint64_t seq = 1;
  for (;; ++seq) {
    auto f = r.read(1s);
    if (!f) {
      EXPECT_EQ(f.error(), Errc::peer_dead) << to_string(f.error());
      break;
    }
    ASSERT_TRUE(frame_ok(*f, 23, seq));
  }
  EXPECT_EQ(seq - 1, committed) << "frames delivered vs. frames the writer committed";
}

// =================================================================================================
// 4. kill -9 at random moments during a busy transfer; the killed role is then restarted.

TEST_F(MultiProcessChaos, RandomKillsDuringBusyTransfer) {
  const uint64_t rng_seed = std::random_device{}();
  std::printf("  rng seed %llu\n", static_cast<unsigned long long>(rng_seed));
  std::mt19937_64 rng(rng_seed);
  // The survivor may first have to drain (or fill) up to a full 64 KiB ring before it waits, and the
  // kill can land while it is busy, so detection is one liveness interval (50 ms) after the drain;
  // 150 ms leaves room for scheduling on a 2-core box where the peer, the killer thread and the
  // survivor share the CPUs.
  constexpr int64_t kChaosBound = 150'000'000;
  constexpr nanoseconds kCallBound = 2s;  // no call may block longer than this (no deadlock)
  int64_t worst = 0;
  for (int iter = 0; iter < 20; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter) + ", rng seed " + std::to_string(rng_seed));
    const bool kill_writer = (iter % 2) == 0;
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30'000)(rng));
    TempName name("mp");
    const uint64_t seed_a = 1000 + static_cast<uint64_t>(iter);
    const uint64_t seed_b = 5000 + static_cast<uint64_t>(iter);
    std::atomic<int64_t> kill_ns{0};
    if (kill_writer) {
      Reader r(name, opts(OpenMode::create));
      Peer a({"write", name.str(), "count=inf", "seed=" + std::to_string(seed_a), "then=hang"});
      ASSERT_TRUE(a.await("ready")) << a.cmd();
      std::jthread killer([&] {
        std::this_thread::sleep_for(delay);
        a.kill9();
        kill_ns.store(now_ns());
      });
      uint64_t last = 0;
      Errc end = Errc::ok;
      int64_t end_ns = 0;
      for (;;) {
        auto f = r.read(kCallBound);
        if (!f) {
          end = f.error();
          end_ns = now_ns();
          break;
        }
        ASSERT_TRUE(frame_ok(*f, seed_a, last + 1));
        last = f->seq();
      }
      killer.join();
      ASSERT_EQ(end, Errc::peer_dead) << to_string(end) << " after " << last << " frames";
      const int64_t latency = end_ns - kill_ns.load();
      worst = std::max(worst, latency);
      EXPECT_LT(latency, kChaosBound) << "writer killed after " << last << " frames; detected after "
                                      << ms_of(latency) << " ms";
      auto st = a.wait_exit();
      ASSERT_TRUE(st.has_value());
      EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
      // Restart: writer B continues on the same channel; the reader keeps going without a new error.
      Peer b({"write", name.str(), "count=300", "seed=" + std::to_string(seed_b), "then=exit"});
      ASSERT_TRUE(b.await("ready")) << b.cmd();
      uint64_t first_b = 0;
      for (int i = 0; i < 300; ++i) {
        auto f = r.read(kCallBound);
        ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at B's message " << i;
        if (i == 0) {
          first_b = f->seq();
          EXPECT_GT(first_b, last);
          EXPECT_LE(first_b, last + 2);  // +2 if A died between stamping and publishing a frame
        }
        ASSERT_TRUE(frame_ok(*f, seed_b, first_b + static_cast<uint64_t>(i)));
      }
      auto end_b = r.read(kCallBound);
      EXPECT_EQ(end_b.error(), Errc::peer_closed) << to_string(end_b.error());
      auto stb = b.wait_exit();
      ASSERT_TRUE(stb.has_value());
      EXPECT_TRUE(exited_zero(*stb)) << describe_status(*stb);
    } else {
      Writer w(name, opts(OpenMode::create));
      Peer r({"read", name.str(), "count=inf", "seed=" + std::to_string(seed_a), "timeout_ms=5000"});
      ASSERT_TRUE(r.await("ready")) << r.cmd();
      std::jthread killer([&] {
        std::this_thread::sleep_for(delay);
        r.kill9();
        kill_ns.store(now_ns());
      });
      uint64_t n = 0;
      Errc end = Errc::ok;
      int64_t end_ns = 0;
      for (;;) {
        Errc e = write_one(w, seed_a, kCallBound);
        if (e != Errc::ok) {
          end = e;
          end_ns = now_ns();
          break;
        }
        ++n;
      }
      killer.join();
      ASSERT_EQ(end, Errc::peer_dead) << to_string(end) << " after " << n << " frames";
      const int64_t latency = end_ns - kill_ns.load();
      worst = std::max(worst, latency);
      EXPECT_LT(latency, kChaosBound) << "reader killed after " << n << " frames; detected after "
                                      << ms_of(latency) << " ms";
      auto st = r.wait_exit();
      ASSERT_TRUE(st.has_value());
      // Killed by us, not ended by a verification failure (exit code 3) before the kill.
      EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
      // Restart: reader B resumes at the oldest unreleased frame; everything it gets is intact and
      // consecutive, up to the writer's last frame, then peer_closed.
      Peer b({"read", name.str(), "count=inf", "seed=" + std::to_string(seed_a), "expect=peer_closed"});
      ASSERT_TRUE(b.await("ready")) << b.cmd();
      for (int i = 0; i < 300; ++i) {
        Errc e = write_one(w, seed_a, kCallBound);
        ASSERT_EQ(e, Errc::ok) << to_string(e) << " writing to the restarted reader, message " << i;
      }
      const uint64_t last_seq = w.stats().frames;
      w.close();
      auto endl = b.await("end", 5s);
      ASSERT_TRUE(endl.has_value()) << "restarted reader did not finish";
      EXPECT_EQ(Peer::word(*endl, 1), "peer_closed") << *endl;
      EXPECT_GE(Peer::field(*endl, 2), 300u) << *endl;
      EXPECT_EQ(Peer::field(*endl, 3), last_seq) << *endl;
      auto stb = b.wait_exit();
      ASSERT_TRUE(stb.has_value());
      EXPECT_TRUE(exited_zero(*stb)) << describe_status(*stb);
    }
  }
  std::printf("  worst detection latency over 20 kills: %.2f ms\n", ms_of(worst));
}

// =================================================================================================
// 5. A restarted writer reattaches to a live reader.

std::string restart_name(const testing::TestParamInfo<std::tuple<bool, bool>>& info) {
  return std::string(std::get<0>(info.param) ? "killed" : "exited") +
         (std::get<1>(info.param) ? "_drained" : "_pending");
}

TEST_P(MultiProcessRestart, NewWriterProcessContinuesForLiveReader) {
  const auto [kill_a, drain_first] = GetParam();
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  // 15 messages of at most ~3 KiB always fit in the 64 KiB ring, so A never blocks.
  Peer a({"write", name.str(), "count=15", "seed=51", kill_a ? "then=hang" : "then=exit"});
  ASSERT_TRUE(a.await("done 15 15")) << a.cmd();
  auto read_a = [&] {
    for (uint64_t seq = 1; seq <= 15; ++seq) {
      auto f = r.read(2s);
      ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at A's " << seq;
      ASSERT_TRUE(frame_ok(*f, 51, seq));
    }
  };
  if (drain_first) {
    read_a();
    if (HasFatalFailure()) return;
  }
  if (kill_a) a.kill9();
  auto st = a.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(kill_a ? killed_by(*st, SIGKILL) : exited_zero(*st)) << describe_status(*st);
  if (drain_first) {
    // Exactly one error tells the reader its writer went away.
    auto e = r.read(2s);
    EXPECT_EQ(e.error(), kill_a ? Errc::peer_dead : Errc::peer_closed) << to_string(e.error());
  }
  Peer b({"write", name.str(), "count=500", "seed=52", "then=exit"});
  ASSERT_TRUE(b.await("ready")) << b.cmd();
  if (!drain_first) {
    read_a();  // A's frames are still in the ring, ahead of B's: no error in between
    if (HasFatalFailure()) return;
  }
  for (uint64_t seq = 16; seq <= 515; ++seq) {
    auto f = r.read(2s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at B's " << seq;
    ASSERT_TRUE(frame_ok(*f, 52, seq));
  }
  auto end = r.read(2s);
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  auto stb = b.wait_exit();
  ASSERT_TRUE(stb.has_value());
  EXPECT_TRUE(exited_zero(*stb)) << describe_status(*stb);
}

INSTANTIATE_TEST_SUITE_P(Modes, MultiProcessRestart, testing::Combine(testing::Bool(), testing::Bool()),
                         restart_name);

// The reader keeps calling read() (in a thread) while A is killed mid-stream and B takes over.
TEST_F(MultiProcessChaos, ReaderBlockedAcrossWriterRestart) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  struct Got {
    uint64_t seq;
    int who;  // 1 = A's pattern, 2 = B's, 0 = neither (corrupt)
  };
  std::vector<Got> got;
  std::vector<Errc> errors;
  std::jthread reader([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      auto f = r.read(3s);
      if (!f) {
        errors.push_back(f.error());
        if (f.error() == Errc::peer_dead) continue;  // no writer right now: try again
        return;                                      // peer_closed (B is done) or a failure
      }
      const bool is_a = check_payload(53, f->seq(), f->ptr(), f->size()) && f->size() == payload_size(53, f->seq());
      const bool is_b = check_payload(54, f->seq(), f->ptr(), f->size()) && f->size() == payload_size(54, f->seq());
      got.push_back({f->seq(), is_a ? 1 : is_b ? 2 : 0});
    }
  });
  {
    Peer a({"write", name.str(), "count=inf", "seed=53", "then=hang"});
    ASSERT_TRUE(a.await("ready")) << a.cmd();
    std::this_thread::sleep_for(30ms);
    a.kill9();
    ASSERT_TRUE(a.wait_exit().has_value());
  }
  Peer b({"write", name.str(), "count=400", "seed=54", "then=exit"});
  auto st = b.wait_exit(20s);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
  reader.join();
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back(), Errc::peer_closed) << to_string(errors.back());
  size_t dead = 0;
  for (size_t i = 0; i + 1 < errors.size(); ++i) {
    EXPECT_EQ(errors[i], Errc::peer_dead) << to_string(errors[i]);
    dead += errors[i] == Errc::peer_dead;
  }
  // Each peer_dead stands for one 50 ms liveness slice without any live writer (A dead, B not yet
  // attached); B attaches within a few ms, so more than a couple would mean a stuck state.
  EXPECT_LE(dead, 2u);
  size_t a_count = 0, b_count = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NE(got[i].who, 0) << "corrupt frame seq " << got[i].seq << " at index " << i;
    if (got[i].who == 1) {
      ASSERT_EQ(b_count, 0u) << "A frame after B's frames";
      ASSERT_EQ(got[i].seq, i + 1);
      ++a_count;
    } else {
      if (b_count > 0) {
        ASSERT_EQ(got[i].seq, got[i - 1].seq + 1);
      } else if (i > 0) {
        ASSERT_GT(got[i].seq, got[i - 1].seq);
      }
      ++b_count;
    }
  }
  EXPECT_GT(a_count, 0u);
  EXPECT_EQ(b_count, 400u);
  std::printf("  A delivered %zu, B delivered %zu, peer_dead errors in between: %zu\n", a_count, b_count, dead);
}

// A writer killed in the middle of a chunked message: the reader drops the partial message and
// carries on with the new writer's messages, without a corrupt error.
TEST_F(MultiProcessRestartChunked, WriterKilledMidChunkedMessage) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  const uint32_t chunk = r.segment().header().chunk_size;
  // One 1 MiB message (~33 chunks); nobody reads yet, so A blocks with the ring full of its chunks.
  Peer a({"writemsg", name.str(), "count=1", "seed=55", "minsize=1048576", "maxsize=1048576", "then=hang"});
  ASSERT_TRUE(a.await("ready")) << a.cmd();
  const int64_t deadline = now_ns() + 5'000'000'000;
  // chunk == max frame payload here, so the 64 KiB ring holds exactly two chunk frames.
  while (r.stats().occupancy_bytes < 2 * wire::frame_extent(chunk) && now_ns() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(r.stats().occupancy_bytes, 2 * wire::frame_extent(chunk)) << "A never filled the ring";
  a.kill9();
  ASSERT_TRUE(a.wait_exit().has_value());
  // B: 40 messages of 8 B .. 100 KB (single frames and chunked ones).
  Peer b({"writemsg", name.str(), "count=40", "seed=56", "minsize=8", "maxsize=100000", "then=exit"});
  ASSERT_TRUE(b.await("ready")) << b.cmd();
  for (uint64_t k = 0; k < 40; ++k) {
    auto m = r.read_message(5s);
    ASSERT_TRUE(m.ok()) << to_string(m.error()) << " at B's message " << k;
    EXPECT_EQ(check_message(56, m->data().data(), m->size(), 8, 100000), k);
  }
  EXPECT_EQ(r.dropped_partial_messages(), 1u);
  auto end = r.read_message(5s);
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  auto st = b.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
}

// Random kills of a reader process during a chunked (write_message/read_message) transfer; the
// restarted reader skips the tail of any half-consumed message and verifies everything after.
TEST_F(MultiProcessChaos, RandomReaderKillsDuringChunkedTransfer) {
  const uint64_t rng_seed = std::random_device{}();
  std::printf("  rng seed %llu\n", static_cast<unsigned long long>(rng_seed));
  std::mt19937_64 rng(rng_seed);
  constexpr int64_t kChaosBound = 150'000'000;  // see RandomKillsDuringBusyTransfer
  constexpr size_t kMin = 8, kMax = 100'000;
  int64_t worst = 0;
  for (int iter = 0; iter < 10; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter) + ", rng seed " + std::to_string(rng_seed));
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30'000)(rng));
    const uint64_t seed = 7000 + static_cast<uint64_t>(iter);
    TempName name("mp");
    Writer w(name, opts(OpenMode::create));
    Peer r({"readmsg", name.str(), "count=inf", "seed=" + std::to_string(seed), "maxsize=100000", "timeout_ms=5000"});
    ASSERT_TRUE(r.await("ready")) << r.cmd();
    std::atomic<int64_t> kill_ns{0};
    std::jthread killer([&] {
      std::this_thread::sleep_for(delay);
      r.kill9();
      kill_ns.store(now_ns());
    });
    std::vector<std::byte> buf;
    uint64_t k = 0;
    auto send = [&](uint64_t id) {
      const size_t sz = message_size(seed, id, kMin, kMax);
      buf.resize(sz);
      fill_message(seed, id, buf.data(), sz);
      return w.write_message(buf, 2s).error();
    };
    Errc end;
    while ((end = send(k)) == Errc::ok) ++k;
    const int64_t end_ns = now_ns();
    killer.join();
    ASSERT_EQ(end, Errc::peer_dead) << to_string(end) << " after " << k << " messages";
    const int64_t latency = end_ns - kill_ns.load();
    worst = std::max(worst, latency);
    EXPECT_LT(latency, kChaosBound) << ms_of(latency) << " ms";
    auto st = r.wait_exit();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
    // Message k may be half written: send it again, then 30 more.
    Peer b({"readmsg", name.str(), "count=inf", "seed=" + std::to_string(seed), "maxsize=100000",
            "expect=peer_closed"});
    ASSERT_TRUE(b.await("ready")) << b.cmd();
    for (int i = 0; i < 31; ++i, ++k) ASSERT_EQ(send(k), Errc::ok) << "message " << k;
    w.close();
    auto endl = b.await("end", 5s);
    ASSERT_TRUE(endl.has_value()) << "restarted reader did not finish";
    EXPECT_EQ(Peer::word(*endl, 1), "peer_closed") << *endl;
    EXPECT_GE(Peer::field(*endl, 2), 31u) << *endl;
    EXPECT_EQ(Peer::field(*endl, 3), k - 1) << *endl;  // last id
    auto stb = b.wait_exit();
    ASSERT_TRUE(stb.has_value());
    EXPECT_TRUE(exited_zero(*stb)) << describe_status(*stb);
  }
  std::printf("  worst detection latency over 10 kills: %.2f ms\n", ms_of(worst));
}

// A reader process released some held frames out of order and was killed: its successor must get
// every frame it did not release (again), skip the released ones, and see no corruption.
TEST_F(MultiProcessChaos, RestartedReaderSkipsFramesReleasedOutOfOrder) {
  TempName name("mp");
  Writer w(name, opts(OpenMode::create));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(write_one(w, 57, 1s), Errc::ok);
  {
    Peer old({"hold", name.str(), "frames=10", "release=2,4,6"});
    ASSERT_TRUE(old.await("ready")) << old.cmd();
    old.kill9();
    ASSERT_TRUE(old.wait_exit().has_value());
  }
  for (int i = 0; i < 5; ++i) ASSERT_EQ(write_one(w, 57, 1s), Errc::ok);  // seqs 11..15
  Reader r(name, opts(OpenMode::open));
  std::vector<uint64_t> seqs;
  for (;;) {
    auto f = r.read(20ms);
    if (!f) {
      EXPECT_EQ(f.error(), Errc::timeout) << to_string(f.error()) << " after seqs delivered: " << seqs.size();
      break;
    }
    EXPECT_TRUE(frame_ok(*f, 57, 0));
    seqs.push_back(f->seq());
  }
  const std::vector<uint64_t> want{1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  EXPECT_EQ(seqs, want);
}

// A non-blocking poll (timeout 0) must still learn that the peer is gone, or a polling loop spins
// forever on a dead channel.
TEST_F(MultiProcessChaos, ZeroTimeoutPollSeesPeerDead) {
  {
    TempName name("mp");
    Reader r(name, opts(OpenMode::create));
    Peer w({"write", name.str(), "count=3", "seed=58", "then=hang"});
    ASSERT_TRUE(w.await("done 3 3")) << w.cmd();
    w.kill9();
    ASSERT_TRUE(w.wait_exit().has_value());
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      auto f = r.read(0ns);
      ASSERT_TRUE(f.ok()) << to_string(f.error());
      EXPECT_TRUE(frame_ok(*f, 58, seq));
    }
    Errc e = Errc::ok;
    for (int i = 0; i < 100 && e != Errc::peer_dead; ++i, std::this_thread::sleep_for(1ms)) e = r.read(0ns).error();
    EXPECT_EQ(e, Errc::peer_dead) << "read(0) after the writer died: " << to_string(e);
  }
  {
    TempName name("mp");
    Writer w(name, opts(OpenMode::create));
    Peer r({"hold", name.str()});
    ASSERT_TRUE(r.await("ready")) << r.cmd();
    while (write_one(w, 59, 0ns) == Errc::ok) {
    }
    r.kill9();
    ASSERT_TRUE(r.wait_exit().has_value());
    // Poll like a drop-when-full producer: whatever still fits is written, then the ring is full.
    Errc e = Errc::ok;
    for (int i = 0; i < 100 && e != Errc::peer_dead; ++i, std::this_thread::sleep_for(1ms)) {
      auto span = w.reserve(100, 0ns);
      e = span.error();
      if (span.ok()) w.commit(100);
    }
    EXPECT_EQ(e, Errc::peer_dead) << "reserve(n, 0) on a full ring after the reader died: " << to_string(e);
  }
}

// =================================================================================================
// 6. Stale segment reclamation.

TEST_F(MultiProcessReclaim, SegmentOfKilledCreatorIsReclaimed) {
  TempName name("mp");
  SegmentConfig cfg;
  cfg.ring_capacity = kRing;
  Peer c({"create", name.str()});
  ASSERT_TRUE(c.await("ready")) << c.cmd();
  // Creator alive (no endpoint attached yet): creation is refused.
  EXPECT_EQ(thrown_code([&] { Segment s = Segment::create(name, cfg); }), Errc::already_exists);
  EXPECT_EQ(thrown_code([&] { Writer w(name, opts(OpenMode::create)); }), Errc::already_exists);
  EXPECT_EQ(thrown_code([&] { Reader r(name, opts(OpenMode::create)); }), Errc::already_exists);
  c.kill9();
  // Not reaped yet: a zombie creator counts as dead.
  ASSERT_TRUE(c.wait_zombie());
  EXPECT_EQ(thrown_code([&] {
              Segment s = Segment::create(name, cfg);
              EXPECT_EQ(s.header().creator_pid, static_cast<uint32_t>(::getpid()));
            }),
            Errc::ok);
  auto st = c.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
}

TEST_F(MultiProcessReclaim, ChannelOfKilledWriterIsReclaimedByWriterCreate) {
  TempName name("mp");
  Peer w({"write", name.str(), "open=create", "count=5", "seed=61", "then=hang"});
  ASSERT_TRUE(w.await("done 5 5")) << w.cmd();
  EXPECT_EQ(thrown_code([&] { Writer x(name, opts(OpenMode::create)); }), Errc::already_exists);
  EXPECT_EQ(thrown_code([&] { Writer x(name, opts(OpenMode::open)); }), Errc::busy);
  w.kill9();
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(killed_by(*st, SIGKILL)) << describe_status(*st);
  // The dead writer's segment is replaced by a fresh one: its 5 messages are gone.
  Writer fresh(name, opts(OpenMode::create));
  EXPECT_EQ(fresh.stats().frames, 0u);
  EXPECT_EQ(fresh.segment().header().creator_pid, static_cast<uint32_t>(::getpid()));
  Reader r(name, opts(OpenMode::open));
  EXPECT_EQ(r.read(20ms).error(), Errc::timeout);
  ASSERT_EQ(write_one(fresh, 62, 1s), Errc::ok);
  auto f = r.read(1s);
  ASSERT_TRUE(f.ok()) << to_string(f.error());
  EXPECT_TRUE(frame_ok(*f, 62, 1));
}

TEST_F(MultiProcessReclaim, LiveReaderKeepsSegmentUntilItDies) {
  TempName name("mp");
  Peer w({"write", name.str(), "open=create", "count=2", "seed=63", "then=hang"});
  ASSERT_TRUE(w.await("done 2 2")) << w.cmd();
  Peer r({"hold", name.str(), "frames=1"});
  ASSERT_TRUE(r.await("ready")) << r.cmd();
  w.kill9();
  ASSERT_TRUE(w.wait_exit().has_value());
  // Writer and creator dead, but the reader lives: not stale.
  EXPECT_EQ(thrown_code([&] { Writer x(name, opts(OpenMode::create)); }), Errc::already_exists);
  r.kill9();
  ASSERT_TRUE(r.wait_exit().has_value());
  EXPECT_EQ(thrown_code([&] { Writer x(name, opts(OpenMode::create)); }), Errc::ok);
}

// Two processes racing to create the same stale name: at most one may win. (A loser that unlinks
// the winner's fresh segment leaves the winner on an orphaned mapping nobody can open.)
TEST_F(MultiProcessReclaim, ConcurrentCreatorsOfStaleNameAtMostOneWins) {
  constexpr int kNames = 1500;
  TempName base("mp");
  struct Cleanup {
    const std::string& base;
    ~Cleanup() {
      for (int i = 0; i < kNames; ++i) Segment::unlink(base + "." + std::to_string(i));
    }
  } cleanup{base.str()};
  {
    Peer maker({"createmany", base.str(), "count=" + std::to_string(kNames)});
    ASSERT_TRUE(maker.await("ready", 20s)) << maker.cmd();
    maker.kill9();  // every one of its segments is now stale
    ASSERT_TRUE(maker.wait_exit().has_value());
  }
  const int64_t start = now_ns() + 200'000'000;  // both peers are exec'd and waiting by then
  const std::vector<std::string> args{"racecreate", base.str(), "count=" + std::to_string(kNames),
                                      "start_ns=" + std::to_string(start), "period_us=400"};
  Peer p1(args), p2(args);
  std::vector<int> winners(kNames, 0);
  uint64_t total = 0;
  for (Peer* p : {&p1, &p2}) {
    for (;;) {
      auto l = p->next_line(20s);
      ASSERT_TRUE(l.has_value()) << "racecreate peer ended early";
      if (l->rfind("done", 0) == 0) break;
      const auto i = Peer::field(*l, 1);
      ASSERT_LT(i, static_cast<uint64_t>(kNames)) << *l;
      ++winners[i];
      ++total;
    }
  }
  std::vector<int> doubles;
  for (int i = 0; i < kNames; ++i)
    if (winners[i] > 1) doubles.push_back(i);
  EXPECT_TRUE(doubles.empty()) << doubles.size() << " of " << kNames
                               << " names were created by both processes at once, e.g. index "
                               << (doubles.empty() ? -1 : doubles[0]);
  std::printf("  %llu wins over %d stale names, %zu double wins\n", static_cast<unsigned long long>(total), kNames,
              doubles.size());
}

// =================================================================================================
// 7. close() from another thread interrupts a blocked call.

TEST_P(MultiProcessClose, CloseInterruptsBlockedRead) {
  const WaitStrategy ws = GetParam();
  TempName name("mp");
  Reader r(name, opts(OpenMode::create, kRing, ws));
  Peer w({"write", name.str(), "count=0", strategy_arg(ws), "then=hang"});  // live, silent writer
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  std::atomic<int64_t> close_ns{0};
  std::atomic<bool> started{false};
  std::jthread closer([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(120ms);
    close_ns.store(now_ns());
    r.close();
  });
  started.store(true);
  auto f = r.read(5s);
  const int64_t ret_ns = now_ns();
  closer.join();
  EXPECT_EQ(f.error(), Errc::closed) << to_string(f.error());
  const int64_t latency = ret_ns - close_ns.load();
  EXPECT_GT(latency, 0) << "read() returned before close()";
  EXPECT_LT(latency, kCloseBound.count()) << "closed after " << ms_of(latency) << " ms";
  std::printf("  close -> read returns: %.3f ms\n", ms_of(latency));
  const int64_t t0 = now_ns();
  EXPECT_EQ(r.read(1s).error(), Errc::closed);
  EXPECT_LT(now_ns() - t0, 5'000'000);
}

TEST_P(MultiProcessClose, CloseInterruptsBlockedReserve) {
  const WaitStrategy ws = GetParam();
  TempName name("mp");
  Writer w(name, opts(OpenMode::create, kRing, ws));
  Peer r({"hold", name.str(), strategy_arg(ws)});  // live reader that never reads
  ASSERT_TRUE(r.await("ready")) << r.cmd();
  Errc e;
  while ((e = write_one(w, 71, 0ns)) == Errc::ok) {
  }
  ASSERT_EQ(e, Errc::timeout);
  std::atomic<int64_t> close_ns{0};
  std::atomic<bool> started{false};
  std::jthread closer([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(120ms);
    close_ns.store(now_ns());
    w.close();
  });
  started.store(true);
  auto span = w.reserve(2000, 5s);
  const int64_t ret_ns = now_ns();
  closer.join();
  EXPECT_EQ(span.error(), Errc::closed) << to_string(span.error());
  const int64_t latency = ret_ns - close_ns.load();
  EXPECT_GT(latency, 0) << "reserve() returned before close()";
  EXPECT_LT(latency, kCloseBound.count()) << "closed after " << ms_of(latency) << " ms";
  std::printf("  close -> reserve returns: %.3f ms\n", ms_of(latency));
  EXPECT_EQ(w.reserve(16, 1s).error(), Errc::closed);
  std::byte one[1]{};
  EXPECT_EQ(w.write_message(one, 1s).error(), Errc::closed);
}

INSTANTIATE_TEST_SUITE_P(Strategies, MultiProcessClose, testing::ValuesIn(kAllStrategies),
                         strategy_param_name);

// =================================================================================================
// 8. A 1 GiB message through a 64 MiB ring.

uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

TEST_F(MultiProcessLarge, OneGiBMessageThrough64MiBRing) {
  constexpr uint64_t kSize = 1ull << 30;
  constexpr uint64_t kBigRing = 64ull << 20;
  constexpr uint64_t kSeed = 81;
  {
    // The ring lives in /dev/shm; the writer's source buffer and the reader's reassembly buffer
    // are ordinary memory (1 GiB each). Ask for 1.1 GiB + 1 GiB in /dev/shm (tmpfs pages come out
    // of the same RAM) and for the same amount of available memory.
    const uint64_t need = (kSize + kSize / 10) + kSize;
    struct statvfs v {};
    const uint64_t shm_free = ::statvfs("/dev/shm", &v) == 0 ? static_cast<uint64_t>(v.f_bavail) * v.f_frsize : 0;
    const uint64_t mem = mem_available_bytes();
    if (shm_free < need || mem < need)
      GTEST_SKIP() << "needs " << (need >> 20) << " MiB free in /dev/shm and in RAM; /dev/shm has "
                   << (shm_free >> 20) << " MiB, MemAvailable " << (mem >> 20) << " MiB";
  }
  const int64_t t_start = now_ns();
  TempName name("mp");
  Reader r(name, opts(OpenMode::create, kBigRing));
  Peer w({"bigwrite", name.str(), "size=" + std::to_string(kSize), "seed=" + std::to_string(kSeed),
          "ring=" + std::to_string(kBigRing), "then=exit", "life=120", "timeout_ms=20000"});
  ASSERT_TRUE(w.await("ready", 30s)) << w.cmd();
  const uint32_t chunk = r.segment().header().chunk_size;
  const uint64_t per_chunk = chunk - wire::kChunkHeaderSize;
  const uint64_t chunks = (kSize + per_chunk - 1) / per_chunk;

  // Nobody reads yet, so the writer fills the ring and blocks. Freeze it there.
  const int64_t deadline = now_ns() + 20'000'000'000;
  while (r.stats().occupancy_bytes + 2 * wire::frame_extent(chunk) < kBigRing && now_ns() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_GE(r.stats().occupancy_bytes + 2 * wire::frame_extent(chunk), kBigRing) << "writer never filled the ring";
  w.signal(SIGSTOP);
  // The reader consumes what is in the ring and then times out mid-message: progress is visible.
  auto partial = r.read_message(300ms);
  EXPECT_EQ(partial.error(), Errc::timeout) << to_string(partial.error());  // stopped != dead
  const uint32_t mid = r.chunks_received();
  EXPECT_GT(mid, 0u);
  EXPECT_LT(mid, chunks);
  std::printf("  progress while the writer is stopped: %u of %llu chunks\n", mid,
              static_cast<unsigned long long>(chunks));
  w.signal(SIGCONT);

  auto m = r.read_message(20s);
  ASSERT_TRUE(m.ok()) << to_string(m.error());
  EXPECT_EQ(r.chunks_received(), chunks);
  EXPECT_GE(r.chunks_received(), mid);
  EXPECT_FALSE(m->zero_copy());
  ASSERT_EQ(m->size(), kSize);
  // Verify every 64-bit word; also report the checksum (sum of words) the writer's pattern gives.
  const std::byte* p = m->data().data();
  uint64_t sum = 0, want_sum = 0;
  uint64_t first_bad = UINT64_MAX;
  for (uint64_t i = 0; i < kSize / 8; ++i) {
    uint64_t v;
    std::memcpy(&v, p + i * 8, 8);
    const uint64_t want = mix64(kSeed + i);
    sum += v;
    want_sum += want;
    if (v != want && first_bad == UINT64_MAX) first_bad = i;
  }
  EXPECT_EQ(first_bad, UINT64_MAX) << "first bad word at byte offset " << first_bad * 8;
  EXPECT_EQ(sum, want_sum);
  EXPECT_EQ(r.dropped_partial_messages(), 0u);
  auto end = r.read_message(10s);
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  auto st = w.wait_exit(20s);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
  std::printf("  1 GiB in %llu chunks of %u bytes, checksum %016llx, total %.2f s\n",
              static_cast<unsigned long long>(chunks), chunk, static_cast<unsigned long long>(sum),
              static_cast<double>(now_ns() - t_start) / 1e9);
}

// =================================================================================================
// 9. A peer that exits cleanly gives peer_closed, after all its data.

TEST_F(MultiProcessCleanExit, WriterExitedBeforeReadDeliversEverythingThenPeerClosed) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  Peer w({"write", name.str(), "count=15", "seed=91", "then=exit"});  // 15 x <= 3 KiB fits the ring
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  ASSERT_TRUE(exited_zero(*st)) << describe_status(*st);
  for (uint64_t seq = 1; seq <= 15; ++seq) {
    auto f = r.read(1s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at " << seq;
    ASSERT_TRUE(frame_ok(*f, 91, seq));
  }
  const int64_t t0 = now_ns();
  auto end = r.read(5s);
  const int64_t dt = now_ns() - t0;
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  EXPECT_LT(dt, kDetectBound.count()) << ms_of(dt) << " ms";
  std::printf("  read() on a channel whose writer already left: peer_closed after %.2f ms\n", ms_of(dt));
}

TEST_F(MultiProcessCleanExit, ZeroTimeoutPollSeesPeerClosed) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  Peer w({"write", name.str(), "count=3", "seed=94", "then=exit"});
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  ASSERT_TRUE(exited_zero(*st)) << describe_status(*st);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto f = r.read(0ns);
    ASSERT_TRUE(f.ok()) << to_string(f.error());
    EXPECT_TRUE(frame_ok(*f, 94, seq));
  }
  Errc e = Errc::ok;
  for (int i = 0; i < 100 && e != Errc::peer_closed; ++i, std::this_thread::sleep_for(1ms)) e = r.read(0ns).error();
  EXPECT_EQ(e, Errc::peer_closed) << "read(0) after the writer left: " << to_string(e);
}

TEST_F(MultiProcessCleanExit, BlockedReaderSeesPeerClosedWhenWriterExits) {
  TempName name("mp");
  Reader r(name, opts(OpenMode::create));
  Peer w({"write", name.str(), "count=400", "seed=92", "then=exit", "linger_ms=150"});
  ASSERT_TRUE(w.await("ready")) << w.cmd();
  for (uint64_t seq = 1; seq <= 400; ++seq) {
    auto f = r.read(5s);
    ASSERT_TRUE(f.ok()) << to_string(f.error()) << " at " << seq;
    ASSERT_TRUE(frame_ok(*f, 92, seq));
  }
  auto end = r.read(5s);  // blocks until the writer leaves
  const int64_t ret_ns = now_ns();
  EXPECT_EQ(end.error(), Errc::peer_closed) << to_string(end.error());
  auto closing = w.await("closing", 5s);
  ASSERT_TRUE(closing.has_value());
  const int64_t latency = ret_ns - static_cast<int64_t>(Peer::field(*closing, 1));
  EXPECT_GT(latency, 0);
  EXPECT_LT(latency, kDetectBound.count()) << ms_of(latency) << " ms";
  std::printf("  writer exit -> peer_closed: %.2f ms\n", ms_of(latency));
  auto st = w.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
}

TEST_F(MultiProcessCleanExit, WriterSeesPeerClosedWhenReaderExits) {
  TempName name("mp");
  Writer w(name, opts(OpenMode::create));
  Peer r({"read", name.str(), "count=100", "seed=93", "then=exit", "linger_ms=150"});
  ASSERT_TRUE(r.await("ready")) << r.cmd();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(write_one(w, 93, 5s), Errc::ok);
  // Keep writing: the ring fills (nobody reads any more) and reserve() blocks until the reader
  // leaves, which gives peer_closed.
  Errc e;
  uint64_t extra = 0;
  while ((e = write_one(w, 93, 5s)) == Errc::ok) ++extra;
  const int64_t ret_ns = now_ns();
  EXPECT_EQ(e, Errc::peer_closed) << to_string(e);
  EXPECT_LE(extra * wire::kFrameHeaderSize, kRing);  // stopped at the first full ring
  auto done = r.await("done", 5s);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(*done, "done 100 100");  // the reader got all 100 before leaving
  auto closing = r.await("closing", 5s);
  ASSERT_TRUE(closing.has_value());
  const int64_t latency = ret_ns - static_cast<int64_t>(Peer::field(*closing, 1));
  EXPECT_GT(latency, 0);
  EXPECT_LT(latency, kDetectBound.count()) << ms_of(latency) << " ms";
  std::printf("  reader exit -> peer_closed: %.2f ms\n", ms_of(latency));
  EXPECT_FALSE(w.peer_attached());
  auto st = r.wait_exit();
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(exited_zero(*st)) << describe_status(*st);
}

}  // namespace
