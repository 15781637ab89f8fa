// A peer program the multi-process tests fork+exec: one endpoint of a channel in its own process.
//
//   flatlane_peer_process MODE CHANNEL [key=value ...]
//
// Modes
//   write     attach a Writer; write `count` messages (or forever with count=inf, or until the ring is
//             full with fill=1), payload size and bytes derived from (seed, seq); then `then`.
//   read      attach a Reader; read `count` frames (or until an error with count=inf), verifying every
//             payload and that sequence numbers are consecutive; then `then`.
//   hold      attach a Reader, read `frames` frames and keep them held; then hang.
//   create    Segment::create only (no endpoint attached); then hang.
//   bigwrite  generate `size` bytes of 64-bit words mix64(seed + i), attach a Writer, write_message it.
//   writemsg  write_message `count` messages with ids first, first+1, ...: 8-byte id, then bytes
//             derived from (seed, id); sizes in [minsize, maxsize] derived from the id.
//   readmsg   read_message `count` messages, verifying them and that ids are consecutive.
//   createmany  Segment::create <name>.0 .. <name>.<count-1>; then hang (the test kills it).
//   racecreate  at start_ns + i * period_us try Segment::create(<name>.<i>) for each i; "w <i>" per
//             success; keeps what it won; then hang.
//
// Keys (defaults): ring=65536 strategy=spin|busy|block (spin) open=open|create|create_or_open (open)
//   seed=1 maxsize=3072 count=1000 fill=0 then=exit|hang timeout_ms=10000 expect=<errc> frames=0
//   release=<i,j,...> (hold: release these of the held frames, 1-based) minsize=8 first=0
//   start_ns=<CLOCK_MONOTONIC ns> period_us=500
//   size=1073741824 linger_ms=0 (sleep before a clean exit) life=60 (seconds until SIGALRM ends a
//   forgotten peer).
//
// Output (stdout, one line each, written with write(2) so the test sees it at once):
//   "ready <pid>"                  endpoint attached
//   "done <n> <last_seq>"          the requested work is complete (msg modes: last/next id)
//   "full <n>"                     fill=1: reserve(timeout 0) found the ring full after n messages
//   "end <errc> <n> <last_seq>"    an API call returned an error; see exit codes
//   "closing <steady_ns>"          about to return from main (endpoint destructors run after this)
// Exit codes: 0 ok (also when the ending error equals expect=), 2 usage, 3 payload/sequence
// verification failed, 10 + int(Errc) for an unexpected API error, 40 + int(Errc) for a thrown Error.
#include <flatlane/flatlane.hpp>

#include "payload_pattern.hpp"

#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <sys/prctl.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace flatlane;

namespace {

using namespace flatlane::test;  // payload_pattern.hpp
// -------------------------------------------------------------------------------------------------

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = std::min(static_cast<size_t>(n), sizeof buf - 2);
  buf[len++] = '\n';
  size_t off = 0;
  while (off < len) {
    ssize_t w = ::write(STDOUT_FILENO, buf + off, len - off);
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

const char* errc_name(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::not_found: return "not_found";
    case Errc::not_flatlane: return "not_flatlane";
    case Errc::incompatible_version: return "incompatible_version";
    case Errc::layout_mismatch: return "layout_mismatch";
    case Errc::type_mismatch: return "type_mismatch";
    case Errc::truncated: return "truncated";
    case Errc::permission_denied: return "permission_denied";
    case Errc::already_exists: return "already_exists";
    case Errc::busy: return "busy";
    case Errc::no_space: return "no_space";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::message_too_large: return "message_too_large";
    case Errc::timeout: return "timeout";
    case Errc::peer_dead: return "peer_dead";
    case Errc::peer_closed: return "peer_closed";
    case Errc::closed: return "closed";
    case Errc::corrupt: return "corrupt";
    case Errc::system: return "system";
  }
  return "unknown";
}

struct Args {
  std::string mode;
  std::string name;
  std::map<std::string, std::string> kv;

