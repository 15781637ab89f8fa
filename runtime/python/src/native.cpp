// flatlane._native: the CPython binding of the C++ runtime (SPSC channel).
//
// Ownership. Each endpoint's C++ object lives in a core (WriterCore/ReaderCore) held by
// std::shared_ptr. The Python Writer/Reader holds one reference, and so does one small "mapping"
// object per endpoint; every memoryview handed out (a reservation, a frame's data) and every
// Frame keeps that mapping object alive. close() only closes the C++ endpoint (peer sees
// peer_closed, blocked calls return) and drops the Python endpoint's references; the segment is
// unmapped when the last view or frame is gone, so no view can ever dangle and close() never has
// to refuse (no BufferError).
//
// Threads. The GIL is released around every call that can wait. A C++ endpoint is
// single-threaded, so each core has a mutex held by whoever calls into it. Fast paths try the
// mutex and a zero-timeout call with the GIL held (no GIL round trip when data or space is there);
// only when that would block do they release the GIL and wait. Nothing ever blocks on the mutex
// while holding the GIL. A frame released while another thread is blocked in read() cannot take
// the mutex: it is queued and released by the reading thread, which waits in slices so such
// releases (and the space they free for the writer) never wait longer than one slice.
//
// Frames released after their reader is closed are abandoned, not released: the closed reader no
// longer owns the shared read position (a new reader may), so those frames are delivered again
// to the next reader, exactly as in C++ when a Reader goes away with frames held.
// Py_ssize_t lengths for "s#" argument formats (must precede Python.h, which pybind11 includes).
#define PY_SSIZE_T_CLEAN
#include <pybind11/pybind11.h>

#include <flatlane/flatlane.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;
namespace fl = flatlane;
using std::chrono::nanoseconds;

namespace {

// Longest single wait of a blocking read: bounds how long a frame released by another thread,
// or a stats()/held_frames query, waits for a reader blocked in read().
constexpr nanoseconds kWaitSlice = std::chrono::milliseconds(50);
// Above this size a copy into or out of a Python object is done without the GIL.
constexpr size_t kCopyWithoutGil = size_t{1} << 20;

// ------------------------------------------------------------------------------------------------
// Errors: the Python package registers a factory (errc, message, channel, role) -> exception.

PyObject* g_error_factory = nullptr;  // strong reference, kept for the life of the process

// Sets the Python error for `e`; for use by raw C-API functions that return NULL on error.
void set_errc(fl::Errc e, const std::string& detail, const std::string& channel, const char* role) {
  std::string msg = std::string("flatlane: ") + fl::to_string(e) + ": " + detail;
  if (g_error_factory == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, msg.c_str());
    return;
  }
  PyObject* exc = PyObject_CallFunction(g_error_factory, "isss", static_cast<int>(e), msg.c_str(), channel.c_str(), role);
  if (exc == nullptr) return;  // the factory's own error propagates
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
}

// Setup errors (constructors) already carry "flatlane: ..." and the channel name.
void set_setup_error(const fl::Error& err, const std::string& channel, const char* role) {
  if (g_error_factory == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, err.what());
    return;
  }
  PyObject* exc =
      PyObject_CallFunction(g_error_factory, "isss", static_cast<int>(err.code()), err.what(), channel.c_str(), role);
  if (exc == nullptr) return;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
}

// Timeouts are milliseconds (int or float); None (or absent) waits forever, 0 polls. Returns
// false with a Python error set on a bad value.
bool to_timeout(PyObject* ms, nanoseconds* out) {
  if (ms == nullptr || ms == Py_None) {
    *out = fl::kInfinite;
    return true;
  }
  const double v = PyFloat_AsDouble(ms);
  if (v == -1.0 && PyErr_Occurred()) return false;
  if (!(v >= 0.0)) {
    PyErr_SetString(PyExc_ValueError, "flatlane: timeout must be >= 0 milliseconds, or None to wait forever");
    return false;
  }
  // 30 years and more is forever: keeps the nanosecond arithmetic far from overflow.
  *out = v >= 1e12 ? fl::kInfinite : nanoseconds(static_cast<int64_t>(std::llround(v * 1e6)));
  return true;
}

std::string ms_text(nanoseconds t) {
  if (t.count() < 0) return "forever";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%g ms", static_cast<double>(t.count()) / 1e6);
  return buf;
}

// ------------------------------------------------------------------------------------------------
// A frame whose destructor we control: released (normal case) or abandoned (reader closed). It
// holds either a Frame of read() or a zero-copy Message of read_message() (which owns its frame).

class HeldFrame {
 public:
  HeldFrame() noexcept {}
  HeldFrame(HeldFrame&& o) noexcept : kind_(o.kind_) {
    if (kind_ == Kind::frame) {
      new (&f_) fl::Frame(std::move(o.f_));
      o.f_.~Frame();  // moved-from: no longer refers to the reader
    } else if (kind_ == Kind::message) {
      new (&m_) fl::Message(std::move(o.m_));
      o.m_.~Message();
    }
    o.kind_ = Kind::none;
  }
  HeldFrame(const HeldFrame&) = delete;
  HeldFrame& operator=(const HeldFrame&) = delete;
  HeldFrame& operator=(HeldFrame&&) = delete;
  // A frame still live here is abandoned: its destructor (which would release it) is skipped.
  ~HeldFrame() {}

  void emplace(fl::Frame&& f) noexcept {
    new (&f_) fl::Frame(std::move(f));
    kind_ = Kind::frame;
  }
  void emplace(fl::Message&& m) noexcept {
    new (&m_) fl::Message(std::move(m));
    kind_ = Kind::message;
  }
  // Returns the frame's ring space; the caller holds the reader's mutex.
  void release() noexcept {
    if (kind_ == Kind::frame) f_.~Frame();
    if (kind_ == Kind::message) m_.~Message();
    kind_ = Kind::none;
  }
  // Leaves the frame to the next reader of the channel (neither type owns anything but its slot).
  void abandon() noexcept { kind_ = Kind::none; }
  bool live() const noexcept { return kind_ != Kind::none; }

 private:
  enum class Kind : uint8_t { none, frame, message };
  union {
    fl::Frame f_;
    fl::Message m_;
  };
  Kind kind_ = Kind::none;
};

// ------------------------------------------------------------------------------------------------
// Cores: the C++ endpoints plus what the binding needs to share them between threads.

struct WriterCore {
  WriterCore(const std::string& n, const fl::ChannelOptions& o) : name(n), w(n, o) {}
  const std::string name;
  fl::Writer w;
  std::mutex mu;  // serialises calls into `w`
  // The live reservation, which the next exported memoryview covers. Set and read under the GIL.
  std::byte* res_ptr = nullptr;
  size_t res_len = 0;
  bool reserved = false;
};

