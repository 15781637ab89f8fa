// Process identity that survives pid reuse: pid + process start time (/proc/<pid>/stat field 22).
#pragma once

#include <cstdint>
#include <sys/types.h>

namespace flatlane {

struct ProcessIdentity {
  uint32_t pid = 0;
  uint64_t start_time = 0;  // clock ticks since boot; 0 = unknown
};

// Identity of the calling process (cached after the first call; refreshed after fork).
ProcessIdentity self_identity() noexcept;

// Start time of `pid`, or 0 when the process does not exist or is a zombie (a killed child that
// was not reaped yet still has a pid, but it will never touch the segment again).
uint64_t process_start_time(uint32_t pid) noexcept;

// True while a process with that pid and start time runs. A start_time of 0 checks the pid only.
bool is_alive(const ProcessIdentity& id) noexcept;

}  // namespace flatlane
