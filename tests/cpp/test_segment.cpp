// Segment creation, opening and header validation.
//
// Every validation case starts from a segment written by Segment::create, then corrupts exactly one
// thing through a separate raw mapping of /dev/shm/flatlane.<name>, and checks the error kind that
// Segment::open (and the channel endpoints built on it) report.
#include <gtest/gtest.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "test_util.hpp"

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

namespace {

std::string shm_path(std::string_view name) { return "/dev/shm/flatlane." + std::string(name); }

bool path_exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

// Runs f; returns the code of the flatlane::Error it throws, or Errc::ok if it does not throw.
// Any other exception type fails the test.
template <class F>
Errc error_of(F&& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (what) *what = e.what();
    return e.code();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return Errc::system;
  }
  return Errc::ok;
}

SegmentConfig cfg(uint64_t capacity = 1 << 16) {
  SegmentConfig c;
  c.ring_capacity = capacity;
  return c;
}

// Creates a valid segment and unmaps it again (the name stays until TempName goes away).
void make_segment(std::string_view name, uint64_t capacity = 1 << 16, TypeId type = {}) {
  SegmentConfig c = cfg(capacity);
  c.type = std::move(type);
  Segment s = Segment::create(name, c);
  ASSERT_TRUE(s.valid());
}

// A raw read/write mapping of the whole file behind a channel name, independent of the library.
class RawMap {
 public:
  explicit RawMap(std::string_view name) {
    fd_ = ::open(shm_path(name).c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("open " + shm_path(name) + ": " + std::strerror(errno));
    struct stat st{};
    ::fstat(fd_, &st);
    size_ = static_cast<size_t>(st.st_size);
    void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
    base_ = static_cast<std::byte*>(m);
  }
  ~RawMap() {
    if (base_) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawMap(const RawMap&) = delete;
  RawMap& operator=(const RawMap&) = delete;
  wire::SegmentHeader& header() { return *reinterpret_cast<wire::SegmentHeader*>(base_); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::byte* base_ = nullptr;
  size_t size_ = 0;
};

// Writes a plain file (not a Flatlane segment) under the channel's /dev/shm name.
void write_foreign(std::string_view name, const std::string& content) {
  std::ofstream out(shm_path(name), std::ios::binary | std::ios::trunc);
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rss (in bytes) of this process's mapping that starts at `addr`, from /proc/self/smaps.
int64_t mapping_rss(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  char want[32];
  std::snprintf(want, sizeof want, "%" PRIxPTR "-", reinterpret_cast<uintptr_t>(addr));
  bool in_mapping = false;
  while (std::getline(in, line)) {
    if (line.rfind(want, 0) == 0) {
      in_mapping = true;
      continue;
    }
    if (in_mapping && line.rfind("Rss:", 0) == 0) {
      long long kb = 0;
      std::sscanf(line.c_str(), "Rss: %lld kB", &kb);
      return kb * 1024;
    }
  }
  return -1;
}

class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

mode_t file_mode(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Permissions

TEST(SegmentCreate, DefaultModeIs0600EvenWithPermissiveUmask) {
  UmaskGuard um(0);
  TempName name("mode");
  Segment s = Segment::create(name, cfg());
  EXPECT_EQ(file_mode(shm_path(name)), 0600u);
}

TEST(SegmentCreate, DefaultModeIs0600ThroughWriter) {
  UmaskGuard um(0);
  TempName name("mode");
  Writer w(name, opts(OpenMode::create));
  EXPECT_EQ(file_mode(shm_path(name)), 0600u);
}

TEST(SegmentCreate, HonoursUserModeRegardlessOfUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}, mode_t{0777}}) {
    for (mode_t mode : {mode_t{0660}, mode_t{0640}, mode_t{0666}, mode_t{0600}}) {
      SCOPED_TRACE("umask " + std::to_string(mask) + " mode " + std::to_string(mode));
      UmaskGuard um(mask);
      TempName name("mode");
      SegmentConfig c = cfg();
      c.mode = mode;
      Segment s = Segment::create(name, c);
      EXPECT_EQ(file_mode(shm_path(name)), mode);
    }
  }
}

TEST(SegmentOpen, PermissionDeniedIsReportedAsSuch) {
  TempName name("perm");
  make_segment(name);  // mode 0600, owned by us
  ASSERT_EQ(::chmod(shm_path(name).c_str(), 0000), 0);
  if (::geteuid() != 0) {
    std::string what;
    EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::permission_denied) << what;
    return;
  }
  // Root bypasses file permissions, so open the 0000 segment from a child that dropped to an
  // unprivileged uid; the child reports the error code as its exit status.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(100);
    int code = 101;
    try {
      Segment::open(name, {});
      code = 0;
    } catch (const Error& e) {
      code = static_cast<int>(e.code());
    } catch (...) {
      code = 102;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  ASSERT_NE(WEXITSTATUS(status), 100) << "could not drop privileges to uid 65534";
  EXPECT_EQ(WEXITSTATUS(status), static_cast<int>(Errc::permission_denied))
      << "got " << to_string(static_cast<Errc>(WEXITSTATUS(status)));
}

// ---------------------------------------------------------------------------------------------
// Names

TEST(SegmentOpen, MissingNameIsNotFound) {
  TempName name("missing");
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::not_found);
  EXPECT_NE(what.find(name.str()), std::string::npos) << what;
  EXPECT_EQ(error_of([&] { Reader r(name, opts(OpenMode::open)); }), Errc::not_found);
  EXPECT_EQ(error_of([&] { Writer w(name, opts(OpenMode::open)); }), Errc::not_found);
  EXPECT_FALSE(path_exists(shm_path(name)));  // open must never create
}

TEST(SegmentName, BadNamesAreInvalidArgument) {
  const std::vector<std::string> bad = {
      "", "/", "a/b", "/abs", std::string(201, 'x'), "sp ace", std::string("nul\0x", 5), "t\xc3\xa9st", "a*b",
      "tab\t",
  };
  for (const auto& n : bad) {
    SCOPED_TRACE("name '" + n + "' (" + std::to_string(n.size()) + " bytes)");
    EXPECT_EQ(error_of([&] { Segment::shm_name(n); }), Errc::invalid_argument);
    EXPECT_EQ(error_of([&] { Segment::open(n, {}); }), Errc::invalid_argument);
    EXPECT_EQ(error_of([&] { Segment::create(n, cfg()); }), Errc::invalid_argument);
    EXPECT_EQ(error_of([&] { Writer w(n, opts(OpenMode::create_or_open)); }), Errc::invalid_argument);
    EXPECT_EQ(error_of([&] { Reader r(n, opts(OpenMode::create_or_open)); }), Errc::invalid_argument);
  }
}

TEST(SegmentName, LongestValidNameWorks) {
  std::string n = "test.long." + std::to_string(::getpid()) + ".";
  n.resize(200, 'x');
  EXPECT_EQ(Segment::shm_name(n), "/flatlane." + n);
  {
    Segment s = Segment::create(n, cfg());
    EXPECT_TRUE(path_exists(shm_path(n)));
  }
  EXPECT_TRUE(Segment::unlink(n));
}

// ---------------------------------------------------------------------------------------------
// Header validation: one corrupted field per case.

struct Corruption {
  const char* name;
  std::function<void(wire::SegmentHeader&)> mutate;
  Errc expected;
  friend void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }
};