struct ReaderCore {
  ReaderCore(const std::string& n, const fl::ChannelOptions& o) : name(n), r(n, o) {}
  const std::string name;
  fl::Reader r;  // declared before `pending`: pending frames are abandoned before it goes away
  std::mutex mu;  // serialises calls into `r`
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> held{0};  // frames handed to Python and not yet given back
  std::mutex pending_mu;
  std::vector<HeldFrame> pending;  // given back while another thread held `mu`
  std::atomic<bool> has_pending{false};

  // With `mu` held: releases the frames queued by other threads.
  void drain_locked() noexcept {
    if (!has_pending.load(std::memory_order_seq_cst)) return;
    std::vector<HeldFrame> batch;
    {
      std::lock_guard<std::mutex> g(pending_mu);
      batch.swap(pending);
      has_pending.store(false, std::memory_order_seq_cst);
    }
    const bool abandon = closed.load(std::memory_order_acquire);
    for (auto& h : batch) abandon ? h.abandon() : h.release();
  }

  // Returns a frame from Python (GIL held, so this never waits for `mu`).
  void give_back(HeldFrame& h) noexcept {
    held.fetch_sub(1, std::memory_order_relaxed);
    if (closed.load(std::memory_order_acquire)) {
      h.abandon();
      return;
    }
    std::unique_lock<std::mutex> lk(mu, std::try_to_lock);
    if (lk.owns_lock()) {
      h.release();
      drain_locked();
      return;
    }
    {
      std::lock_guard<std::mutex> g(pending_mu);
      pending.push_back(std::move(h));
      has_pending.store(true, std::memory_order_seq_cst);
    }
    // The holder may have drained and unlocked before our push: then it is ours to drain. (If
    // try_lock fails spuriously the frame waits for the next call on this reader.)
    if (lk.try_lock()) drain_locked();
  }

  // Drains, unlocks, and drains once more if a frame was queued in between.
  void unlock(std::unique_lock<std::mutex>& lk) noexcept {
    drain_locked();
    lk.unlock();
    if (has_pending.load(std::memory_order_seq_cst) && lk.try_lock()) {
      drain_locked();
      lk.unlock();
    }
  }
};

// ------------------------------------------------------------------------------------------------
// Mapping: one per endpoint; memoryviews and frames hold it, it holds the core.

struct MappingObject {
  PyObject_HEAD
  std::shared_ptr<WriterCore> writer;
  std::shared_ptr<ReaderCore> reader;
};

PyTypeObject* g_mapping_type = nullptr;
PyTypeObject* g_frame_type = nullptr;

void mapping_dealloc(PyObject* self) {
  auto* m = reinterpret_cast<MappingObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  m->writer.~shared_ptr();
  m->reader.~shared_ptr();
  tp->tp_free(self);
  Py_DECREF(tp);
}

// A writer's mapping exports the live reservation (writable).
int mapping_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* m = reinterpret_cast<MappingObject*>(self);
  WriterCore* c = m->writer.get();
  if (c == nullptr || !c->reserved) {
    PyErr_SetString(PyExc_BufferError, "flatlane: no reservation to export");
    view->obj = nullptr;
    return -1;
  }
  return PyBuffer_FillInfo(view, self, c->res_ptr, static_cast<Py_ssize_t>(c->res_len), 0, flags);
}

PyObject* new_mapping(std::shared_ptr<WriterCore> w, std::shared_ptr<ReaderCore> r) {
  auto* m = PyObject_New(MappingObject, g_mapping_type);
  if (m == nullptr) throw py::error_already_set();
  new (&m->writer) std::shared_ptr<WriterCore>(std::move(w));
  new (&m->reader) std::shared_ptr<ReaderCore>(std::move(r));
  return reinterpret_cast<PyObject*>(m);
}

// ------------------------------------------------------------------------------------------------
// Frame: a zero-copy view of one received frame.

struct FrameObject {
  PyObject_HEAD
  PyObject* owner;   // the reader's MappingObject
  ReaderCore* core;  // kept alive by `owner`
  HeldFrame held;
  const std::byte* data;
  size_t size;
  uint64_t seq;
  uint32_t flags;
  fl::wire::ChunkHeader chunk;
  PyObject* owned;         // bytes holding `data` for a reassembled message, else null
  Py_ssize_t exports;      // live buffer exports of `data`
  bool release_requested;  // release() was called; done once `exports` drops to 0
  bool zero_copy;          // `data` lies in the ring
};

PyObject* new_frame(PyObject* owner, ReaderCore* core, fl::Frame&& f) {
  auto* o = PyObject_New(FrameObject, g_frame_type);
  if (o == nullptr) return nullptr;  // `f` is released by its destructor (caller holds `mu`)
  Py_INCREF(owner);
  o->owner = owner;
  o->core = core;
  o->data = f.ptr();
  o->size = f.size();
  o->seq = f.seq();
  o->flags = f.flags();
  o->chunk = f.chunk();
  o->owned = nullptr;
  o->exports = 0;
  o->release_requested = false;
  o->zero_copy = true;
  new (&o->held) HeldFrame();
  o->held.emplace(std::move(f));
  core->held.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<PyObject*>(o);
}

// A whole message of read_message() as a Frame. A message of one frame is held in place (zero
// copy). A reassembled one lies in the reader's buffer only until the next read, so it is copied
// into a bytes object the Frame owns (the price of being larger than a frame).
PyObject* new_message_frame(PyObject* owner, ReaderCore* core, fl::Message&& m) {
  const auto data = m.data();
  PyObject* owned = nullptr;
  if (!m.zero_copy()) {
    owned = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size()));
    if (owned == nullptr) return nullptr;
    if (data.size() > kCopyWithoutGil) {
      py::gil_scoped_release nogil;
      std::memcpy(PyBytes_AS_STRING(owned), data.data(), data.size());
    } else if (!data.empty()) {
      std::memcpy(PyBytes_AS_STRING(owned), data.data(), data.size());
    }
  }
  auto* o = PyObject_New(FrameObject, g_frame_type);
  if (o == nullptr) {
    Py_XDECREF(owned);
    return nullptr;  // `m` releases its frame in the caller (which holds `mu`)
  }
  Py_INCREF(owner);
  o->owner = owner;
  o->core = core;
  o->data = owned ? reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(owned)) : data.data();
  o->size = data.size();
  o->seq = m.seq();
  o->flags = 0;  // a whole message, never a chunk
  o->chunk = {};
  o->owned = owned;
  o->exports = 0;
  o->release_requested = false;
  o->zero_copy = owned == nullptr;
  new (&o->held) HeldFrame();
  if (o->zero_copy) {
    o->held.emplace(std::move(m));
    core->held.fetch_add(1, std::memory_order_relaxed);
  }
  return reinterpret_cast<PyObject*>(o);
}

void frame_give_back(FrameObject* f) {
  if (f->held.live()) f->core->give_back(f->held);
}

void frame_dealloc(PyObject* self) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  frame_give_back(f);  // no export can be live: each holds a reference to this frame
  f->held.~HeldFrame();
  Py_XDECREF(f->owned);
  Py_DECREF(f->owner);
  tp->tp_free(self);
  Py_DECREF(tp);
}

