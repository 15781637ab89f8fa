// flatlane._native: the CPython binding of the C++ runtime (channels, topics, services).
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
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
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

// The mutex of a core: a std::mutex that knows whether a thread is blocked on it. A call that
// waits in slices gives the mutex up between slices so other threads get in (close(), stats, a
// release), but a plain unlock-yield-lock lets the waiting thread win the mutex back again and
// again before the woken thread runs: on the 2-core VM a close() sat behind a blocked receive for
// a minute. step_aside() waits, without the mutex, until the threads blocked on it are in.
class CoreMutex {
 public:
  void lock() {
    if (m_.try_lock()) return;
    blocked_.fetch_add(1, std::memory_order_relaxed);
    m_.lock();
    blocked_.fetch_sub(1, std::memory_order_release);
  }
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }
  // Called without the mutex. Bounded, in case threads keep arriving.
  void step_aside() const noexcept {
    for (int i = 0; i < 100000 && blocked_.load(std::memory_order_acquire) != 0; ++i) std::this_thread::yield();
  }

 private:
  std::mutex m_;
  std::atomic<uint32_t> blocked_{0};
};

using CoreLock = std::unique_lock<CoreMutex>;

struct WriterCore {
  WriterCore(const std::string& n, const fl::ChannelOptions& o) : name(n), w(n, o) {}
  const std::string name;
  fl::Writer w;
  CoreMutex mu;  // serialises calls into `w`
  // The live reservation, which the next exported memoryview covers. Set and read under the GIL.
  std::byte* res_ptr = nullptr;
  size_t res_len = 0;
  bool reserved = false;
};

struct ReaderCore {
  ReaderCore(const std::string& n, const fl::ChannelOptions& o) : name(n), r(n, o) {}
  const std::string name;
  fl::Reader r;  // declared before `pending`: pending frames are abandoned before it goes away
  CoreMutex mu;  // serialises calls into `r`
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
    CoreLock lk(mu, std::try_to_lock);
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
  void unlock(CoreLock& lk) noexcept {
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
      CoreLock lk(c->mu, std::try_to_lock);
      // Before a wait, poll with try_reserve: it does not raise `demand` (the wait does, after its
      // spin), which would make the reader publish on every release while the ring is full.
      if (lk.owns_lock()) r = timeout.count() != 0 ? c->w.try_reserve(n) : c->w.reserve(n, nanoseconds(0));
    }
    std::shared_ptr<WriterCore> keep;  // set while the GIL is released: a concurrent close() drops ours
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      keep = self->core;
      py::gil_scoped_release nogil;
      std::lock_guard<CoreMutex> lk(c->mu);
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
  CoreLock lk(c->mu, std::try_to_lock);
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
      CoreLock lk(c->mu, std::try_to_lock);
      if (lk.owns_lock()) {
        auto r = timeout.count() != 0 ? c->w.try_reserve(bytes.size()) : c->w.reserve(bytes.size(), nanoseconds(0));
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
      std::lock_guard<CoreMutex> lk(c->mu);
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
auto wait_sliced(ReaderCore& c, CoreLock& lk, nanoseconds timeout, Op&& op)
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
    c.mu.step_aside();
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
    CoreLock lk(c->mu, std::try_to_lock);
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
    CoreLock lk(c->mu, std::try_to_lock);
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
    CoreLock lk(c->mu, std::try_to_lock);
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
  CoreLock lk(c->mu, std::try_to_lock);
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
    CoreLock lk(c->mu, std::try_to_lock);
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


// ================================================================================================
// Topics and services.
//
// The same ownership and threading rules as the channel endpoints above, generalised: each C++
// endpoint lives in a core (PatternCore) behind a std::shared_ptr. The Python endpoint holds one
// reference; every received message object (Sample, Request, Reply) holds one, and so does the
// exporter behind every writable view (a loaned slot, a prepared reply or request). So the
// segments stay mapped until the last of them is gone, and close() never refuses.
//
// Unlike a channel reader's frames, a message released after its endpoint closed is released, not
// abandoned: a closed subscriber keeps its block claimed until its held samples come back (C++
// topic.cpp), a server's requests are samples of its subscriber, and a client's reply channel is
// its own (index and epoch in the name), so nobody else could take the messages over.
//
// A C++ topic or service endpoint's close() is not safe against a call running in another thread,
// so close() here takes the endpoint's mutex. Every wait holding that mutex runs in slices of
// kWaitSlice and checks the core's `closed` flag between slices, so close() waits at most one
// slice — except behind a publish() blocked by a block_publisher subscriber (up to that
// publisher's block_timeout) or a client's send() waiting for a free request slot, which the C++
// runtime does not slice.

struct NoHeld {};

template <class Ep, class Held>
struct PatternCore {
  template <class Opts>
  PatternCore(const std::string& n, const Opts& o) : name(n), ep(n, o) {}
  const std::string name;
  Ep ep;  // declared before `pending`: queued messages are released before the endpoint goes away
  CoreMutex mu;  // serialises calls into `ep`
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> held{0};  // messages handed to Python and not yet given back
  std::mutex pending_mu;
  std::vector<Held> pending;  // given back while another thread held `mu`
  std::atomic<bool> has_pending{false};
  uint64_t sent = 0, replies = 0;  // service clients: requests sent, replies received (under `mu`)

  // With `mu` held: releases the messages queued by other threads.
  void drain_locked() noexcept {
    if (!has_pending.load(std::memory_order_seq_cst)) return;
    std::vector<Held> batch;
    {
      std::lock_guard<std::mutex> g(pending_mu);
      batch.swap(pending);
      has_pending.store(false, std::memory_order_seq_cst);
    }
    batch.clear();  // each destructor releases its slot or frame
  }

  // Returns a message from Python (GIL held, so this never waits for `mu`).
  void give_back(Held&& h) noexcept {
    held.fetch_sub(1, std::memory_order_relaxed);
    CoreLock lk(mu, std::try_to_lock);
    if (lk.owns_lock()) {
      { Held done(std::move(h)); }
      drain_locked();
      return;
    }
    try {
      std::lock_guard<std::mutex> g(pending_mu);
      pending.push_back(std::move(h));
      has_pending.store(true, std::memory_order_seq_cst);
    } catch (const std::bad_alloc&) {
      // Out of memory for the queue: wait for the mutex instead (the holder waits in slices).
      lk.lock();
      { Held done(std::move(h)); }
      drain_locked();
      return;
    }
    if (lk.try_lock()) drain_locked();
  }

  void unlock(CoreLock& lk) noexcept {
    drain_locked();
    lk.unlock();
    if (has_pending.load(std::memory_order_seq_cst) && lk.try_lock()) {
      drain_locked();
      lk.unlock();
    }
  }
};

using PubCore = PatternCore<fl::TopicPublisher, NoHeld>;
using SubCore = PatternCore<fl::TopicSubscriber, fl::Sample>;
using ServerCore = PatternCore<fl::ServiceServer, fl::Request>;
using ClientCore = PatternCore<fl::ServiceClient, fl::Reply>;

// Sets the Python error; `full` turns a timeout into BufferFullError (a sender waiting for space).
void set_pattern_error(fl::Errc e, const std::string& detail, const std::string& name, const char* role, bool full) {
  const std::string msg = std::string("flatlane: ") + fl::to_string(e) + ": " + detail;
  if (g_error_factory == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, msg.c_str());
    return;
  }
  PyObject* exc = PyObject_CallFunction(g_error_factory, "isssi", static_cast<int>(e), msg.c_str(), name.c_str(), role,
                                        full ? 1 : 0);
  if (exc == nullptr) return;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
}

// Parses positional-or-keyword arguments of a METH_FASTCALL | METH_KEYWORDS call into `out`
// (nullptr where absent). The first `required` are mandatory.
bool parse_fast(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, size_t required, PyObject** out) {
  const size_t n = names.size();
  for (size_t i = 0; i < n; ++i) out[i] = nullptr;
  if (static_cast<size_t>(nargs) > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zu arguments (%zd given)", fn, n, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    size_t i = 0;
    for (const char* name : names) {
      if (PyUnicode_CompareWithASCIIString(key, name) == 0) break;
      ++i;
    }
    if (i == n || out[i] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument '%U'", fn, key);
      return false;
    }
    out[i] = args[nargs + k];
  }
  size_t i = 0;
  for (const char* name : names) {
    if (i < required && out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, name);
      return false;
    }
    ++i;
  }
  return true;
}

bool to_flag(PyObject* o, bool* out) {
  if (o == nullptr) {
    *out = false;
    return true;
  }
  const int v = PyObject_IsTrue(o);
  if (v < 0) return false;
  *out = v != 0;
  return true;
}

// Waits in slices (GIL released, `lk` held) so that messages given back by other threads are
// released, and close() gets the mutex, between slices. `op(t)` is one wait of at most t.
template <class Core, class Op>
auto wait_in_slices(Core& c, CoreLock& lk, nanoseconds timeout, nanoseconds min_slice, Op&& op)
    -> decltype(op(timeout)) {
  const bool forever = timeout.count() < 0;
  const auto deadline = forever ? fl::Clock::time_point::max() : fl::Clock::now() + timeout;
  for (;;) {
    nanoseconds slice = kWaitSlice;
    if (!forever) {
      const auto left = std::chrono::duration_cast<nanoseconds>(deadline - fl::Clock::now());
      slice = std::max(min_slice, std::min(slice, left));
    }
    auto r = op(slice);
    if (r || r.error() != fl::Errc::timeout) return r;
    if (c.closed.load(std::memory_order_acquire)) return fl::Errc::closed;
    if (!forever && fl::Clock::now() >= deadline) return r;
    c.unlock(lk);
    c.mu.step_aside();
    lk.lock();
  }
}

// ------------------------------------------------------------------------------------------------
// Exporter: the buffer behind the writable view of a loaned slot or a prepared reply/request.

struct ExportObject {
  PyObject_HEAD
  std::shared_ptr<void> keep;  // the endpoint's core: the mapping outlives every view
  std::byte* ptr;
  size_t len;
  bool live;  // a loan/preparation is open (memoryview() of a stale one is refused)
};

PyTypeObject* g_export_type = nullptr;

void export_dealloc(PyObject* self) {
  auto* e = reinterpret_cast<ExportObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  e->keep.~shared_ptr();
  tp->tp_free(self);
  Py_DECREF(tp);
}

int export_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* e = reinterpret_cast<ExportObject*>(self);
  if (!e->live) {
    PyErr_SetString(PyExc_BufferError, "flatlane: no loaned slot or prepared message to export");
    view->obj = nullptr;
    return -1;
  }
  return PyBuffer_FillInfo(view, self, e->ptr, static_cast<Py_ssize_t>(e->len), 0, flags);
}

ExportObject* new_exporter(std::shared_ptr<void> keep) {
  auto* e = PyObject_New(ExportObject, g_export_type);
  if (e == nullptr) throw py::error_already_set();
  new (&e->keep) std::shared_ptr<void>(std::move(keep));
  e->ptr = nullptr;
  e->len = 0;
  e->live = false;
  return e;
}

PyObject* export_view(ExportObject* e, std::span<std::byte> s) {
  e->ptr = s.data();
  e->len = s.size();
  e->live = true;
  return PyMemoryView_FromObject(reinterpret_cast<PyObject*>(e));
}

// ------------------------------------------------------------------------------------------------
// Received messages: Sample (topic), Request (server side), Reply (client side). One layout; `a`
// is the sequence number or request id, `b` the publisher or client index.

template <class Core, class Held>
struct MsgObject {
  PyObject_HEAD
  std::shared_ptr<Core> core;
  std::optional<Held> held;  // engaged while the slot or frame is ours
  const std::byte* data;
  size_t size;
  uint64_t a;
  uint32_t b;
  bool more;
  bool release_requested;  // release() was called; done once `exports` drops to 0
  Py_ssize_t exports;      // live buffer exports of `data`
};

using SampleObject = MsgObject<SubCore, fl::Sample>;
using RequestObject = MsgObject<ServerCore, fl::Request>;
using ReplyObject = MsgObject<ClientCore, fl::Reply>;

PyTypeObject* g_sample_type = nullptr;
PyTypeObject* g_request_type = nullptr;
PyTypeObject* g_reply_type = nullptr;

template <class Obj>
struct MsgTraits;
template <>
struct MsgTraits<SampleObject> {
  static PyTypeObject* type() { return g_sample_type; }
  static constexpr const char* kName = "Sample";
  static constexpr const char* kA = "seq";
};
template <>
struct MsgTraits<RequestObject> {
  static PyTypeObject* type() { return g_request_type; }
  static constexpr const char* kName = "Request";
  static constexpr const char* kA = "id";
};
template <>
struct MsgTraits<ReplyObject> {
  static PyTypeObject* type() { return g_reply_type; }
  static constexpr const char* kName = "Reply";
  static constexpr const char* kA = "id";
};

// Wraps a received message. On failure (MemoryError) `h` stays with the caller, who holds `mu`,
// so its destructor releases it there.
template <class Obj, class Core, class Held>
PyObject* new_msg(const std::shared_ptr<Core>& core, Held& h, std::span<const std::byte> data, uint64_t a, uint32_t b,
                  bool more) {
  auto* o = PyObject_New(Obj, MsgTraits<Obj>::type());
  if (o == nullptr) return nullptr;
  new (&o->core) std::shared_ptr<Core>(core);
  new (&o->held) std::optional<Held>(std::move(h));
  o->data = data.data();
  o->size = data.size();
  o->a = a;
  o->b = b;
  o->more = more;
  o->release_requested = false;
  o->exports = 0;
  core->held.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<PyObject*>(o);
}