class SegmentHeaderValidation : public ::testing::TestWithParam<Corruption> {};

TEST_P(SegmentHeaderValidation, OpenReportsTheRightError) {
  const Corruption& c = GetParam();
  TempName name("hdr");
  make_segment(name);
  {
    RawMap raw(name);
    c.mutate(raw.header());
  }
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), c.expected) << what;
  EXPECT_NE(what.find(name.str()), std::string::npos) << "message should name the channel: " << what;
  // The channel endpoints report the same error, and create_or_open must not paper over it by
  // re-creating (the bad segment is left in place for inspection).
  EXPECT_EQ(error_of([&] { Writer w(name, opts(OpenMode::create_or_open)); }), c.expected);
  EXPECT_TRUE(path_exists(shm_path(name)));
}

const uint64_t kCap = 1 << 16;

INSTANTIATE_TEST_SUITE_P(
    Fields, SegmentHeaderValidation,
    ::testing::Values(
        Corruption{"magic", [](auto& h) { h.magic ^= 1; }, Errc::not_flatlane},
        Corruption{"magic_zero", [](auto& h) { h.magic = 0; }, Errc::not_flatlane},
        Corruption{"protocol_version", [](auto& h) { h.protocol_version = 2; }, Errc::incompatible_version},
        Corruption{"protocol_version_zero", [](auto& h) { h.protocol_version = 0; }, Errc::incompatible_version},
        Corruption{"layout_hash", [](auto& h) { h.layout_hash ^= 0x100; }, Errc::layout_mismatch},
        Corruption{"header_size", [](auto& h) { h.header_size = 8192; }, Errc::corrupt},
        Corruption{"ring_offset", [](auto& h) { h.ring_offset = 0; }, Errc::corrupt},
        Corruption{"ring_capacity_not_pow2", [](auto& h) { h.ring_capacity = kCap + 4096; }, Errc::corrupt},
        Corruption{"ring_capacity_not_pow2_consistent_size",
                   [](auto& h) {
                     h.ring_capacity = kCap - 4096;
                     h.segment_size = wire::kHeaderRegionSize + kCap - 4096;
                   },
                   Errc::corrupt},
        Corruption{"ring_capacity_zero", [](auto& h) { h.ring_capacity = 0; }, Errc::corrupt},
        Corruption{"ring_capacity_below_min",
                   [](auto& h) {
                     h.ring_capacity = 2048;
                     h.segment_size = wire::kHeaderRegionSize + 2048;
                     h.max_frame_payload = 1008;
                     h.chunk_size = 1008;
                   },
                   Errc::corrupt},
        Corruption{"ring_capacity_above_max",
                   [](auto& h) {
                     h.ring_capacity = 1ull << 41;
                     h.segment_size = wire::kHeaderRegionSize + (1ull << 41);
                   },
                   Errc::corrupt},
        Corruption{"segment_size_mismatch", [](auto& h) { h.segment_size += 4096; }, Errc::corrupt},
        Corruption{"segment_size_smaller", [](auto& h) { h.segment_size -= 4096; }, Errc::corrupt},
        Corruption{"segment_size_wraps", [](auto& h) { h.segment_size = ~0ull; }, Errc::corrupt},
        Corruption{"max_frame_zero", [](auto& h) { h.max_frame_payload = 0; }, Errc::corrupt},
        Corruption{"max_frame_too_small", [](auto& h) { h.max_frame_payload = 31; }, Errc::corrupt},
        Corruption{"max_frame_too_big",
                   [](auto& h) { h.max_frame_payload = static_cast<uint32_t>(kCap / 2 - wire::kFrameHeaderSize + 1); },
                   Errc::corrupt},
        Corruption{"max_frame_huge", [](auto& h) { h.max_frame_payload = 0xFFFFFFFFu; }, Errc::corrupt},
        Corruption{"chunk_size_zero", [](auto& h) { h.chunk_size = 0; }, Errc::corrupt},
        Corruption{"chunk_size_header_only", [](auto& h) { h.chunk_size = 16; }, Errc::corrupt},
        Corruption{"chunk_size_above_max_frame", [](auto& h) { h.chunk_size = h.max_frame_payload + 1; },
                   Errc::corrupt},
        Corruption{"kind_unknown", [](auto& h) { h.kind = 4; }, Errc::corrupt},
        // A duplex header over a channel's layout, likewise.
        Corruption{"kind_duplex_with_channel_layout", [](auto& h) { h.kind = 3; }, Errc::layout_mismatch},
        // A topic's header over a channel's layout: the layout hash no longer fits the kind.
        Corruption{"kind_topic_with_channel_layout", [](auto& h) { h.kind = 2; }, Errc::layout_mismatch},
        Corruption{"kind_zero", [](auto& h) { h.kind = 0; }, Errc::corrupt},
        Corruption{"type_name_unterminated", [](auto& h) { std::memset(h.type_name, 'x', sizeof h.type_name); },
                   Errc::corrupt},
        Corruption{"state_never_ready", [](auto& h) { h.state.store(wire::kStateInitializing); }, Errc::corrupt},
        Corruption{"ring_capacity_bigger_than_file",
                   [](auto& h) {
                     h.ring_capacity = kCap * 4;
                     h.segment_size = wire::kHeaderRegionSize + kCap * 4;
                   },
                   Errc::truncated}),
    [](const ::testing::TestParamInfo<Corruption>& p) { return std::string(p.param.name); });

