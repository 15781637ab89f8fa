// C ABI over the C++ runtime (see flatlane_c.h for the contract).
//
// Design notes
//  - Frames: flatlane::Frame is a move-only C++ object, which a C caller cannot own. The reader
//    handle keeps the held Frames in a slot table and hands out a token (slot index + generation).
//    A copied or stale token then fails with INVALID_ARGUMENT instead of releasing ring space twice,
//    which matters for bindings such as C# whose frame values are freely copyable structs.
//  - Errors: hot calls fail routinely (a zero-timeout poll returns TIMEOUT), so a failure only
//    records its code and raw facts in thread-local storage; the text is formatted when someone
//    asks for it (flatlane_last_error). Nothing on these paths allocates.
#include "flatlane/flatlane_c.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <pthread.h>
#include <string>
#include <utility>
#include <vector>

#include <flatlane/flatlane.hpp>

namespace {

using flatlane::Errc;

static_assert(static_cast<int>(Errc::ok) == FLATLANE_OK);
static_assert(static_cast<int>(Errc::not_found) == FLATLANE_NOT_FOUND);
static_assert(static_cast<int>(Errc::not_flatlane) == FLATLANE_NOT_FLATLANE);
static_assert(static_cast<int>(Errc::incompatible_version) == FLATLANE_INCOMPATIBLE_VERSION);
static_assert(static_cast<int>(Errc::layout_mismatch) == FLATLANE_LAYOUT_MISMATCH);
static_assert(static_cast<int>(Errc::type_mismatch) == FLATLANE_TYPE_MISMATCH);
static_assert(static_cast<int>(Errc::truncated) == FLATLANE_TRUNCATED);
static_assert(static_cast<int>(Errc::permission_denied) == FLATLANE_PERMISSION_DENIED);
static_assert(static_cast<int>(Errc::already_exists) == FLATLANE_ALREADY_EXISTS);
static_assert(static_cast<int>(Errc::busy) == FLATLANE_BUSY);
static_assert(static_cast<int>(Errc::no_space) == FLATLANE_NO_SPACE);
static_assert(static_cast<int>(Errc::invalid_argument) == FLATLANE_INVALID_ARGUMENT);
static_assert(static_cast<int>(Errc::message_too_large) == FLATLANE_MESSAGE_TOO_LARGE);
static_assert(static_cast<int>(Errc::timeout) == FLATLANE_TIMEOUT);
static_assert(static_cast<int>(Errc::peer_dead) == FLATLANE_PEER_DEAD);
static_assert(static_cast<int>(Errc::peer_closed) == FLATLANE_PEER_CLOSED);
static_assert(static_cast<int>(Errc::closed) == FLATLANE_CLOSED);
static_assert(static_cast<int>(Errc::corrupt) == FLATLANE_CORRUPT);
static_assert(static_cast<int>(Errc::system) == FLATLANE_SYSTEM);
static_assert(flatlane::wire::kFrameFirst == FLATLANE_FRAME_FIRST);
static_assert(flatlane::wire::kFrameLast == FLATLANE_FRAME_LAST);
static_assert(flatlane::wire::kFrameChunked == FLATLANE_FRAME_CHUNKED);

constexpr int kMaxErrc = FLATLANE_SYSTEM;

// What failed, for the lazily formatted message. Each operation has its own literal format.
enum class Op : uint8_t { none, reserve, commit, commit_tail, write_message, read, release, read_message, named };

struct LastError {
  int code = FLATLANE_OK;
  bool pending = false;  // `text` not yet formatted from the fields below
  Op op = Op::none;
  const char* role = "";
  const char* opname = "";  // Op::named: the call's name
  uint64_t a = 0;  // operation-specific sizes (see format())
  uint64_t b = 0;
  char channel[256] = {};
  char text[1024] = {};

  void format() noexcept {
    pending = false;
    const auto ull = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    const char* what = code >= 0 && code <= kMaxErrc ? flatlane::to_string(static_cast<Errc>(code)) : "unknown error";
    switch (op) {
      case Op::reserve:
        std::snprintf(text, sizeof text, "flatlane: %s '%s': reserve(%llu) failed: %s (max frame payload %llu)", role,
                      channel, ull(a), what, ull(b));
        break;
      case Op::commit:
      case Op::commit_tail: {
        const char* name = op == Op::commit ? "commit" : "commit_tail";
        if (b == UINT64_MAX)
          std::snprintf(text, sizeof text, "flatlane: %s '%s': %s(%llu) failed: %s (no reservation outstanding)", role,
                        channel, name, ull(a), what);
        else
          std::snprintf(text, sizeof text, "flatlane: %s '%s': %s(%llu) failed: %s (larger than the reservation of %llu)",
                        role, channel, name, ull(a), what, ull(b));
        break;
      }
      case Op::write_message:
        std::snprintf(text, sizeof text,
                      "flatlane: %s '%s': write_message(%llu bytes) failed: %s (max frame payload %llu)", role,
                      channel, ull(a), what, ull(b));
        break;
      case Op::read:
        std::snprintf(text, sizeof text, "flatlane: %s '%s': read failed: %s (%llu frames held)", role, channel,
                      what, ull(a));
        break;
      case Op::release:
        std::snprintf(text, sizeof text, "flatlane: %s '%s': release(token %#llx) failed: %s (not a held frame)",
                      role, channel, ull(a), what);
        break;
      case Op::read_message:
        std::snprintf(text, sizeof text,
                      "flatlane: %s '%s': read_message failed: %s (max message size %llu, %llu chunks received)",
                      role, channel, what, ull(a), ull(b));
        break;
      case Op::named:
        // Topics and services: the call, its size argument if it has one (a), and what failed.
        if (a == UINT64_MAX)
          std::snprintf(text, sizeof text, "flatlane: %s '%s': %s failed: %s", role, channel, opname, what);
        else if (b == UINT64_MAX)
          std::snprintf(text, sizeof text, "flatlane: %s '%s': %s(%llu) failed: %s", role, channel, opname, ull(a), what);
        else
          std::snprintf(text, sizeof text, "flatlane: %s '%s': %s(%llu) failed: %s (limit %llu)", role, channel, opname,
                        ull(a), what, ull(b));
        break;
      case Op::none:
        std::snprintf(text, sizeof text, "flatlane: %s", what);
        break;
    }
  }
};

thread_local LastError t_err;

void copy_name(char (&dst)[256], const std::string& name) noexcept {
  const size_t n = std::min(name.size(), sizeof dst - 1);
  std::memcpy(dst, name.data(), n);
  dst[n] = '\0';
}

int fail(int code, Op op, const char* role, const std::string& channel, uint64_t a = 0, uint64_t b = 0) noexcept {
  t_err.code = code;
  t_err.pending = true;
  t_err.op = op;
  t_err.role = role;
  t_err.a = a;
  t_err.b = b;
  copy_name(t_err.channel, channel);
  return code;
}

// Failure of a topic or service call: a = its size argument (UINT64_MAX: none), b = the limit it
// broke (UINT64_MAX: none). Literal strings only, so nothing is copied but the channel name.
int fail_named(int code, const char* role, const char* opname, const std::string& channel, uint64_t a = UINT64_MAX,
               uint64_t b = UINT64_MAX) noexcept {
  fail(code, Op::named, role, channel, a, b);
  t_err.opname = opname;
  return code;
}

int fail_text(int code, const char* text) noexcept {
  t_err.code = code;
  t_err.pending = false;
  std::snprintf(t_err.text, sizeof t_err.text, "%s", text);
  return code;
}

// Translates whatever escaped a runtime call; called from catch blocks only.
int fail_current_exception() noexcept {
  try {
    throw;
  } catch (const flatlane::Error& e) {
    return fail_text(static_cast<int>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail_text(FLATLANE_SYSTEM, "flatlane: out of memory");
  } catch (const std::exception& e) {
    return fail_text(FLATLANE_SYSTEM, e.what());
  } catch (...) {
    return fail_text(FLATLANE_SYSTEM, "flatlane: unknown C++ exception");
  }
}

std::chrono::nanoseconds to_timeout(int64_t ns) noexcept {
  return ns < 0 ? flatlane::kInfinite : std::chrono::nanoseconds(ns);
}

// What every flatlane_*_open does: check the arguments, convert the C options, construct the
// handle; errors become a code and the thread's message.
template <class Handle, class Options, class COptions>
int open_handle(const char* null_message, const char* name, const COptions* opts, Handle** out,
                int (*convert)(const COptions*, Options&)) {
  if (out == nullptr || name == nullptr) return fail_text(FLATLANE_INVALID_ARGUMENT, null_message);
  *out = nullptr;
  try {
    Options o;
    if (int rc = convert(opts, o); rc != FLATLANE_OK) return rc;
    *out = new Handle(name, o);
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
}

int to_channel_options(const flatlane_options* in, flatlane::ChannelOptions& out) {
  flatlane_options defaults;
  if (in == nullptr) {
    flatlane_options_init(&defaults);
    in = &defaults;
  }
  // A binding built against another layout of this struct would hand us shifted fields.
  if (in->struct_size != sizeof(flatlane_options))
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: flatlane_options.struct_size does not match this library "
                                                "(call flatlane_options_init; binding built for another ABI?)");
  switch (in->open_mode) {
    case FLATLANE_OPEN_CREATE: out.mode = flatlane::OpenMode::create; break;
    case FLATLANE_OPEN_OPEN: out.mode = flatlane::OpenMode::open; break;
    case FLATLANE_OPEN_CREATE_OR_OPEN: out.mode = flatlane::OpenMode::create_or_open; break;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown open_mode");
  }
  switch (in->wait_strategy) {
    case FLATLANE_WAIT_BUSY_SPIN: out.wait.strategy = flatlane::WaitStrategy::busy_spin; break;
    case FLATLANE_WAIT_SPIN_THEN_SLEEP: out.wait.strategy = flatlane::WaitStrategy::spin_then_sleep; break;
    case FLATLANE_WAIT_BLOCKING: out.wait.strategy = flatlane::WaitStrategy::blocking; break;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown wait_strategy");
  }
  if (in->spin_budget_ns < 0 || in->liveness_interval_ns <= 0)
    return fail_text(FLATLANE_INVALID_ARGUMENT,
                     "flatlane: spin_budget_ns must be >= 0 and liveness_interval_ns > 0");
  out.wait.spin_budget = std::chrono::nanoseconds(in->spin_budget_ns);
  out.wait.liveness_interval = std::chrono::nanoseconds(in->liveness_interval_ns);
  out.segment.ring_capacity = in->ring_capacity;
  out.segment.max_frame_payload = in->max_frame_payload;
  out.segment.chunk_size = in->chunk_size;
  out.segment.mode = static_cast<mode_t>(in->file_mode);
  if (in->type_name != nullptr) out.segment.type.name = in->type_name;
  out.segment.type.hash = in->type_hash;
  out.max_message_size = in->max_message_size;
  out.unlink_on_close = in->unlink_on_close != 0;
  return FLATLANE_OK;
}

}  // namespace

struct flatlane_writer {
  flatlane_writer(const char* n, const flatlane::ChannelOptions& o) : w(n, o), name(n) {}
  flatlane::Writer w;
  std::string name;
};

namespace flatlane::detail {

// The C ABI's window into a Writer: its cursor (commit rejects misuse from the reservation
// recorded there, which a binding's own fast path also writes) and the shared words that
// flatlane_writer_get_fast_path hands out.
struct WriterAccess {
  static WriterCursor& cursor(Writer& w) noexcept { return w.cur_; }