template <class Obj>
void msg_give_back(Obj* m) {
  if (m->held) {
    auto h = std::move(*m->held);
    m->held.reset();
    m->core->give_back(std::move(h));
  }
}

template <class Obj>
void msg_dealloc(PyObject* self) {
  auto* m = reinterpret_cast<Obj*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  msg_give_back(m);  // no export can be live: each holds a reference to this object
  m->held.~optional();
  m->core.~shared_ptr();
  tp->tp_free(self);
  Py_DECREF(tp);
}

template <class Obj>
int msg_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* m = reinterpret_cast<Obj*>(self);
  if (m->release_requested) {
    PyErr_Format(PyExc_ValueError, "flatlane: %s %llu was released", MsgTraits<Obj>::kName,
                 static_cast<unsigned long long>(m->a));
    view->obj = nullptr;
    return -1;
  }
  // Read-only: the bytes belong to the sender's slot or ring.
  if (PyBuffer_FillInfo(view, self, const_cast<std::byte*>(m->data), static_cast<Py_ssize_t>(m->size), 1, flags) < 0)
    return -1;
  ++m->exports;
  return 0;
}

template <class Obj>
void msg_releasebuffer(PyObject* self, Py_buffer*) {
  auto* m = reinterpret_cast<Obj*>(self);
  if (--m->exports == 0 && m->release_requested) msg_give_back(m);
}

template <class Obj>
PyObject* msg_release(PyObject* self, PyObject*) {
  auto* m = reinterpret_cast<Obj*>(self);
  m->release_requested = true;
  if (m->exports == 0) msg_give_back(m);
  Py_RETURN_NONE;
}

template <class Obj>
PyObject* msg_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
  msg_release<Obj>(self, nullptr);
  Py_RETURN_FALSE;
}

template <class Obj>
Py_ssize_t msg_len(PyObject* self) {
  return static_cast<Py_ssize_t>(reinterpret_cast<Obj*>(self)->size);
}

template <class Obj>
PyObject* msg_get_a(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<Obj*>(self)->a);
}
template <class Obj>
PyObject* msg_get_b(PyObject* self, void*) {
  return PyLong_FromUnsignedLong(reinterpret_cast<Obj*>(self)->b);
}
template <class Obj>
PyObject* msg_get_released(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Obj*>(self)->release_requested);
}
PyObject* reply_get_more(PyObject* self, void*) { return PyBool_FromLong(reinterpret_cast<ReplyObject*>(self)->more); }

template <class Obj>
PyObject* msg_repr(PyObject* self) {
  auto* m = reinterpret_cast<Obj*>(self);
  return PyUnicode_FromFormat("<flatlane.%s %s=%llu size=%zu%s>", MsgTraits<Obj>::kName, MsgTraits<Obj>::kA,
                              static_cast<unsigned long long>(m->a), m->size,
                              m->release_requested ? " released" : "");
}

template <class Obj>
PyMethodDef* msg_methods() {
  static PyMethodDef methods[] = {
      {"release", msg_release<Obj>, METH_NOARGS,
       "Give the message's slot or ring space back. Takes effect once no memoryview or array of it is "
       "alive; `data` refuses new views from now on. Idempotent."},
      {"numpy", as_cfunction(frame_numpy), METH_VARARGS | METH_KEYWORDS,
       "numpy(dtype=None, count=-1, offset=0) -> numpy.ndarray\n\nA read-only NumPy array over the payload "
       "(numpy.frombuffer, zero copy). The array keeps the message held."},
      {"__enter__", frame_enter, METH_NOARGS, nullptr},
      {"__exit__", as_cfunction(msg_exit<Obj>), METH_FASTCALL, nullptr},
      {nullptr, nullptr, 0, nullptr}};
  return methods;
}

PyGetSetDef sample_getset[] = {
    {"data", frame_get_data, nullptr,
     "Read-only memoryview of the payload in the publisher's slot (zero copy). The slot stays held, and is never "
     "reused, while the sample or any view of it is alive.",
     nullptr},
    {"seq", msg_get_a<SampleObject>, nullptr, "The publisher's sequence number (1-based, per publisher).", nullptr},
    {"publisher", msg_get_b<SampleObject>, nullptr, "The publisher's block index in the topic.", nullptr},
    {"released", msg_get_released<SampleObject>, nullptr, "True once release() was called.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef request_getset[] = {
    {"data", frame_get_data, nullptr, "Read-only memoryview of the request payload (zero copy, after the envelope).",
     nullptr},
    {"id", msg_get_a<RequestObject>, nullptr, "The request id (chosen by the client, increasing from 1).", nullptr},
    {"client", msg_get_b<RequestObject>, nullptr, "The client's index (its publisher block on the request topic).",
     nullptr},
    {"released", msg_get_released<RequestObject>, nullptr, "True once release() was called.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef reply_getset[] = {
    {"data", frame_get_data, nullptr, "Read-only memoryview of the reply payload in the reply ring (zero copy).",
     nullptr},
    {"id", msg_get_a<ReplyObject>, nullptr, "The id of the request this answers.", nullptr},
    {"more", reply_get_more, nullptr, "True if another reply to the same request follows (streaming).", nullptr},
    {"released", msg_get_released<ReplyObject>, nullptr, "True once release() was called.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// Endpoint objects.

template <class Core>
struct PatternObject {
  PyObject_HEAD
  std::string name;
  std::shared_ptr<Core> core;  // null once closed (or before __init__)
  ExportObject* exporter;      // writable views (publisher, server, client); null once closed
};

using PublisherObject = PatternObject<PubCore>;
using SubscriberObject = PatternObject<SubCore>;
using ServerObject = PatternObject<ServerCore>;
using ClientObject = PatternObject<ClientCore>;

template <class Obj>
struct RoleOf;
template <>
struct RoleOf<PublisherObject> {
  static constexpr const char* kRole = "publisher";
  static constexpr const char* kWhat = "topic";
};
template <>
struct RoleOf<SubscriberObject> {
  static constexpr const char* kRole = "subscriber";
  static constexpr const char* kWhat = "topic";
};
template <>
struct RoleOf<ServerObject> {
  static constexpr const char* kRole = "server";
  static constexpr const char* kWhat = "service";
};
template <>
struct RoleOf<ClientObject> {
  static constexpr const char* kRole = "client";
  static constexpr const char* kWhat = "service";
};

template <class Obj>
PyObject* pattern_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* o = type->tp_alloc(type, 0);
  if (o == nullptr) return nullptr;
  auto* p = reinterpret_cast<Obj*>(o);
  new (&p->name) std::string();
  new (&p->core) decltype(p->core)();
  p->exporter = nullptr;
  return o;
}

// The core of an open endpoint, or nullptr with ClosedError set.
template <class Obj>
auto* pattern_core(Obj* self) {
  if (!self->core) {
    set_pattern_error(fl::Errc::closed,
                      std::string(RoleOf<Obj>::kRole) + " of " + RoleOf<Obj>::kWhat + " '" + self->name + "' is closed",
                      self->name, RoleOf<Obj>::kRole, false);
    return static_cast<decltype(self->core.get())>(nullptr);
  }
  return self->core.get();
}

template <class Obj>
PyObject* pattern_fail(Obj* self, fl::Errc e, const std::string& op, const std::string& why, bool full = false) {
  std::string d = op + " on " + RoleOf<Obj>::kWhat + " '" + self->name + "'";
  if (!why.empty()) d += ": " + why;
  set_pattern_error(e, d, self->name, RoleOf<Obj>::kRole, full);
  return nullptr;
}

// Locks the core's mutex; when another thread holds it (it waits in slices), waits without the GIL.
template <class Obj, class Core>
void lock_core(Obj* self, Core* c, CoreLock& lk) {
  lk = CoreLock(c->mu, std::try_to_lock);
  if (lk.owns_lock()) return;
  std::shared_ptr<Core> keep = self->core;  // a concurrent close() drops ours
  py::gil_scoped_release nogil;
  lk.lock();
}

template <class Obj>
void pattern_close_impl(Obj* self) {
  if (!self->core) return;
  auto core = std::move(self->core);  // later calls see a closed endpoint at once
  core->closed.store(true, std::memory_order_release);
  if (self->exporter) self->exporter->live = false;
  {
    CoreLock lk(core->mu, std::try_to_lock);
    if (!lk.owns_lock()) {
      // A call blocked in another thread gives the mutex up within a slice (it sees `closed`).
      py::gil_scoped_release nogil;
      lk.lock();
    }
    core->ep.close();
    core->unlock(lk);
  }
  PyObject* e = reinterpret_cast<PyObject*>(self->exporter);
  self->exporter = nullptr;
  Py_XDECREF(e);  // views still alive keep the exporter (and the core) until they go
}

template <class Obj>
void pattern_dealloc(PyObject* o) {
  auto* self = reinterpret_cast<Obj*>(o);
  PyTypeObject* tp = Py_TYPE(o);
  pattern_close_impl(self);
  self->core.~shared_ptr();
  self->name.~basic_string();
  tp->tp_free(o);
  Py_DECREF(tp);
}

template <class Obj>
PyObject* pattern_close(PyObject* o, PyObject*) {
  pattern_close_impl(reinterpret_cast<Obj*>(o));
  Py_RETURN_NONE;
}

template <class Obj>
PyObject* pattern_get_closed(PyObject* o, void*) {
  return PyBool_FromLong(!reinterpret_cast<Obj*>(o)->core);
}
template <class Obj>
PyObject* pattern_get_name(PyObject* o, void*) {
  const std::string& n = reinterpret_cast<Obj*>(o)->name;
  return PyUnicode_FromStringAndSize(n.data(), static_cast<Py_ssize_t>(n.size()));
}

// Creates the core without the GIL (creating a segment prefaults it); setup errors raise.
template <class Obj, class Core, class Opts>
int pattern_init(Obj* self, const std::string& name, const Opts& opts, bool with_exporter) {
  if (self->core) {
    PyErr_SetString(PyExc_RuntimeError, "flatlane: endpoint is already initialised");
    return -1;
  }
  self->name = name;
  std::shared_ptr<Core> core;
  PyObject* r = guarded([&]() -> PyObject* {
    try {
      py::gil_scoped_release nogil;
      core = std::make_shared<Core>(name, opts);
    } catch (const fl::Error& e) {
      set_setup_error(e, name, RoleOf<Obj>::kRole);
      return nullptr;
    }
    Py_RETURN_NONE;
  });
  if (r == nullptr) return -1;
  Py_DECREF(r);
  if (with_exporter) {
    PyObject* e = guarded([&] { return reinterpret_cast<PyObject*>(new_exporter(core)); });
    if (e == nullptr) return -1;
    self->exporter = reinterpret_cast<ExportObject*>(e);
  }
  self->core = std::move(core);
  return 0;
}

// ------------------------------------------------------------------------------------------------
// Topic options (keyword arguments of TopicPublisher/TopicSubscriber.__init__).

bool parse_wait(int wait, long long spin_ns, long long liveness_ns, fl::WaitOptions* w) {
  if (wait < 0 || wait > 2) {
    PyErr_SetString(PyExc_ValueError, "flatlane: wait must be 0 (busy_spin), 1 (spin_then_sleep) or 2 (blocking)");
    return false;
  }
  if (spin_ns < 0 || liveness_ns <= 0) {
    PyErr_SetString(PyExc_ValueError, "flatlane: spin budget must be >= 0 and liveness interval > 0");
    return false;
  }
  w->strategy = static_cast<fl::WaitStrategy>(wait);
  w->spin_budget = nanoseconds(spin_ns);
  w->liveness_interval = nanoseconds(liveness_ns);
  return true;
}

bool parse_mode(int mode, fl::OpenMode* out) {
  if (mode < 0 || mode > 2) {
    PyErr_SetString(PyExc_ValueError, "flatlane: mode must be 0 (create), 1 (open) or 2 (create_or_open)");
    return false;
  }
  *out = static_cast<fl::OpenMode>(mode);
  return true;
}

bool parse_topic_options(PyObject* args, PyObject* kwargs, std::string* name, fl::TopicOptions* o) {
  static const char* kw[] = {"name",         "mode",           "slot_size",       "slot_count",   "max_publishers",
                             "max_subscribers", "queue_depth",  "max_held",        "history",      "permissions",
                             "type_name",    "type_hash",      "type_name_only",  "wait",         "spin_budget_ns",
                             "liveness_interval_ns", "unlink_on_close", "subscriber_mode", "history_request",
                             "block_timeout_ns", "distribution", nullptr};
  const char* name_c = nullptr;
  Py_ssize_t name_len = 0;
  const char* type_c = "";
  Py_ssize_t type_len = 0;
  const fl::TopicConfig d;
  int mode = 2, wait = 1, unlink = 1, name_only = 0, sub_mode = 0;
  unsigned int slot_size = d.slot_size, slot_count = d.slot_count, max_pubs = d.max_publishers,
               max_subs = d.max_subscribers, depth = d.queue_depth, max_held = d.max_held, history = d.history,
               perms = 0600, history_request = 0;
  unsigned long long hash = 0;
  long long spin_ns = 50'000, liveness_ns = 50'000'000, block_ns = 1'000'000'000;
  unsigned int distribution = 0;  // fl::Distribution: 0 fan-out, 1 work queue (used by the creator)
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$iIIIIIIIIs#KpiLLpiILI:Topic", const_cast<char**>(kw), &name_c,
                                   &name_len, &mode, &slot_size, &slot_count, &max_pubs, &max_subs, &depth, &max_held,
                                   &history, &perms, &type_c, &type_len, &hash, &name_only, &wait, &spin_ns,
                                   &liveness_ns, &unlink, &sub_mode, &history_request, &block_ns, &distribution))
    return false;
  if (distribution > 1) {
    PyErr_SetString(PyExc_ValueError, "flatlane: distribution must be 0 (fan_out) or 1 (work_queue)");
    return false;
  }
  if (!parse_mode(mode, &o->mode) || !parse_wait(wait, spin_ns, liveness_ns, &o->wait)) return false;
  if (perms > 0777) {
    PyErr_SetString(PyExc_ValueError, "flatlane: permissions must be a file mode like 0o600");
    return false;
  }
  if (sub_mode < 0 || sub_mode > 1) {
    PyErr_SetString(PyExc_ValueError, "flatlane: subscriber_mode must be 0 (drop_oldest) or 1 (block_publisher)");
    return false;
  }
  name->assign(name_c, static_cast<size_t>(name_len));
  o->topic.slot_size = slot_size;
  o->topic.slot_count = slot_count;
  o->topic.max_publishers = max_pubs;
  o->topic.max_subscribers = max_subs;
  o->topic.queue_depth = depth;
  o->topic.max_held = max_held;
  o->topic.history = history;
  o->topic.mode = static_cast<mode_t>(perms);
  o->topic.type.name.assign(type_c, static_cast<size_t>(type_len));
  o->topic.type.hash = hash;
  o->topic.type.name_only = name_only != 0;
  o->unlink_on_close = unlink != 0;
  o->subscriber_mode = static_cast<fl::SubscriberMode>(sub_mode);
  o->history_request = history_request;
  o->block_timeout = block_ns < 0 ? fl::kInfinite : nanoseconds(block_ns);
  o->topic.distribution = static_cast<fl::Distribution>(distribution);
  return true;
}

// The topic's distribution as its segment says (written once by the creator and validated when
// the segment was opened): true for a work queue (push/pull), false for fan-out.
bool topic_is_work_queue(const fl::Segment& seg) noexcept {
  const auto* h = reinterpret_cast<const fl::wire::TopicHeader*>(seg.base() + fl::wire::kTopicHeaderOffset);
  return h->distribution == fl::wire::kDistributionWorkQueue;
}

bool parse_service_options(PyObject* args, PyObject* kwargs, std::string* name, fl::ServiceOptions* o) {
  static const char* kw[] = {"name",          "mode",          "max_clients",       "max_request",
                             "request_slots", "queue_depth",   "reply_ring",        "request_type_name",
                             "request_type_hash", "reply_type_name", "reply_type_hash", "type_name_only",
                             "wait",          "spin_budget_ns", "liveness_interval_ns", "send_timeout_ns", nullptr};
  const char* name_c = nullptr;
  Py_ssize_t name_len = 0;
  const char *req_c = "", *rep_c = "";
  Py_ssize_t req_len = 0, rep_len = 0;
  const fl::ServiceOptions d;
  int mode = 2, wait = 1, name_only = 0;
  unsigned int max_clients = d.max_clients, max_request = d.max_request, slots = d.request_slots,
               depth = d.queue_depth;
  unsigned long long ring = d.reply_ring, req_hash = 0, rep_hash = 0;
  long long spin_ns = 50'000, liveness_ns = 50'000'000, send_ns = 1'000'000'000;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$iIIIIKs#Ks#KpiLLL:Service", const_cast<char**>(kw), &name_c,
                                   &name_len, &mode, &max_clients, &max_request, &slots, &depth, &ring, &req_c,
                                   &req_len, &req_hash, &rep_c, &rep_len, &rep_hash, &name_only, &wait, &spin_ns,
                                   &liveness_ns, &send_ns))
    return false;
  if (!parse_mode(mode, &o->mode) || !parse_wait(wait, spin_ns, liveness_ns, &o->wait)) return false;
  name->assign(name_c, static_cast<size_t>(name_len));
  o->max_clients = max_clients;
  o->max_request = max_request;
  o->request_slots = slots;
  o->queue_depth = depth;
  o->reply_ring = ring;
  o->request_type.name.assign(req_c, static_cast<size_t>(req_len));
  o->request_type.hash = req_hash;
  o->request_type.name_only = name_only != 0;
  o->reply_type.name.assign(rep_c, static_cast<size_t>(rep_len));
  o->reply_type.hash = rep_hash;
  o->reply_type.name_only = name_only != 0;
  o->send_timeout = send_ns < 0 ? fl::kInfinite : nanoseconds(send_ns);
  return true;
}

