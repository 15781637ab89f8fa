// Error kinds shared by every Flatlane API (same names in the Python and C# bindings).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace flatlane {

enum class Errc : int {
  ok = 0,
  not_found,             // no segment with that name
  not_flatlane,          // the object exists but is not a Flatlane segment (bad magic)
  incompatible_version,  // protocol version differs
  layout_mismatch,       // same version, different layout hash (different build/ABI)
  type_mismatch,         // message type identity differs
  truncated,             // segment smaller than its header says
  permission_denied,     // open/create refused by the OS
  already_exists,        // create: a live segment of that name exists
  busy,                  // the role (writer/reader) is held by a live process
  no_space,              // /dev/shm cannot hold the segment
  invalid_argument,      // bad name, size or option
  message_too_large,     // bigger than the frame or message limit
  timeout,               // the wait ran out
  peer_dead,             // the peer process died
  peer_closed,           // the peer detached cleanly
  closed,                // this endpoint was closed
  corrupt,               // shared memory holds values that violate the protocol
  system,                // other OS error (errno in the message)
};

const char* to_string(Errc e) noexcept;

// Thrown by setup calls (create/open); hot-path calls return Result instead.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

// A value or an error code; small and allocation-free so it fits hot paths.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Errc e) : v_(e) {}                  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return ok(); }
  Errc error() const noexcept { return ok() ? Errc::ok : std::get<Errc>(v_); }

  T& value() & { check(); return std::get<T>(v_); }
  T&& value() && { check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }

 private:
  void check() const {
    if (!ok()) throw Error(std::get<Errc>(v_), std::string("flatlane: ") + to_string(std::get<Errc>(v_)));
  }
  std::variant<T, Errc> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Errc e) : e_(e) {}  // NOLINT(google-explicit-constructor)
  bool ok() const noexcept { return e_ == Errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Errc error() const noexcept { return e_; }
  void value() const {
    if (!ok()) throw Error(e_, std::string("flatlane: ") + to_string(e_));
  }

 private:
  Errc e_ = Errc::ok;
};

}  // namespace flatlane