  static void fast_path(Writer& w, flatlane_writer_fast_path* out) noexcept {
    *out = flatlane_writer_fast_path{};
    out->ring = reinterpret_cast<uint8_t*>(w.ring_);
    out->capacity = w.cap_;
    out->max_frame_payload = w.max_frame_;
    out->epoch_flags = w.epoch_ << wire::kFrameEpochShift;
    static_assert(sizeof(flatlane_writer_cursor) == sizeof(WriterCursor));
    static_assert(offsetof(flatlane_writer_cursor, demand_raised) == offsetof(WriterCursor, demand_raised));
    out->cursor = reinterpret_cast<flatlane_writer_cursor*>(&w.cur_);
    // std::atomic<T> of these sizes is lock-free with T's layout (static_asserts in layout.hpp).
    out->pos = reinterpret_cast<uint64_t*>(&w.me_->pos);
    out->count = reinterpret_cast<uint64_t*>(&w.me_->count);
    out->messages = reinterpret_cast<uint64_t*>(&w.me_->messages);
    out->bytes = reinterpret_cast<uint64_t*>(&w.me_->bytes);
    out->reader_pos = reinterpret_cast<const uint64_t*>(&w.peer_->pos);
    out->data_waiters = reinterpret_cast<const uint32_t*>(&w.seg_.data_event().waiters);
    out->space_demand = reinterpret_cast<uint32_t*>(&w.seg_.space_event().demand);
    static_assert(sizeof(std::atomic<bool>) == 1);
    out->closed = reinterpret_cast<const uint8_t*>(&w.closed_);
  }

  static void wake_reader(Writer& w) noexcept { force_wake(w.seg_.data_event()); }
};

// The same for a Reader: its consumer-private cursor and the shared words of the release side.
struct ReaderAccess {
  static ReaderCursor& cursor(Reader& r) noexcept { return r.cur_; }

  static void fast_path(Reader& r, flatlane_reader_fast_path* out) noexcept {
    *out = flatlane_reader_fast_path{};
    out->ring = reinterpret_cast<uint8_t*>(r.ring_);
    out->capacity = r.cap_;
    out->max_frame_payload = r.max_frame_;
    static_assert(sizeof(flatlane_reader_cursor) == sizeof(ReaderCursor));
    static_assert(offsetof(flatlane_reader_cursor, corrupt) == offsetof(ReaderCursor, corrupt));
    out->cursor = reinterpret_cast<flatlane_reader_cursor*>(&r.cur_);
    out->pos = reinterpret_cast<uint64_t*>(&r.me_->pos);
    out->count = reinterpret_cast<uint64_t*>(&r.me_->count);
    out->space_waiters = reinterpret_cast<const uint32_t*>(&r.seg_.space_event().waiters);
    out->space_demand = reinterpret_cast<const uint32_t*>(&r.seg_.space_event().demand);
    out->closed = reinterpret_cast<const uint8_t*>(&r.closed_);
  }

  static void wake_writer(Reader& r) noexcept { force_wake(r.seg_.space_event()); }

  // Destroying the handle releases every frame it delivered. Those in the slot table release
  // themselves; frames a binding delivered through its fast path are known only to it, and all
  // of them lie before the cursor: so everything before the cursor is released now.
  static void release_delivered(Reader& r) noexcept {
    ReaderCursor& c = r.cur_;
    c.released_frames += c.held;
    c.held = 0;
    c.release_pos = c.cursor;
  }
};

}  // namespace flatlane::detail

using flatlane::detail::ReaderAccess;
using flatlane::detail::WriterAccess;

struct flatlane_reader {
  struct Slot {
    flatlane::Frame frame;
    uint32_t gen = 1;        // part of the token; bumped on every release
    uint32_t next_free = 0;  // free list link (index), valid while the slot is free
  };
  static constexpr uint32_t kNone = UINT32_MAX;

  flatlane_reader(const char* n, const flatlane::ChannelOptions& o) : r(n, o), name(n), max_message(o.max_message_size) {
    grow(64);
  }

  // Declared first, destroyed last: every Frame below must be released while the Reader lives.
  flatlane::Reader r;
  std::string name;
  uint64_t max_message;
  std::vector<Slot> slots;
  uint32_t free_head = kNone;
  flatlane::Message msg;
  uint64_t msg_token = 0;  // 0 = no message held
  uint64_t msg_gen = 0;