TEST(SegmentHeader, ValidSegmentOpensAndReportsItsGeometry) {
  TempName name("hdr");
  make_segment(name);
  Segment s = Segment::open(name, {});
  EXPECT_EQ(s.ring_capacity(), kCap);
  EXPECT_EQ(s.size(), wire::kHeaderRegionSize + kCap);
  EXPECT_EQ(s.ring(), s.base() + wire::kHeaderRegionSize);
  EXPECT_EQ(s.header().magic, wire::kMagic);
  EXPECT_EQ(s.header().layout_hash, wire::kLayoutHash);
}

TEST(SegmentHeader, ValidateHeaderExplainsWhy) {
  TempName name("hdr");
  make_segment(name);
  RawMap raw(name);
  std::string why;
  EXPECT_EQ(validate_header(raw.header(), wire::kHeaderRegionSize + kCap, &why), Errc::ok);
  EXPECT_EQ(validate_header(raw.header(), wire::kHeaderRegionSize + kCap - 1, &why), Errc::truncated);
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(validate_header(raw.header(), wire::kHeaderRegionSize + kCap - 1, nullptr), Errc::truncated);
  raw.header().protocol_version = 7;
  EXPECT_EQ(validate_header(raw.header(), wire::kHeaderRegionSize + kCap, &why), Errc::incompatible_version);
  EXPECT_NE(why.find('7'), std::string::npos) << why;
}