// ------------------------------------------------------------------------------------------------
// TopicPublisher

PyTypeObject* g_publisher_type = nullptr;
PyTypeObject* g_subscriber_type = nullptr;
PyTypeObject* g_server_type = nullptr;
PyTypeObject* g_client_type = nullptr;

int publisher_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::TopicOptions opts;
  if (!parse_topic_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<PublisherObject, PubCore>(reinterpret_cast<PublisherObject*>(o), name, opts, true);
}

std::string loan_why(fl::Errc e, PubCore* c, size_t n, nanoseconds timeout) {
  if (e == fl::Errc::timeout) return "no free slot within " + ms_text(timeout) + " (every slot is held or queued)";
  if (e == fl::Errc::message_too_large)
    return std::to_string(n) + " bytes exceed the slot size " + std::to_string(c->ep.max_message());
  return {};
}

PyObject* publisher_loan(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  PyObject* a[2];
  size_t n;
  nanoseconds timeout;
  if (!parse_fast("loan", args, nargs, kwnames, {"n", "timeout"}, 1, a) || !to_size(a[0], &n) ||
      !to_timeout(a[1], &timeout))
    return nullptr;
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;  // a new loan gives the previous one back (C++ discards it)
    fl::Result<std::span<std::byte>> r = fl::Errc::timeout;
    {
      CoreLock lk(c->mu, std::try_to_lock);
      if (lk.owns_lock()) r = c->ep.loan(n, nanoseconds(0));
      if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
        std::shared_ptr<PubCore> keep = self->core;
        py::gil_scoped_release nogil;
        if (!lk.owns_lock()) lk.lock();
        r = wait_in_slices(*c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c->ep.loan(n, t); });
      }
      if (r && !self->core) {  // closed meanwhile (close() waits for `mu`, so not yet in C++)
        c->ep.discard();
        r = fl::Errc::closed;
      }
    }
    if (!r) {
      return pattern_fail(self, r.error(), "loan(" + std::to_string(n) + ")", loan_why(r.error(), c, n, timeout),
                          true);
    }
    return export_view(self->exporter, *r);
  });
}

PyObject* publisher_publish_impl(PyObject* o, PyObject* used_obj, bool tail) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  size_t used;
  if (!to_size(used_obj, &used)) return nullptr;
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  if (!self->exporter->live) {
    PyErr_SetString(PyExc_ValueError, "flatlane: publish without a loaned slot (loan() first)");
    return nullptr;
  }
  if (used > self->exporter->len) {
    PyErr_Format(PyExc_ValueError, "flatlane: publish of %zu bytes exceeds the loan of %zu", used, self->exporter->len);
    return nullptr;
  }
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    fl::Result<void> r;
    {
      // Without the GIL: a block_publisher subscriber may make publish wait (block_timeout).
      std::shared_ptr<PubCore> keep = self->core;
      py::gil_scoped_release nogil;
      std::lock_guard<CoreMutex> lk(c->mu);
      r = tail ? c->ep.publish_tail(used) : c->ep.publish(used);
    }
    if (!r) {
      return pattern_fail(self, r.error(), tail ? "publish_tail()" : "publish()",
                          r.error() == fl::Errc::timeout
                              ? "a block_publisher subscriber had no queue space within block_timeout (the others "
                                "got the message)"
                              : "",
                          true);
    }
    Py_RETURN_NONE;
  });
}

PyObject* publisher_publish(PyObject* o, PyObject* used) { return publisher_publish_impl(o, used, false); }
PyObject* publisher_publish_tail(PyObject* o, PyObject* used) { return publisher_publish_impl(o, used, true); }

PyObject* publisher_discard(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    c->ep.discard();
    Py_RETURN_NONE;
  });
}

PyObject* publisher_send(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  PyObject* a[2];
  nanoseconds timeout;
  if (!parse_fast("send", args, nargs, kwnames, {"data", "timeout"}, 1, a) || !to_timeout(a[1], &timeout))
    return nullptr;
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(a[0])) return nullptr;  // not bytes-like, or a non-contiguous array
  const auto bytes = buf.bytes();
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;  // sending gives any loaned slot back
    fl::Result<void> r;
    bool published = false;
    {
      std::shared_ptr<PubCore> keep = self->core;
      py::gil_scoped_release nogil;
      CoreLock lk(c->mu);
      auto slot = wait_in_slices(*c, lk, timeout, nanoseconds(0),
                                 [&](nanoseconds t) { return c->ep.loan(bytes.size(), t); });
      if (!slot) {
        r = slot.error();
      } else {
        if (!bytes.empty()) std::memcpy(slot->data(), bytes.data(), bytes.size());
        r = c->ep.publish(bytes.size());
        published = true;
      }
    }
    if (!r) {
      const std::string op = "send(" + std::to_string(bytes.size()) + " bytes)";
      if (published)
        return pattern_fail(self, r.error(), op,
                            "a block_publisher subscriber had no queue space within block_timeout (the others got "
                            "the message)",
                            true);
      return pattern_fail(self, r.error(), op, loan_why(r.error(), c, bytes.size(), timeout), true);
    }
    Py_RETURN_NONE;
  });
}

PyObject* publisher_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    const fl::PublisherStats s = c->ep.stats();
    lk.unlock();
    return Py_BuildValue("(KKKKkkk)", static_cast<unsigned long long>(s.messages),
                         static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.no_receiver),
                         static_cast<unsigned long long>(s.timeouts), static_cast<unsigned long>(s.subscribers),
                         static_cast<unsigned long>(s.free_slots), static_cast<unsigned long>(s.slot_count));
  });
}

PyObject* publisher_get_subscribers(PyObject* o, void*) {
  auto* self = reinterpret_cast<PublisherObject*>(o);
  PubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    const uint32_t n = c->ep.subscriber_count();
    lk.unlock();
    return PyLong_FromUnsignedLong(n);
  });
}

PyObject* publisher_get_max_message(PyObject* o, void*) {
  PubCore* c = pattern_core(reinterpret_cast<PublisherObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.max_message()) : nullptr;
}
PyObject* publisher_get_index(PyObject* o, void*) {
  PubCore* c = pattern_core(reinterpret_cast<PublisherObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.index()) : nullptr;
}
PyObject* publisher_get_work_queue(PyObject* o, void*) {
  PubCore* c = pattern_core(reinterpret_cast<PublisherObject*>(o));
  return c ? PyBool_FromLong(topic_is_work_queue(c->ep.segment())) : nullptr;
}

PyMethodDef publisher_methods[] = {
    {"loan", as_cfunction(publisher_loan), METH_FASTCALL | METH_KEYWORDS,
     "loan(n, timeout=None) -> memoryview\n\nA writable view of n bytes of a free slot of this publisher's pool. "
     "Fill it, then publish(used), publish_tail(used) or discard(). When every slot is in use, queued messages of "
     "drop_oldest subscribers are dropped to free one; else waits (ms; None forever, 0 never). Raises "
     "BufferFullError when no slot came in time, MessageTooLargeError when n > max_message."},
    {"publish", publisher_publish, METH_O,
     "publish(used)\n\nHand the first `used` bytes of the loaned slot to every attached subscriber."},
    {"publish_tail", publisher_publish_tail, METH_O,
     "publish_tail(used)\n\nPublish the last `used` bytes of the loan where they are (a FlatBuffer built back to "
     "front)."},
    {"discard", publisher_discard, METH_NOARGS, "Give the loaned slot back unpublished."},
    {"send", as_cfunction(publisher_send), METH_FASTCALL | METH_KEYWORDS,
     "send(data, timeout=None)\n\nloan + copy + publish of a bytes-like object (at most max_message bytes). The "
     "timeout (ms) bounds the wait for a free slot."},
    {"close", pattern_close<PublisherObject>, METH_NOARGS, "Detach from the topic (idempotent)."},
    {"_stats", publisher_stats, METH_NOARGS,
     "(messages, bytes, no_receiver, timeouts, subscribers, free_slots, slot_count)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef publisher_getset[] = {
    {"closed", pattern_get_closed<PublisherObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<PublisherObject>, nullptr, "The topic name.", nullptr},
    {"subscriber_count", publisher_get_subscribers, nullptr, "Subscribers attached now.", nullptr},
    {"max_message", publisher_get_max_message, nullptr, "The slot size: the largest message.", nullptr},
    {"index", publisher_get_index, nullptr, "This publisher's block index (Sample.publisher on the other side).",
     nullptr},
    {"work_queue", publisher_get_work_queue, nullptr,
     "True if the topic is a work queue (push/pull: each message to one subscriber).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// TopicSubscriber

int subscriber_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::TopicOptions opts;
  if (!parse_topic_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<SubscriberObject, SubCore>(reinterpret_cast<SubscriberObject*>(o), name, opts, false);
}

PyObject* subscriber_receive(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<SubscriberObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("receive", args, nargs, kwnames, &timeout)) return nullptr;
  SubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<SubCore> keep = self->core;  // the sample's owner, even if closed meanwhile
    CoreLock lk(c->mu, std::try_to_lock);
    fl::Result<fl::Sample> r = fl::Errc::timeout;
    if (lk.owns_lock()) r = c->ep.receive(nanoseconds(0));
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      py::gil_scoped_release nogil;
      if (!lk.owns_lock()) lk.lock();
      r = wait_in_slices(*c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c->ep.receive(t); });
    }
    PyObject* out = nullptr;
    if (r) {
      // A sample taken before a concurrent close() is still delivered (released normally later).
      fl::Sample s = std::move(r).value();
      const auto data = s.data();
      out = new_msg<SampleObject>(keep, s, data, s.seq(), s.publisher(), false);
    }  // `s` (live only if new_msg failed) is released here, under `mu`
    if (lk.owns_lock()) c->unlock(lk);
    if (!r) {
      std::string why;
      switch (r.error()) {
        case fl::Errc::timeout: why = "nothing arrived within " + ms_text(timeout); break;
        case fl::Errc::busy: why = "max_held samples are held already: release some first"; break;
        case fl::Errc::peer_dead: why = "every publisher is gone and one died"; break;
        case fl::Errc::peer_closed: why = "every publisher closed the topic"; break;
        default: break;
      }
      return pattern_fail(self, r.error(), "receive()", why);
    }
    return out;
  });
}