  void grow(size_t to) {
    const size_t from = slots.size();
    slots.resize(to);
    for (size_t i = to; i-- > from;) {
      slots[i].next_free = free_head;
      free_head = static_cast<uint32_t>(i);
    }
  }

  ~flatlane_reader() {
    msg = flatlane::Message{};
    slots.clear();
    ReaderAccess::release_delivered(r);  // and what a binding's fast path still holds
  }
};

// One word per thread that asked for its identity, 1 while the thread lives. Zeroed by the key's
// destructor as the thread exits (before glibc frees or recycles its stack) and then deliberately
// leaked: a binding may hold its address for good (one word per endpoint owner, at most).
namespace {

pthread_key_t g_alive_key;
bool g_alive_key_ok = false;

void alive_word_exit(void* p) { static_cast<std::atomic<uint32_t>*>(p)->store(0, std::memory_order_release); }

std::atomic<uint32_t>* thread_alive_word() noexcept {
  static const bool once = [] {
    g_alive_key_ok = pthread_key_create(&g_alive_key, &alive_word_exit) == 0;
    return true;
  }();
  (void)once;
  if (!g_alive_key_ok) return nullptr;
  auto* w = static_cast<std::atomic<uint32_t>*>(pthread_getspecific(g_alive_key));
  if (w == nullptr) {
    w = new (std::nothrow) std::atomic<uint32_t>(1);
    if (w == nullptr || pthread_setspecific(g_alive_key, w) != 0) return nullptr;  // w leaks: harmless
  }
  return w;
}

}  // namespace

// ---- library ---------------------------------------------------------------------------------
// ---- library ---------------------------------------------------------------------------------

extern "C" {

int flatlane_abi_version(void) { return FLATLANE_C_ABI_VERSION; }

const char* flatlane_errc_name(int code) {
  // Identifiers, not prose (that is flatlane::to_string, used in messages): bindings map them to
  // their own enum names, and the peer test program prints the same spellings.
  static constexpr const char* kNames[] = {
      "ok",           "not_found",        "not_flatlane",      "incompatible_version", "layout_mismatch",
      "type_mismatch", "truncated",       "permission_denied", "already_exists",       "busy",
      "no_space",     "invalid_argument", "message_too_large", "timeout",              "peer_dead",
      "peer_closed",  "closed",           "corrupt",           "system"};
  static_assert(sizeof kNames / sizeof kNames[0] == kMaxErrc + 1);
  if (code < 0 || code > kMaxErrc) return "unknown";
  return kNames[code];
}

const char* flatlane_last_error(void) {
  if (t_err.pending) t_err.format();
  return t_err.text;
}

int flatlane_last_error_code(void) { return t_err.code; }

void flatlane_options_init(flatlane_options* o) {
  if (o == nullptr) return;
  const flatlane::ChannelOptions d;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->open_mode = FLATLANE_OPEN_CREATE_OR_OPEN;
  o->ring_capacity = d.segment.ring_capacity;
  o->max_frame_payload = d.segment.max_frame_payload;
  o->chunk_size = d.segment.chunk_size;
  o->file_mode = static_cast<uint32_t>(d.segment.mode);
  o->wait_strategy = FLATLANE_WAIT_SPIN_THEN_SLEEP;
  o->spin_budget_ns = d.wait.spin_budget.count();
  o->liveness_interval_ns = d.wait.liveness_interval.count();
  o->max_message_size = d.max_message_size;
  o->type_name = nullptr;
  o->type_hash = 0;
  o->unlink_on_close = d.unlink_on_close ? 1 : 0;
}

int flatlane_thread_identity(uint64_t* stack_lo, uint64_t* stack_size, const uint32_t** alive) {
  if (stack_lo == nullptr || stack_size == nullptr || alive == nullptr)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: thread_identity: NULL argument");
  *stack_lo = *stack_size = 0;
  *alive = nullptr;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: thread_identity: pthread_getattr_np failed");
  void* addr = nullptr;
  size_t bytes = 0;
  const int rc = pthread_attr_getstack(&attr, &addr, &bytes);
  pthread_attr_destroy(&attr);
  if (rc != 0 || addr == nullptr || bytes == 0)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: thread_identity: no stack bounds for this thread");
  std::atomic<uint32_t>* word = thread_alive_word();
  if (word == nullptr) return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: thread_identity: no thread key");
  *stack_lo = reinterpret_cast<uintptr_t>(addr);
  *stack_size = bytes;
  *alive = reinterpret_cast<const uint32_t*>(word);
  return FLATLANE_OK;
}

int flatlane_unlink(const char* name) {
  if (name == nullptr) return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unlink: name is NULL");
  try {
    if (flatlane::Segment::unlink(name)) return FLATLANE_OK;
    std::string text = std::string("flatlane: unlink '") + name + "': no such segment";
    return fail_text(FLATLANE_NOT_FOUND, text.c_str());
  } catch (...) {
    return fail_current_exception();
  }
}

// ---- writer ----------------------------------------------------------------------------------

int flatlane_writer_open(const char* name, const flatlane_options* opts, flatlane_writer** out) {
  return open_handle("flatlane: writer_open: name and out must not be NULL", name, opts, out, &to_channel_options);
}

// Both reserves: record the reservation (or its absence) and hand out the pointer or the error.
static int finish_reserve(flatlane_writer* w, uint64_t n, flatlane::Result<std::span<std::byte>> span,
                          uint8_t** out_ptr) {
  if (!span) {
    WriterAccess::cursor(w->w).reserved = 0;  // a failed reserve still drops the previous one
    *out_ptr = nullptr;
    return fail(static_cast<int>(span.error()), Op::reserve, "writer", w->name, n, w->w.max_frame_payload());
  }
  *out_ptr = reinterpret_cast<uint8_t*>(span->data());
  return FLATLANE_OK;
}

int flatlane_writer_reserve(flatlane_writer* w, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr) {
  return finish_reserve(w, n, w->w.reserve(n, to_timeout(timeout_ns)), out_ptr);
}

int flatlane_writer_try_reserve(flatlane_writer* w, uint64_t n, uint8_t** out_ptr) {
  return finish_reserve(w, n, w->w.try_reserve(n), out_ptr);
}

// The runtime's commit clamps `used` and ignores a commit without a reservation; the C ABI
// rejects both instead, from the reservation recorded in the writer's cursor.
int flatlane_writer_commit(flatlane_writer* w, uint64_t used) {
  const auto& c = WriterAccess::cursor(w->w);
  if (!c.reserved || used > c.reserved_n)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::commit, "writer", w->name, used, c.reserved ? c.reserved_n : UINT64_MAX);
  w->w.commit(used);
  return FLATLANE_OK;
}

int flatlane_writer_commit_tail(flatlane_writer* w, uint64_t used) {
  const auto& c = WriterAccess::cursor(w->w);
  if (!c.reserved || used > c.reserved_n)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::commit_tail, "writer", w->name, used,
                c.reserved ? c.reserved_n : UINT64_MAX);
  w->w.commit_tail(used);
  return FLATLANE_OK;
}

void flatlane_writer_abort(flatlane_writer* w) { w->w.abort(); }

void flatlane_writer_get_fast_path(flatlane_writer* w, flatlane_writer_fast_path* out) {
  WriterAccess::fast_path(w->w, out);
}

void flatlane_writer_wake_reader(flatlane_writer* w) { WriterAccess::wake_reader(w->w); }

int flatlane_writer_write_message(flatlane_writer* w, const uint8_t* data, uint64_t size, int64_t timeout_ns) {
  if (data == nullptr && size != 0)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::write_message, "writer", w->name, size, w->w.max_frame_payload());
  WriterAccess::cursor(w->w).reserved = 0;  // write_message replaces any open reservation
  try {
    auto r = w->w.write_message({reinterpret_cast<const std::byte*>(data), static_cast<size_t>(size)},
                                to_timeout(timeout_ns));
    if (!r) return fail(static_cast<int>(r.error()), Op::write_message, "writer", w->name, size, w->w.max_frame_payload());
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
}