  std::string str(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  uint64_t num(const std::string& k, uint64_t def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    if (it->second == "inf") return UINT64_MAX;
    return std::strtoull(it->second.c_str(), nullptr, 0);
  }
};

[[noreturn]] void hang() {
  for (;;) ::pause();
}

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

ChannelOptions options(const Args& a) {
  ChannelOptions o;
  const std::string open = a.str("open", "open");
  o.mode = open == "create" ? OpenMode::create : open == "create_or_open" ? OpenMode::create_or_open : OpenMode::open;
  o.segment.ring_capacity = a.num("ring", 1u << 16);
  const std::string s = a.str("strategy", "spin");
  o.wait.strategy = s == "busy" ? WaitStrategy::busy_spin : s == "block" ? WaitStrategy::blocking : WaitStrategy::spin_then_sleep;
  return o;
}

int end_with(const Args& a, Errc e, uint64_t n, uint64_t last) {
  say("end %s %llu %llu", errc_name(e), static_cast<unsigned long long>(n), static_cast<unsigned long long>(last));
  if (a.kv.count("expect") && a.str("expect", "") == errc_name(e)) {
    say("closing %lld", static_cast<long long>(steady_ns()));
    return 0;
  }
  return 10 + static_cast<int>(e);
}

int finish(const Args& a) {
  if (a.str("then", "exit") == "hang") hang();
  if (uint64_t linger = a.num("linger_ms", 0)) std::this_thread::sleep_for(std::chrono::milliseconds(linger));
  say("closing %lld", static_cast<long long>(steady_ns()));
  return 0;
}

int run_write(const Args& a) {
  const uint64_t seed = a.num("seed", 1);
  const size_t maxsize = static_cast<size_t>(a.num("maxsize", 3072));
  const uint64_t count = a.num("count", 1000);
  const bool fill = a.num("fill", 0) != 0;
  const auto timeout = std::chrono::milliseconds(a.num("timeout_ms", 10000));
  Writer w(a.name, options(a));
  say("ready %d", static_cast<int>(::getpid()));
  uint64_t n = 0;
  uint64_t last = 0;
  for (; fill || n < count; ++n) {
    const uint64_t seq = w.stats().frames + 1;  // the seq commit() will stamp on this frame
    const size_t sz = payload_size(seed, seq, maxsize);
    auto span = w.reserve(sz, fill ? std::chrono::nanoseconds(0) : std::chrono::nanoseconds(timeout));
    if (!span) {
      if (fill && span.error() == Errc::timeout) {
        say("full %llu", static_cast<unsigned long long>(n));
        hang();
      }
      return end_with(a, span.error(), n, last);
    }
    fill_payload(seed, seq, span->data(), sz);
    w.commit(sz);
    last = seq;
  }
  say("done %llu %llu", static_cast<unsigned long long>(n), static_cast<unsigned long long>(last));
  return finish(a);
}

int run_read(const Args& a) {
  const uint64_t seed = a.num("seed", 1);
  const size_t maxsize = static_cast<size_t>(a.num("maxsize", 3072));
  const uint64_t count = a.num("count", 1000);
  const auto timeout = std::chrono::milliseconds(a.num("timeout_ms", 10000));
  Reader r(a.name, options(a));
  say("ready %d", static_cast<int>(::getpid()));
  uint64_t n = 0;
  uint64_t last = 0;
  while (n < count) {
    auto f = r.read(timeout);
    if (!f) return end_with(a, f.error(), n, last);
    const uint64_t seq = f->seq();
    if (last != 0 && seq != last + 1) {
      std::fprintf(stderr, "peer read: seq %llu after %llu\n", static_cast<unsigned long long>(seq),
                   static_cast<unsigned long long>(last));
      return 3;
    }
    if (f->size() != payload_size(seed, seq, maxsize) || !check_payload(seed, seq, f->ptr(), f->size())) {
      std::fprintf(stderr, "peer read: bad payload at seq %llu (size %zu, expected %zu)\n",
                   static_cast<unsigned long long>(seq), f->size(), payload_size(seed, seq, maxsize));
      return 3;
    }
    last = seq;
    ++n;
  }
  say("done %llu %llu", static_cast<unsigned long long>(n), static_cast<unsigned long long>(last));
  return finish(a);
}

int run_hold(const Args& a) {
  Reader r(a.name, options(a));
  std::deque<Frame> held;
  const uint64_t frames = a.num("frames", 0);
  for (uint64_t i = 0; i < frames; ++i) {
    auto f = r.read(std::chrono::seconds(10));
    if (!f) return end_with(a, f.error(), i, 0);
    held.push_back(std::move(f).value());
  }
  // release=2,4,6: release those frames (1-based, in the order read) and keep the rest held.
  const std::string rel = a.str("release", "");
  for (size_t pos = 0; pos < rel.size();) {
    size_t comma = rel.find(',', pos);
    if (comma == std::string::npos) comma = rel.size();
    const size_t idx = std::strtoull(rel.substr(pos, comma - pos).c_str(), nullptr, 10);
    if (idx >= 1 && idx <= held.size()) held[idx - 1].release();
    pos = comma + 1;
  }
  say("ready %d", static_cast<int>(::getpid()));
  hang();
}

int run_create(const Args& a) {
  SegmentConfig cfg;
  cfg.ring_capacity = a.num("ring", 1u << 16);
  Segment s = Segment::create(a.name, cfg);
  say("ready %d", static_cast<int>(::getpid()));
  hang();
}

int run_writemsg(const Args& a) {
  const uint64_t seed = a.num("seed", 1);
  const size_t minsize = static_cast<size_t>(a.num("minsize", 8));
  const size_t maxsize = static_cast<size_t>(a.num("maxsize", 100000));
  const uint64_t count = a.num("count", 100);
  const auto timeout = std::chrono::milliseconds(a.num("timeout_ms", 10000));
  Writer w(a.name, options(a));
  say("ready %d", static_cast<int>(::getpid()));
  std::vector<std::byte> buf;
  uint64_t k = a.num("first", 0);
  uint64_t n = 0;
  for (; n < count; ++n, ++k) {
    const size_t sz = message_size(seed, k, minsize, maxsize);
    buf.resize(sz);
    fill_message(seed, k, buf.data(), sz);
    if (auto r = w.write_message(buf, timeout); !r) return end_with(a, r.error(), n, k);
  }
  say("done %llu %llu", static_cast<unsigned long long>(n), static_cast<unsigned long long>(k));
  return finish(a);
}

int run_readmsg(const Args& a) {
  const uint64_t seed = a.num("seed", 1);
  const size_t minsize = static_cast<size_t>(a.num("minsize", 8));
  const size_t maxsize = static_cast<size_t>(a.num("maxsize", 100000));
  const uint64_t count = a.num("count", 100);
  const auto timeout = std::chrono::milliseconds(a.num("timeout_ms", 10000));
  Reader r(a.name, options(a));
  say("ready %d", static_cast<int>(::getpid()));
  uint64_t n = 0;
  uint64_t last = UINT64_MAX;
  while (n < count) {
    auto m = r.read_message(timeout);
    if (!m) return end_with(a, m.error(), n, last);
    const uint64_t k = check_message(seed, m->data().data(), m->size(), minsize, maxsize);
    if (k == UINT64_MAX) {
      std::fprintf(stderr, "peer readmsg: bad message (size %zu) after id %llu\n", m->size(),
                   static_cast<unsigned long long>(last));
      return 3;
    }
    if (last != UINT64_MAX && k != last + 1) {
      std::fprintf(stderr, "peer readmsg: id %llu after %llu\n", static_cast<unsigned long long>(k),
                   static_cast<unsigned long long>(last));
      return 3;
    }
    last = k;
    ++n;
  }
  say("done %llu %llu", static_cast<unsigned long long>(n), static_cast<unsigned long long>(last));
  return finish(a);
}

// Creates segments <name>.0 .. <name>.<count-1> (then hangs, to be killed: they become stale).
int run_createmany(const Args& a) {
  SegmentConfig cfg;
  cfg.ring_capacity = 4096;
  std::vector<Segment> segs;
  const uint64_t count = a.num("count", 100);
  for (uint64_t i = 0; i < count; ++i) segs.push_back(Segment::create(a.name + "." + std::to_string(i), cfg));
  say("ready %d", static_cast<int>(::getpid()));
  hang();
}

// For i in 0..count-1: at CLOCK_MONOTONIC start_ns + i * period_us, try Segment::create(<name>.<i>);
// prints "w <i>" for every success and keeps all won segments mapped (this process stays alive).
int run_racecreate(const Args& a) {
  SegmentConfig cfg;
  cfg.ring_capacity = 4096;
  std::vector<Segment> won;
  const uint64_t count = a.num("count", 100);
  const int64_t start = static_cast<int64_t>(a.num("start_ns", 0));
  const int64_t period = static_cast<int64_t>(a.num("period_us", 500)) * 1000;
  uint64_t lost = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const int64_t at = start + static_cast<int64_t>(i) * period;
    while (steady_ns() < at) {
    }
    try {
      won.push_back(Segment::create(a.name + "." + std::to_string(i), cfg));
      say("w %llu", static_cast<unsigned long long>(i));
    } catch (const Error& e) {
      if (e.code() != Errc::already_exists) {
        std::fprintf(stderr, "racecreate %llu: %s\n", static_cast<unsigned long long>(i), e.what());
        return 40 + static_cast<int>(e.code());
      }
      ++lost;
    }
  }
  say("done %llu %llu", static_cast<unsigned long long>(won.size()), static_cast<unsigned long long>(lost));
  hang();
}

int run_bigwrite(const Args& a) {
  const uint64_t seed = a.num("seed", 1);
  const uint64_t size = a.num("size", 1ull << 30) & ~uint64_t{7};
  std::vector<uint64_t> buf(size / 8);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = mix64(seed + i);
  Writer w(a.name, options(a));
  say("ready %d", static_cast<int>(::getpid()));
  auto r = w.write_message(std::as_bytes(std::span<const uint64_t>(buf)),
                           std::chrono::milliseconds(a.num("timeout_ms", 10000)));
  if (!r) return end_with(a, r.error(), 0, 0);
  say("done 1 %llu", static_cast<unsigned long long>(w.stats().frames));
  return finish(a);
}

}  // namespace