PyObject* subscriber_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<SubscriberObject*>(o);
  SubCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    const fl::SubscriberStats s = c->ep.stats();
    c->unlock(lk);
    return Py_BuildValue("(KKKkk)", static_cast<unsigned long long>(s.received),
                         static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.dropped),
                         static_cast<unsigned long>(s.held), static_cast<unsigned long>(s.queued));
  });
}

PyObject* subscriber_get_held(PyObject* o, void*) {
  SubCore* c = pattern_core(reinterpret_cast<SubscriberObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->held.load(std::memory_order_relaxed)) : nullptr;
}
PyObject* subscriber_get_index(PyObject* o, void*) {
  SubCore* c = pattern_core(reinterpret_cast<SubscriberObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.index()) : nullptr;
}
PyObject* subscriber_get_work_queue(PyObject* o, void*) {
  SubCore* c = pattern_core(reinterpret_cast<SubscriberObject*>(o));
  return c ? PyBool_FromLong(topic_is_work_queue(c->ep.segment())) : nullptr;
}

PyMethodDef subscriber_methods[] = {
    {"receive", as_cfunction(subscriber_receive), METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None) -> Sample\n\nThe next message from any publisher, zero copy (ms; None forever, 0 never "
     "waits). Raises FlatlaneTimeoutError, ChannelBusyError when max_held samples are held, PeerDeadError / "
     "PeerClosedError once every publisher is gone and nothing is queued."},
    {"close", pattern_close<SubscriberObject>, METH_NOARGS, "Detach from the topic (idempotent)."},
    {"_stats", subscriber_stats, METH_NOARGS, "(received, bytes, dropped, held, queued)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef subscriber_getset[] = {
    {"closed", pattern_get_closed<SubscriberObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<SubscriberObject>, nullptr, "The topic name.", nullptr},
    {"held_samples", subscriber_get_held, nullptr, "Samples returned by receive() and not yet released.", nullptr},
    {"index", subscriber_get_index, nullptr, "This subscriber's block index.", nullptr},
    {"work_queue", subscriber_get_work_queue, nullptr,
     "True if the topic is a work queue (push/pull: each message to one subscriber).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// ServiceServer

int server_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::ServiceOptions opts;
  if (!parse_service_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<ServerObject, ServerCore>(reinterpret_cast<ServerObject*>(o), name, opts, true);
}

PyObject* server_receive(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("receive", args, nargs, kwnames, &timeout)) return nullptr;
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<ServerCore> keep = self->core;
    CoreLock lk(c->mu, std::try_to_lock);
    fl::Result<fl::Request> r = fl::Errc::timeout;
    if (lk.owns_lock()) r = c->ep.receive(nanoseconds(0));
    if (!r && r.error() == fl::Errc::timeout && timeout.count() != 0) {
      py::gil_scoped_release nogil;
      if (!lk.owns_lock()) lk.lock();
      r = wait_in_slices(*c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c->ep.receive(t); });
    }
    PyObject* out = nullptr;
    if (r) {
      fl::Request q = std::move(r).value();
      const auto data = q.data();
      out = new_msg<RequestObject>(keep, q, data, q.id(), q.client(), false);
    }
    if (lk.owns_lock()) c->unlock(lk);
    if (!r) {
      std::string why;
      if (r.error() == fl::Errc::timeout) why = "no request within " + ms_text(timeout);
      if (r.error() == fl::Errc::busy) why = "too many requests held: release some first";
      if (r.error() == fl::Errc::peer_dead) why = "every client is gone and one died";
      if (r.error() == fl::Errc::peer_closed) why = "every client closed the service";
      return pattern_fail(self, r.error(), "receive()", why);
    }
    return out;
  });
}

// The C++ Request of a Python Request, or nullptr with an error set.
const fl::Request* request_of(ServerObject* self, PyObject* req) {
  if (Py_TYPE(req) != g_request_type) {
    PyErr_Format(PyExc_TypeError, "flatlane: expected a Request of this server, got %s", Py_TYPE(req)->tp_name);
    return nullptr;
  }
  auto* r = reinterpret_cast<RequestObject*>(req);
  if (r->core != self->core) {
    PyErr_SetString(PyExc_ValueError, "flatlane: the Request came from another server");
    return nullptr;
  }
  if (!r->held) {
    PyErr_Format(PyExc_ValueError, "flatlane: Request %llu was released: answer before releasing it",
                 static_cast<unsigned long long>(r->a));
    return nullptr;
  }
  return &*r->held;
}

// Errors of a reply that was dropped: the client left or died, or its ring is full.
bool reply_dropped(fl::Errc e) {
  return e == fl::Errc::peer_closed || e == fl::Errc::peer_dead || e == fl::Errc::timeout;
}

std::string reply_why(fl::Errc e) {
  switch (e) {
    case fl::Errc::peer_closed: return "the client left (reply dropped)";
    case fl::Errc::peer_dead: return "the client died (reply dropped)";
    case fl::Errc::timeout: return "the client's reply ring is full (reply dropped; a server never waits)";
    case fl::Errc::message_too_large: return "larger than the client's reply frames";
    default: return {};
  }
}

PyObject* server_prepare_reply(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  PyObject* a[2];
  size_t n;
  if (!parse_fast("prepare_reply", args, nargs, kwnames, {"request", "n"}, 2, a) || !to_size(a[1], &n)) return nullptr;
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  const fl::Request* req = request_of(self, a[0]);
  if (req == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;  // preparing gives an earlier preparation back
    CoreLock lk;
    lock_core(self, c, lk);
    auto r = c->ep.prepare_reply(*req, n);
    if (r && !self->core) {  // closed while we waited for the mutex: nothing left to export from
      c->ep.abort_reply();
      r = fl::Errc::closed;
    }
    c->unlock(lk);
    if (!r) return pattern_fail(self, r.error(), "prepare_reply(" + std::to_string(n) + ")", reply_why(r.error()), true);
    return export_view(self->exporter, *r);
  });
}

PyObject* server_commit_impl(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, bool tail) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  const char* fn = tail ? "commit_reply_tail" : "commit_reply";
  PyObject* a[2];
  size_t used;
  bool more;
  if (!parse_fast(fn, args, nargs, kwnames, {"used", "more"}, 1, a) || !to_size(a[0], &used) || !to_flag(a[1], &more))
    return nullptr;
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  if (!self->exporter->live) {
    PyErr_Format(PyExc_ValueError, "flatlane: %s without a prepared reply (prepare_reply() first)", fn);
    return nullptr;
  }
  if (used > self->exporter->len) {
    PyErr_Format(PyExc_ValueError, "flatlane: %s of %zu bytes exceeds the prepared %zu", fn, used, self->exporter->len);
    return nullptr;
  }
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    auto r = tail ? c->ep.commit_reply_tail(used, more) : c->ep.commit_reply(used, more);
    c->unlock(lk);
    if (!r) return pattern_fail(self, r.error(), std::string(fn) + "()", "");
    Py_RETURN_NONE;
  });
}

PyObject* server_commit_reply(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return server_commit_impl(o, args, nargs, kwnames, false);
}
PyObject* server_commit_reply_tail(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return server_commit_impl(o, args, nargs, kwnames, true);
}

PyObject* server_abort_reply(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    c->ep.abort_reply();
    c->unlock(lk);
    Py_RETURN_NONE;
  });
}

PyObject* server_reply(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  PyObject* a[3];
  bool more;
  if (!parse_fast("reply", args, nargs, kwnames, {"request", "data", "more"}, 2, a) || !to_flag(a[2], &more))
    return nullptr;
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  const fl::Request* req = request_of(self, a[0]);
  if (req == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(a[1])) return nullptr;
  const auto bytes = buf.bytes();
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;  // reply() voids a preparation (C++ aborts it)
    CoreLock lk;
    lock_core(self, c, lk);
    auto r = c->ep.reply(*req, bytes, more);
    c->unlock(lk);
    if (r) Py_RETURN_TRUE;
    if (reply_dropped(r.error())) Py_RETURN_FALSE;  // counted in stats().dropped_replies
    return pattern_fail(self, r.error(), "reply(" + std::to_string(bytes.size()) + " bytes)", reply_why(r.error()));
  });
}

PyObject* server_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<ServerObject*>(o);
  ServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    const fl::ServerStats s = c->ep.stats();
    c->unlock(lk);
    return Py_BuildValue("(KKKk)", static_cast<unsigned long long>(s.requests),
                         static_cast<unsigned long long>(s.replies), static_cast<unsigned long long>(s.dropped_replies),
                         static_cast<unsigned long>(s.clients));
  });
}

PyObject* server_get_held(PyObject* o, void*) {
  ServerCore* c = pattern_core(reinterpret_cast<ServerObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->held.load(std::memory_order_relaxed)) : nullptr;
}

PyMethodDef server_methods[] = {
    {"receive", as_cfunction(server_receive), METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None) -> Request\n\nThe next request from any client, zero copy (ms; None forever, 0 never "
     "waits)."},
    {"prepare_reply", as_cfunction(server_prepare_reply), METH_FASTCALL | METH_KEYWORDS,
     "prepare_reply(request, n) -> memoryview\n\nA writable view of n bytes in the client's reply ring; then "
     "commit_reply(used, more=False). Never waits: raises BufferFullError when the ring is full, "
     "PeerClosedError / PeerDeadError when the client is gone (the reply is counted as dropped)."},
    {"commit_reply", as_cfunction(server_commit_reply), METH_FASTCALL | METH_KEYWORDS,
     "commit_reply(used, more=False)\n\nSend the first `used` bytes of the prepared reply; more=True: another reply "
     "to the same request follows."},
    {"commit_reply_tail", as_cfunction(server_commit_reply_tail), METH_FASTCALL | METH_KEYWORDS,
     "commit_reply_tail(used, more=False)\n\nSend the last `used` bytes of the prepared reply where they are."},
    {"abort_reply", server_abort_reply, METH_NOARGS, "Drop the prepared reply."},
    {"reply", as_cfunction(server_reply), METH_FASTCALL | METH_KEYWORDS,
     "reply(request, data, more=False) -> bool\n\nCopy a bytes-like object into the client's reply ring. Never "
     "waits: returns False when the reply was dropped (client gone, or its ring full; counted in "
     "stats().dropped_replies)."},
    {"close", pattern_close<ServerObject>, METH_NOARGS, "Detach from the service (idempotent)."},
    {"_stats", server_stats, METH_NOARGS, "(requests, replies, dropped_replies, clients)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef server_getset[] = {
    {"closed", pattern_get_closed<ServerObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<ServerObject>, nullptr, "The service name.", nullptr},
    {"held_requests", server_get_held, nullptr, "Requests returned by receive() and not yet released.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// ServiceClient

int client_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::ServiceOptions opts;
  if (!parse_service_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<ClientObject, ClientCore>(reinterpret_cast<ClientObject*>(o), name, opts, true);
}

std::string client_why(fl::Errc e, nanoseconds timeout, bool sending) {
  switch (e) {
    case fl::Errc::not_found: return "no server is attached";
    case fl::Errc::timeout:
      return sending ? "the server's queue stayed full for send_timeout" : "no reply within " + ms_text(timeout);
    case fl::Errc::peer_dead: return "the server died";
    case fl::Errc::peer_closed: return "the server closed the service";
    case fl::Errc::message_too_large: return "larger than max_request";
    default: return {};
  }
}

// With `mu` held and the GIL released: the next reply to `id`.
fl::Result<fl::Reply> client_wait(ClientCore& c, CoreLock& lk, uint64_t id, nanoseconds timeout) {
  return wait_in_slices(c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c.ep.receive(id, t); });
}

PyObject* client_reply_object(ClientObject*, const std::shared_ptr<ClientCore>& keep, fl::Result<fl::Reply>& r) {
  fl::Reply rep = std::move(r).value();
  const auto data = rep.data();
  return new_msg<ReplyObject>(keep, rep, data, rep.id(), 0, rep.more());
}

PyObject* client_send(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  PyObject* a[1];
  if (!parse_fast("send", args, nargs, kwnames, {"data"}, 1, a)) return nullptr;
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(a[0])) return nullptr;
  const auto bytes = buf.bytes();
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    fl::Result<uint64_t> r = fl::Errc::timeout;
    {
      std::shared_ptr<ClientCore> keep = self->core;
      py::gil_scoped_release nogil;  // waits for a slot and for server queue space
      std::lock_guard<CoreMutex> lk(c->mu);
      r = c->ep.send(bytes);
      if (r) ++c->sent;
    }
    if (!r)
      return pattern_fail(self, r.error(), "send(" + std::to_string(bytes.size()) + " bytes)",
                          client_why(r.error(), nanoseconds(0), true), true);
    return PyLong_FromUnsignedLongLong(*r);
  });
}