int flatlane_writer_peer_attached(const flatlane_writer* w) { return w->w.peer_attached() ? 1 : 0; }

void flatlane_writer_stats(const flatlane_writer* w, flatlane_stats* out) {
  const flatlane::EndpointStats s = w->w.stats();
  *out = flatlane_stats{};
  out->frames = s.frames;
  out->messages = s.messages;
  out->bytes = s.bytes;
  out->occupancy_bytes = s.occupancy_bytes;
  out->capacity_bytes = s.capacity_bytes;
  out->max_frame_payload = w->w.max_frame_payload();
  out->chunk_size = w->w.chunk_size();
}

void flatlane_writer_close(flatlane_writer* w) { w->w.close(); }

void flatlane_writer_destroy(flatlane_writer* w) { delete w; }

// ---- reader ----------------------------------------------------------------------------------

int flatlane_reader_open(const char* name, const flatlane_options* opts, flatlane_reader** out) {
  return open_handle("flatlane: reader_open: name and out must not be NULL", name, opts, out, &to_channel_options);
}

int flatlane_reader_read(flatlane_reader* r, int64_t timeout_ns, flatlane_frame* out) {
  if (r->free_head == flatlane_reader::kNone) {
    // More frames held than ever before: grow the table (the only allocation on this path), and
    // before reading, so a failed allocation cannot lose a frame already taken from the ring.
    try {
      r->grow(r->slots.size() * 2);
    } catch (...) {
      return fail_current_exception();
    }
  }
  auto f = r->r.read(to_timeout(timeout_ns));
  if (!f) {
    *out = flatlane_frame{};
    return fail(static_cast<int>(f.error()), Op::read, "reader", r->name, r->r.held_frames());
  }
  const uint32_t idx = r->free_head;
  auto& slot = r->slots[idx];
  r->free_head = slot.next_free;
  slot.frame = std::move(f).value();
  const flatlane::Frame& fr = slot.frame;
  out->data = reinterpret_cast<const uint8_t*>(fr.ptr());
  out->size = fr.size();
  out->seq = fr.seq();
  out->token = (static_cast<uint64_t>(slot.gen) << 32) | (static_cast<uint64_t>(idx) + 1);
  out->flags = fr.flags();
  out->reserved0 = 0;
  if (fr.chunked()) {
    const auto c = fr.chunk();
    out->chunk_index = c.index;
    out->chunk_count = c.count;
    out->message_size = c.message_size;
  } else {
    out->chunk_index = 0;
    out->chunk_count = 0;
    out->message_size = 0;
  }
  return FLATLANE_OK;
}

int flatlane_reader_release(flatlane_reader* r, uint64_t token) {
  const uint64_t low = token & 0xFFFFFFFFu;
  const uint32_t gen = static_cast<uint32_t>(token >> 32);
  if (low == 0 || low > r->slots.size()) return fail(FLATLANE_INVALID_ARGUMENT, Op::release, "reader", r->name, token);
  const uint32_t idx = static_cast<uint32_t>(low - 1);
  auto& slot = r->slots[idx];
  if (slot.gen != gen || !slot.frame.valid()) return fail(FLATLANE_INVALID_ARGUMENT, Op::release, "reader", r->name, token);
  slot.frame.release();
  if (++slot.gen == 0) slot.gen = 1;  // tokens are never 0
  slot.next_free = r->free_head;
  r->free_head = idx;
  return FLATLANE_OK;
}

void flatlane_reader_get_fast_path(flatlane_reader* r, flatlane_reader_fast_path* out) {
  ReaderAccess::fast_path(r->r, out);
}

void flatlane_reader_wake_writer(flatlane_reader* r) { ReaderAccess::wake_writer(r->r); }

int flatlane_reader_read_message(flatlane_reader* r, int64_t timeout_ns, flatlane_message* out) {
  // The previous message's bytes are invalidated by this call anyway (the reassembly buffer is
  // reused), so its frame goes back to the ring before we wait for the next one.
  r->msg = flatlane::Message{};
  r->msg_token = 0;
  auto m = r->r.read_message(to_timeout(timeout_ns));
  if (!m) {
    *out = flatlane_message{};
    return fail(static_cast<int>(m.error()), Op::read_message, "reader", r->name, r->max_message,
                r->r.chunks_received());
  }
  r->msg = std::move(m).value();
  if (++r->msg_gen == 0) r->msg_gen = 1;
  r->msg_token = r->msg_gen;
  out->data = reinterpret_cast<const uint8_t*>(r->msg.data().data());
  out->size = r->msg.size();
  out->seq = r->msg.seq();
  out->token = r->msg_token;
  out->zero_copy = r->msg.zero_copy() ? 1 : 0;
  out->reserved0 = 0;
  return FLATLANE_OK;
}

void flatlane_reader_release_message(flatlane_reader* r, uint64_t token) {
  if (token == 0 || token != r->msg_token) return;
  r->msg = flatlane::Message{};
  r->msg_token = 0;
}

int flatlane_reader_peer_attached(const flatlane_reader* r) { return r->r.peer_attached() ? 1 : 0; }

void flatlane_reader_stats(const flatlane_reader* r, flatlane_stats* out) {
  const flatlane::EndpointStats s = r->r.stats();
  *out = flatlane_stats{};
  out->frames = s.frames;
  out->messages = s.messages;
  out->bytes = s.bytes;
  out->occupancy_bytes = s.occupancy_bytes;
  out->capacity_bytes = s.capacity_bytes;
  out->held_frames = r->r.held_frames();
  out->dropped_partial_messages = r->r.dropped_partial_messages();
  out->max_frame_payload = r->r.segment().max_frame_payload();
  out->chunk_size = r->r.segment().chunk_size();
}

void flatlane_reader_close(flatlane_reader* r) { r->r.close(); }

void flatlane_reader_destroy(flatlane_reader* r) { delete r; }

}  // extern "C"

// ---- topics and services: shared machinery --------------------------------------------------

namespace {

// Held samples, requests and replies: move-only C++ objects kept in a slot table, handed out as
// tokens (generation << 32 | slot + 1), exactly like the reader's frames. A stale or copied token
// fails instead of releasing a slot twice; nothing here allocates once the table is big enough.
template <class T>
struct HeldTable {
  struct Slot {
    T item{};
    uint32_t gen = 1;  // bumped on every release, so old tokens stop matching
    uint32_t next_free = 0;
    bool used = false;
  };
  static constexpr uint32_t kNone = UINT32_MAX;
  std::vector<Slot> slots;
  uint32_t free_head = kNone;
  uint32_t count = 0;  // items held now

  HeldTable() { grow(64); }