int main(int argc, char** argv) {
  // Die with the test process, however it ends; a forgotten peer is ended by SIGALRM.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODE CHANNEL [key=value ...]\n", argv[0]);
    return 2;
  }
  Args a;
  a.mode = argv[1];
  a.name = argv[2];
  for (int i = 3; i < argc; ++i) {
    const char* eq = std::strchr(argv[i], '=');
    if (!eq) {
      std::fprintf(stderr, "bad argument '%s'\n", argv[i]);
      return 2;
    }
    a.kv[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = eq + 1;
  }
  ::alarm(static_cast<unsigned>(a.num("life", 60)));
  try {
    if (a.mode == "write") return run_write(a);
    if (a.mode == "read") return run_read(a);
    if (a.mode == "hold") return run_hold(a);
    if (a.mode == "create") return run_create(a);
    if (a.mode == "bigwrite") return run_bigwrite(a);
    if (a.mode == "writemsg") return run_writemsg(a);
    if (a.mode == "readmsg") return run_readmsg(a);
    if (a.mode == "createmany") return run_createmany(a);
    if (a.mode == "racecreate") return run_racecreate(a);
  } catch (const Error& e) {
    say("error %s", errc_name(e.code()));
    std::fprintf(stderr, "peer %s: %s\n", a.mode.c_str(), e.what());
    return 40 + static_cast<int>(e.code());
  }
  std::fprintf(stderr, "unknown mode '%s'\n", a.mode.c_str());
  return 2;
}