PyObject* client_receive(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  PyObject* a[2];
  nanoseconds timeout;
  if (!parse_fast("receive", args, nargs, kwnames, {"id", "timeout"}, 1, a) || !to_timeout(a[1], &timeout))
    return nullptr;
  const unsigned long long id = PyLong_AsUnsignedLongLong(a[0]);
  if (id == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<ClientCore> keep = self->core;
    CoreLock lk;
    fl::Result<fl::Reply> r = fl::Errc::timeout;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      r = client_wait(*c, lk, id, timeout);
      if (r) ++c->replies;
    }
    PyObject* out = r ? client_reply_object(self, keep, r) : nullptr;
    c->unlock(lk);
    if (!r) return pattern_fail(self, r.error(), "receive(" + std::to_string(id) + ")", client_why(r.error(), timeout, false));
    return out;
  });
}

PyObject* client_call(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  PyObject* a[2];
  nanoseconds timeout;
  if (!parse_fast("call", args, nargs, kwnames, {"data", "timeout"}, 1, a) || !to_timeout(a[1], &timeout))
    return nullptr;
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(a[0])) return nullptr;
  const auto bytes = buf.bytes();
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    std::shared_ptr<ClientCore> keep = self->core;
    CoreLock lk;
    fl::Result<uint64_t> id = fl::Errc::timeout;
    fl::Result<fl::Reply> r = fl::Errc::timeout;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      id = c->ep.send(bytes);
      if (id) {
        ++c->sent;
        r = client_wait(*c, lk, *id, timeout);
        if (r) ++c->replies;
      }
    }
    PyObject* out = id && r ? client_reply_object(self, keep, r) : nullptr;
    c->unlock(lk);
    const std::string op = "call(" + std::to_string(bytes.size()) + " bytes)";
    if (!id) return pattern_fail(self, id.error(), op, client_why(id.error(), timeout, true), true);
    if (!r) return pattern_fail(self, r.error(), op, client_why(r.error(), timeout, false));
    return out;
  });
}

PyObject* client_prepare(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  PyObject* a[1];
  size_t n;
  if (!parse_fast("prepare", args, nargs, kwnames, {"n"}, 1, a) || !to_size(a[0], &n)) return nullptr;
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    fl::Result<std::span<std::byte>> r = fl::Errc::timeout;
    {
      std::shared_ptr<ClientCore> keep = self->core;
      py::gil_scoped_release nogil;  // waits for a free request slot
      std::lock_guard<CoreMutex> lk(c->mu);
      c->ep.abort_prepared();  // C++ prepare() would leave an earlier loan half-done
      r = c->ep.prepare(n);
    }
    if (r && !self->core) {  // closed meanwhile: close() waits for `mu`, which we no longer hold
      CoreLock lk;
      lock_core(self, c, lk);
      c->ep.abort_prepared();
      c->unlock(lk);
      r = fl::Errc::closed;
    }
    if (!r)
      return pattern_fail(self, r.error(), "prepare(" + std::to_string(n) + ")", client_why(r.error(), nanoseconds(0), true),
                          true);
    return export_view(self->exporter, *r);
  });
}

PyObject* client_send_prepared_impl(PyObject* o, PyObject* used_obj, bool tail) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  size_t used;
  if (!to_size(used_obj, &used)) return nullptr;
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  if (!self->exporter->live) {
    PyErr_SetString(PyExc_ValueError, "flatlane: send_prepared without a prepared request (prepare() first)");
    return nullptr;
  }
  if (used > self->exporter->len) {
    PyErr_Format(PyExc_ValueError, "flatlane: send_prepared of %zu bytes exceeds the prepared %zu", used,
                 self->exporter->len);
    return nullptr;
  }
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    fl::Result<uint64_t> r = fl::Errc::timeout;
    {
      std::shared_ptr<ClientCore> keep = self->core;
      py::gil_scoped_release nogil;  // waits for server queue space (send_timeout)
      std::lock_guard<CoreMutex> lk(c->mu);
      r = tail ? c->ep.send_prepared_tail(used) : c->ep.send_prepared(used);
      if (r) ++c->sent;
    }
    if (!r)
      return pattern_fail(self, r.error(), tail ? "send_prepared_tail()" : "send_prepared()",
                          client_why(r.error(), nanoseconds(0), true), true);
    return PyLong_FromUnsignedLongLong(*r);
  });
}

PyObject* client_send_prepared(PyObject* o, PyObject* used) { return client_send_prepared_impl(o, used, false); }
PyObject* client_send_prepared_tail(PyObject* o, PyObject* used) { return client_send_prepared_impl(o, used, true); }

PyObject* client_abort_prepared(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    c->ep.abort_prepared();
    c->unlock(lk);
    Py_RETURN_NONE;
  });
}

PyObject* client_get_max_request(PyObject* o, void*) {
  ClientCore* c = pattern_core(reinterpret_cast<ClientObject*>(o));
  return c ? PyLong_FromSize_t(c->ep.max_request()) : nullptr;
}
PyObject* client_get_index(PyObject* o, void*) {
  ClientCore* c = pattern_core(reinterpret_cast<ClientObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.index()) : nullptr;
}
PyObject* client_get_held(PyObject* o, void*) {
  ClientCore* c = pattern_core(reinterpret_cast<ClientObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->held.load(std::memory_order_relaxed)) : nullptr;
}

PyObject* client_stats(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<ClientObject*>(o);
  ClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    const uint64_t sent = c->sent, replies = c->replies;
    c->unlock(lk);
    return Py_BuildValue("(KKK)", static_cast<unsigned long long>(sent), static_cast<unsigned long long>(replies),
                         static_cast<unsigned long long>(c->held.load(std::memory_order_relaxed)));
  });
}

PyMethodDef client_methods[] = {
    {"send", as_cfunction(client_send), METH_FASTCALL | METH_KEYWORDS,
     "send(data) -> int\n\nSend a request (a bytes-like object of at most max_request bytes); returns its id. "
     "Raises ChannelNotFoundError when no server is attached, BufferFullError when the server's queue stayed full "
     "for send_timeout."},
    {"receive", as_cfunction(client_receive), METH_FASTCALL | METH_KEYWORDS,
     "receive(id, timeout=None) -> Reply\n\nThe next reply to request `id`, zero copy; replies to other (given up) "
     "requests are skipped. Raises FlatlaneTimeoutError, PeerDeadError (the server died), PeerClosedError."},
    {"call", as_cfunction(client_call), METH_FASTCALL | METH_KEYWORDS,
     "call(data, timeout=None) -> Reply\n\nsend + receive; the timeout (ms) bounds the wait for the reply."},
    {"prepare", as_cfunction(client_prepare), METH_FASTCALL | METH_KEYWORDS,
     "prepare(n) -> memoryview\n\nA writable view of n bytes of a request slot; then send_prepared(used)."},
    {"send_prepared", client_send_prepared, METH_O,
     "send_prepared(used) -> int\n\nSend the first `used` prepared bytes; returns the request id."},
    {"send_prepared_tail", client_send_prepared_tail, METH_O,
     "send_prepared_tail(used) -> int\n\nSend the last `used` prepared bytes where they are."},
    {"abort_prepared", client_abort_prepared, METH_NOARGS, "Give the prepared slot back unsent."},
    {"close", pattern_close<ClientObject>, METH_NOARGS, "Detach from the service (idempotent)."},
    {"_stats", client_stats, METH_NOARGS, "(requests, replies, held_replies)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef client_getset[] = {
    {"closed", pattern_get_closed<ClientObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<ClientObject>, nullptr, "The service name.", nullptr},
    {"max_request", client_get_max_request, nullptr, "The largest request payload.", nullptr},
    {"index", client_get_index, nullptr, "This client's index (Request.client on the server).", nullptr},
    {"held_replies", client_get_held, nullptr, "Replies returned and not yet released.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ================================================================================================
// In-place duplex channels (kind 3): DuplexClient / DuplexServer.
//
// The same ownership and threading rules as the topics and services above. Each C++ endpoint
// lives in a DuplexCore behind a std::shared_ptr; the Python endpoint, every DuplexResponse and
// DuplexRequest object and the exporter of the client's reservation hold one reference, so the
// ring stays mapped while any view of it is alive.
//
// The C++ DuplexResponse/DuplexRequest handles live in the core (`held`, keyed by seq, guarded
// by `mu`), not in the Python objects: close() releases every response (the client) or rejects
// every unanswered request (the server, like ~DuplexServer) with the role still ours, before the
// C++ endpoint closes. A handle released after close() would otherwise write the shared release
// or response position of a role a new endpoint may have claimed. The Python objects keep only
// their seq; giving one back after close() finds nothing left to do.

template <class Ep, class Msg>
struct DuplexCore {
  DuplexCore(const std::string& n, const fl::DuplexOptions& o) : name(n), ep(n, o) {}
  const std::string name;
  Ep ep;
  CoreMutex mu;  // serialises calls into `ep` and `held`
  std::atomic<bool> closed{false};
  std::unordered_map<uint64_t, Msg> held;  // after `ep`: destroyed (released/rejected) before it
  std::atomic<uint64_t> held_count{0};     // Python objects not yet given back
  std::mutex pending_mu;
  std::vector<uint64_t> pending;  // seqs given back while another thread held `mu`
  std::atomic<bool> has_pending{false};

  void drain_locked() noexcept {
    if (!has_pending.load(std::memory_order_seq_cst)) return;
    std::vector<uint64_t> batch;
    {
      std::lock_guard<std::mutex> g(pending_mu);
      batch.swap(pending);
      has_pending.store(false, std::memory_order_seq_cst);
    }
    for (uint64_t k : batch) held.erase(k);  // each destructor releases (client) or rejects (server)
  }

  // Gives a message back from Python (GIL held, so this never waits for `mu` for long).
  void give_back(uint64_t key) noexcept {
    held_count.fetch_sub(1, std::memory_order_relaxed);
    CoreLock lk(mu, std::try_to_lock);
    if (lk.owns_lock()) {
      held.erase(key);
      drain_locked();
      return;
    }
    try {
      std::lock_guard<std::mutex> g(pending_mu);
      pending.push_back(key);
      has_pending.store(true, std::memory_order_seq_cst);
    } catch (const std::bad_alloc&) {
      lk.lock();  // the holder waits in slices
      held.erase(key);
      drain_locked();
      return;
    }
    if (lk.try_lock()) drain_locked();
  }

  void unlock(CoreLock& lk) noexcept {
    drain_locked();
    lk.unlock();
    if (has_pending.load(std::memory_order_seq_cst) && lk.try_lock()) {
      drain_locked();
      lk.unlock();
    }
  }
};

using DClientCore = DuplexCore<fl::DuplexClient, fl::DuplexResponse>;
using DServerCore = DuplexCore<fl::DuplexServer, fl::DuplexRequest>;
using DuplexClientObject = PatternObject<DClientCore>;
using DuplexServerObject = PatternObject<DServerCore>;

template <>
struct RoleOf<DuplexClientObject> {
  static constexpr const char* kRole = "client";
  static constexpr const char* kWhat = "duplex channel";
};
template <>
struct RoleOf<DuplexServerObject> {
  static constexpr const char* kRole = "server";
  static constexpr const char* kWhat = "duplex channel";
};

PyTypeObject* g_dclient_type = nullptr;
PyTypeObject* g_dserver_type = nullptr;
PyTypeObject* g_dresponse_type = nullptr;
PyTypeObject* g_drequest_type = nullptr;
PyTypeObject* g_dframe_type = nullptr;

bool parse_duplex_options(PyObject* args, PyObject* kwargs, std::string* name, fl::DuplexOptions* o) {
  static const char* kw[] = {"name",      "mode",      "ring_capacity",  "permissions",          "type_name",
                             "type_hash", "type_name_only", "wait",      "spin_budget_ns", "liveness_interval_ns",
                             "unlink_on_close", nullptr};
  const char* name_c = nullptr;
  Py_ssize_t name_len = 0;
  const char* type_c = "";
  Py_ssize_t type_len = 0;
  int mode = 2, wait = 1, unlink = 1, name_only = 0;
  unsigned long long ring = 1ull << 20, hash = 0;
  unsigned int perms = 0600;
  long long spin_ns = 50'000, liveness_ns = 50'000'000;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$iKIs#KpiLLp:Duplex", const_cast<char**>(kw), &name_c, &name_len,
                                   &mode, &ring, &perms, &type_c, &type_len, &hash, &name_only, &wait, &spin_ns,
                                   &liveness_ns, &unlink))
    return false;
  if (!parse_mode(mode, &o->mode) || !parse_wait(wait, spin_ns, liveness_ns, &o->wait)) return false;
  if (perms > 0777) {
    PyErr_SetString(PyExc_ValueError, "flatlane: permissions must be a file mode like 0o600");
    return false;
  }
  name->assign(name_c, static_cast<size_t>(name_len));
  o->segment.ring_capacity = ring;
  o->segment.mode = static_cast<mode_t>(perms);
  o->segment.type.name.assign(type_c, static_cast<size_t>(type_len));
  o->segment.type.hash = hash;
  o->segment.type.name_only = name_only != 0;
  o->unlink_on_close = unlink != 0;
  return true;
}

// Closes a duplex endpoint: held responses are released / unanswered requests rejected while
// the role is still ours, then the C++ endpoint closes (the peer sees peer_closed).
template <class Obj>
void duplex_close_impl(Obj* self) {
  if (!self->core) return;
  auto core = std::move(self->core);
  core->closed.store(true, std::memory_order_release);
  if (self->exporter) self->exporter->live = false;
  {
    CoreLock lk(core->mu, std::try_to_lock);
    if (!lk.owns_lock()) {
      py::gil_scoped_release nogil;  // a blocked call gives the mutex up within a slice
      lk.lock();
    }
    core->drain_locked();
    if constexpr (std::is_same_v<Obj, DuplexClientObject>) core->ep.abort();
    core->held.clear();
    core->ep.close();
    core->unlock(lk);
  }
  PyObject* e = reinterpret_cast<PyObject*>(self->exporter);
  self->exporter = nullptr;
  Py_XDECREF(e);
}

template <class Obj>
void duplex_dealloc(PyObject* o) {
  auto* self = reinterpret_cast<Obj*>(o);
  PyTypeObject* tp = Py_TYPE(o);
  duplex_close_impl(self);
  self->core.~shared_ptr();
  self->name.~basic_string();
  tp->tp_free(o);
  Py_DECREF(tp);
}

template <class Obj>
PyObject* duplex_close(PyObject* o, PyObject*) {
  duplex_close_impl(reinterpret_cast<Obj*>(o));
  Py_RETURN_NONE;
}

std::string duplex_why(fl::Errc e, nanoseconds timeout, bool client, bool reserving) {
  switch (e) {
    case fl::Errc::timeout:
      if (reserving)
        return "no ring space: the ring is full of requests whose responses were not received and released "
               "(receive() and release them first)";
      return (client ? "no response within " : "no request within ") + ms_text(timeout);
    case fl::Errc::peer_dead: return client ? "the server process died" : "the client process died";
    case fl::Errc::peer_closed: return client ? "the server closed the channel" : "the client closed the channel";
    case fl::Errc::invalid_argument: return client ? "no request is outstanding" : "";
    default: return {};
  }
}

// ------------------------------------------------------------------------------------------------
// DuplexResponse (client) and DuplexRequest (server) objects.

struct DResponseObject {
  PyObject_HEAD
  std::shared_ptr<DClientCore> core;
  std::byte* data;
  size_t size;
  uint64_t seq;
  bool rejected;
  bool given_back;
  bool release_requested;
  Py_ssize_t exports;
};

struct DRequestObject {
  PyObject_HEAD
  std::shared_ptr<DServerCore> core;
  std::byte* payload;  // the whole frame payload
  size_t capacity;
  size_t offset;  // the request bytes within it
  size_t size;
  uint64_t seq;
  bool answered;  // responded or rejected (or given back)
  bool release_requested;
  Py_ssize_t exports;  // buffer exports of the request bytes and of `.frame`
};

// The writable view of a request's whole frame payload: its exports count as the request's.
struct DFrameObject {
  PyObject_HEAD
  DRequestObject* owner;  // strong reference
};

template <class Obj>
void dmsg_give_back(Obj* m) {
  if (m->given_back) return;
  m->given_back = true;
  m->core->give_back(m->seq);
}

void dresponse_dealloc(PyObject* self) {
  auto* m = reinterpret_cast<DResponseObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  dmsg_give_back(m);
  m->core.~shared_ptr();
  tp->tp_free(self);
  Py_DECREF(tp);
}

int dresponse_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* m = reinterpret_cast<DResponseObject*>(self);
  if (m->release_requested || m->core->closed.load(std::memory_order_acquire)) {
    PyErr_Format(PyExc_ValueError, "flatlane: DuplexResponse %llu was %s", static_cast<unsigned long long>(m->seq),
                 m->release_requested ? "released" : "given back (the client is closed)");
    view->obj = nullptr;
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, m->data, static_cast<Py_ssize_t>(m->size), 0, flags) < 0) return -1;
  ++m->exports;
  return 0;
}