int frame_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  if (f->release_requested) {
    PyErr_Format(PyExc_ValueError, "flatlane: frame %llu was released", static_cast<unsigned long long>(f->seq));
    view->obj = nullptr;
    return -1;
  }
  // Read-only: the frame belongs to the writer's ring; a writable request fails here.
  if (PyBuffer_FillInfo(view, self, const_cast<std::byte*>(f->data), static_cast<Py_ssize_t>(f->size), 1, flags) < 0)
    return -1;
  ++f->exports;
  return 0;
}

void frame_releasebuffer(PyObject* self, Py_buffer*) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  if (--f->exports == 0 && f->release_requested) frame_give_back(f);
}

PyObject* frame_release(PyObject* self, PyObject*) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  f->release_requested = true;
  if (f->exports == 0) frame_give_back(f);
  Py_RETURN_NONE;
}

PyObject* frame_enter(PyObject* self, PyObject*) {
  Py_INCREF(self);
  return self;
}

PyObject* frame_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
  frame_release(self, nullptr);
  Py_RETURN_FALSE;
}

PyObject* frame_get_data(PyObject* self, void*) { return PyMemoryView_FromObject(self); }

PyObject* frame_get_seq(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<FrameObject*>(self)->seq);
}

PyObject* frame_get_flags(PyObject* self, void*) {
  return PyLong_FromUnsignedLong(reinterpret_cast<FrameObject*>(self)->flags);
}

PyObject* frame_get_zero_copy(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<FrameObject*>(self)->zero_copy);
}

PyObject* frame_get_released(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<FrameObject*>(self)->release_requested);
}

PyObject* frame_get_chunk(PyObject* self, void*) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  if ((f->flags & fl::wire::kFrameChunked) == 0) Py_RETURN_NONE;
  return Py_BuildValue("(kkK)", static_cast<unsigned long>(f->chunk.index), static_cast<unsigned long>(f->chunk.count),
                       static_cast<unsigned long long>(f->chunk.message_size));
}

Py_ssize_t frame_len(PyObject* self) { return static_cast<Py_ssize_t>(reinterpret_cast<FrameObject*>(self)->size); }

// numpy.frombuffer over the frame: zero copy, read-only, and the array pins the frame.
PyObject* frame_numpy(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"dtype", "count", "offset", nullptr};
  PyObject* dtype = nullptr;
  Py_ssize_t count = -1;
  Py_ssize_t offset = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Onn:numpy", const_cast<char**>(kwlist), &dtype, &count, &offset))
    return nullptr;
  PyObject* np = PyImport_ImportModule("numpy");
  if (np == nullptr) return nullptr;
  PyObject* frombuffer = PyObject_GetAttrString(np, "frombuffer");
  Py_DECREF(np);
  if (frombuffer == nullptr) return nullptr;
  PyObject* result = nullptr;
  PyObject* call_args = Py_BuildValue("(O)", self);
  PyObject* call_kw = Py_BuildValue("{s:O,s:n,s:n}", "dtype", dtype ? dtype : Py_None, "count", count, "offset", offset);
  if (call_args && call_kw) result = PyObject_Call(frombuffer, call_args, call_kw);
  Py_XDECREF(call_args);
  Py_XDECREF(call_kw);
  Py_DECREF(frombuffer);
  return result;
}

PyObject* frame_repr(PyObject* self) {
  auto* f = reinterpret_cast<FrameObject*>(self);
  return PyUnicode_FromFormat("<flatlane.Frame seq=%llu size=%zu%s%s%s>", static_cast<unsigned long long>(f->seq),
                              f->size, (f->flags & fl::wire::kFrameChunked) ? " chunk" : "",
                              f->zero_copy ? "" : " copy", f->release_requested ? " released" : "");
}

