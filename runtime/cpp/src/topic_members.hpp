// Used by segment.cpp to decide whether a leftover topic segment may be reclaimed.
#pragma once

#include <cstdint>
#include <string>

namespace flatlane::detail {

// True if any publisher or subscriber recorded in the topic segment open on `fd` (file size
// `size`) is a live process; `who` names one. Reads the segment through a private read-only
// mapping and validates the topic header first (a malformed one counts as live: not ours to remove).
bool topic_has_live_members(int fd, uint64_t size, std::string* who);

}  // namespace flatlane::detail
