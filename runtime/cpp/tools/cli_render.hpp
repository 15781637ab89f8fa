// Rendering of inspection results for the `flatlane` CLI: aligned text tables for people, and the
// documented JSON schemas (docs/CLI.md) for programs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flatlane/inspect.hpp"

namespace flatlane::cli {

// Per-second rates of one block between two samples. `valid` is false when the block changed
// hands between them (other pid or epoch, or a counter went backwards): its counters restarted.
struct PeerRate {
  inspect::Role role = inspect::Role::writer;
  uint32_t index = 0;
  bool valid = false;
  double frames = 0, messages = 0, bytes = 0, dropped = 0;  // frames: channels; dropped: subscribers
};

struct Rates {
  double seconds = 0;
  std::vector<PeerRate> peers;
  const PeerRate* find(inspect::Role role, uint32_t index) const;
};

Rates compute_rates(const inspect::SegmentInfo& before, const inspect::SegmentInfo& after, double seconds);

// `flatlane ls`
std::string ls_text(const std::vector<inspect::Probe>& rows);
std::string ls_json(const std::vector<inspect::Probe>& rows);

// `flatlane stat`; rates may be null (a single sample).
std::string stat_text(const inspect::Probe& probe, const Rates* rates);
std::string stat_json(const inspect::Probe& probe, const Rates* rates);

// `flatlane gc`
std::string gc_text(const std::vector<std::string>& removed, bool dry_run);
std::string gc_json(const std::vector<std::string>& removed, bool dry_run);

// Shared-memory strings shown on a terminal: control characters and invalid UTF-8 become '?',
// so a hostile type name cannot send escape sequences.
std::string printable(const std::string& s);

}  // namespace flatlane::cli