template <class F>
PyCFunction as_cfunction(F* f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

PyMethodDef frame_methods[] = {
    {"release", frame_release, METH_NOARGS,
     "Give the frame's ring space back to the writer. Takes effect once no memoryview or array of "
     "the frame is alive; `data` refuses new views from now on. Idempotent."},
    {"numpy", as_cfunction(frame_numpy), METH_VARARGS | METH_KEYWORDS,
     "numpy(dtype=None, count=-1, offset=0) -> numpy.ndarray\n\nA read-only NumPy array over the "
     "frame's bytes (numpy.frombuffer, zero copy). The array keeps the frame held."},
    {"__enter__", frame_enter, METH_NOARGS, nullptr},
    {"__exit__", as_cfunction(frame_exit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef frame_getset[] = {
    {"data", frame_get_data, nullptr,
     "Read-only memoryview of the payload, in shared memory (zero copy). Each access makes a new view; "
     "the frame stays held while any view is alive.",
     nullptr},
    {"seq", frame_get_seq, nullptr, "The frame's sequence number (1-based, per channel).", nullptr},
    {"flags", frame_get_flags, nullptr, "Wire flags (docs/PROTOCOL.md).", nullptr},
    {"chunk", frame_get_chunk, nullptr, "(index, count, message_size) for a chunk of a large message, else None.",
     nullptr},
    {"released", frame_get_released, nullptr, "True once release() was called.", nullptr},
    {"zero_copy", frame_get_zero_copy, nullptr,
     "True if `data` lies in the ring; False for a message of read_message() reassembled from chunks "
     "(then `data` is a private copy).",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// Calling convention of the raw methods: return a new reference, or nullptr with a Python error
// set. C++ exceptions never cross into CPython.

template <class F>
PyObject* guarded(F&& f) noexcept {
  try {
    return f();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// Parses (first, timeout=None) from a METH_FASTCALL | METH_KEYWORDS call.
bool parse_one_and_timeout(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                           PyObject** first, PyObject** timeout) {
  *first = nullptr;
  *timeout = nullptr;
  if (nargs > 2) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments (%zd given)", fn, nargs);
    return false;
  }
  if (nargs >= 1) *first = args[0];
  if (nargs == 2) *timeout = args[1];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    PyObject* value = args[nargs + i];
    if (PyUnicode_CompareWithASCIIString(key, "timeout") == 0 && *timeout == nullptr) {
      *timeout = value;
    } else if (*first == nullptr && (PyUnicode_CompareWithASCIIString(key, "n") == 0 ||
                                     PyUnicode_CompareWithASCIIString(key, "data") == 0)) {
      *first = value;
    } else {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument '%U'", fn, key);
      return false;
    }
  }
  if (*first == nullptr) {
    PyErr_Format(PyExc_TypeError, "%s() missing its first argument", fn);
    return false;
  }
  return true;
}

bool parse_timeout_only(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        nanoseconds* timeout) {
  PyObject* t = nullptr;
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fn, nargs);
    return false;
  }
  if (nargs == 1) t = args[0];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, i);
    if (PyUnicode_CompareWithASCIIString(key, "timeout") != 0 || t != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument '%U'", fn, key);
      return false;
    }
    t = args[nargs + i];
  }
  return to_timeout(t, timeout);
}

bool to_size(PyObject* o, size_t* out) {
  const size_t v = PyLong_AsSize_t(o);
  if (v == static_cast<size_t>(-1) && PyErr_Occurred()) return false;
  *out = v;
  return true;
}

PyObject* stats_tuple(const fl::EndpointStats& s) {
  return Py_BuildValue("(KKKKK)", static_cast<unsigned long long>(s.frames), static_cast<unsigned long long>(s.messages),
                       static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.occupancy_bytes),
                       static_cast<unsigned long long>(s.capacity_bytes));
}

// Holds a Py_buffer for the duration of a call.
class BufferView {
 public:
  BufferView() = default;
  ~BufferView() {
    if (held_) PyBuffer_Release(&view_);
  }
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;
  bool get(PyObject* obj) {
    held_ = PyObject_GetBuffer(obj, &view_, PyBUF_SIMPLE) == 0;
    return held_;
  }
  std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(view_.buf), static_cast<size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

// ------------------------------------------------------------------------------------------------
// Options (from the keyword arguments of Writer/Reader.__init__).

bool parse_options(PyObject* args, PyObject* kwargs, bool reader, std::string* name, fl::ChannelOptions* o) {
  static const char* writer_kw[] = {"name", "mode", "ring_capacity", "max_frame_payload", "chunk_size",
                                    "permissions", "type_name", "type_hash", "wait", "spin_budget_ns",
                                    "liveness_interval_ns", "unlink_on_close", "type_name_only", nullptr};
  static const char* reader_kw[] = {"name", "mode", "ring_capacity", "max_frame_payload", "chunk_size",
                                    "permissions", "type_name", "type_hash", "wait", "spin_budget_ns",
                                    "liveness_interval_ns", "unlink_on_close", "type_name_only",
                                    "max_message_size", nullptr};
  const char* name_c = nullptr;
  Py_ssize_t name_len = 0;
  const char* type_c = "";
  Py_ssize_t type_len = 0;
  int mode = 2, wait = 1, unlink = 1, name_only = 0;
  unsigned long long ring = 1ull << 20, hash = 0, max_message = 1ull << 32;
  unsigned int max_frame = 0, chunk = 0, perms = 0600;
  long long spin_ns = 50'000, liveness_ns = 50'000'000;
  const int ok =
      reader ? PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$iKIIIs#KiLLppK:Reader", const_cast<char**>(reader_kw),
                                           &name_c, &name_len, &mode, &ring, &max_frame, &chunk, &perms, &type_c,
                                           &type_len, &hash, &wait, &spin_ns, &liveness_ns, &unlink, &name_only,
                                           &max_message)
             : PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$iKIIIs#KiLLpp:Writer", const_cast<char**>(writer_kw),
                                           &name_c, &name_len, &mode, &ring, &max_frame, &chunk, &perms, &type_c,
                                           &type_len, &hash, &wait, &spin_ns, &liveness_ns, &unlink, &name_only);
  if (!ok) return false;
  if (mode < 0 || mode > 2) {
    PyErr_SetString(PyExc_ValueError, "flatlane: mode must be 0 (create), 1 (open) or 2 (create_or_open)");
    return false;
  }
  if (wait < 0 || wait > 2) {
    PyErr_SetString(PyExc_ValueError, "flatlane: wait must be 0 (busy_spin), 1 (spin_then_sleep) or 2 (blocking)");
    return false;
  }
  if (spin_ns < 0 || liveness_ns <= 0) {
    PyErr_SetString(PyExc_ValueError, "flatlane: spin budget must be >= 0 and liveness interval > 0");
    return false;
  }
  if (perms > 0777) {
    PyErr_SetString(PyExc_ValueError, "flatlane: permissions must be a file mode like 0o600");
    return false;
  }
  name->assign(name_c, static_cast<size_t>(name_len));
  o->mode = static_cast<fl::OpenMode>(mode);
  o->segment.ring_capacity = ring;
  o->segment.max_frame_payload = max_frame;
  o->segment.chunk_size = chunk;
  o->segment.mode = static_cast<mode_t>(perms);
  o->segment.type.name.assign(type_c, static_cast<size_t>(type_len));
  o->segment.type.hash = hash;
  o->segment.type.name_only = name_only != 0;
  o->wait.strategy = static_cast<fl::WaitStrategy>(wait);
  o->wait.spin_budget = nanoseconds(spin_ns);
  o->wait.liveness_interval = nanoseconds(liveness_ns);
  o->max_message_size = max_message;
  o->unlink_on_close = unlink != 0;
  return true;
}

// ------------------------------------------------------------------------------------------------
// Writer

struct WriterObject {
  PyObject_HEAD
  std::string name;
  std::shared_ptr<WriterCore> core;  // null once closed (or before __init__)
  PyObject* mapping;                 // the mapping object exporting reservations; null once closed
};

PyTypeObject* g_writer_type = nullptr;
PyTypeObject* g_reader_type = nullptr;

// The core of an open endpoint, or nullptr with ClosedError set.
template <class Obj, class Core>
Core* open_core(Obj* self, const char* role) {
  if (self->core) return self->core.get();
  set_errc(fl::Errc::closed, std::string(role) + " of channel '" + self->name + "' is closed", self->name, role);
  return nullptr;
}

PyObject* writer_fail(WriterObject* self, fl::Errc e, const std::string& op, nanoseconds timeout) {
  std::string d = op + " on channel '" + self->name + "'";
  if (e == fl::Errc::timeout) d += ": no ring space within " + ms_text(timeout);
  if (e == fl::Errc::message_too_large && self->core)
    d += ": larger than max_frame_payload " + std::to_string(self->core->w.max_frame_payload()) +
         " (send() chunks large messages)";
  if (e == fl::Errc::peer_dead) d += ": the reader process died";
  if (e == fl::Errc::peer_closed) d += ": the reader closed the channel";
  set_errc(e, d, self->name, "writer");
  return nullptr;
}

PyObject* writer_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* o = type->tp_alloc(type, 0);
  if (o == nullptr) return nullptr;
  auto* w = reinterpret_cast<WriterObject*>(o);
  new (&w->name) std::string();
  new (&w->core) std::shared_ptr<WriterCore>();
  w->mapping = nullptr;
  return o;
}

void writer_close_impl(WriterObject* self) {
  if (!self->core) return;
  self->core->w.close();  // thread-safe: wakes a reserve() blocked in another thread
  self->core->reserved = false;
  self->core.reset();
  Py_CLEAR(self->mapping);  // views still alive keep the mapping (and the segment) until they go
}

void writer_dealloc(PyObject* o) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  PyTypeObject* tp = Py_TYPE(o);
  writer_close_impl(self);
  self->core.~shared_ptr();
  self->name.~basic_string();
  tp->tp_free(o);
  Py_DECREF(tp);
}