  void grow(size_t to) {
    const size_t from = slots.size();
    slots.resize(to);
    for (size_t i = to; i-- > from;) {
      slots[i].next_free = free_head;
      free_head = static_cast<uint32_t>(i);
    }
  }
  // Called before taking an item out of the runtime, so a failed allocation cannot lose it.
  int ensure_room() noexcept {
    if (free_head != kNone) return FLATLANE_OK;
    try {
      grow(slots.size() * 2);
      return FLATLANE_OK;
    } catch (...) {
      return fail_current_exception();
    }
  }
  // Requires ensure_room() first. Returns the token and the stored item.
  uint64_t put(T&& v, T*& stored) noexcept {
    const uint32_t idx = free_head;
    Slot& s = slots[idx];
    free_head = s.next_free;
    s.item = std::move(v);
    s.used = true;
    ++count;
    stored = &s.item;
    return (static_cast<uint64_t>(s.gen) << 32) | (static_cast<uint64_t>(idx) + 1);
  }
  T* find(uint64_t token) noexcept {
    const uint64_t low = token & 0xFFFFFFFFu;
    if (low == 0 || low > slots.size()) return nullptr;
    Slot& s = slots[low - 1];
    if (!s.used || s.gen != static_cast<uint32_t>(token >> 32)) return nullptr;
    return &s.item;
  }
  bool release(uint64_t token) noexcept {
    if (find(token) == nullptr) return false;
    const uint32_t idx = static_cast<uint32_t>((token & 0xFFFFFFFFu) - 1);
    Slot& s = slots[idx];
    s.item = T{};  // the runtime object's destructor gives the slot / ring space back
    s.used = false;
    --count;
    if (++s.gen == 0) s.gen = 1;
    s.next_free = free_head;
    free_head = idx;
    return true;
  }
  void clear() noexcept {
    for (auto& s : slots) s.item = T{};
  }
};

int to_wait(int32_t strategy, int64_t spin, int64_t liveness, flatlane::WaitOptions& out) {
  switch (strategy) {
    case FLATLANE_WAIT_BUSY_SPIN: out.strategy = flatlane::WaitStrategy::busy_spin; break;
    case FLATLANE_WAIT_SPIN_THEN_SLEEP: out.strategy = flatlane::WaitStrategy::spin_then_sleep; break;
    case FLATLANE_WAIT_BLOCKING: out.strategy = flatlane::WaitStrategy::blocking; break;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown wait_strategy");
  }
  if (spin < 0 || liveness <= 0)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: spin_budget_ns must be >= 0 and liveness_interval_ns > 0");
  out.spin_budget = std::chrono::nanoseconds(spin);
  out.liveness_interval = std::chrono::nanoseconds(liveness);
  return FLATLANE_OK;
}

int to_open_mode(int32_t m, flatlane::OpenMode& out) {
  switch (m) {
    case FLATLANE_OPEN_CREATE: out = flatlane::OpenMode::create; return FLATLANE_OK;
    case FLATLANE_OPEN_OPEN: out = flatlane::OpenMode::open; return FLATLANE_OK;
    case FLATLANE_OPEN_CREATE_OR_OPEN: out = flatlane::OpenMode::create_or_open; return FLATLANE_OK;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown open_mode");
  }
}

int to_topic_options(const flatlane_topic_options* in, flatlane::TopicOptions& out) {
  flatlane_topic_options defaults;
  if (in == nullptr) {
    flatlane_topic_options_init(&defaults);
    in = &defaults;
  }
  if (in->struct_size != sizeof(flatlane_topic_options))
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: flatlane_topic_options.struct_size does not match this library "
                                                "(call flatlane_topic_options_init; binding built for another ABI?)");
  if (int rc = to_open_mode(in->open_mode, out.mode); rc != FLATLANE_OK) return rc;
  if (int rc = to_wait(in->wait_strategy, in->spin_budget_ns, in->liveness_interval_ns, out.wait); rc != FLATLANE_OK)
    return rc;
  switch (in->distribution) {
    case FLATLANE_DIST_FAN_OUT: out.topic.distribution = flatlane::Distribution::fan_out; break;
    case FLATLANE_DIST_WORK_QUEUE: out.topic.distribution = flatlane::Distribution::work_queue; break;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown distribution");
  }
  switch (in->subscriber_mode) {
    case FLATLANE_SUB_DROP_OLDEST: out.subscriber_mode = flatlane::SubscriberMode::drop_oldest; break;
    case FLATLANE_SUB_BLOCK_PUBLISHER: out.subscriber_mode = flatlane::SubscriberMode::block_publisher; break;
    default: return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: unknown subscriber_mode");
  }
  if (in->block_timeout_ns < 0)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: block_timeout_ns must be >= 0");
  out.topic.slot_size = in->slot_size;
  out.topic.slot_count = in->slot_count;
  out.topic.max_publishers = in->max_publishers;
  out.topic.max_subscribers = in->max_subscribers;
  out.topic.queue_depth = in->queue_depth;
  out.topic.max_held = in->max_held;
  out.topic.history = in->history;
  out.topic.mode = static_cast<mode_t>(in->file_mode);
  if (in->type_name != nullptr) out.topic.type.name = in->type_name;
  out.topic.type.hash = in->type_hash;
  out.unlink_on_close = in->unlink_on_close != 0;
  out.history_request = in->history_request;
  out.block_timeout = std::chrono::nanoseconds(in->block_timeout_ns);
  return FLATLANE_OK;
}

int to_service_options(const flatlane_service_options* in, flatlane::ServiceOptions& out) {
  flatlane_service_options defaults;
  if (in == nullptr) {
    flatlane_service_options_init(&defaults);
    in = &defaults;
  }
  if (in->struct_size != sizeof(flatlane_service_options))
    return fail_text(FLATLANE_INVALID_ARGUMENT,
                     "flatlane: flatlane_service_options.struct_size does not match this library "
                     "(call flatlane_service_options_init; binding built for another ABI?)");
  if (int rc = to_open_mode(in->open_mode, out.mode); rc != FLATLANE_OK) return rc;
  if (int rc = to_wait(in->wait_strategy, in->spin_budget_ns, in->liveness_interval_ns, out.wait); rc != FLATLANE_OK)
    return rc;
  if (in->send_timeout_ns < 0) return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: send_timeout_ns must be >= 0");
  out.max_clients = in->max_clients;
  out.max_request = in->max_request;
  out.request_slots = in->request_slots;
  out.queue_depth = in->queue_depth;
  out.reply_ring = in->reply_ring;
  if (in->request_type_name != nullptr) out.request_type.name = in->request_type_name;
  out.request_type.hash = in->request_type_hash;
  if (in->reply_type_name != nullptr) out.reply_type.name = in->reply_type_name;
  out.reply_type.hash = in->reply_type_hash;
  out.send_timeout = std::chrono::nanoseconds(in->send_timeout_ns);
  return FLATLANE_OK;
}

int code_of(Errc e) noexcept { return static_cast<int>(e); }

}  // namespace

struct flatlane_publisher {
  flatlane_publisher(const char* n, const flatlane::TopicOptions& o) : p(n, o), name(n) {}
  flatlane::TopicPublisher p;
  std::string name;
  // Mirrors the loan so publish can refuse misuse (the C++ call would clamp or ignore it).
  uint64_t loan_n = 0;
  bool loaned = false;
};

struct flatlane_subscriber {
  flatlane_subscriber(const char* n, const flatlane::TopicOptions& o) : s(n, o), name(n) {}
  // Declared first, destroyed last: every held Sample must be released while it lives.
  flatlane::TopicSubscriber s;
  std::string name;
  HeldTable<flatlane::Sample> held;
  ~flatlane_subscriber() { held.clear(); }
};

struct flatlane_server {
  flatlane_server(const char* n, const flatlane::ServiceOptions& o) : s(n, o), name(n) {}
  flatlane::ServiceServer s;
  std::string name;
  HeldTable<flatlane::Request> held;
  bool prepared = false;
  uint64_t prepared_n = 0;
  ~flatlane_server() { held.clear(); }
};

struct flatlane_client {
  flatlane_client(const char* n, const flatlane::ServiceOptions& o) : c(n, o), name(n) {}
  flatlane::ServiceClient c;
  std::string name;
  HeldTable<flatlane::Reply> held;
  bool prepared = false;
  uint64_t prepared_n = 0;
  ~flatlane_client() { held.clear(); }
};