// A file cut short (another process truncated it, or /dev/shm was tampered with).
TEST(SegmentTruncated, FtruncatedSegmentIsTruncated) {
  // (Sizes below 4096 are kept few: open may wait about 1 s for a creator to finish such a file.)
  for (uint64_t size : {wire::kHeaderRegionSize + kCap - 4096, wire::kHeaderRegionSize + kCap / 2,
                        wire::kHeaderRegionSize + 16, wire::kHeaderRegionSize, uint64_t{1000}, uint64_t{255}}) {
    SCOPED_TRACE("truncated to " + std::to_string(size));
    TempName name("trunc");
    make_segment(name);
    {
      RawMap raw(name);
      ASSERT_EQ(::ftruncate(raw.fd(), static_cast<off_t>(size)), 0);
    }
    std::string what;
    EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::truncated) << what;
    if (size >= wire::kHeaderRegionSize) {
      EXPECT_EQ(error_of([&] { Reader r(name, opts(OpenMode::open)); }), Errc::truncated);
    }
  }
}

TEST(SegmentTruncated, EmptyAndTinyFilesAreTruncated) {
  for (size_t size : {size_t{0}, size_t{100}}) {
    SCOPED_TRACE(size);
    TempName name("tiny");
    write_foreign(name, std::string(size, 'z'));
    std::string what;
    EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::truncated) << what;
  }
}

// ---------------------------------------------------------------------------------------------
// Foreign objects under a Flatlane name

TEST(SegmentForeign, ForeignFileIsNotFlatlaneOnOpenAndNeverDeletedByCreate) {
  TempName name("foreign");
  std::string content;
  for (int i = 0; content.size() < 3 * 4096 + 17; ++i) content += "not a flatlane segment " + std::to_string(i) + "\n";
  write_foreign(name, content);
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::not_flatlane) << what;
  EXPECT_EQ(error_of([&] { Segment::create(name, cfg()); }, &what), Errc::already_exists) << what;
  EXPECT_EQ(error_of([&] { Writer w(name, opts(OpenMode::create)); }), Errc::already_exists);
  EXPECT_EQ(error_of([&] { Writer w(name, opts(OpenMode::create_or_open)); }), Errc::not_flatlane);
  EXPECT_EQ(error_of([&] { Reader r(name, opts(OpenMode::create_or_open)); }), Errc::not_flatlane);
  ASSERT_TRUE(path_exists(shm_path(name)));
  const std::string now = read_file(shm_path(name));
  EXPECT_TRUE(now == content) << "the foreign file was replaced: it is now " << now.size() << " bytes"
                              << (now.rfind("FLATLANE", 0) == 0 ? " and starts with the Flatlane magic" : "");
}

// A small non-empty file can never be a half-created Flatlane segment (the creator grows the file
// from 0 to its full size in one posix_fallocate), so create must not reclaim it either, however
// old it is.
TEST(SegmentForeign, OldSmallForeignFileIsNotDeletedByCreate) {
  TempName name("foreign");
  const std::string content(100, 'q');
  write_foreign(name, content);
  std::this_thread::sleep_for(2200ms);  // older than the 2 s grace period for a creator mid-setup
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::open(name, {}); }, &what), Errc::truncated) << what;
  EXPECT_EQ(error_of([&] { Segment::create(name, cfg()); }, &what), Errc::already_exists) << what;
  ASSERT_TRUE(path_exists(shm_path(name))) << "create deleted a foreign file";
  const std::string now = read_file(shm_path(name));
  EXPECT_TRUE(now == content) << "the foreign file was replaced: it is now " << now.size() << " bytes"
                              << (now.rfind("FLATLANE", 0) == 0 ? " and starts with the Flatlane magic" : "");
}