int writer_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  if (self->core) {
    PyErr_SetString(PyExc_RuntimeError, "flatlane: Writer is already initialised");
    return -1;
  }
  std::string name;
  fl::ChannelOptions opts;
  if (!parse_options(args, kwargs, false, &name, &opts)) return -1;
  self->name = name;
  std::shared_ptr<WriterCore> core;
  PyObject* r = guarded([&]() -> PyObject* {
    try {
      py::gil_scoped_release nogil;  // creating a segment prefaults it and may take a while
      core = std::make_shared<WriterCore>(name, opts);
    } catch (const fl::Error& e) {
      set_setup_error(e, name, "writer");
      return nullptr;
    }
    Py_RETURN_NONE;
  });
  if (r == nullptr) return -1;
  Py_DECREF(r);
  PyObject* mapping = guarded([&] { return new_mapping(core, nullptr); });
  if (mapping == nullptr) return -1;
  self->core = std::move(core);
  self->mapping = mapping;
  return 0;
}

PyObject* writer_reserve(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  PyObject *n_obj, *t_obj;
  size_t n;
  nanoseconds timeout;
  if (!parse_one_and_timeout("reserve", args, nargs, kwnames, &n_obj, &t_obj) || !to_size(n_obj, &n) ||
      !to_timeout(t_obj, &timeout))
    return nullptr;
  WriterCore* c = open_core<WriterObject, WriterCore>(self, "writer");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    fl::Result<std::span<std::byte>> r = fl::Errc::timeout;
    {
      std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
      if (lk.owns_lock()) r = c->w.reserve(n, nanoseconds(0));
    }
    std::shared_ptr<WriterCore> keep;  // set while the GIL is released: a concurrent close() drops ours
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      keep = self->core;
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lk(c->mu);
      r = c->w.reserve(n, timeout);
    }
    if (r && !self->core) r = fl::Errc::closed;  // closed meanwhile: nothing left to export from
    if (!r) {
      c->reserved = false;  // a failed reserve leaves no reservation in C++ either
      return writer_fail(self, r.error(), "reserve(" + std::to_string(n) + ")", timeout);
    }
    c->res_ptr = r->data();
    c->res_len = r->size();
    c->reserved = true;
    return PyMemoryView_FromObject(self->mapping);
  });
}

// Runs `f` with the writer's mutex; waits for it without the GIL if another thread holds it.
template <class F>
void with_writer_lock(WriterObject* self, WriterCore* c, F&& f) {
  std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
  std::shared_ptr<WriterCore> keep;
  if (!lk.owns_lock()) {
    keep = self->core;
    py::gil_scoped_release nogil;
    lk.lock();
  }
  f();
}

PyObject* writer_publish(PyObject* o, PyObject* used_obj, bool tail) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  size_t used;
  if (!to_size(used_obj, &used)) return nullptr;
  WriterCore* c = open_core<WriterObject, WriterCore>(self, "writer");
  if (c == nullptr) return nullptr;
  if (!c->reserved) {
    PyErr_SetString(PyExc_ValueError, "flatlane: commit without a reservation (reserve() first)");
    return nullptr;
  }
  if (used > c->res_len) {
    PyErr_Format(PyExc_ValueError, "flatlane: commit of %zu bytes exceeds the reservation of %zu", used, c->res_len);
    return nullptr;
  }
  return guarded([&]() -> PyObject* {
    with_writer_lock(self, c, [&] { tail ? c->w.commit_tail(used) : c->w.commit(used); });
    c->reserved = false;
    Py_RETURN_NONE;
  });
}

PyObject* writer_commit(PyObject* o, PyObject* used) { return writer_publish(o, used, false); }
PyObject* writer_commit_tail(PyObject* o, PyObject* used) { return writer_publish(o, used, true); }

PyObject* writer_abort(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  WriterCore* c = open_core<WriterObject, WriterCore>(self, "writer");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    with_writer_lock(self, c, [&] { c->w.abort(); });
    c->reserved = false;
    Py_RETURN_NONE;
  });
}

PyObject* writer_send(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  PyObject *data_obj, *t_obj;
  nanoseconds timeout;
  if (!parse_one_and_timeout("send", args, nargs, kwnames, &data_obj, &t_obj) || !to_timeout(t_obj, &timeout))
    return nullptr;
  WriterCore* c = open_core<WriterObject, WriterCore>(self, "writer");
  if (c == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(data_obj)) return nullptr;  // not bytes-like, or a non-contiguous array
  const auto bytes = buf.bytes();
  return guarded([&]() -> PyObject* {
    const std::string op = "send(" + std::to_string(bytes.size()) + " bytes)";
    c->reserved = false;  // writing a message voids any reservation (C++ reuses its state)
    // Small messages: copy with the GIL held when space is there right away.
    if (bytes.size() <= c->w.max_frame_payload() && bytes.size() <= kCopyWithoutGil) {
      std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
      if (lk.owns_lock()) {
        auto r = c->w.reserve(bytes.size(), nanoseconds(0));
        if (r) {
          if (!bytes.empty()) std::memcpy(r->data(), bytes.data(), bytes.size());
          c->w.commit(bytes.size());
          Py_RETURN_NONE;
        }
        if (r.error() != fl::Errc::timeout || timeout.count() == 0) {
          lk.unlock();
          return writer_fail(self, r.error(), op, timeout);
        }
      } else if (timeout.count() == 0) {
        return writer_fail(self, fl::Errc::timeout, op, timeout);
      }
    }
    fl::Result<void> r;
    {
      std::shared_ptr<WriterCore> keep = self->core;
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lk(c->mu);
      r = c->w.write_message(bytes, timeout);
    }
    if (!r) return writer_fail(self, r.error(), op, timeout);
    Py_RETURN_NONE;
  });
}

PyObject* writer_close(PyObject* o, PyObject*) {
  writer_close_impl(reinterpret_cast<WriterObject*>(o));
  Py_RETURN_NONE;
}

PyObject* writer_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<WriterObject*>(o);
  WriterCore* c = open_core<WriterObject, WriterCore>(self, "writer");
  if (c == nullptr) return nullptr;
  return stats_tuple(c->w.stats());  // shared counters only: safe while another thread waits
}