extern "C" {

// ---- topics ----------------------------------------------------------------------------------

void flatlane_topic_options_init(flatlane_topic_options* o) {
  if (o == nullptr) return;
  const flatlane::TopicOptions d;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->open_mode = FLATLANE_OPEN_CREATE_OR_OPEN;
  o->slot_size = d.topic.slot_size;
  o->slot_count = d.topic.slot_count;
  o->max_publishers = d.topic.max_publishers;
  o->max_subscribers = d.topic.max_subscribers;
  o->queue_depth = d.topic.queue_depth;
  o->max_held = d.topic.max_held;
  o->history = d.topic.history;
  o->distribution = static_cast<int32_t>(d.topic.distribution);
  o->file_mode = static_cast<uint32_t>(d.topic.mode);
  o->wait_strategy = FLATLANE_WAIT_SPIN_THEN_SLEEP;
  o->spin_budget_ns = d.wait.spin_budget.count();
  o->liveness_interval_ns = d.wait.liveness_interval.count();
  o->type_name = nullptr;
  o->type_hash = 0;
  o->unlink_on_close = d.unlink_on_close ? 1 : 0;
  o->subscriber_mode = static_cast<int32_t>(d.subscriber_mode);
  o->history_request = d.history_request;
  o->block_timeout_ns = d.block_timeout.count();
}

int flatlane_publisher_open(const char* name, const flatlane_topic_options* opts, flatlane_publisher** out) {
  return open_handle("flatlane: publisher_open: name and out must not be NULL", name, opts, out, &to_topic_options);
}

int flatlane_publisher_loan(flatlane_publisher* p, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr,
                            uint64_t* out_capacity) {
  p->loaned = false;  // a new loan replaces the old one in the runtime too
  auto span = p->p.loan(static_cast<size_t>(n), to_timeout(timeout_ns));
  if (!span) {
    *out_ptr = nullptr;
    if (out_capacity != nullptr) *out_capacity = 0;
    return fail_named(code_of(span.error()), "publisher", "loan", p->name, n, p->p.max_message());
  }
  p->loaned = true;
  p->loan_n = n;
  *out_ptr = reinterpret_cast<uint8_t*>(span->data());
  if (out_capacity != nullptr) *out_capacity = span->size();
  return FLATLANE_OK;
}

static int publish_impl(flatlane_publisher* p, uint64_t used, bool tail) {
  const char* op = tail ? "publish_tail" : "publish";
  if (!p->loaned || used > p->loan_n)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "publisher", op, p->name, used, p->loaned ? p->loan_n : UINT64_MAX);
  p->loaned = false;
  auto r = tail ? p->p.publish_tail(static_cast<size_t>(used)) : p->p.publish(static_cast<size_t>(used));
  if (!r) return fail_named(code_of(r.error()), "publisher", op, p->name, used);
  return FLATLANE_OK;
}

int flatlane_publisher_publish(flatlane_publisher* p, uint64_t used) { return publish_impl(p, used, false); }

int flatlane_publisher_publish_tail(flatlane_publisher* p, uint64_t used) { return publish_impl(p, used, true); }

void flatlane_publisher_discard(flatlane_publisher* p) {
  p->loaned = false;
  p->p.discard();
}

int flatlane_publisher_send(flatlane_publisher* p, const uint8_t* data, uint64_t size, int64_t timeout_ns) {
  if (data == nullptr && size != 0)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "publisher", "send", p->name, size, p->p.max_message());
  p->loaned = false;
  auto r = p->p.send({reinterpret_cast<const std::byte*>(data), static_cast<size_t>(size)}, to_timeout(timeout_ns));
  if (!r) return fail_named(code_of(r.error()), "publisher", "send", p->name, size, p->p.max_message());
  return FLATLANE_OK;
}

uint32_t flatlane_publisher_subscriber_count(flatlane_publisher* p) { return p->p.subscriber_count(); }

void flatlane_publisher_stats(flatlane_publisher* p, flatlane_publisher_counters* out) {
  const flatlane::PublisherStats s = p->p.stats();
  *out = flatlane_publisher_counters{};
  out->messages = s.messages;
  out->bytes = s.bytes;
  out->no_receiver = s.no_receiver;
  out->timeouts = s.timeouts;
  out->subscribers = s.subscribers;
  out->free_slots = s.free_slots;
  out->slot_count = s.slot_count;
  out->max_message = p->p.max_message();
  out->lost = s.lost;
}

void flatlane_publisher_close(flatlane_publisher* p) {
  p->loaned = false;
  p->p.close();
}

void flatlane_publisher_destroy(flatlane_publisher* p) { delete p; }

int flatlane_subscriber_open(const char* name, const flatlane_topic_options* opts, flatlane_subscriber** out) {
  return open_handle("flatlane: subscriber_open: name and out must not be NULL", name, opts, out, &to_topic_options);
}

int flatlane_subscriber_receive(flatlane_subscriber* s, int64_t timeout_ns, flatlane_sample* out) {
  if (int rc = s->held.ensure_room(); rc != FLATLANE_OK) return rc;
  auto r = s->s.receive(to_timeout(timeout_ns));
  if (!r) {
    *out = flatlane_sample{};
    return fail_named(code_of(r.error()), "subscriber", "receive", s->name);
  }
  flatlane::Sample* smp = nullptr;
  out->token = s->held.put(std::move(r).value(), smp);
  out->data = reinterpret_cast<const uint8_t*>(smp->ptr());
  out->size = smp->size();
  out->seq = smp->seq();
  out->publisher = smp->publisher();
  out->publisher_epoch = smp->publisher_epoch();
  return FLATLANE_OK;
}

int flatlane_subscriber_release(flatlane_subscriber* s, uint64_t token) {
  if (!s->held.release(token)) return fail_named(FLATLANE_INVALID_ARGUMENT, "subscriber", "release", s->name, token);
  return FLATLANE_OK;
}

void flatlane_subscriber_stats(flatlane_subscriber* s, flatlane_subscriber_counters* out) {
  const flatlane::SubscriberStats st = s->s.stats();
  *out = flatlane_subscriber_counters{};
  out->received = st.received;
  out->bytes = st.bytes;
  out->dropped = st.dropped;
  out->held = st.held;
  out->queued = st.queued;
}

void flatlane_subscriber_close(flatlane_subscriber* s) { s->s.close(); }

void flatlane_subscriber_destroy(flatlane_subscriber* s) { delete s; }

// ---- services --------------------------------------------------------------------------------

void flatlane_service_options_init(flatlane_service_options* o) {
  if (o == nullptr) return;
  const flatlane::ServiceOptions d;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->open_mode = FLATLANE_OPEN_CREATE_OR_OPEN;
  o->max_clients = d.max_clients;
  o->max_request = d.max_request;
  o->request_slots = d.request_slots;
  o->queue_depth = d.queue_depth;
  o->reply_ring = d.reply_ring;
  o->request_type_name = nullptr;
  o->request_type_hash = 0;
  o->reply_type_name = nullptr;
  o->reply_type_hash = 0;
  o->wait_strategy = FLATLANE_WAIT_SPIN_THEN_SLEEP;
  o->spin_budget_ns = d.wait.spin_budget.count();
  o->liveness_interval_ns = d.wait.liveness_interval.count();
  o->send_timeout_ns = d.send_timeout.count();
}

int flatlane_server_open(const char* name, const flatlane_service_options* opts, flatlane_server** out) {
  return open_handle("flatlane: server_open: name and out must not be NULL", name, opts, out, &to_service_options);
}

int flatlane_server_receive(flatlane_server* s, int64_t timeout_ns, flatlane_request* out) {
  if (int rc = s->held.ensure_room(); rc != FLATLANE_OK) return rc;
  auto r = s->s.receive(to_timeout(timeout_ns));
  if (!r) {
    *out = flatlane_request{};
    return fail_named(code_of(r.error()), "server", "receive", s->name);
  }
  flatlane::Request* req = nullptr;
  out->token = s->held.put(std::move(r).value(), req);
  out->data = reinterpret_cast<const uint8_t*>(req->data().data());
  out->size = req->size();
  out->id = req->id();
  out->client = req->client();
  out->reserved0 = 0;
  return FLATLANE_OK;
}

int flatlane_server_release(flatlane_server* s, uint64_t token) {
  if (!s->held.release(token)) return fail_named(FLATLANE_INVALID_ARGUMENT, "server", "release", s->name, token);
  return FLATLANE_OK;
}

