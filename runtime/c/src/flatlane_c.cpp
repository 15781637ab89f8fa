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

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
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
enum class Op : uint8_t { none, reserve, commit, commit_tail, write_message, read, release, read_message };

struct LastError {
  int code = FLATLANE_OK;
  bool pending = false;  // `text` not yet formatted from the fields below
  Op op = Op::none;
  const char* role = "";
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
  // Mirrors the runtime's private reservation state so commit can reject misuse instead of
  // silently clamping or ignoring it.
  uint64_t reserved_n = 0;
  bool reserved = false;
};

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
  }
};

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
  if (out == nullptr || name == nullptr)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: writer_open: name and out must not be NULL");
  *out = nullptr;
  try {
    flatlane::ChannelOptions o;
    if (int rc = to_channel_options(opts, o); rc != FLATLANE_OK) return rc;
    *out = new flatlane_writer(name, o);
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
}

int flatlane_writer_reserve(flatlane_writer* w, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr) {
  auto span = w->w.reserve(n, to_timeout(timeout_ns));
  if (!span) {
    w->reserved = false;
    *out_ptr = nullptr;
    return fail(static_cast<int>(span.error()), Op::reserve, "writer", w->name, n, w->w.max_frame_payload());
  }
  w->reserved = true;
  w->reserved_n = n;
  *out_ptr = reinterpret_cast<uint8_t*>(span->data());
  return FLATLANE_OK;
}

int flatlane_writer_commit(flatlane_writer* w, uint64_t used) {
  if (!w->reserved || used > w->reserved_n)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::commit, "writer", w->name, used, w->reserved ? w->reserved_n : UINT64_MAX);
  w->reserved = false;
  w->w.commit(used);
  return FLATLANE_OK;
}

int flatlane_writer_commit_tail(flatlane_writer* w, uint64_t used) {
  if (!w->reserved || used > w->reserved_n)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::commit_tail, "writer", w->name, used,
                w->reserved ? w->reserved_n : UINT64_MAX);
  w->reserved = false;
  w->w.commit_tail(used);
  return FLATLANE_OK;
}

void flatlane_writer_abort(flatlane_writer* w) {
  w->reserved = false;
  w->w.abort();
}

int flatlane_writer_write_message(flatlane_writer* w, const uint8_t* data, uint64_t size, int64_t timeout_ns) {
  if (data == nullptr && size != 0)
    return fail(FLATLANE_INVALID_ARGUMENT, Op::write_message, "writer", w->name, size, w->w.max_frame_payload());
  w->reserved = false;  // write_message reserves internally, replacing any open reservation
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
  if (out == nullptr || name == nullptr)
    return fail_text(FLATLANE_INVALID_ARGUMENT, "flatlane: reader_open: name and out must not be NULL");
  *out = nullptr;
  try {
    flatlane::ChannelOptions o;
    if (int rc = to_channel_options(opts, o); rc != FLATLANE_OK) return rc;
    *out = new flatlane_reader(name, o);
    return FLATLANE_OK;
  } catch (...) {
    return fail_current_exception();
  }
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