PyObject* writer_get_closed(PyObject* o, void*) { return PyBool_FromLong(!reinterpret_cast<WriterObject*>(o)->core); }
PyObject* writer_get_name(PyObject* o, void*) {
  const std::string& n = reinterpret_cast<WriterObject*>(o)->name;
  return PyUnicode_FromStringAndSize(n.data(), static_cast<Py_ssize_t>(n.size()));
}
PyObject* writer_get_max_frame(PyObject* o, void*) {
  WriterCore* c = open_core<WriterObject, WriterCore>(reinterpret_cast<WriterObject*>(o), "writer");
  return c ? PyLong_FromUnsignedLong(c->w.max_frame_payload()) : nullptr;
}
PyObject* writer_get_chunk(PyObject* o, void*) {
  WriterCore* c = open_core<WriterObject, WriterCore>(reinterpret_cast<WriterObject*>(o), "writer");
  return c ? PyLong_FromUnsignedLong(c->w.chunk_size()) : nullptr;
}
PyObject* writer_get_capacity(PyObject* o, void*) {
  WriterCore* c = open_core<WriterObject, WriterCore>(reinterpret_cast<WriterObject*>(o), "writer");
  return c ? PyLong_FromUnsignedLongLong(c->w.segment().ring_capacity()) : nullptr;
}
PyObject* writer_get_peer(PyObject* o, void*) {
  WriterCore* c = open_core<WriterObject, WriterCore>(reinterpret_cast<WriterObject*>(o), "writer");
  return c ? PyBool_FromLong(c->w.peer_attached()) : nullptr;
}

PyMethodDef writer_methods[] = {
    {"reserve", as_cfunction(writer_reserve), METH_FASTCALL | METH_KEYWORDS,
     "reserve(n, timeout=None) -> memoryview\n\nA writable view of exactly n bytes inside the ring (16-byte "
     "aligned). Fill it, then commit(used), commit_tail(used) or abort(); the view must not be written "
     "after that. timeout in milliseconds; None waits forever, 0 never waits. Raises BufferFullError when "
     "no space came in time, MessageTooLargeError when n > max_frame_payload."},
    {"commit", writer_commit, METH_O, "commit(used)\n\nPublish the first `used` bytes of the reservation."},
    {"commit_tail", writer_commit_tail, METH_O,
     "commit_tail(used)\n\nPublish the last `used` bytes of the reservation where they are (a FlatBuffers "
     "builder's output, built back to front)."},
    {"abort", writer_abort, METH_NOARGS, "Drop the reservation; nothing is published."},
    {"send", as_cfunction(writer_send), METH_FASTCALL | METH_KEYWORDS,
     "send(data, timeout=None)\n\nCopy a bytes-like object (bytes, bytearray, memoryview, C-contiguous NumPy "
     "array) into the ring as one message, chunked when larger than max_frame_payload. The timeout (ms) "
     "bounds each wait for space, not the whole transfer."},
    {"close", writer_close, METH_NOARGS, "Detach from the channel (idempotent)."},
    {"_stats", writer_stats, METH_NOARGS, "(frames, messages, bytes, occupancy_bytes, capacity_bytes)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef writer_getset[] = {
    {"closed", writer_get_closed, nullptr, "True once close() was called.", nullptr},
    {"name", writer_get_name, nullptr, "The channel name.", nullptr},
    {"max_frame_payload", writer_get_max_frame, nullptr, "Largest n reserve() accepts.", nullptr},
    {"chunk_size", writer_get_chunk, nullptr, "Frame size of the chunks of a large message.", nullptr},
    {"ring_capacity", writer_get_capacity, nullptr, "Ring bytes.", nullptr},
    {"peer_attached", writer_get_peer, nullptr, "True while a live reader is attached.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// Reader

struct ReaderObject {
  PyObject_HEAD
  std::string name;
  std::shared_ptr<ReaderCore> core;
  PyObject* mapping;  // owner of the frames' mapping; null once closed
};

PyObject* reader_fail(ReaderObject* self, fl::Errc e, const std::string& op, nanoseconds timeout) {
  std::string d = op + " on channel '" + self->name + "'";
  if (e == fl::Errc::timeout) d += ": nothing arrived within " + ms_text(timeout);
  if (e == fl::Errc::peer_dead) d += ": the writer process died";
  if (e == fl::Errc::peer_closed) d += ": the writer closed the channel";
  if (e == fl::Errc::message_too_large) d += ": the message exceeds max_message_size";
  set_errc(e, d, self->name, "reader");
  return nullptr;
}

PyObject* reader_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* o = type->tp_alloc(type, 0);
  if (o == nullptr) return nullptr;
  auto* r = reinterpret_cast<ReaderObject*>(o);
  new (&r->name) std::string();
  new (&r->core) std::shared_ptr<ReaderCore>();
  r->mapping = nullptr;
  return o;
}

void reader_close_impl(ReaderObject* self) {
  if (!self->core) return;
  self->core->closed.store(true, std::memory_order_release);
  self->core->r.close();  // thread-safe: wakes a read() blocked in another thread
  self->core.reset();
  Py_CLEAR(self->mapping);  // frames still alive keep the mapping (and the segment)
}

void reader_dealloc(PyObject* o) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  PyTypeObject* tp = Py_TYPE(o);
  reader_close_impl(self);
  self->core.~shared_ptr();
  self->name.~basic_string();
  tp->tp_free(o);
  Py_DECREF(tp);
}

int reader_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  if (self->core) {
    PyErr_SetString(PyExc_RuntimeError, "flatlane: Reader is already initialised");
    return -1;
  }
  std::string name;
  fl::ChannelOptions opts;
  if (!parse_options(args, kwargs, true, &name, &opts)) return -1;
  self->name = name;
  std::shared_ptr<ReaderCore> core;
  PyObject* r = guarded([&]() -> PyObject* {
    try {
      py::gil_scoped_release nogil;
      core = std::make_shared<ReaderCore>(name, opts);
    } catch (const fl::Error& e) {
      set_setup_error(e, name, "reader");
      return nullptr;
    }
    Py_RETURN_NONE;
  });
  if (r == nullptr) return -1;
  Py_DECREF(r);
  PyObject* mapping = guarded([&] { return new_mapping(nullptr, core); });
  if (mapping == nullptr) return -1;
  self->core = std::move(core);
  self->mapping = mapping;
  return 0;
}

// Waits in slices (GIL released, `mu` held) so frames given back by other threads are released
// between slices. The timeout counts time without progress, as in C++: chunks arriving for a
// message being reassembled restart it.
template <class Op>
auto wait_sliced(ReaderCore& c, std::unique_lock<std::mutex>& lk, nanoseconds timeout, Op&& op)
    -> decltype(op(timeout)) {
  const bool forever = timeout.count() < 0;
  auto deadline = forever ? fl::Clock::time_point::max() : fl::Clock::now() + timeout;
  uint32_t chunks = c.r.chunks_received();
  for (;;) {
    nanoseconds slice = kWaitSlice;
    if (!forever) {
      const auto left = std::chrono::duration_cast<nanoseconds>(deadline - fl::Clock::now());
      slice = std::max(nanoseconds(0), std::min(slice, left));
    }
    auto r = op(slice);
    if (r || r.error() != fl::Errc::timeout) return r;
    const auto now = fl::Clock::now();
    if (c.r.chunks_received() != chunks) {
      chunks = c.r.chunks_received();
      if (!forever) deadline = now + timeout;
    } else if (!forever && now >= deadline) {
      return r;
    }
    // Between slices: release what other threads gave back, and let a thread waiting for `mu`
    // (dropped_partial_messages, a second reading thread) in.
    c.unlock(lk);
    std::this_thread::yield();
    lk.lock();
  }
}