void dresponse_releasebuffer(PyObject* self, Py_buffer*) {
  auto* m = reinterpret_cast<DResponseObject*>(self);
  if (--m->exports == 0 && m->release_requested) dmsg_give_back(m);
}

PyObject* dresponse_release(PyObject* self, PyObject*) {
  auto* m = reinterpret_cast<DResponseObject*>(self);
  m->release_requested = true;
  if (m->exports == 0) dmsg_give_back(m);
  Py_RETURN_NONE;
}

PyObject* dresponse_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
  dresponse_release(self, nullptr);
  Py_RETURN_FALSE;
}

Py_ssize_t dresponse_len(PyObject* self) { return static_cast<Py_ssize_t>(reinterpret_cast<DResponseObject*>(self)->size); }
PyObject* dresponse_get_seq(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<DResponseObject*>(self)->seq);
}
PyObject* dresponse_get_rejected(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<DResponseObject*>(self)->rejected);
}
PyObject* dresponse_get_released(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<DResponseObject*>(self)->release_requested);
}
PyObject* dresponse_repr(PyObject* self) {
  auto* m = reinterpret_cast<DResponseObject*>(self);
  return PyUnicode_FromFormat("<flatlane.DuplexResponse seq=%llu size=%zu%s%s>", static_cast<unsigned long long>(m->seq),
                              m->size, m->rejected ? " rejected" : "", m->release_requested ? " released" : "");
}

void drequest_dealloc(PyObject* self) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  if (!m->answered) {
    m->answered = true;
    m->core->give_back(m->seq);  // unanswered: the handle's destructor rejects it
  }
  m->core.~shared_ptr();
  tp->tp_free(self);
  Py_DECREF(tp);
}

bool drequest_exportable(DRequestObject* m) {
  if (m->answered || m->release_requested || m->core->closed.load(std::memory_order_acquire)) {
    PyErr_Format(PyExc_ValueError, "flatlane: DuplexRequest %llu was %s", static_cast<unsigned long long>(m->seq),
                 m->release_requested ? "released"
                 : m->answered        ? "answered"
                                      : "rejected (the server is closed)");
    return false;
  }
  return true;
}

int drequest_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  if (!drequest_exportable(m)) {
    view->obj = nullptr;
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, m->payload + m->offset, static_cast<Py_ssize_t>(m->size), 0, flags) < 0) return -1;
  ++m->exports;
  return 0;
}

// Answers (respond or reject) with the core's mutex. Returns false with a Python error set.
bool drequest_answer(DRequestObject* m, bool respond, size_t offset, size_t size) {
  auto& core = m->core;
  CoreLock lk(core->mu, std::try_to_lock);
  if (!lk.owns_lock()) {
    std::shared_ptr<DServerCore> keep = core;
    py::gil_scoped_release nogil;  // a receive() blocked in another thread gives it up within a slice
    lk.lock();
  }
  core->drain_locked();
  fl::Errc err = fl::Errc::ok;
  auto it = core->held.find(m->seq);
  if (it == core->held.end()) {
    err = fl::Errc::closed;
  } else if (respond) {
    auto r = core->ep.respond(it->second, offset, size);
    if (!r) err = r.error();
    else core->held.erase(it);
  } else {
    core->held.erase(it);  // rejects
  }
  core->unlock(lk);
  if (err != fl::Errc::ok) {
    std::string d = std::string(respond ? "respond" : "reject") + "(" + std::to_string(m->seq) +
                    ") on duplex channel '" + core->name + "'";
    if (err == fl::Errc::message_too_large)
      d += ": " + std::to_string(offset) + "+" + std::to_string(size) + " bytes exceed the frame's " +
           std::to_string(m->capacity);
    if (err == fl::Errc::closed) d += ": the server is closed (the request was rejected)";
    set_pattern_error(err, d, core->name, "server", false);
    return false;
  }
  m->answered = true;
  core->held_count.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void drequest_releasebuffer(PyObject* self, Py_buffer*) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  if (--m->exports == 0 && m->release_requested && !m->answered) {
    m->answered = true;
    m->core->give_back(m->seq);
  }
}

PyObject* drequest_check_open(DRequestObject* m) {
  if (m->answered || m->release_requested) {
    set_pattern_error(fl::Errc::invalid_argument,
                      "request " + std::to_string(m->seq) + " on duplex channel '" + m->core->name + "' was already " +
                          (m->answered ? "answered" : "released"),
                      m->core->name, "server", false);
    return nullptr;
  }
  return Py_None;
}

PyObject* drequest_respond(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  PyObject* a[2];
  if (!parse_fast("respond", args, nargs, kwnames, {"offset", "size"}, 0, a)) return nullptr;
  if (drequest_check_open(m) == nullptr) return nullptr;
  size_t offset = m->offset, size = m->size;
  if (a[0] != nullptr && a[0] != Py_None) {
    if (!to_size(a[0], &offset)) return nullptr;
    if (a[1] == nullptr || a[1] == Py_None) {
      if (offset > m->capacity) {
        PyErr_Format(PyExc_ValueError, "flatlane: respond offset %zu is past the frame's %zu bytes", offset,
                     m->capacity);
        return nullptr;
      }
      size = m->capacity - offset;
    }
  }
  if (a[1] != nullptr && a[1] != Py_None && !to_size(a[1], &size)) return nullptr;
  return guarded([&]() -> PyObject* {
    if (!drequest_answer(m, true, offset, size)) return nullptr;
    Py_RETURN_NONE;
  });
}

PyObject* drequest_reject(PyObject* self, PyObject*) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  if (m->answered) Py_RETURN_NONE;  // idempotent, like C++
  return guarded([&]() -> PyObject* {
    if (!drequest_answer(m, false, 0, 0)) {
      // Closed: the request was rejected by close() already.
      PyErr_Clear();
      m->answered = true;
      m->core->held_count.fetch_sub(1, std::memory_order_relaxed);
    }
    Py_RETURN_NONE;
  });
}

PyObject* drequest_release(PyObject* self, PyObject*) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  m->release_requested = true;
  if (m->exports == 0 && !m->answered) {
    m->answered = true;
    m->core->give_back(m->seq);
  }
  Py_RETURN_NONE;
}

PyObject* drequest_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
  drequest_release(self, nullptr);
  Py_RETURN_FALSE;
}

Py_ssize_t drequest_len(PyObject* self) { return static_cast<Py_ssize_t>(reinterpret_cast<DRequestObject*>(self)->size); }
PyObject* drequest_get_seq(PyObject* self, void*) {
  return PyLong_FromUnsignedLongLong(reinterpret_cast<DRequestObject*>(self)->seq);
}
PyObject* drequest_get_offset(PyObject* self, void*) {
  return PyLong_FromSize_t(reinterpret_cast<DRequestObject*>(self)->offset);
}
PyObject* drequest_get_capacity(PyObject* self, void*) {
  return PyLong_FromSize_t(reinterpret_cast<DRequestObject*>(self)->capacity);
}
PyObject* drequest_get_answered(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<DRequestObject*>(self)->answered);
}
PyObject* drequest_get_released(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<DRequestObject*>(self)->release_requested);
}
PyObject* drequest_get_frame(PyObject* self, void*) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  if (!drequest_exportable(m)) return nullptr;
  auto* f = PyObject_New(DFrameObject, g_dframe_type);
  if (f == nullptr) return nullptr;
  Py_INCREF(self);
  f->owner = m;
  PyObject* mv = PyMemoryView_FromObject(reinterpret_cast<PyObject*>(f));
  Py_DECREF(reinterpret_cast<PyObject*>(f));  // the memoryview holds it
  return mv;
}
PyObject* drequest_repr(PyObject* self) {
  auto* m = reinterpret_cast<DRequestObject*>(self);
  return PyUnicode_FromFormat("<flatlane.DuplexRequest seq=%llu size=%zu offset=%zu capacity=%zu%s>",
                              static_cast<unsigned long long>(m->seq), m->size, m->offset, m->capacity,
                              m->answered ? " answered" : "");
}

void dframe_dealloc(PyObject* self) {
  auto* f = reinterpret_cast<DFrameObject*>(self);
  PyTypeObject* tp = Py_TYPE(self);
  Py_XDECREF(reinterpret_cast<PyObject*>(f->owner));
  tp->tp_free(self);
  Py_DECREF(tp);
}

int dframe_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  DRequestObject* m = reinterpret_cast<DFrameObject*>(self)->owner;
  if (!drequest_exportable(m)) {
    view->obj = nullptr;
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, m->payload, static_cast<Py_ssize_t>(m->capacity), 0, flags) < 0) return -1;
  ++m->exports;
  return 0;
}

void dframe_releasebuffer(PyObject* self, Py_buffer* view) {
  drequest_releasebuffer(reinterpret_cast<PyObject*>(reinterpret_cast<DFrameObject*>(self)->owner), view);
}