// A Flatlane segment left behind by a dead process is reclaimed; this is the counterpart of the
// foreign-file rule and shows the rule is about foreignness, not about any existing file.
TEST(SegmentForeign, StaleFlatlaneSegmentIsReclaimed) {
  TempName name("stale");
  make_segment(name);
  {
    RawMap raw(name);
    raw.header().creator_pid = 0x7ffffff0;  // no such process
    raw.header().creator_start_time = 1;
  }
  Segment s = Segment::create(name, cfg());
  EXPECT_EQ(s.header().creator_pid, static_cast<uint32_t>(::getpid()));
}

TEST(SegmentForeign, LiveSegmentIsNotReclaimed) {
  TempName name("live");
  Writer w(name, opts(OpenMode::create));
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::create(name, cfg()); }, &what), Errc::already_exists);
  EXPECT_NE(what.find(std::to_string(::getpid())), std::string::npos) << what;
}

// ---------------------------------------------------------------------------------------------
// Type identity

namespace {
ChannelOptions typed(OpenMode mode, TypeId type) {
  ChannelOptions o = opts(mode);
  o.segment.type = std::move(type);
  return o;
}
}  // namespace

TEST(SegmentType, DifferentTypeIsMismatchAndNamesBothTypes) {
  TempName name("type");
  Writer w(name, typed(OpenMode::create, {"a.B", 1}));
  std::string what;
  EXPECT_EQ(error_of([&] { Reader r(name, typed(OpenMode::open, {"a.C", 2})); }, &what), Errc::type_mismatch);
  EXPECT_NE(what.find("a.B"), std::string::npos) << what;
  EXPECT_NE(what.find("a.C"), std::string::npos) << what;
  EXPECT_EQ(error_of([&] { Segment::open(name, {"a.C", 2}); }), Errc::type_mismatch);
  // A mismatching reader did not take the role: the right one can still attach.
  Reader ok(name, typed(OpenMode::open, {"a.B", 1}));
  EXPECT_TRUE(w.peer_attached());
}

TEST(SegmentType, SameNameDifferentHashIsMismatch) {
  TempName name("type");
  Writer w(name, typed(OpenMode::create, {"a.B", 1}));
  std::string what;
  EXPECT_EQ(error_of([&] { Reader r(name, typed(OpenMode::open, {"a.B", 2})); }, &what), Errc::type_mismatch);
  EXPECT_NE(what.find("a.B"), std::string::npos) << what;
  EXPECT_EQ(error_of([&] { Reader r(name, typed(OpenMode::open, {"a.b", 1})); }), Errc::type_mismatch);
  EXPECT_EQ(error_of([&] { Reader r(name, typed(OpenMode::create_or_open, {"a.B", 0})); }), Errc::type_mismatch);
}

TEST(SegmentType, EmptyExpectedTypeIsAccepted) {
  TempName name("type");
  Writer w(name, typed(OpenMode::create, {"a.B", 1}));
  EXPECT_EQ(error_of([&] { Segment s = Segment::open(name, {}); }), Errc::ok);
  EXPECT_EQ(error_of([&] { Segment s = Segment::open(name, {"", 42}); }), Errc::ok);
  Reader r(name, opts(OpenMode::open));
  EXPECT_EQ(std::string(r.segment().header().type_name), "a.B");
  EXPECT_EQ(r.segment().header().type_hash, 1u);
}

TEST(SegmentType, MatchingTypeIsAccepted) {
  TempName name("type");
  Writer w(name, typed(OpenMode::create, {"a.B", 1}));
  Reader r(name, typed(OpenMode::open, {"a.B", 1}));
  EXPECT_TRUE(r.peer_attached());
}

TEST(SegmentType, UntypedSegmentRejectsATypedPeer) {
  TempName name("type");
  Writer w(name, opts(OpenMode::create));
  EXPECT_EQ(error_of([&] { Reader r(name, typed(OpenMode::open, {"a.B", 1})); }), Errc::type_mismatch);
}