PyObject* reader_read(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("read", args, nargs, kwnames, &timeout)) return nullptr;
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(self, "reader");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<ReaderCore> keep;  // set while the GIL is released: a concurrent close() drops ours
    std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
    fl::Result<fl::Frame> r = fl::Errc::timeout;
    if (lk.owns_lock()) r = c->r.read(nanoseconds(0));
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      keep = self->core;
      py::gil_scoped_release nogil;
      if (!lk.owns_lock()) lk.lock();
      r = wait_sliced(*c, lk, timeout, [&](nanoseconds t) { return c->r.read(t); });
    }
    PyObject* f = nullptr;
    if (r) {
      if (!self->core) {
        // Closed by another thread after the frame arrived: leave it to the next reader.
        HeldFrame h;
        h.emplace(std::move(r).value());
        h.abandon();
        r = fl::Errc::closed;
      } else {
        fl::Frame frame = std::move(r).value();
        f = new_frame(self->mapping, c, std::move(frame));
      }  // `frame` (live only if new_frame failed) is released here, under `mu`
    }
    if (lk.owns_lock()) c->unlock(lk);
    if (!r) return reader_fail(self, r.error(), "read()", timeout);
    return f;
  });
}

PyObject* reader_read_message(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("read_message", args, nargs, kwnames, &timeout)) return nullptr;
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(self, "reader");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<ReaderCore> keep;
    std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
    fl::Result<fl::Message> r = fl::Errc::timeout;
    if (lk.owns_lock()) r = c->r.read_message(nanoseconds(0));
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      keep = self->core;
      py::gil_scoped_release nogil;
      if (!lk.owns_lock()) lk.lock();
      r = wait_sliced(*c, lk, timeout, [&](nanoseconds t) { return c->r.read_message(t); });
    }
    PyObject* f = nullptr;
    bool failed = false;
    if (r) {
      fl::Message msg = std::move(r).value();
      if (!self->core) {
        // Closed by another thread after the message arrived: a message in place goes to the
        // next reader (abandoned, as read() does); a reassembled one was consumed with the close.
        if (msg.zero_copy()) {
          HeldFrame h;
          h.emplace(std::move(msg));
          h.abandon();
        }
        r = fl::Errc::closed;
      } else {
        f = new_message_frame(self->mapping, c, std::move(msg));
        failed = f == nullptr;
      }
    }  // `msg` (live only if new_message_frame failed) is released here, under `mu`
    if (lk.owns_lock()) c->unlock(lk);
    if (failed) return nullptr;  // MemoryError
    if (!r) return reader_fail(self, r.error(), "read_message()", timeout);
    return f;
  });
}

PyObject* reader_recv(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("recv", args, nargs, kwnames, &timeout)) return nullptr;
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(self, "reader");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<ReaderCore> keep;
    std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
    fl::Result<fl::Message> r = fl::Errc::timeout;
    if (lk.owns_lock()) r = c->r.read_message(nanoseconds(0));
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      keep = self->core;
      py::gil_scoped_release nogil;
      if (!lk.owns_lock()) lk.lock();
      r = wait_sliced(*c, lk, timeout, [&](nanoseconds t) { return c->r.read_message(t); });
    }
    PyObject* out = nullptr;
    if (r) {
      // A message read before a concurrent close() was consumed: it is still delivered.
      fl::Message msg = std::move(r).value();
      const auto data = msg.data();  // a held frame or the reassembly buffer: valid while we hold `mu`
      out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size()));
      if (out != nullptr && data.size() > kCopyWithoutGil) {
        py::gil_scoped_release nogil;
        std::memcpy(PyBytes_AS_STRING(out), data.data(), data.size());
      } else if (out != nullptr && !data.empty()) {
        std::memcpy(PyBytes_AS_STRING(out), data.data(), data.size());
      }
    }  // `msg` releases its frame here, under `mu`
    if (lk.owns_lock()) c->unlock(lk);
    if (!r) return reader_fail(self, r.error(), "recv()", timeout);
    return out;
  });
}

PyObject* reader_close(PyObject* o, PyObject*) {
  reader_close_impl(reinterpret_cast<ReaderObject*>(o));
  Py_RETURN_NONE;
}

// Runs `f` with the reader's mutex; a read blocked in another thread gives it up within a slice.
template <class F>
auto with_reader_lock(ReaderObject* self, ReaderCore* c, F&& f) -> decltype(f()) {
  std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
  std::shared_ptr<ReaderCore> keep;
  if (!lk.owns_lock()) {
    keep = self->core;
    py::gil_scoped_release nogil;
    lk.lock();
  }
  auto v = f();
  c->unlock(lk);
  return v;
}

PyObject* reader_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(self, "reader");
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::unique_lock<std::mutex> lk(c->mu, std::try_to_lock);
    if (lk.owns_lock()) {
      const fl::EndpointStats s = c->r.stats();
      c->unlock(lk);
      return stats_tuple(s);
    }
    // Another thread is blocked in a read: report the counters the reader publishes in shared
    // memory (they may lag by frames not yet published) rather than wait for it.
    const fl::Segment& seg = c->r.segment();
    fl::EndpointStats s;
    s.frames = seg.reader_block().count.load(std::memory_order_relaxed);
    s.messages = seg.reader_block().messages.load(std::memory_order_relaxed);
    s.bytes = seg.reader_block().bytes.load(std::memory_order_relaxed);
    s.occupancy_bytes =
        seg.writer_block().pos.load(std::memory_order_relaxed) - seg.reader_block().pos.load(std::memory_order_relaxed);
    s.capacity_bytes = seg.ring_capacity();
    return stats_tuple(s);
  });
}

PyObject* reader_get_closed(PyObject* o, void*) { return PyBool_FromLong(!reinterpret_cast<ReaderObject*>(o)->core); }
PyObject* reader_get_name(PyObject* o, void*) {
  const std::string& n = reinterpret_cast<ReaderObject*>(o)->name;
  return PyUnicode_FromStringAndSize(n.data(), static_cast<Py_ssize_t>(n.size()));
}
PyObject* reader_get_max_frame(PyObject* o, void*) {
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(reinterpret_cast<ReaderObject*>(o), "reader");
  return c ? PyLong_FromUnsignedLong(c->r.segment().max_frame_payload()) : nullptr;
}
PyObject* reader_get_chunk(PyObject* o, void*) {
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(reinterpret_cast<ReaderObject*>(o), "reader");
  return c ? PyLong_FromUnsignedLong(c->r.segment().chunk_size()) : nullptr;
}
PyObject* reader_get_capacity(PyObject* o, void*) {
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(reinterpret_cast<ReaderObject*>(o), "reader");
  return c ? PyLong_FromUnsignedLongLong(c->r.segment().ring_capacity()) : nullptr;
}
PyObject* reader_get_peer(PyObject* o, void*) {
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(reinterpret_cast<ReaderObject*>(o), "reader");
  return c ? PyBool_FromLong(c->r.peer_attached()) : nullptr;
}
PyObject* reader_get_held(PyObject* o, void*) {
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(reinterpret_cast<ReaderObject*>(o), "reader");
  return c ? PyLong_FromUnsignedLongLong(c->held.load(std::memory_order_relaxed)) : nullptr;
}
PyObject* reader_get_dropped(PyObject* o, void*) {
  auto* self = reinterpret_cast<ReaderObject*>(o);
  ReaderCore* c = open_core<ReaderObject, ReaderCore>(self, "reader");
  if (c == nullptr) return nullptr;
  return guarded([&] {
    const uint64_t n = with_reader_lock(self, c, [&] { return c->r.dropped_partial_messages(); });
    return PyLong_FromUnsignedLongLong(n);
  });
}