int flatlane_server_prepare_reply(flatlane_server* s, uint64_t request_token, uint64_t n, uint8_t** out_ptr) {
  *out_ptr = nullptr;
  s->prepared = false;
  const flatlane::Request* req = s->held.find(request_token);
  if (req == nullptr)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "server", "prepare_reply (request not held)", s->name, n);
  // May open the client's reply channel (allocates once per client), hence the try.
  try {
    auto span = s->s.prepare_reply(*req, static_cast<size_t>(n));
    if (!span) return fail_named(code_of(span.error()), "server", "prepare_reply", s->name, n);
    s->prepared = true;
    s->prepared_n = n;
    *out_ptr = reinterpret_cast<uint8_t*>(span->data());
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
}

static int commit_reply_impl(flatlane_server* s, uint64_t used, int32_t more, bool tail) {
  const char* op = tail ? "commit_reply_tail" : "commit_reply";
  if (!s->prepared || used > s->prepared_n)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "server", op, s->name, used, s->prepared ? s->prepared_n : UINT64_MAX);
  s->prepared = false;
  auto r = tail ? s->s.commit_reply_tail(static_cast<size_t>(used), more != 0)
                : s->s.commit_reply(static_cast<size_t>(used), more != 0);
  if (!r) return fail_named(code_of(r.error()), "server", op, s->name, used);
  return FLATLANE_OK;
}

int flatlane_server_commit_reply(flatlane_server* s, uint64_t used, int32_t more) {
  return commit_reply_impl(s, used, more, false);
}

int flatlane_server_commit_reply_tail(flatlane_server* s, uint64_t used, int32_t more) {
  return commit_reply_impl(s, used, more, true);
}

void flatlane_server_abort_reply(flatlane_server* s) {
  s->prepared = false;
  s->s.abort_reply();
}

int flatlane_server_reply(flatlane_server* s, uint64_t request_token, const uint8_t* data, uint64_t size,
                          int32_t more) {
  s->prepared = false;
  const flatlane::Request* req = s->held.find(request_token);
  if (req == nullptr) return fail_named(FLATLANE_INVALID_ARGUMENT, "server", "reply (request not held)", s->name, size);
  if (data == nullptr && size != 0) return fail_named(FLATLANE_INVALID_ARGUMENT, "server", "reply", s->name, size);
  try {
    auto r = s->s.reply(*req, {reinterpret_cast<const std::byte*>(data), static_cast<size_t>(size)}, more != 0);
    if (!r) return fail_named(code_of(r.error()), "server", "reply", s->name, size);
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
}

void flatlane_server_stats(flatlane_server* s, flatlane_server_counters* out) {
  const flatlane::ServerStats st = s->s.stats();
  *out = flatlane_server_counters{};
  out->requests = st.requests;
  out->replies = st.replies;
  out->dropped_replies = st.dropped_replies;
  out->clients = st.clients;
}

void flatlane_server_close(flatlane_server* s) {
  s->prepared = false;
  s->s.close();
}

void flatlane_server_destroy(flatlane_server* s) { delete s; }

int flatlane_client_open(const char* name, const flatlane_service_options* opts, flatlane_client** out) {
  return open_handle("flatlane: client_open: name and out must not be NULL", name, opts, out, &to_service_options);
}

int flatlane_client_prepare(flatlane_client* c, uint64_t n, uint8_t** out_ptr) {
  c->prepared = false;
  auto span = c->c.prepare(static_cast<size_t>(n));
  if (!span) {
    *out_ptr = nullptr;
    return fail_named(code_of(span.error()), "client", "prepare", c->name, n, c->c.max_request());
  }
  c->prepared = true;
  c->prepared_n = n;
  *out_ptr = reinterpret_cast<uint8_t*>(span->data());
  return FLATLANE_OK;
}

static int send_prepared_impl(flatlane_client* c, uint64_t used, uint64_t* out_id, bool tail) {
  const char* op = tail ? "send_prepared_tail" : "send_prepared";
  if (!c->prepared || used > c->prepared_n)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "client", op, c->name, used, c->prepared ? c->prepared_n : UINT64_MAX);
  c->prepared = false;
  auto r = tail ? c->c.send_prepared_tail(static_cast<size_t>(used)) : c->c.send_prepared(static_cast<size_t>(used));
  if (!r) return fail_named(code_of(r.error()), "client", op, c->name, used);
  *out_id = r.value();
  return FLATLANE_OK;
}

int flatlane_client_send_prepared(flatlane_client* c, uint64_t used, uint64_t* out_id) {
  return send_prepared_impl(c, used, out_id, false);
}

int flatlane_client_send_prepared_tail(flatlane_client* c, uint64_t used, uint64_t* out_id) {
  return send_prepared_impl(c, used, out_id, true);
}

void flatlane_client_abort_prepared(flatlane_client* c) {
  c->prepared = false;
  c->c.abort_prepared();
}

uint64_t flatlane_client_max_request(flatlane_client* c) { return c->c.max_request(); }

int flatlane_client_send(flatlane_client* c, const uint8_t* data, uint64_t size, uint64_t* out_id) {
  c->prepared = false;
  if (data == nullptr && size != 0)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "client", "send", c->name, size, c->c.max_request());
  auto r = c->c.send({reinterpret_cast<const std::byte*>(data), static_cast<size_t>(size)});
  if (!r) return fail_named(code_of(r.error()), "client", "send", c->name, size, c->c.max_request());
  *out_id = r.value();
  return FLATLANE_OK;
}

static void fill_reply(flatlane_client* c, flatlane::Reply&& rep, flatlane_reply* out) noexcept {
  flatlane::Reply* stored = nullptr;
  out->token = c->held.put(std::move(rep), stored);
  out->data = reinterpret_cast<const uint8_t*>(stored->data().data());
  out->size = stored->size();
  out->id = stored->id();
  out->more = stored->more() ? 1 : 0;
  out->reserved0 = 0;
}

int flatlane_client_receive(flatlane_client* c, uint64_t id, int64_t timeout_ns, flatlane_reply* out) {
  if (int rc = c->held.ensure_room(); rc != FLATLANE_OK) return rc;
  auto r = c->c.receive(id, to_timeout(timeout_ns));
  if (!r) {
    *out = flatlane_reply{};
    return fail_named(code_of(r.error()), "client", "receive", c->name, id);
  }
  fill_reply(c, std::move(r).value(), out);
  return FLATLANE_OK;
}

int flatlane_client_release(flatlane_client* c, uint64_t token) {
  if (!c->held.release(token)) return fail_named(FLATLANE_INVALID_ARGUMENT, "client", "release", c->name, token);
  return FLATLANE_OK;
}

int flatlane_client_call(flatlane_client* c, const uint8_t* data, uint64_t size, int64_t timeout_ns,
                         flatlane_reply* out) {
  *out = flatlane_reply{};
  if (int rc = c->held.ensure_room(); rc != FLATLANE_OK) return rc;
  uint64_t id = 0;
  if (int rc = flatlane_client_send(c, data, size, &id); rc != FLATLANE_OK) return rc;
  return flatlane_client_receive(c, id, timeout_ns, out);
}

void flatlane_client_close(flatlane_client* c) {
  c->prepared = false;
  c->c.close();
}

void flatlane_client_destroy(flatlane_client* c) { delete c; }

}  // extern "C"

// ---- in-place duplex ---------------------------------------------------------------------------

namespace {

int to_duplex_options(const flatlane_options* in, flatlane::DuplexOptions& out) {
  flatlane::ChannelOptions c;
  if (int rc = to_channel_options(in, c); rc != FLATLANE_OK) return rc;
  out.mode = c.mode;
  out.segment = c.segment;
  out.wait = c.wait;
  out.unlink_on_close = c.unlink_on_close;
  return FLATLANE_OK;
}

void fill_duplex_stats(const flatlane::DuplexStats& s, uint32_t max_frame, flatlane_duplex_stats* out) noexcept {
  *out = flatlane_duplex_stats{};
  out->requests = s.requests;
  out->responses = s.responses;
  out->rejected = s.rejected;
  out->bytes = s.bytes;
  out->outstanding = s.outstanding;
  out->occupancy_bytes = s.occupancy_bytes;
  out->capacity_bytes = s.capacity_bytes;
  out->max_frame_payload = max_frame;
}

}  // namespace