PyMethodDef dresponse_methods[] = {
    {"release", dresponse_release, METH_NOARGS,
     "Give the frame back to the client's ring. Takes effect once no memoryview or array of it is alive; "
     "new views are refused from now on. Idempotent."},
    {"numpy", as_cfunction(frame_numpy), METH_VARARGS | METH_KEYWORDS,
     "numpy(dtype=None, count=-1, offset=0) -> numpy.ndarray\n\nA writable NumPy array over the response bytes "
     "(zero copy); the array keeps the response held."},
    {"__enter__", frame_enter, METH_NOARGS, nullptr},
    {"__exit__", as_cfunction(dresponse_exit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef dresponse_getset[] = {
    {"data", frame_get_data, nullptr,
     "Writable memoryview of the response bytes: the request's frame as the server left it (zero copy).", nullptr},
    {"seq", dresponse_get_seq, nullptr, "The seq commit()/send() returned for the request.", nullptr},
    {"rejected", dresponse_get_rejected, nullptr,
     "True if the server rejected the request (or died or closed holding it); the data is empty.", nullptr},
    {"released", dresponse_get_released, nullptr, "True once release() was called.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef drequest_methods[] = {
    {"respond", as_cfunction(drequest_respond), METH_FASTCALL | METH_KEYWORDS,
     "respond(offset=None, size=None)\n\nAnswer with the bytes now in the frame: by default the request's own "
     "place (offset, size); else `size` bytes at `offset` within `frame` (size defaults to the rest of the frame). "
     "Raises MessageTooLargeError past the frame, InvalidArgumentError if already answered."},
    {"reject", drequest_reject, METH_NOARGS, "Reject the request (the client sees rejected). Idempotent."},
    {"release", drequest_release, METH_NOARGS,
     "Drop the request: rejected if unanswered, once no view of it is alive. Idempotent."},
    {"numpy", as_cfunction(frame_numpy), METH_VARARGS | METH_KEYWORDS,
     "numpy(dtype=None, count=-1, offset=0) -> numpy.ndarray\n\nA writable NumPy array over the request bytes "
     "(zero copy)."},
    {"__enter__", frame_enter, METH_NOARGS, nullptr},
    {"__exit__", as_cfunction(drequest_exit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef drequest_getset[] = {
    {"data", frame_get_data, nullptr, "Writable memoryview of the request bytes in the client's frame (zero copy).",
     nullptr},
    {"frame", drequest_get_frame, nullptr,
     "Writable memoryview of the whole frame payload (the client's reservation); the request bytes are at "
     "request_offset.",
     nullptr},
    {"seq", drequest_get_seq, nullptr, "The request's seq (the client's numbering, from 1).", nullptr},
    {"request_offset", drequest_get_offset, nullptr, "Offset of the request bytes within `frame`.", nullptr},
    {"capacity", drequest_get_capacity, nullptr, "Bytes of the whole frame payload.", nullptr},
    {"answered", drequest_get_answered, nullptr,
     "True once answered: respond(), reject(), or released / dropped unanswered (rejected).", nullptr},
    {"released", drequest_get_released, nullptr, "True once release() was called.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// DuplexClient

int dclient_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::DuplexOptions opts;
  if (!parse_duplex_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<DuplexClientObject, DClientCore>(reinterpret_cast<DuplexClientObject*>(o), name, opts, true);
}

// reserve() waits only for frames left by a previous client; a ring full of our own frames fails
// at once (no wait can free them). In slices: a slice that ends early with a timeout is that case.
fl::Result<std::span<std::byte>> dclient_reserve_locked(DClientCore& c, CoreLock& lk, size_t n,
                                                        nanoseconds timeout) {
  c.ep.abort();
  const bool forever = timeout.count() < 0;
  const auto deadline = forever ? fl::Clock::time_point::max() : fl::Clock::now() + timeout;
  for (;;) {
    nanoseconds slice = kWaitSlice;
    if (!forever) slice = std::max(nanoseconds(0), std::min(slice, std::chrono::duration_cast<nanoseconds>(deadline - fl::Clock::now())));
    const auto t0 = fl::Clock::now();
    auto r = c.ep.reserve(n, slice);
    if (r || r.error() != fl::Errc::timeout) return r;
    if (fl::Clock::now() - t0 < slice / 2) return r;  // no orphans ahead: our own frames fill the ring
    if (c.closed.load(std::memory_order_acquire)) return fl::Errc::closed;
    if (!forever && fl::Clock::now() >= deadline) return r;
    c.unlock(lk);
    c.mu.step_aside();
    lk.lock();
  }
}

PyObject* dclient_reserve(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<DuplexClientObject*>(o);
  PyObject* a[2];
  size_t n;
  nanoseconds timeout;
  if (!parse_fast("reserve", args, nargs, kwnames, {"n", "timeout"}, 1, a) || !to_size(a[0], &n) ||
      !to_timeout(a[1], &timeout))
    return nullptr;
  DClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    std::shared_ptr<DClientCore> keep = self->core;
    CoreLock lk;
    fl::Result<std::span<std::byte>> r = fl::Errc::timeout;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      r = dclient_reserve_locked(*c, lk, n, timeout);
    }
    c->unlock(lk);
    if (!r) {
      std::string why = duplex_why(r.error(), timeout, true, true);
      if (r.error() == fl::Errc::message_too_large)
        why = std::to_string(n) + " bytes exceed the largest frame " + std::to_string(c->ep.max_frame_payload());
      return pattern_fail(self, r.error(), "reserve(" + std::to_string(n) + ")", why, true);
    }
    if (!self->exporter) return pattern_fail(self, fl::Errc::closed, "reserve", "closed meanwhile");
    return export_view(self->exporter, *r);
  });
}

PyObject* dclient_publish(PyObject* o, PyObject* used_obj, bool tail) {
  auto* self = reinterpret_cast<DuplexClientObject*>(o);
  size_t used;
  if (!to_size(used_obj, &used)) return nullptr;
  DClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  if (!self->exporter->live) {
    PyErr_SetString(PyExc_ValueError, tail ? "flatlane: commit_tail without a reservation (reserve() first)"
                                           : "flatlane: commit without a reservation (reserve() first)");
    return nullptr;
  }
  if (used > self->exporter->len) {
    PyErr_Format(PyExc_ValueError, "flatlane: commit of %zu bytes exceeds the reserved %zu", used, self->exporter->len);
    return nullptr;
  }
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    const uint64_t seq = tail ? c->ep.commit_tail(used) : c->ep.commit(used);
    c->unlock(lk);
    if (seq == 0) return pattern_fail(self, fl::Errc::invalid_argument, "commit", "no reservation");
    return PyLong_FromUnsignedLongLong(seq);
  });
}

PyObject* dclient_commit(PyObject* o, PyObject* used) { return dclient_publish(o, used, false); }
PyObject* dclient_commit_tail(PyObject* o, PyObject* used) { return dclient_publish(o, used, true); }

PyObject* dclient_abort(PyObject* o, PyObject*) {
  auto* self = reinterpret_cast<DuplexClientObject*>(o);
  DClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    CoreLock lk;
    lock_core(self, c, lk);
    c->ep.abort();
    c->unlock(lk);
    Py_RETURN_NONE;
  });
}

PyObject* dclient_send(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<DuplexClientObject*>(o);
  PyObject* a[3];
  size_t capacity = 0;
  nanoseconds timeout;
  if (!parse_fast("send", args, nargs, kwnames, {"data", "capacity", "timeout"}, 1, a) || !to_timeout(a[2], &timeout))
    return nullptr;
  if (a[1] != nullptr && a[1] != Py_None && !to_size(a[1], &capacity)) return nullptr;
  DClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  BufferView buf;
  if (!buf.get(a[0])) return nullptr;
  const auto bytes = buf.bytes();
  const size_t n = std::max(bytes.size(), capacity);
  return guarded([&]() -> PyObject* {
    self->exporter->live = false;
    std::shared_ptr<DClientCore> keep = self->core;
    CoreLock lk;
    fl::Result<std::span<std::byte>> r = fl::Errc::timeout;
    uint64_t seq = 0;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      r = dclient_reserve_locked(*c, lk, n, timeout);
      if (r) {
        if (!bytes.empty()) std::memcpy(r->data(), bytes.data(), bytes.size());
        seq = c->ep.commit(bytes.size());
      }
    }
    c->unlock(lk);
    if (!r) {
      std::string why = duplex_why(r.error(), timeout, true, true);
      if (r.error() == fl::Errc::message_too_large)
        why = std::to_string(n) + " bytes exceed the largest frame " + std::to_string(c->ep.max_frame_payload());
      return pattern_fail(self, r.error(), "send(" + std::to_string(bytes.size()) + " bytes)", why, true);
    }
    return PyLong_FromUnsignedLongLong(seq);
  });
}

PyObject* dclient_receive(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<DuplexClientObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("receive", args, nargs, kwnames, &timeout)) return nullptr;
  DClientCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<DClientCore> keep = self->core;
    auto* obj = PyObject_New(DResponseObject, g_dresponse_type);
    if (obj == nullptr) return nullptr;
    new (&obj->core) std::shared_ptr<DClientCore>(keep);
    obj->given_back = true;  // nothing to give back until filled in
    obj->release_requested = true;
    obj->exports = 0;
    obj->data = nullptr;
    obj->size = 0;
    obj->seq = 0;
    obj->rejected = false;
    CoreLock lk;
    std::optional<fl::Result<fl::DuplexResponse>> res;
    bool stored = false;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      res.emplace(wait_in_slices(*c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c->ep.receive(t); }));
      auto& r = *res;
      if (r) {
        const uint64_t seq = r->seq();
        static std::byte empty[1];
        obj->data = r->size() ? r->data().data() : empty;  // rejected: no bytes
        obj->size = r->size();
        obj->seq = seq;
        obj->rejected = r->rejected();
        try {
          c->held.emplace(seq, std::move(*r));
          stored = true;
        } catch (const std::bad_alloc&) {
          res.reset();  // released / rejected here, with the mutex
        }
      }
    }
    c->unlock(lk);
    if (!res) {
      Py_DECREF(reinterpret_cast<PyObject*>(obj));
      return PyErr_NoMemory();
    }
    auto& r = *res;
    if (!r || !stored) {
      Py_DECREF(reinterpret_cast<PyObject*>(obj));
      if (!r) return pattern_fail(self, r.error(), "receive", duplex_why(r.error(), timeout, true, false));
      return PyErr_NoMemory();
    }
    obj->given_back = false;
    obj->release_requested = false;
    c->held_count.fetch_add(1, std::memory_order_relaxed);
    return reinterpret_cast<PyObject*>(obj);
  });
}

template <class Obj, class F>
PyObject* duplex_locked_query(PyObject* o, F&& f) {
  auto* self = reinterpret_cast<Obj*>(o);
  auto* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    CoreLock lk;
    lock_core(self, c, lk);
    PyObject* out = f(*c);
    c->unlock(lk);
    return out;
  });
}

PyObject* duplex_stats_tuple(const fl::DuplexStats& s) {
  return Py_BuildValue("(KKKKKKK)", static_cast<unsigned long long>(s.requests),
                       static_cast<unsigned long long>(s.responses), static_cast<unsigned long long>(s.rejected),
                       static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.outstanding),
                       static_cast<unsigned long long>(s.occupancy_bytes),
                       static_cast<unsigned long long>(s.capacity_bytes));
}

PyObject* dclient_stats(PyObject* o, PyObject*) {
  return duplex_locked_query<DuplexClientObject>(o, [](DClientCore& c) { return duplex_stats_tuple(c.ep.stats()); });
}
PyObject* dclient_get_outstanding(PyObject* o, void*) {
  return duplex_locked_query<DuplexClientObject>(o, [](DClientCore& c) {
    return PyLong_FromUnsignedLongLong(c.ep.outstanding());
  });
}
PyObject* dclient_get_max_frame(PyObject* o, void*) {
  DClientCore* c = pattern_core(reinterpret_cast<DuplexClientObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.max_frame_payload()) : nullptr;
}
PyObject* dclient_get_capacity(PyObject* o, void*) {
  DClientCore* c = pattern_core(reinterpret_cast<DuplexClientObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->ep.segment().ring_capacity()) : nullptr;
}
PyObject* dclient_get_peer(PyObject* o, void*) {
  DClientCore* c = pattern_core(reinterpret_cast<DuplexClientObject*>(o));
  return c ? PyBool_FromLong(c->ep.peer_attached()) : nullptr;
}
PyObject* dclient_get_held(PyObject* o, void*) {
  DClientCore* c = pattern_core(reinterpret_cast<DuplexClientObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->held_count.load(std::memory_order_relaxed)) : nullptr;
}