PyMethodDef reader_methods[] = {
    {"read", as_cfunction(reader_read), METH_FASTCALL | METH_KEYWORDS,
     "read(timeout=None) -> Frame\n\nThe next frame (a whole small message, or one chunk of a large one), "
     "zero copy. timeout in milliseconds; None waits forever, 0 never waits."},
    {"read_message", as_cfunction(reader_read_message), METH_FASTCALL | METH_KEYWORDS,
     "read_message(timeout=None) -> Frame\n\nThe next whole message as a Frame: zero copy when it came in one "
     "frame (frame.zero_copy), else reassembled from its chunks into a private copy. The timeout (ms) bounds "
     "each wait without progress."},
    {"recv", as_cfunction(reader_recv), METH_FASTCALL | METH_KEYWORDS,
     "recv(timeout=None) -> bytes\n\nThe next whole message (chunks reassembled), copied out of shared "
     "memory. The timeout (ms) bounds each wait without progress."},
    {"close", reader_close, METH_NOARGS, "Detach from the channel (idempotent)."},
    {"_stats", reader_stats, METH_NOARGS, "(frames, messages, bytes, occupancy_bytes, capacity_bytes)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef reader_getset[] = {
    {"closed", reader_get_closed, nullptr, "True once close() was called.", nullptr},
    {"name", reader_get_name, nullptr, "The channel name.", nullptr},
    {"max_frame_payload", reader_get_max_frame, nullptr, "Largest frame payload of the channel.", nullptr},
    {"chunk_size", reader_get_chunk, nullptr, "Frame size of the chunks of a large message.", nullptr},
    {"ring_capacity", reader_get_capacity, nullptr, "Ring bytes.", nullptr},
    {"peer_attached", reader_get_peer, nullptr, "True while a live writer is attached.", nullptr},
    {"held_frames", reader_get_held, nullptr, "Frames returned by read() and not yet released.", nullptr},
    {"dropped_partial_messages", reader_get_dropped, nullptr,
     "Chunked messages abandoned half-way (writer died, restarted or timed out mid-message).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject* make_type(PyType_Spec* spec) {
  PyObject* t = PyType_FromSpec(spec);
  if (t == nullptr) throw py::error_already_set();
  return reinterpret_cast<PyTypeObject*>(t);
}

}  // namespace

// The module is pybind11's; the types are plain CPython heap types because their methods are the
// hot path: pybind11's dispatcher costs ~230 ns per call on the development machine against
// ~60 ns for a METH_FASTCALL function (docs/PYTHON.md).
PYBIND11_MODULE(_native, m) {
  m.doc() = "Flatlane C++ runtime binding (use the `flatlane` package, not this module).";

  static PyType_Slot mapping_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(mapping_dealloc)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(mapping_getbuffer)},
      {Py_tp_doc, const_cast<char*>("Owner of one endpoint's shared-memory mapping (internal).")},
      {0, nullptr}};
  static PyType_Spec mapping_spec = {"flatlane._native.Mapping", sizeof(MappingObject), 0,
                                     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, mapping_slots};
  static PyType_Slot frame_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(frame_dealloc)},
      {Py_tp_methods, frame_methods},
      {Py_tp_getset, frame_getset},
      {Py_tp_repr, reinterpret_cast<void*>(frame_repr)},
      {Py_sq_length, reinterpret_cast<void*>(frame_len)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(frame_getbuffer)},
      {Py_bf_releasebuffer, reinterpret_cast<void*>(frame_releasebuffer)},
      {Py_tp_doc, const_cast<char*>("A received frame: a zero-copy, read-only view into the channel's ring. "
                                    "Release it (release(), `with`, or by dropping it) to free its space.")},
      {0, nullptr}};
  static PyType_Spec frame_spec = {"flatlane._native.Frame", sizeof(FrameObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, frame_slots};
  static PyType_Slot writer_slots[] = {
      {Py_tp_new, reinterpret_cast<void*>(writer_new)},
      {Py_tp_init, reinterpret_cast<void*>(writer_init)},
      {Py_tp_dealloc, reinterpret_cast<void*>(writer_dealloc)},
      {Py_tp_methods, writer_methods},
      {Py_tp_getset, writer_getset},
      {Py_tp_doc, const_cast<char*>("Native writer endpoint; use flatlane.Writer.")},
      {0, nullptr}};
  static PyType_Spec writer_spec = {"flatlane._native.Writer", sizeof(WriterObject), 0,
                                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, writer_slots};
  static PyType_Slot reader_slots[] = {
      {Py_tp_new, reinterpret_cast<void*>(reader_new)},
      {Py_tp_init, reinterpret_cast<void*>(reader_init)},
      {Py_tp_dealloc, reinterpret_cast<void*>(reader_dealloc)},
      {Py_tp_methods, reader_methods},
      {Py_tp_getset, reader_getset},
      {Py_tp_doc, const_cast<char*>("Native reader endpoint; use flatlane.Reader.")},
      {0, nullptr}};
  static PyType_Spec reader_spec = {"flatlane._native.Reader", sizeof(ReaderObject), 0,
                                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, reader_slots};
  g_mapping_type = make_type(&mapping_spec);
  g_frame_type = make_type(&frame_spec);
  g_writer_type = make_type(&writer_spec);
  g_reader_type = make_type(&reader_spec);
  m.add_object("Mapping", reinterpret_cast<PyObject*>(g_mapping_type));
  m.add_object("Frame", reinterpret_cast<PyObject*>(g_frame_type));
  m.add_object("Writer", reinterpret_cast<PyObject*>(g_writer_type));
  m.add_object("Reader", reinterpret_cast<PyObject*>(g_reader_type));

  m.def(
      "_set_error_factory",
      [](py::object factory) {
        Py_XDECREF(g_error_factory);
        g_error_factory = factory.release().ptr();
      },
      "Registers callable(errc: int, message: str, channel: str, role: str) -> BaseException.");
  m.def("errc_name", [](int e) { return std::string(fl::to_string(static_cast<fl::Errc>(e))); });
  m.attr("PROTOCOL_VERSION") = fl::wire::kProtocolVersion;
}