struct flatlane_duplex_client {
  flatlane_duplex_client(const char* n, const flatlane::DuplexOptions& o) : c(n, o), name(n) {}
  // Declared first, destroyed last: every held response is released while the client lives.
  flatlane::DuplexClient c;
  std::string name;
  HeldTable<flatlane::DuplexResponse> held;
  // Mirrors the reservation so commit can refuse misuse (the C++ call would clamp it).
  uint64_t reserved_n = 0;
  bool reserved = false;
  ~flatlane_duplex_client() { held.clear(); }
};

struct flatlane_duplex_server {
  flatlane_duplex_server(const char* n, const flatlane::DuplexOptions& o) : s(n, o), name(n) {}
  flatlane::DuplexServer s;
  std::string name;
  HeldTable<flatlane::DuplexRequest> held;  // clearing it rejects what is still unanswered
  ~flatlane_duplex_server() { held.clear(); }
};

extern "C" {

int flatlane_duplex_client_open(const char* name, const flatlane_options* opts, flatlane_duplex_client** out) {
  return open_handle("flatlane: duplex_client_open: name and out must not be NULL", name, opts, out,
                     &to_duplex_options);
}

uint32_t flatlane_duplex_client_max_frame_payload(const flatlane_duplex_client* c) { return c->c.max_frame_payload(); }

int flatlane_duplex_client_reserve(flatlane_duplex_client* c, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr) {
  c->reserved = false;  // a new reserve replaces the old one in the runtime too
  c->c.abort();
  auto span = c->c.reserve(static_cast<size_t>(n), to_timeout(timeout_ns));
  if (!span) {
    *out_ptr = nullptr;
    return fail(code_of(span.error()), Op::reserve, "duplex client", c->name, n, c->c.max_frame_payload());
  }
  c->reserved = true;
  c->reserved_n = n;
  *out_ptr = reinterpret_cast<uint8_t*>(span->data());
  return FLATLANE_OK;
}

static int duplex_commit_impl(flatlane_duplex_client* c, uint64_t used, uint64_t* out_seq, bool tail) {
  if (!c->reserved || used > c->reserved_n)
    return fail(FLATLANE_INVALID_ARGUMENT, tail ? Op::commit_tail : Op::commit, "duplex client", c->name, used,
                c->reserved ? c->reserved_n : UINT64_MAX);
  c->reserved = false;
  const uint64_t seq = tail ? c->c.commit_tail(static_cast<size_t>(used)) : c->c.commit(static_cast<size_t>(used));
  if (out_seq != nullptr) *out_seq = seq;
  return FLATLANE_OK;
}

int flatlane_duplex_client_commit(flatlane_duplex_client* c, uint64_t used, uint64_t* out_seq) {
  return duplex_commit_impl(c, used, out_seq, false);
}

int flatlane_duplex_client_commit_tail(flatlane_duplex_client* c, uint64_t used, uint64_t* out_seq) {
  return duplex_commit_impl(c, used, out_seq, true);
}

void flatlane_duplex_client_abort(flatlane_duplex_client* c) {
  c->reserved = false;
  c->c.abort();
}

int flatlane_duplex_client_receive(flatlane_duplex_client* c, int64_t timeout_ns, flatlane_duplex_response* out) {
  *out = flatlane_duplex_response{};
  if (int rc = c->held.ensure_room(); rc != FLATLANE_OK) return rc;
  auto r = c->c.receive(to_timeout(timeout_ns));
  if (!r) return fail_named(code_of(r.error()), "duplex client", "receive", c->name);
  flatlane::DuplexResponse* rep = nullptr;
  out->token = c->held.put(std::move(r).value(), rep);
  out->rejected = rep->rejected() ? 1 : 0;
  out->data = rep->rejected() ? nullptr : reinterpret_cast<uint8_t*>(rep->data().data());
  out->size = rep->rejected() ? 0 : rep->size();
  out->seq = rep->seq();
  return FLATLANE_OK;
}

int flatlane_duplex_client_release(flatlane_duplex_client* c, uint64_t token) {
  if (!c->held.release(token)) return fail(FLATLANE_INVALID_ARGUMENT, Op::release, "duplex client", c->name, token);
  return FLATLANE_OK;
}

uint64_t flatlane_duplex_client_outstanding(const flatlane_duplex_client* c) { return c->c.outstanding(); }

uint32_t flatlane_duplex_client_held(const flatlane_duplex_client* c) { return c->held.count; }

void flatlane_duplex_client_stats(const flatlane_duplex_client* c, flatlane_duplex_stats* out) {
  fill_duplex_stats(c->c.stats(), c->c.max_frame_payload(), out);
}

int flatlane_duplex_client_peer_attached(const flatlane_duplex_client* c) { return c->c.peer_attached() ? 1 : 0; }

void flatlane_duplex_client_close(flatlane_duplex_client* c) {
  c->reserved = false;
  c->c.close();
}

void flatlane_duplex_client_destroy(flatlane_duplex_client* c) { delete c; }

int flatlane_duplex_server_open(const char* name, const flatlane_options* opts, flatlane_duplex_server** out) {
  return open_handle("flatlane: duplex_server_open: name and out must not be NULL", name, opts, out,
                     &to_duplex_options);
}

uint32_t flatlane_duplex_server_max_frame_payload(const flatlane_duplex_server* s) {
  return s->s.segment().max_frame_payload();
}

int flatlane_duplex_server_receive(flatlane_duplex_server* s, int64_t timeout_ns, flatlane_duplex_request* out) {
  *out = flatlane_duplex_request{};
  if (int rc = s->held.ensure_room(); rc != FLATLANE_OK) return rc;
  auto r = s->s.receive(to_timeout(timeout_ns));
  if (!r) return fail_named(code_of(r.error()), "duplex server", "receive", s->name);
  flatlane::DuplexRequest* req = nullptr;
  out->token = s->held.put(std::move(r).value(), req);
  out->payload = reinterpret_cast<uint8_t*>(req->frame().data());
  out->capacity = req->frame().size();
  out->request_offset = req->request_offset();
  out->request_size = req->data().size();
  out->seq = req->seq();
  return FLATLANE_OK;
}

int flatlane_duplex_server_respond(flatlane_duplex_server* s, uint64_t token, uint64_t offset, uint64_t size) {
  flatlane::DuplexRequest* req = s->held.find(token);
  if (req == nullptr)
    return fail_named(FLATLANE_INVALID_ARGUMENT, "duplex server", "respond (request not held)", s->name, token);
  if (offset > req->frame().size() || size > req->frame().size() - offset)
    return fail_named(FLATLANE_MESSAGE_TOO_LARGE, "duplex server", "respond", s->name, offset + size,
                      req->frame().size());
  auto r = s->s.respond(*req, static_cast<size_t>(offset), static_cast<size_t>(size));
  if (!r) return fail_named(code_of(r.error()), "duplex server", "respond", s->name, size, req->frame().size());
  s->held.release(token);  // answered: the held object is empty, releasing it does nothing more
  return FLATLANE_OK;
}

int flatlane_duplex_server_reject(flatlane_duplex_server* s, uint64_t token) {
  if (!s->held.release(token))
    return fail_named(FLATLANE_INVALID_ARGUMENT, "duplex server", "reject (request not held)", s->name, token);
  return FLATLANE_OK;
}

uint64_t flatlane_duplex_server_outstanding(const flatlane_duplex_server* s) { return s->s.outstanding(); }

void flatlane_duplex_server_stats(const flatlane_duplex_server* s, flatlane_duplex_stats* out) {
  fill_duplex_stats(s->s.stats(), s->s.segment().max_frame_payload(), out);
}

int flatlane_duplex_server_peer_attached(const flatlane_duplex_server* s) { return s->s.peer_attached() ? 1 : 0; }

void flatlane_duplex_server_close(flatlane_duplex_server* s) { s->s.close(); }

void flatlane_duplex_server_destroy(flatlane_duplex_server* s) { delete s; }

}  // extern "C"
