// Read-only inspection (inspect.hpp) and the `flatlane` CLI (docs/CLI.md): counters of live
// channels and topics run by real peer processes, liveness after kill -9, stale detection, gc and
// rm safety, hostile and truncated segments, and the binary's output and exit codes.
//
// gc only ever runs with this process's name prefix: /dev/shm is shared with other test runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <flatlane/inspect.hpp>

#include "child_process.hpp"
#include "payload_pattern.hpp"
#include "test_util.hpp"
#include "topic_test_util.hpp"

#ifndef FLATLANE_CLI_PATH
#define FLATLANE_CLI_PATH FLATLANE_TEST_BIN_DIR "/../../runtime/cpp/tools/flatlane"
#endif

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;
namespace fi = flatlane::inspect;

namespace {

// ---- helpers -------------------------------------------------------------------------------------

std::string shm_path(const std::string& name) { return "/dev/shm/flatlane." + name; }
bool exists(const std::string& name) { return ::access(shm_path(name).c_str(), F_OK) == 0; }

std::vector<char> read_file(const std::string& path) {
  std::vector<char> bytes;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bytes;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
  ::close(fd);
  return bytes;
}

// Writes `bytes` as the whole object /dev/shm/flatlane.<name> (what a hostile peer could leave).
void write_object(const std::string& name, const std::vector<char>& bytes) {
  const int fd = ::open(shm_path(name).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

template <class T>
void poke(std::vector<char>& image, size_t off, T value) {
  ASSERT_LE(off + sizeof value, image.size());
  std::memcpy(image.data() + off, &value, sizeof value);
}

bool listed(const std::string& name) {
  const auto names = fi::list_segments();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A pid that is certainly dead: a child that exited and was reaped.
uint32_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return static_cast<uint32_t>(pid);
}

// The prefix of every name TempName("inspect") makes in this process; gc is limited to it.
std::string my_prefix() { return "test.inspect." + std::to_string(::getpid()) + "."; }

// ---- a small JSON parser, enough to check the CLI's documents -------------------------------------

struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::vector<std::pair<std::string, Json>> o;

  const Json& operator[](const std::string& k) const {
    for (const auto& [key, v] : o)
      if (key == k) return v;
    throw std::runtime_error("no key " + k);
  }
  bool has(const std::string& k) const {
    return std::any_of(o.begin(), o.end(), [&](const auto& kv) { return kv.first == k; });
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view in) : in_(in) {}
  Json parse() {
    Json v = value();
    ws();
    if (i_ != in_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) { throw std::runtime_error("json: " + why + " at " + std::to_string(i_)); }
  void ws() {
    while (i_ < in_.size() && std::strchr(" \t\r\n", in_[i_])) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= in_.size()) fail("unexpected end");
    return in_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected ") + c);
    ++i_;
  }
  bool literal(std::string_view w) {
    if (in_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  Json value() {
    const char c = peek();
    Json v;
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') {
      v.type = Json::Type::string;
      v.s = string();
    } else if (literal("true")) {
      v.type = Json::Type::boolean;
      v.b = true;
    } else if (literal("false")) {
      v.type = Json::Type::boolean;
    } else if (literal("null")) {
      v.type = Json::Type::null;
    } else {
      v.type = Json::Type::number;
      v.n = number();
    }
    return v;
  }
  double number() {
    const size_t start = i_;
    if (in_[i_] == '-') ++i_;
    if (i_ >= in_.size() || !std::isdigit(static_cast<unsigned char>(in_[i_]))) fail("bad number");
    while (i_ < in_.size() && std::strchr("0123456789.eE+-", in_[i_])) ++i_;
    return std::strtod(std::string(in_.substr(start, i_ - start)).c_str(), nullptr);
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < in_.size() && in_[i_] != '"') {
      const auto c = static_cast<unsigned char>(in_[i_++]);
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= in_.size()) fail("bad escape");
      const char e = in_[i_++];
      if (e == 'u') {
        if (i_ + 4 > in_.size()) fail("bad \\u escape");
        i_ += 4;
        out += '?';
      } else if (std::strchr("\"\\/bfnrt", e)) {
        out += e;
      } else {
        fail("bad escape");
      }
    }
    expect('"');
    return out;
  }
  Json close(Json& v) {  // consumes the closing bracket of v
    ++i_;
    return std::move(v);
  }
  Json array() {
    Json v;
    v.type = Json::Type::array;
    expect('[');
    if (peek() == ']') return close(v);
    for (;;) {
      v.a.push_back(value());
      if (peek() == ']') return close(v);
      expect(',');
    }
  }
  Json object() {
    Json v;
    v.type = Json::Type::object;
    expect('{');
    if (peek() == '}') return close(v);
    for (;;) {
      ws();
      std::string k = string();
      expect(':');
      v.o.emplace_back(std::move(k), value());
      if (peek() == '}') return close(v);
      expect(',');
    }
  }
  std::string_view in_;
  size_t i_ = 0;
};

Json parse_json(const std::string& s) { return JsonParser(s).parse(); }

// ---- running the binary --------------------------------------------------------------------------

struct CliRun {
  int rc = -1;
  std::string out, err;
};

std::string read_memfd(int fd) {
  std::string s;
  char buf[65536];
  off_t off = 0;
  for (ssize_t n; (n = ::pread(fd, buf, sizeof buf, off)) > 0; off += n) s.append(buf, static_cast<size_t>(n));
  return s;
}

// Runs `flatlane args...` with stdout and stderr captured in memory files (no pipe can fill up).
CliRun cli(std::vector<std::string> args) {
  args.insert(args.begin(), FLATLANE_CLI_PATH);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int out = ::memfd_create("flatlane-out", MFD_CLOEXEC), err = ::memfd_create("flatlane-err", MFD_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliRun r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_memfd(out);
  r.err = read_memfd(err);
  ::close(out);
  ::close(err);
  return r;
}

// ---- fixtures ------------------------------------------------------------------------------------

// A channel whose writer is a peer process that created it and committed `count` frames with the
// payload sizes of payload_pattern.hpp (seed 1, at most 1000 bytes), then hangs.
struct WrittenChannel {
  static constexpr uint64_t kCount = 25;
  TempName name{"inspect"};
  ChildProcess writer{"flatlane_peer_process",
                      {"write", name.str(), "open=create", "count=25", "maxsize=1000", "then=hang"}};
  uint32_t writer_pid = 0;
  uint64_t bytes = 0, extent = 0;  // expected payload bytes and ring bytes (no wrap: < 64 KiB)

  WrittenChannel() {
    auto ready = writer.await("ready ");
    EXPECT_TRUE(ready.has_value()) << writer.last_line();
    if (ready) writer_pid = static_cast<uint32_t>(std::stoul(ready->substr(6)));
    EXPECT_TRUE(writer.await("done ").has_value()) << writer.last_line();
    for (uint64_t seq = 1; seq <= kCount; ++seq) {
      const size_t n = payload_size(1, seq, 1000);
      bytes += n;
      extent += wire::frame_extent(n);
    }
  }
};

// Creates the topic in a short-lived child, so the creator is dead and only the members decide
// whether the topic is stale. The child attaches as a subscriber (a publisher that has left would
// make waiting subscribers report peer_closed) and leaves the name in place.
void create_topic_in_child(const std::string& name) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      TopicOptions o = topic_options(OpenMode::create);
      o.unlink_on_close = false;
      TopicSubscriber sub(name, o);
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(exited_ok(status));
}

// ---- channels ------------------------------------------------------------------------------------

TEST(Inspect, ALiveChannelShowsItsWriterCountersAndOccupancy) {
  WrittenChannel c;
  const fi::SegmentInfo info = fi::inspect(c.name.str());
  EXPECT_EQ(info.kind, fi::Kind::channel);
  EXPECT_EQ(info.name, c.name.str());
  EXPECT_TRUE(info.type_name.empty());
  EXPECT_EQ(info.creator.pid, c.writer_pid);
  EXPECT_TRUE(info.creator.alive);
  EXPECT_GT(info.created_unix_ns, 0u);
  ASSERT_TRUE(info.channel.has_value());
  const auto& ch = *info.channel;
  EXPECT_EQ(ch.ring_capacity, 65536u);
  EXPECT_EQ(info.segment_size, 4096u + 65536u);
  EXPECT_EQ(ch.writer.process.pid, c.writer_pid);
  EXPECT_EQ(ch.writer.state, wire::kRoleAttached);
  EXPECT_TRUE(ch.writer.process.alive);
  EXPECT_EQ(ch.writer.epoch, 1u);
  EXPECT_EQ(ch.writer_counters.count, WrittenChannel::kCount);
  EXPECT_EQ(ch.writer_counters.messages, WrittenChannel::kCount);
  EXPECT_EQ(ch.writer_counters.bytes, c.bytes);
  EXPECT_EQ(ch.writer_counters.position, c.extent);
  EXPECT_EQ(ch.reader.state, wire::kRoleNever);
  EXPECT_EQ(ch.reader_counters.position, 0u);
  // Nobody has read anything: everything committed occupies the ring.
  EXPECT_EQ(ch.occupancy_bytes, c.extent);
  EXPECT_DOUBLE_EQ(ch.occupancy_percent, 100.0 * static_cast<double>(c.extent) / 65536.0);
  EXPECT_TRUE(info.warnings.empty());
  EXPECT_FALSE(fi::stale(info));
  EXPECT_EQ(fi::probe(c.name.str()).health, fi::Health::live);
  EXPECT_TRUE(listed(c.name.str()));
}

TEST(Inspect, ReaderCountersAndTheWritersDeathThenStaleWhenAllAreGone) {
  WrittenChannel c;
  ChannelOptions ro = opts(OpenMode::open);
  ro.unlink_on_close = false;  // keep the name after we leave, to inspect what is left
  auto reader = std::make_unique<Reader>(c.name.str(), ro);
  for (uint64_t i = 0; i < WrittenChannel::kCount; ++i) ASSERT_TRUE(reader->read(1s).ok()) << i;
  EXPECT_EQ(reader->read(0ns).error(), Errc::timeout);  // finding nothing publishes the release position

  fi::SegmentInfo info = fi::inspect(c.name.str());
  const auto& ch = *info.channel;
  EXPECT_EQ(ch.reader.process.pid, static_cast<uint32_t>(::getpid()));
  EXPECT_TRUE(ch.reader.process.alive);
  EXPECT_EQ(ch.reader.state, wire::kRoleAttached);
  EXPECT_EQ(ch.reader_counters.count, WrittenChannel::kCount);
  EXPECT_EQ(ch.reader_counters.position, c.extent);
  EXPECT_EQ(ch.occupancy_bytes, 0u);

  c.writer.kill9();
  c.writer.wait_exit();
  info = fi::inspect(c.name.str());
  EXPECT_EQ(info.channel->writer.state, wire::kRoleAttached);  // it never detached...
  EXPECT_FALSE(info.channel->writer.process.alive);            // ...but it is dead
  EXPECT_FALSE(info.creator.alive);
  EXPECT_TRUE(info.channel->reader.process.alive);
  EXPECT_FALSE(fi::stale(info)) << "the reader still runs";

  reader.reset();  // closed: a closed role keeps nothing alive
  info = fi::inspect(c.name.str());
  EXPECT_EQ(info.channel->reader.state, wire::kRoleClosed);
  EXPECT_TRUE(fi::stale(info));
  const fi::Probe p = fi::probe(c.name.str());
  EXPECT_EQ(p.health, fi::Health::stale);
  EXPECT_EQ(p.message, "every recorded process is dead");
}

TEST(Inspect, InspectionChangesNothingInTheSegment) {
  TempName n("inspect");
  ChannelOptions wo = opts(OpenMode::create);
  Writer w(n, wo);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(w.write_message(std::as_bytes(std::span("hello", 5))).ok());
  const std::vector<char> before = read_file(shm_path(n.str()));
  ASSERT_FALSE(before.empty());
  (void)fi::inspect(n.str());
  (void)fi::probe(n.str());
  EXPECT_EQ(cli({"stat", n.str(), "--json"}).rc, 0);
  EXPECT_EQ(cli({"ls"}).rc, 0);
  EXPECT_EQ(fi::gc({true, my_prefix()}), std::vector<std::string>{});  // dry run, and it is live anyway
  EXPECT_TRUE(read_file(shm_path(n.str())) == before) << "inspection modified shared memory";
}

TEST(Inspect, AMissingNameIsNotFound) {
  try {
    (void)fi::inspect("test.inspect.nosuch." + std::to_string(::getpid()));
    FAIL() << "inspected a name that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found);
    EXPECT_NE(std::string(e.what()).find("no channel named test.inspect.nosuch"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)fi::inspect("../etc/passwd"), Error);  // names never leave /dev/shm/flatlane.*
  EXPECT_EQ(fi::probe("a/b").error, Errc::invalid_argument);
}

// ---- topics --------------------------------------------------------------------------------------

TEST(Inspect, ALiveTopicShowsPublisherAndSubscriberCounters) {
  TempName n("inspect");
  create_topic_in_child(n.str());
  ChildProcess all{"flatlane_peer_topic", {"hold", n.str(), "10"}};   // holds all 10
  ChildProcess some{"flatlane_peer_topic", {"hold", n.str(), "4"}};   // holds 4, 6 stay queued
  ASSERT_TRUE(all.await("ready").has_value());
  ASSERT_TRUE(some.await("ready").has_value());
  {
    ChildProcess pub{"flatlane_peer_topic", {"publish", n.str(), "10", "size=200"}};
    ASSERT_TRUE(pub.await("done 10").has_value()) << pub.last_line();
    EXPECT_TRUE(exited_ok(pub.wait_exit()));
  }
  ASSERT_TRUE(all.await("held 10").has_value()) << all.last_line();
  ASSERT_TRUE(some.await("held 4").has_value()) << some.last_line();

  const fi::SegmentInfo info = fi::inspect(n.str());
  EXPECT_EQ(info.kind, fi::Kind::topic);
  EXPECT_EQ(info.type_name, "fltest.TopicMessage");
  EXPECT_EQ(info.type_hash, 0x5151u);
  EXPECT_FALSE(info.creator.alive);
  ASSERT_TRUE(info.topic.has_value());
  const auto& t = *info.topic;
  EXPECT_EQ(t.slot_size, 1024u);
  EXPECT_EQ(t.slot_count, 64u);
  EXPECT_EQ(t.max_publishers, 4u);
  EXPECT_EQ(t.max_subscribers, 32u);
  EXPECT_EQ(t.queue_depth, 16u);
  EXPECT_EQ(t.max_held, 16u);
  EXPECT_EQ(t.history, 0u);

  // The peer publisher claimed block 0, published and left.
  ASSERT_EQ(t.publishers.size(), 1u);
  const auto& p = t.publishers[0];
  EXPECT_EQ(p.peer.index, 0u);
  EXPECT_EQ(p.peer.epoch, 1u);
  EXPECT_EQ(p.peer.state, wire::kRoleClosed);
  EXPECT_FALSE(p.peer.process.alive);
  EXPECT_EQ(p.seq, 10u);
  EXPECT_EQ(p.messages, 10u);
  EXPECT_EQ(p.bytes, 2000u);
  EXPECT_EQ(p.no_receiver, 0u);
  EXPECT_EQ(p.free_slots, 64u - 10u);  // every message is held or queued by someone

  ASSERT_EQ(t.subscribers.size(), 2u);
  for (const auto& s : t.subscribers) {
    EXPECT_EQ(s.peer.state, wire::kRoleAttached);
    EXPECT_TRUE(s.peer.process.alive);
    EXPECT_EQ(s.peer.mode, 0u);
    EXPECT_EQ(s.dropped, 0u);
  }
  const auto by_received = [&](uint64_t r) {
    return std::find_if(t.subscribers.begin(), t.subscribers.end(), [&](const auto& s) { return s.received == r; });
  };
  ASSERT_NE(by_received(10), t.subscribers.end());
  ASSERT_NE(by_received(4), t.subscribers.end());
  EXPECT_EQ(by_received(10)->held, 10u);
  EXPECT_EQ(by_received(10)->queued, 0u);
  EXPECT_EQ(by_received(10)->bytes, 2000u);
  EXPECT_EQ(by_received(4)->held, 4u);
  EXPECT_EQ(by_received(4)->queued, 6u);
  EXPECT_EQ(by_received(4)->bytes, 800u);
  EXPECT_FALSE(fi::stale(info));

  // kill -9 both subscribers: nobody recorded in the topic is alive any more.
  all.kill9();
  some.kill9();
  all.wait_exit();
  some.wait_exit();
  const fi::SegmentInfo after = fi::inspect(n.str());
  for (const auto& s : after.topic->subscribers) {
    EXPECT_FALSE(s.peer.process.alive);
    EXPECT_EQ(s.peer.state, wire::kRoleAttached);
  }
  EXPECT_TRUE(fi::stale(after));
  EXPECT_EQ(fi::probe(n.str()).health, fi::Health::stale);
  EXPECT_EQ(fi::gc({false, n.str()}), std::vector<std::string>{n.str()});
  EXPECT_FALSE(exists(n.str()));
}

// ---- ls, gc, rm ----------------------------------------------------------------------------------

TEST(Inspect, GcRemovesOnlyStaleSegmentsNeverLiveOnesNorForeignObjects) {
  TempName live("inspect"), stale_name("inspect"), junk("inspect"), empty("inspect"), zero("inspect");
  Writer w(live, opts(OpenMode::create));  // created and attached by this (live) process
  {
    ChildProcess creator{"flatlane_peer_process", {"create", stale_name.str()}};
    ASSERT_TRUE(creator.await("ready ").has_value());
    creator.kill9();
    creator.wait_exit();
  }
  std::mt19937_64 rng(42);
  std::vector<char> random(5000);
  for (char& ch : random) ch = static_cast<char>(rng() | 1);  // never all zero
  write_object(junk.str(), random);
  write_object(empty.str(), {});                              // a creator between shm_open and fallocate
  write_object(zero.str(), std::vector<char>(8192, 0));        // a creator before its header stores

  EXPECT_TRUE(listed(live.str()) && listed(stale_name.str()) && listed(junk.str()));
  EXPECT_EQ(fi::probe(live.str()).health, fi::Health::live);
  EXPECT_EQ(fi::probe(stale_name.str()).health, fi::Health::stale);
  const fi::Probe j = fi::probe(junk.str());
  EXPECT_EQ(j.health, fi::Health::foreign);
  EXPECT_EQ(j.error, Errc::not_flatlane);
  EXPECT_FALSE(j.info.has_value());
  EXPECT_EQ(fi::probe(empty.str()).health, fi::Health::initializing);
  EXPECT_EQ(fi::probe(zero.str()).health, fi::Health::initializing);

  const std::vector<std::string> expected{stale_name.str()};
  EXPECT_EQ(fi::gc({true, my_prefix()}), expected);  // dry run: reports, removes nothing
  EXPECT_TRUE(exists(stale_name.str()));
  EXPECT_EQ(fi::gc({false, my_prefix()}), expected);
  EXPECT_FALSE(exists(stale_name.str()));
  for (const TempName* kept : {&live, &junk, &empty, &zero}) EXPECT_TRUE(exists(kept->str())) << kept->str();
  EXPECT_EQ(read_file(shm_path(junk.str())), random) << "gc touched a foreign object";
  EXPECT_EQ(fi::gc({false, my_prefix()}), std::vector<std::string>{});
}

TEST(Inspect, RmRefusesALiveSegmentUnlessForced) {
  TempName n("inspect"), junk("inspect");
  Writer w(n, opts(OpenMode::create));
  try {
    fi::remove(n.str());
    FAIL() << "removed a live segment";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::busy);
    EXPECT_NE(std::string(e.what()).find("is in use"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(exists(n.str()));
  write_object(junk.str(), std::vector<char>(300, 'x'));
  EXPECT_THROW(fi::remove(junk.str()), Error);  // not ours to judge without force
  EXPECT_TRUE(exists(junk.str()));
  fi::remove(n.str(), true);
  EXPECT_FALSE(exists(n.str()));
  fi::remove(junk.str(), true);
  EXPECT_FALSE(exists(junk.str()));
  try {
    fi::remove(n.str());
    FAIL() << "removed a name twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found);
  }
}

// ---- hostile segments ----------------------------------------------------------------------------

// The bytes of a valid channel segment whose writer committed some frames and closed, with the
// creator (this process) alive: a baseline that inspects as live.
std::vector<char> channel_image() {
  TempName n("inspect");
  {
    Writer w(n, opts(OpenMode::create, 4096));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(w.write_message(std::as_bytes(std::span("abcdefgh", 8))).ok());
  }
  return read_file(shm_path(n.str()));
}

struct Case {
  const char* what;
  std::function<void(std::vector<char>&)> mutate;
  fi::Health health;
  Errc error;
};

void check_case(const Case& c, const std::vector<char>& base) {
  SCOPED_TRACE(c.what);
  TempName n("inspect");
  std::vector<char> image = base;
  c.mutate(image);
  write_object(n.str(), image);
  const fi::Probe p = fi::probe(n.str());
  EXPECT_EQ(p.health, c.health) << fi::to_string(p.health) << ": " << p.message;
  EXPECT_EQ(p.error, c.error) << p.message;
  EXPECT_EQ(p.info.has_value(), c.error == Errc::ok);
  if (c.error != Errc::ok) {
    try {
      (void)fi::inspect(n.str());
      ADD_FAILURE() << "inspect accepted it";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), c.error) << e.what();
    }
  }
}

TEST(Inspect, HostileOrTruncatedChannelHeadersAreReportedNotTrusted) {
  const std::vector<char> base = channel_image();
  ASSERT_EQ(base.size(), 8192u);
  const uint32_t gone = dead_pid();
  const Case cases[] = {
      {"valid", [](auto&) {}, fi::Health::live, Errc::ok},
      {"bad magic", [](auto& i) { poke<uint64_t>(i, 0, 0x1234); }, fi::Health::foreign, Errc::not_flatlane},
      {"version 2", [](auto& i) { poke<uint32_t>(i, 8, 2); }, fi::Health::foreign, Errc::incompatible_version},
      {"layout hash", [](auto& i) { poke<uint64_t>(i, 16, wire::kLayoutHash ^ 1); }, fi::Health::foreign, Errc::layout_mismatch},
      {"header size", [](auto& i) { poke<uint32_t>(i, 12, 0); }, fi::Health::invalid, Errc::corrupt},
      {"unknown kind", [](auto& i) { poke<uint32_t>(i, 56, 7); }, fi::Health::invalid, Errc::corrupt},
      {"capacity not a power of two", [](auto& i) { poke<uint64_t>(i, 40, 12345); }, fi::Health::invalid, Errc::corrupt},
      {"segment size", [](auto& i) { poke<uint64_t>(i, 24, uint64_t{1} << 50); }, fi::Health::invalid, Errc::corrupt},
      {"claims a 1 TiB ring",
       [](auto& i) {
         poke<uint64_t>(i, 40, uint64_t{1} << 40);
         poke<uint64_t>(i, 24, 4096 + (uint64_t{1} << 40));
       },
       fi::Health::invalid, Errc::truncated},
      {"max frame 0", [](auto& i) { poke<uint32_t>(i, 48, 0); }, fi::Health::invalid, Errc::corrupt},
      {"chunk above max frame", [](auto& i) { poke<uint32_t>(i, 52, 1u << 30); }, fi::Health::invalid, Errc::corrupt},
      {"type name without NUL", [](auto& i) { std::memset(i.data() + 96, 'A', 128); }, fi::Health::invalid, Errc::corrupt},
      {"not ready, creator alive", [](auto& i) { poke<uint32_t>(i, 60, 0); }, fi::Health::initializing, Errc::corrupt},
      {"not ready, creator dead",
       [&](auto& i) {
         poke<uint32_t>(i, 60, 0);
         poke<uint32_t>(i, 64, gone);
       },
       fi::Health::abandoned, Errc::corrupt},
      {"header all zero", [](auto& i) { std::memset(i.data(), 0, 256); }, fi::Health::initializing, Errc::not_flatlane},
      {"cut inside the ring", [](auto& i) { i.resize(4096 + 100); }, fi::Health::invalid, Errc::truncated},
      {"cut inside the header region", [](auto& i) { i.resize(1000); }, fi::Health::invalid, Errc::truncated},
      {"cut inside the header", [](auto& i) { i.resize(100); }, fi::Health::foreign, Errc::truncated},
      {"empty", [](auto& i) { i.clear(); }, fi::Health::initializing, Errc::truncated},
  };
  for (const Case& c : cases) check_case(c, base);
}

TEST(Inspect, ImpossiblePositionsAreClampedAndReported) {
  std::vector<char> image = channel_image();
  const auto check = [&](uint64_t w, uint64_t r, uint64_t occupancy) {
    TempName n("inspect");
    poke<uint64_t>(image, wire::kWriterBlockOffset, w);
    poke<uint64_t>(image, wire::kReaderBlockOffset, r);
    poke<uint64_t>(image, wire::kWriterBlockOffset + 8, wire::make_owner(dead_pid(), 9));  // unknown state
    write_object(n.str(), image);
    const fi::SegmentInfo info = fi::inspect(n.str());
    EXPECT_EQ(info.channel->occupancy_bytes, occupancy);
    EXPECT_LE(info.channel->occupancy_percent, 100.0);
    EXPECT_FALSE(info.warnings.empty());
    EXPECT_EQ(info.channel->writer.state, 9u);
    EXPECT_STREQ(fi::role_state_name(info.channel->writer.state), "unknown");
    EXPECT_FALSE(info.channel->writer.holds_role());
  };
  check(16, 4096, 0);                 // writer behind reader
  check(uint64_t{1} << 62, 0, 4096);  // more in flight than the ring holds
}

// A topic with one publisher and one subscriber attached from this process, frozen as bytes.
std::vector<char> topic_image() {
  TempName n("inspect");
  TopicPublisher pub(n, topic_options(OpenMode::create));
  TopicSubscriber sub(n, topic_options(OpenMode::open));
  for (uint64_t i = 0; i < 3; ++i) EXPECT_TRUE(send_message(pub, i, 100).ok());
  return read_file(shm_path(n.str()));
}

TEST(Inspect, HostileTopicHeadersAndQueuesAreReportedNotTrusted) {
  const std::vector<char> base = topic_image();
  constexpr size_t th = wire::kTopicHeaderOffset;
  const Case cases[] = {
      {"valid", [](auto&) {}, fi::Health::live, Errc::ok},
      {"slot count 0", [](auto& i) { poke<uint32_t>(i, th + 4, 0); }, fi::Health::invalid, Errc::corrupt},
      {"queue depth 3", [](auto& i) { poke<uint32_t>(i, th + 16, 3); }, fi::Health::invalid, Errc::corrupt},
      {"more subscribers than the offsets", [](auto& i) { poke<uint32_t>(i, th + 12, 1024); }, fi::Health::invalid, Errc::corrupt},
      {"publishers offset", [](auto& i) { poke<uint64_t>(i, th + 32, 0); }, fi::Health::invalid, Errc::corrupt},
      {"slots beyond the file", [](auto& i) { poke<uint32_t>(i, th + 4, 1u << 20); }, fi::Health::invalid, Errc::corrupt},
      {"history >= slots", [](auto& i) { poke<uint32_t>(i, th + 24, 64); }, fi::Health::invalid, Errc::corrupt},
  };
  for (const Case& c : cases) check_case(c, base);

  // Queue positions and held entries are counters, not geometry: inspected, clamped, reported.
  TempName n("inspect");
  std::vector<char> image = base;
  const fi::SegmentInfo valid = [&] {
    write_object(n.str(), image);
    return fi::inspect(n.str());
  }();
  ASSERT_EQ(valid.topic->subscribers.size(), 1u);
  EXPECT_EQ(valid.topic->subscribers[0].queued, 3u);
  EXPECT_EQ(valid.topic->publishers[0].messages, 3u);
  EXPECT_EQ(valid.topic->publishers[0].free_slots, 64u - 3u);
  uint64_t queues_offset = 0;
  std::memcpy(&queues_offset, base.data() + th + 48, 8);
  poke<uint64_t>(image, queues_offset, 1000);      // head of (publisher 0, subscriber 0)
  poke<uint64_t>(image, queues_offset + 64, 5);    // tail < head
  write_object(n.str(), image);
  fi::SegmentInfo info = fi::inspect(n.str());
  EXPECT_EQ(info.topic->subscribers[0].queued, 0u);
  EXPECT_FALSE(info.warnings.empty());
  poke<uint64_t>(image, queues_offset + 64, uint64_t{1} << 60);  // tail - head > depth
  uint64_t subscribers_offset = 0;
  std::memcpy(&subscribers_offset, base.data() + th + 40, 8);
  for (uint32_t k = 0; k < 16; ++k)
    poke<uint32_t>(image, subscribers_offset + wire::kHeldTableOffset + 8 * k, 0xFFFFFFFFu);
  write_object(n.str(), image);
  info = fi::inspect(n.str());
  EXPECT_EQ(info.topic->subscribers[0].queued, 16u);  // clamped to the queue depth
  EXPECT_EQ(info.topic->subscribers[0].held, 16u);
}

// Random bytes over the header region and the blocks: every outcome is a value, never a crash
// and never a number outside what the validated geometry allows.
TEST(Inspect, RandomlyCorruptedSegmentsNeverCrashInspection) {
  const std::vector<char> topic = topic_image(), channel = channel_image();
  std::mt19937_64 rng(7);
  TempName n("inspect");
  int inspected = 0;
  for (int round = 0; round < 400; ++round) {
    std::vector<char> image = round % 2 ? topic : channel;
    const size_t span = std::min<size_t>(image.size(), round % 4 < 2 ? 512 : 16384);
    for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k) image[rng() % span] = static_cast<char>(rng());
    if (round % 16 == 0) image.resize(rng() % image.size());
    write_object(n.str(), image);
    const fi::Probe p = fi::probe(n.str());
    ASSERT_EQ(p.info.has_value(), p.error == Errc::ok) << p.message;
    if (!p.info) continue;
    ++inspected;
    if (p.info->topic) {
      const auto& t = *p.info->topic;
      for (const auto& pub : t.publishers) EXPECT_LE(pub.free_slots, t.slot_count);
      for (const auto& s : t.subscribers) {
        EXPECT_LE(s.queued, uint64_t{t.queue_depth} * t.max_publishers);
        EXPECT_LE(s.held, t.max_held);
      }
    } else {
      EXPECT_LE(p.info->channel->occupancy_bytes, p.info->channel->ring_capacity);
    }
  }
  EXPECT_GT(inspected, 0);
}

// ---- the binary ----------------------------------------------------------------------------------

TEST(InspectCli, LsJsonListsSegmentsWithStatus) {
  WrittenChannel c;
  TempName junk("inspect");
  write_object(junk.str(), std::vector<char>(5000, 'j'));
  const CliRun r = cli({"ls", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const Json doc = parse_json(r.out);
  EXPECT_EQ(doc["schema"].s, "flatlane.ls/1");
  const auto entry = [&](const std::string& name) -> const Json* {
    for (const Json& e : doc["segments"].a)
      if (e["name"].s == name) return &e;
    return nullptr;
  };
  const Json* ch = entry(c.name.str());
  ASSERT_NE(ch, nullptr) << r.out;
  EXPECT_EQ((*ch)["status"].s, "live");
  EXPECT_EQ((*ch)["kind"].s, "channel");
  EXPECT_EQ((*ch)["error"].type, Json::Type::null);
  ASSERT_EQ((*ch)["peers"].a.size(), 1u);
  EXPECT_EQ((*ch)["peers"].a[0]["role"].s, "writer");
  EXPECT_EQ((*ch)["peers"].a[0]["pid"].n, static_cast<double>(c.writer_pid));
  EXPECT_TRUE((*ch)["peers"].a[0]["alive"].b);
  EXPECT_EQ((*ch)["occupancy"]["bytes"].n, static_cast<double>(c.extent));
  const Json* j = entry(junk.str());
  ASSERT_NE(j, nullptr);
  EXPECT_EQ((*j)["status"].s, "foreign");
  EXPECT_EQ((*j)["error"]["code"].s, "not_flatlane");
  EXPECT_EQ((*j)["kind"].type, Json::Type::null);

  // The human table: a header and one aligned row per segment.
  const CliRun text = cli({"ls", "--prefix", c.name.str()});
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_EQ(text.out.rfind("NAME", 0), 0u) << text.out;
  EXPECT_NE(text.out.find("writer " + std::to_string(c.writer_pid) + " alive"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find(junk.str()), std::string::npos) << "--prefix filters";
  const std::string header = text.out.substr(0, text.out.find('\n'));
  const size_t row_at = text.out.find(c.name.str());
  const std::string row = text.out.substr(row_at, text.out.find('\n', row_at) - row_at);
  EXPECT_EQ(header.find("KIND"), row.find("channel")) << "columns are aligned:\n" << text.out;
  EXPECT_EQ(header.find("STATUS"), row.find("live")) << text.out;
}

TEST(InspectCli, StatJsonCountersAndRatesFromTwoSamples) {
  TempName n("inspect");
  ChildProcess writer{"flatlane_peer_process", {"write", n.str(), "open=create", "count=inf", "maxsize=500"}};
  ASSERT_TRUE(writer.await("ready ").has_value());
  ChildProcess reader{"flatlane_peer_process", {"read", n.str(), "count=inf", "maxsize=500", "timeout_ms=30000"}};
  ASSERT_TRUE(reader.await("ready ").has_value());

  const CliRun r = cli({"stat", n.str(), "--json", "--interval", "200"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const Json doc = parse_json(r.out);
  EXPECT_EQ(doc["schema"].s, "flatlane.stat/1");
  EXPECT_EQ(doc["kind"].s, "channel");
  EXPECT_EQ(doc["topic"].type, Json::Type::null);
  EXPECT_GT(doc["channel"]["writer"]["frames"].n, 0);
  EXPECT_EQ(doc["channel"]["ring_capacity"].n, 65536);
  const Json& rates = doc["rates"];
  EXPECT_GE(rates["interval_s"].n, 0.19);
  ASSERT_EQ(rates["peers"].a.size(), 2u);
  EXPECT_EQ(rates["peers"].a[0]["role"].s, "writer");
  EXPECT_GT(rates["peers"].a[0]["messages_per_s"].n, 0);
  EXPECT_GT(rates["peers"].a[0]["bytes_per_s"].n, 0);
  EXPECT_GT(rates["peers"].a[1]["frames_per_s"].n, 0) << "the reader releases frames";

  // --watch: one JSON document per line and report.
  const CliRun w = cli({"stat", n.str(), "--json", "--watch", "0.05", "--count", "3"});
  ASSERT_EQ(w.rc, 0) << w.err;
  size_t lines = 0;
  for (size_t pos = 0, nl; (nl = w.out.find('\n', pos)) != std::string::npos; pos = nl + 1, ++lines)
    EXPECT_NO_THROW(parse_json(w.out.substr(pos, nl - pos)));
  EXPECT_EQ(lines, 3u);

  const CliRun text = cli({"stat", n.str(), "--interval", "100"});
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("MSGS/S"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("status:     live"), std::string::npos) << text.out;
}

TEST(InspectCli, ExitCodesAndMessages) {
  const std::string missing = "test.inspect.nosuch." + std::to_string(::getpid());
  CliRun r = cli({"stat", missing});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "flatlane: no channel named " + missing + "\n");
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(cli({}).rc, 2);
  EXPECT_EQ(cli({"frobnicate"}).rc, 2);
  EXPECT_EQ(cli({"stat"}).rc, 2);
  EXPECT_EQ(cli({"ls", "--bogus"}).rc, 2);
  EXPECT_EQ(cli({"stat", "x", "--interval", "-5"}).rc, 2);
  EXPECT_EQ(cli({"stat", "x", "--interval", "5", "--watch", "1"}).rc, 2);
  EXPECT_EQ(cli({"stat", "x", "--watch", "1", "--count", "0"}).rc, 2);
  EXPECT_EQ(cli({"stat", "x", "--count", "2"}).rc, 2);  // --count goes with --watch
  EXPECT_EQ(cli({"rm"}).rc, 2);
  EXPECT_EQ(cli({"--help"}).rc, 0);
  EXPECT_EQ(cli({"--version"}).out.rfind("flatlane ", 0), 0u);

  TempName n("inspect");
  Writer w(n, opts(OpenMode::create));
  r = cli({"rm", n.str()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("is in use"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_TRUE(exists(n.str()));
  r = cli({"rm", "--force", shm_path(n.str())});  // the /dev/shm path is accepted too
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "removed " + n.str() + "\n");
  EXPECT_FALSE(exists(n.str()));
  EXPECT_EQ(cli({"rm", n.str()}).rc, 1);

  r = cli({"gc", "--dry-run", "--json", "--prefix", my_prefix()});
  ASSERT_EQ(r.rc, 0) << r.err;
  const Json doc = parse_json(r.out);
  EXPECT_EQ(doc["schema"].s, "flatlane.gc/1");
  EXPECT_TRUE(doc["dry_run"].b);
  EXPECT_EQ(doc["removed"].type, Json::Type::array);
}

}  // namespace