PyMethodDef dclient_methods[] = {
    {"reserve", as_cfunction(dclient_reserve), METH_FASTCALL | METH_KEYWORDS,
     "reserve(n, timeout=None) -> memoryview\n\nA writable view of an n-byte frame for the next request; then "
     "commit(used) or commit_tail(used). Space returns only as responses are received and released: a ring full of "
     "them raises BufferFullError at once. MessageTooLargeError above max_frame_payload."},
    {"commit", dclient_commit, METH_O,
     "commit(used) -> int\n\nPublish the first `used` reserved bytes as the request; returns its seq. The whole "
     "reservation stays the frame the server may answer in."},
    {"commit_tail", dclient_commit_tail, METH_O,
     "commit_tail(used) -> int\n\nPublish the LAST `used` reserved bytes (a FlatBuffer built back to front)."},
    {"abort", dclient_abort, METH_NOARGS, "Drop the reservation unpublished."},
    {"send", as_cfunction(dclient_send), METH_FASTCALL | METH_KEYWORDS,
     "send(data, capacity=0, timeout=None) -> int\n\nCopy `data` into a frame of max(len(data), capacity) bytes "
     "and publish it; returns its seq."},
    {"receive", as_cfunction(dclient_receive), METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None) -> DuplexResponse\n\nThe response to the oldest request not yet received (responses "
     "come in request order), zero copy in its own frame. Raises FlatlaneTimeoutError, PeerDeadError, "
     "PeerClosedError, InvalidArgumentError when nothing is outstanding."},
    {"close", duplex_close<DuplexClientObject>, METH_NOARGS,
     "Detach (idempotent); held responses are released, their views stay readable memory."},
    {"_stats", dclient_stats, METH_NOARGS,
     "(requests, responses, rejected, bytes, outstanding, occupancy_bytes, capacity_bytes)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef dclient_getset[] = {
    {"closed", pattern_get_closed<DuplexClientObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<DuplexClientObject>, nullptr, "The channel name.", nullptr},
    {"max_frame_payload", dclient_get_max_frame, nullptr, "Largest reservation (a request and its response).",
     nullptr},
    {"ring_capacity", dclient_get_capacity, nullptr, "Ring bytes.", nullptr},
    {"peer_attached", dclient_get_peer, nullptr, "True while a live server is attached.", nullptr},
    {"outstanding", dclient_get_outstanding, nullptr, "Requests sent whose response was not received yet.", nullptr},
    {"held_responses", dclient_get_held, nullptr, "Responses returned by receive() and not yet released.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ------------------------------------------------------------------------------------------------
// DuplexServer

int dserver_init(PyObject* o, PyObject* args, PyObject* kwargs) {
  std::string name;
  fl::DuplexOptions opts;
  if (!parse_duplex_options(args, kwargs, &name, &opts)) return -1;
  return pattern_init<DuplexServerObject, DServerCore>(reinterpret_cast<DuplexServerObject*>(o), name, opts, false);
}

PyObject* dserver_receive(PyObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<DuplexServerObject*>(o);
  nanoseconds timeout;
  if (!parse_timeout_only("receive", args, nargs, kwnames, &timeout)) return nullptr;
  DServerCore* c = pattern_core(self);
  if (c == nullptr) return nullptr;
  return guarded([&]() -> PyObject* {
    std::shared_ptr<DServerCore> keep = self->core;
    auto* obj = PyObject_New(DRequestObject, g_drequest_type);
    if (obj == nullptr) return nullptr;
    new (&obj->core) std::shared_ptr<DServerCore>(keep);
    obj->answered = true;  // nothing to give back until filled in
    obj->release_requested = false;
    obj->exports = 0;
    obj->payload = nullptr;
    obj->capacity = obj->offset = obj->size = 0;
    obj->seq = 0;
    CoreLock lk;
    std::optional<fl::Result<fl::DuplexRequest>> res;
    bool stored = false;
    {
      py::gil_scoped_release nogil;
      lk = CoreLock(c->mu);
      res.emplace(wait_in_slices(*c, lk, timeout, nanoseconds(0), [&](nanoseconds t) { return c->ep.receive(t); }));
      auto& r = *res;
      if (r) {
        obj->payload = r->frame().data();
        obj->capacity = r->frame().size();
        obj->offset = r->request_offset();
        obj->size = r->data().size();
        obj->seq = r->seq();
        try {
          c->held.emplace(obj->seq, std::move(*r));
          stored = true;
        } catch (const std::bad_alloc&) {
          res.reset();  // released / rejected here, with the mutex
        }
      }
    }
    c->unlock(lk);
    if (!res) {
      Py_DECREF(reinterpret_cast<PyObject*>(obj));
      return PyErr_NoMemory();
    }
    auto& r = *res;
    if (!r || !stored) {
      Py_DECREF(reinterpret_cast<PyObject*>(obj));
      if (!r) return pattern_fail(self, r.error(), "receive", duplex_why(r.error(), timeout, false, false));
      return PyErr_NoMemory();
    }
    obj->answered = false;
    c->held_count.fetch_add(1, std::memory_order_relaxed);
    return reinterpret_cast<PyObject*>(obj);
  });
}

PyObject* dserver_stats(PyObject* o, PyObject*) {
  return duplex_locked_query<DuplexServerObject>(o, [](DServerCore& c) { return duplex_stats_tuple(c.ep.stats()); });
}
PyObject* dserver_get_outstanding(PyObject* o, void*) {
  return duplex_locked_query<DuplexServerObject>(o, [](DServerCore& c) {
    return PyLong_FromUnsignedLongLong(c.ep.outstanding());
  });
}
PyObject* dserver_get_max_frame(PyObject* o, void*) {
  DServerCore* c = pattern_core(reinterpret_cast<DuplexServerObject*>(o));
  return c ? PyLong_FromUnsignedLong(c->ep.segment().max_frame_payload()) : nullptr;
}
PyObject* dserver_get_capacity(PyObject* o, void*) {
  DServerCore* c = pattern_core(reinterpret_cast<DuplexServerObject*>(o));
  return c ? PyLong_FromUnsignedLongLong(c->ep.segment().ring_capacity()) : nullptr;
}
PyObject* dserver_get_peer(PyObject* o, void*) {
  DServerCore* c = pattern_core(reinterpret_cast<DuplexServerObject*>(o));
  return c ? PyBool_FromLong(c->ep.peer_attached()) : nullptr;
}

PyMethodDef dserver_methods[] = {
    {"receive", as_cfunction(dserver_receive), METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None) -> DuplexRequest\n\nThe next request: a writable, zero-copy view of the client's frame. "
     "Answer it with respond() or reject(); dropped unanswered it is rejected. Raises FlatlaneTimeoutError, "
     "PeerDeadError / PeerClosedError (the client went away and every request it sent was received)."},
    {"close", duplex_close<DuplexServerObject>, METH_NOARGS,
     "Detach (idempotent); unanswered requests are rejected first."},
    {"_stats", dserver_stats, METH_NOARGS,
     "(requests, responses, rejected, bytes, outstanding, occupancy_bytes, capacity_bytes)"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef dserver_getset[] = {
    {"closed", pattern_get_closed<DuplexServerObject>, nullptr, "True once close() was called.", nullptr},
    {"name", pattern_get_name<DuplexServerObject>, nullptr, "The channel name.", nullptr},
    {"max_frame_payload", dserver_get_max_frame, nullptr, "Largest frame of the channel.", nullptr},
    {"ring_capacity", dserver_get_capacity, nullptr, "Ring bytes.", nullptr},
    {"peer_attached", dserver_get_peer, nullptr, "True while a live client is attached.", nullptr},
    {"outstanding", dserver_get_outstanding, nullptr, "Requests received and not answered yet.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

template <class Obj>
PyType_Spec* duplex_endpoint_spec(const char* name, initproc init, PyMethodDef* methods, PyGetSetDef* getset,
                                  const char* doc) {
  static PyType_Slot slots[] = {{Py_tp_new, reinterpret_cast<void*>(pattern_new<Obj>)},
                                {Py_tp_init, reinterpret_cast<void*>(init)},
                                {Py_tp_dealloc, reinterpret_cast<void*>(duplex_dealloc<Obj>)},
                                {Py_tp_methods, methods},
                                {Py_tp_getset, getset},
                                {Py_tp_doc, const_cast<char*>(doc)},
                                {0, nullptr}};
  static PyType_Spec spec = {name, sizeof(Obj), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, slots};
  return &spec;
}

void add_duplex_types(py::module_& m) {
  static PyType_Slot response_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(dresponse_dealloc)},
      {Py_tp_methods, dresponse_methods},
      {Py_tp_getset, dresponse_getset},
      {Py_tp_repr, reinterpret_cast<void*>(dresponse_repr)},
      {Py_sq_length, reinterpret_cast<void*>(dresponse_len)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(dresponse_getbuffer)},
      {Py_bf_releasebuffer, reinterpret_cast<void*>(dresponse_releasebuffer)},
      {Py_tp_doc, const_cast<char*>("A duplex response: the request's frame as the server left it, writable, zero "
                                    "copy. Release it (release(), `with`, or by dropping it) to free the frame.")},
      {0, nullptr}};
  static PyType_Spec response_spec = {"flatlane._native.DuplexResponse", sizeof(DResponseObject), 0,
                                      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, response_slots};
  static PyType_Slot request_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(drequest_dealloc)},
      {Py_tp_methods, drequest_methods},
      {Py_tp_getset, drequest_getset},
      {Py_tp_repr, reinterpret_cast<void*>(drequest_repr)},
      {Py_sq_length, reinterpret_cast<void*>(drequest_len)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(drequest_getbuffer)},
      {Py_bf_releasebuffer, reinterpret_cast<void*>(drequest_releasebuffer)},
      {Py_tp_doc, const_cast<char*>("A duplex request: a writable, zero-copy view of the client's frame. Answer "
                                    "with respond() or reject(); dropped unanswered, it is rejected.")},
      {0, nullptr}};
  static PyType_Spec request_spec = {"flatlane._native.DuplexRequest", sizeof(DRequestObject), 0,
                                     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, request_slots};
  static PyType_Slot frame_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(dframe_dealloc)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(dframe_getbuffer)},
      {Py_bf_releasebuffer, reinterpret_cast<void*>(dframe_releasebuffer)},
      {Py_tp_doc, const_cast<char*>("Exporter of a duplex request's whole frame (internal).")},
      {0, nullptr}};
  static PyType_Spec frame_spec = {"flatlane._native.DuplexFrame", sizeof(DFrameObject), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, frame_slots};
  g_dresponse_type = make_type(&response_spec);
  g_drequest_type = make_type(&request_spec);
  g_dframe_type = make_type(&frame_spec);
  g_dclient_type = make_type(duplex_endpoint_spec<DuplexClientObject>(
      "flatlane._native.DuplexClient", dclient_init, dclient_methods, dclient_getset,
      "Native in-place duplex client; use flatlane.DuplexClient."));
  g_dserver_type = make_type(duplex_endpoint_spec<DuplexServerObject>(
      "flatlane._native.DuplexServer", dserver_init, dserver_methods, dserver_getset,
      "Native in-place duplex server; use flatlane.DuplexServer."));
  m.add_object("DuplexResponse", reinterpret_cast<PyObject*>(g_dresponse_type));
  m.add_object("DuplexRequest", reinterpret_cast<PyObject*>(g_drequest_type));
  m.add_object("DuplexFrame", reinterpret_cast<PyObject*>(g_dframe_type));
  m.add_object("DuplexClient", reinterpret_cast<PyObject*>(g_dclient_type));
  m.add_object("DuplexServer", reinterpret_cast<PyObject*>(g_dserver_type));
}

template <class Obj>
PyType_Spec* msg_spec(const char* name, PyGetSetDef* getset, const char* doc) {
  static PyType_Slot slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(msg_dealloc<Obj>)},
                                {Py_tp_methods, msg_methods<Obj>()},
                                {Py_tp_getset, getset},
                                {Py_tp_repr, reinterpret_cast<void*>(msg_repr<Obj>)},
                                {Py_sq_length, reinterpret_cast<void*>(msg_len<Obj>)},
                                {Py_bf_getbuffer, reinterpret_cast<void*>(msg_getbuffer<Obj>)},
                                {Py_bf_releasebuffer, reinterpret_cast<void*>(msg_releasebuffer<Obj>)},
                                {Py_tp_doc, const_cast<char*>(doc)},
                                {0, nullptr}};
  static PyType_Spec spec = {name, sizeof(Obj), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, slots};
  return &spec;
}

template <class Obj>
PyType_Spec* endpoint_spec(const char* name, initproc init, PyMethodDef* methods, PyGetSetDef* getset,
                           const char* doc) {
  static PyType_Slot slots[] = {{Py_tp_new, reinterpret_cast<void*>(pattern_new<Obj>)},
                                {Py_tp_init, reinterpret_cast<void*>(init)},
                                {Py_tp_dealloc, reinterpret_cast<void*>(pattern_dealloc<Obj>)},
                                {Py_tp_methods, methods},
                                {Py_tp_getset, getset},
                                {Py_tp_doc, const_cast<char*>(doc)},
                                {0, nullptr}};
  static PyType_Spec spec = {name, sizeof(Obj), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, slots};
  return &spec;
}

void add_pattern_types(py::module_& m) {
  static PyType_Slot export_slots[] = {
      {Py_tp_dealloc, reinterpret_cast<void*>(export_dealloc)},
      {Py_bf_getbuffer, reinterpret_cast<void*>(export_getbuffer)},
      {Py_tp_doc, const_cast<char*>("Owner of a loaned slot's or prepared message's writable view (internal).")},
      {0, nullptr}};
  static PyType_Spec export_spec = {"flatlane._native.SlotExport", sizeof(ExportObject), 0,
                                    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, export_slots};
  g_export_type = make_type(&export_spec);
  g_sample_type = make_type(msg_spec<SampleObject>(
      "flatlane._native.Sample", sample_getset,
      "A received topic message: a zero-copy, read-only view of the publisher's slot. Release it (release(), "
      "`with`, or by dropping it) to give the slot back."));
  g_request_type = make_type(msg_spec<RequestObject>(
      "flatlane._native.Request", request_getset,
      "A request as the server sees it: zero-copy, read-only; holds the client's request slot until released."));
  g_reply_type = make_type(msg_spec<ReplyObject>(
      "flatlane._native.Reply", reply_getset,
      "A reply as the client sees it: zero-copy, read-only view of the reply ring until released."));
  g_publisher_type = make_type(endpoint_spec<PublisherObject>("flatlane._native.TopicPublisher", publisher_init,
                                                               publisher_methods, publisher_getset,
                                                               "Native topic publisher; use flatlane.TopicPublisher."));
  g_subscriber_type = make_type(endpoint_spec<SubscriberObject>(
      "flatlane._native.TopicSubscriber", subscriber_init, subscriber_methods, subscriber_getset,
      "Native topic subscriber; use flatlane.TopicSubscriber."));
  g_server_type = make_type(endpoint_spec<ServerObject>("flatlane._native.ServiceServer", server_init, server_methods,
                                                         server_getset, "Native service server; use flatlane.ServiceServer."));
  g_client_type = make_type(endpoint_spec<ClientObject>("flatlane._native.ServiceClient", client_init, client_methods,
                                                         client_getset, "Native service client; use flatlane.ServiceClient."));
  m.add_object("SlotExport", reinterpret_cast<PyObject*>(g_export_type));
  m.add_object("Sample", reinterpret_cast<PyObject*>(g_sample_type));
  m.add_object("Request", reinterpret_cast<PyObject*>(g_request_type));
  m.add_object("Reply", reinterpret_cast<PyObject*>(g_reply_type));
  m.add_object("TopicPublisher", reinterpret_cast<PyObject*>(g_publisher_type));
  m.add_object("TopicSubscriber", reinterpret_cast<PyObject*>(g_subscriber_type));
  m.add_object("ServiceServer", reinterpret_cast<PyObject*>(g_server_type));
  m.add_object("ServiceClient", reinterpret_cast<PyObject*>(g_client_type));
  add_duplex_types(m);
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
  add_pattern_types(m);

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
