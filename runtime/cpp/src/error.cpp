#include "flatlane/error.hpp"

namespace flatlane {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::not_found: return "not found";
    case Errc::not_flatlane: return "not a Flatlane segment";
    case Errc::incompatible_version: return "incompatible protocol version";
    case Errc::layout_mismatch: return "layout mismatch";
    case Errc::type_mismatch: return "message type mismatch";
    case Errc::truncated: return "segment truncated";
    case Errc::permission_denied: return "permission denied";
    case Errc::already_exists: return "already exists";
    case Errc::busy: return "role held by a live process";
    case Errc::no_space: return "not enough space in /dev/shm";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::message_too_large: return "message too large";
    case Errc::timeout: return "timeout";
    case Errc::peer_dead: return "peer process died";
    case Errc::peer_closed: return "peer closed the channel";
    case Errc::closed: return "endpoint closed";
    case Errc::corrupt: return "corrupt shared memory";
    case Errc::system: return "system error";
  }
  return "unknown error";
}

}  // namespace flatlane