TEST(SegmentType, TypeNameTooLongIsInvalidArgument) {
  TempName name("type");
  SegmentConfig c = cfg();
  c.type.name = std::string(128, 't');
  EXPECT_EQ(error_of([&] { Segment::create(name, c); }), Errc::invalid_argument);
  EXPECT_FALSE(path_exists(shm_path(name)));
  c.type.name = std::string(127, 't');
  Segment s = Segment::create(name, c);
  EXPECT_EQ(std::string(s.header().type_name), c.type.name);
}

// ---------------------------------------------------------------------------------------------
// /dev/shm space

TEST(SegmentSpace, RingLargerThanDevShmIsNoSpace) {
  struct statvfs vfs{};
  ASSERT_EQ(::statvfs("/dev/shm", &vfs), 0);
  // Larger than the whole file system, so it can never fit whatever else is using /dev/shm.
  const uint64_t fs_size = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  uint64_t cap = wire::kMinRingCapacity;
  while (cap <= fs_size) cap <<= 1;
  if (cap > wire::kMaxRingCapacity) GTEST_SKIP() << "/dev/shm is larger than the maximum ring capacity";

  TempName name("space");
  std::string what;
  EXPECT_EQ(error_of([&] { Segment::create(name, cfg(cap)); }, &what), Errc::no_space);
  EXPECT_NE(what.find("/dev/shm"), std::string::npos) << what;
  EXPECT_NE(what.find(std::to_string(cap + wire::kHeaderRegionSize)), std::string::npos)
      << "message should say how much was needed: " << what;
  EXPECT_FALSE(path_exists(shm_path(name))) << "a failed create left a segment behind";

  EXPECT_EQ(error_of([&] { Writer w(name, opts(OpenMode::create, cap)); }), Errc::no_space);
  EXPECT_EQ(error_of([&] { Reader r(name, opts(OpenMode::create_or_open, cap)); }), Errc::no_space);
  EXPECT_FALSE(path_exists(shm_path(name))) << "a failed create left a segment behind";

  // The name is still usable afterwards.
  Writer w(name, opts(OpenMode::create));
  EXPECT_TRUE(path_exists(shm_path(name)));
}

// ---------------------------------------------------------------------------------------------
// Roles

TEST(SegmentRoles, SecondLiveWriterIsBusyUntilTheFirstIsGone) {
  TempName name("busy");
  auto w1 = std::make_unique<Writer>(name, opts(OpenMode::create));
  std::string what;
  EXPECT_EQ(error_of([&] { Writer w2(name, opts(OpenMode::open)); }, &what), Errc::busy);
  EXPECT_NE(what.find(std::to_string(::getpid())), std::string::npos) << "message should name the holder: " << what;
  EXPECT_EQ(error_of([&] { Writer w2(name, opts(OpenMode::create_or_open)); }), Errc::busy);
  EXPECT_EQ(error_of([&] { Writer w2(name, opts(OpenMode::create)); }), Errc::already_exists);
  // A failed attach does not disturb the live writer.
  Reader r(name, opts(OpenMode::open));
  auto span = w1->reserve(3, 1s);
  ASSERT_TRUE(span.ok());
  std::memcpy(span->data(), "one", 3);
  w1->commit(3);
  auto f = r.read(1s);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->seq(), 1u);
  f->release();

  w1.reset();
  Writer w3(name, opts(OpenMode::open));
  auto span3 = w3.reserve(3, 1s);
  ASSERT_TRUE(span3.ok());
  std::memcpy(span3->data(), "two", 3);
  w3.commit(3);
  auto g = r.read(1s);
  ASSERT_TRUE(g.ok()) << to_string(g.error());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(g->ptr()), g->size()), "two");
}

TEST(SegmentRoles, SecondLiveReaderIsBusyUntilTheFirstIsGone) {
  TempName name("busy");
  Writer w(name, opts(OpenMode::create));
  auto r1 = std::make_unique<Reader>(name, opts(OpenMode::open));
  EXPECT_EQ(error_of([&] { Reader r2(name, opts(OpenMode::open)); }), Errc::busy);
  r1.reset();
  EXPECT_EQ(error_of([&] { Reader r2(name, opts(OpenMode::open)); }), Errc::ok);
}

// ---------------------------------------------------------------------------------------------
// Option validation

TEST(SegmentOptions, BadSizesAreInvalidArgumentAndCreateNothing) {
  struct Case {
    const char* what;
    SegmentConfig c;
  };
  auto with = [](auto f) {
    SegmentConfig c = cfg(1 << 16);
    f(c);
    return c;
  };
  const uint32_t limit = (1u << 16) / 2 - 32;  // largest frame for a 64 KiB ring
  const std::vector<Case> cases = {
      {"max_frame_payload too big", with([&](SegmentConfig& c) { c.max_frame_payload = limit + 1; })},
      {"max_frame_payload huge", with([](SegmentConfig& c) { c.max_frame_payload = 0xFFFFFFFFu; })},
      {"max_frame_payload too small", with([](SegmentConfig& c) { c.max_frame_payload = 31; })},
      {"chunk_size > max_frame", with([](SegmentConfig& c) {
         c.max_frame_payload = 1024;
         c.chunk_size = 1025;
       })},
      {"chunk_size > default max_frame", with([&](SegmentConfig& c) { c.chunk_size = limit + 1; })},
      {"chunk_size only a header", with([](SegmentConfig& c) { c.chunk_size = 16; })},
      {"ring_capacity zero", with([](SegmentConfig& c) { c.ring_capacity = 0; })},
      {"ring_capacity above max", with([](SegmentConfig& c) { c.ring_capacity = wire::kMaxRingCapacity + 1; })},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    TempName name("opt");
    std::string what;
    EXPECT_EQ(error_of([&] { Segment::create(name, k.c); }, &what), Errc::invalid_argument) << what;
    ChannelOptions o = opts(OpenMode::create_or_open);
    o.segment = k.c;
    EXPECT_EQ(error_of([&] { Writer w(name, o); }), Errc::invalid_argument);
    EXPECT_FALSE(path_exists(shm_path(name)));
  }
}

TEST(SegmentOptions, BoundaryValuesAreAccepted) {
  TempName name("opt");
  SegmentConfig c = cfg(1 << 16);
  c.max_frame_payload = (1u << 16) / 2 - 32;
  c.chunk_size = c.max_frame_payload;
  {
    Segment s = Segment::create(name, c);
    EXPECT_EQ(s.header().max_frame_payload, c.max_frame_payload);
    EXPECT_EQ(s.header().chunk_size, c.chunk_size);
  }
  Segment::unlink(name);
  c.max_frame_payload = 32;
  c.chunk_size = 17;
  Segment s = Segment::create(name, c);
  EXPECT_EQ(s.header().max_frame_payload, 32u);
  EXPECT_EQ(s.header().chunk_size, 17u);
}

TEST(SegmentOptions, CapacityIsRoundedUpToAPowerOfTwo) {
  TempName name("opt");
  Segment s = Segment::create(name, cfg(5000));
  EXPECT_EQ(s.ring_capacity(), 8192u);
  EXPECT_EQ(s.header().segment_size, wire::kHeaderRegionSize + 8192);
  Segment t = Segment::open(name, {});
  EXPECT_EQ(t.ring_capacity(), 8192u);
}

// ---------------------------------------------------------------------------------------------
// Prefault
//
// mincore() is no proof here: for a tmpfs file it reports page-cache residency, which
// posix_fallocate alone already gives. What prefaulting buys is page-table entries in this
// process, which is what the mapping's Rss in /proc/self/smaps counts.

TEST(SegmentPrefault, CreatedAndOpenedMappingsAreResident) {
  TempName name("prefault");
  const uint64_t cap = 4u << 20;
  Writer w(name, opts(OpenMode::create, cap));
  const int64_t total = static_cast<int64_t>(wire::kHeaderRegionSize + cap);
  const int64_t wrss = mapping_rss(w.segment().base());
  ASSERT_GE(wrss, 0) << "mapping not found in /proc/self/smaps";
  EXPECT_GE(wrss, total) << "writer mapping not fully resident after create";

  Reader r(name, opts(OpenMode::open));
  ASSERT_NE(r.segment().base(), w.segment().base());
  const int64_t rrss = mapping_rss(r.segment().base());
  ASSERT_GE(rrss, 0) << "mapping not found in /proc/self/smaps";
  EXPECT_GE(rrss, total) << "reader mapping not fully resident after open";

  // And the ring is all zeroes after create (no stale data from a previous segment).
  const std::byte* ring = w.segment().ring();
  for (uint64_t i = 0; i < cap; i += 4096) ASSERT_EQ(ring[i], std::byte{0}) << i;
}
