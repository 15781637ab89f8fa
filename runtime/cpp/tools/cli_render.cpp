#include "cli_render.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "json_writer.hpp"

namespace flatlane::cli {

using inspect::Health;
using inspect::Kind;
using inspect::PeerInfo;
using inspect::Probe;
using inspect::Role;
using inspect::SegmentInfo;

namespace {

// Columns padded to their widest cell; a column whose cells are all numbers is right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
  }
  std::string str() const {
    std::vector<size_t> width(header_.size());
    std::vector<bool> numeric(header_.size());
    for (size_t c = 0; c < header_.size(); ++c) {
      width[c] = header_[c].size();
      bool all = true, any = false;  // "-" (no value) fits a numeric column but does not make one
      for (const auto& r : rows_) {
        width[c] = std::max(width[c], r[c].size());
        all = all && (r[c] == "-" || is_number(r[c]));
        any = any || is_number(r[c]);
      }
      numeric[c] = all && any;
    }
    std::string out = line(header_, width, numeric);
    for (const auto& r : rows_) out += line(r, width, numeric);
    return out;
  }

 private:
  static bool is_number(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789.") == std::string::npos;
  }
  static std::string line(const std::vector<std::string>& cells, const std::vector<size_t>& width,
                          const std::vector<bool>& numeric) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      const bool last = c + 1 == cells.size();
      const std::string pad(width[c] - cells[c].size(), ' ');
      out += numeric[c] ? pad + cells[c] : cells[c] + (last ? "" : pad);
      if (!last) out += "  ";
    }
    return out + "\n";
  }

  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string human_bytes(uint64_t n) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return std::to_string(n) + " B";
  return fmt(v < 10 ? "%.1f " : "%.0f ", v) + units[u];
}

std::string rate_text(double v) { return fmt(v < 100 ? "%.1f" : "%.0f", v); }

std::string hex64(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string iso_time(uint64_t unix_ns) {
  const std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000u);
  std::tm tm{};
  if (!::gmtime_r(&t, &tm)) return "?";
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string age_text(uint64_t unix_ns) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t s = now - static_cast<int64_t>(unix_ns / 1000000000u);
  if (s < 0) return "in the future";
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds ago", static_cast<long long>(s));
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds ago", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh%02lldm ago", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else std::snprintf(buf, sizeof buf, "%lldd%02lldh ago", static_cast<long long>(s / 86400), static_cast<long long>(s / 3600 % 24));
  return buf;
}

// The Errc identifier ("not_flatlane"): the JSON vocabulary, the same names as every binding's
// error kinds (PROTOCOL.md 11). flatlane::to_string gives the human wording instead.
const char* errc_name(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::not_found: return "not_found";
    case Errc::not_flatlane: return "not_flatlane";
    case Errc::incompatible_version: return "incompatible_version";
    case Errc::layout_mismatch: return "layout_mismatch";
    case Errc::type_mismatch: return "type_mismatch";
    case Errc::truncated: return "truncated";
    case Errc::permission_denied: return "permission_denied";
    case Errc::already_exists: return "already_exists";
    case Errc::busy: return "busy";
    case Errc::no_space: return "no_space";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::message_too_large: return "message_too_large";
    case Errc::timeout: return "timeout";
    case Errc::peer_dead: return "peer_dead";
    case Errc::peer_closed: return "peer_closed";
    case Errc::closed: return "closed";
    case Errc::corrupt: return "corrupt";
    case Errc::system: return "system";
  }
  return "unknown";
}

const char* yes_no(bool b) { return b ? "yes" : "no"; }
std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string short_role(const PeerInfo& p) {
  switch (p.role) {
    case Role::writer: return "writer";
    case Role::reader: return "reader";
    case Role::publisher: return "pub" + std::to_string(p.index);
    case Role::subscriber: return "sub" + std::to_string(p.index);
    case Role::client: return "client";
    case Role::server: return "server";
  }
  return "?";
}

// "writer 1234 alive" / "sub3 1250 dead (closed)": liveness first, the role state when unusual.
std::string peer_text(const PeerInfo& p) {
  std::string s = short_role(p) + " " + std::to_string(p.process.pid) + (p.process.alive ? " alive" : " dead");
  if (p.state != 1) s += std::string(" (") + inspect::role_state_name(p.state) + ")";
  return s;
}

std::string peers_summary(const SegmentInfo& info) {
  const std::vector<PeerInfo> peers = info.peers();
  if (peers.empty()) return "none (creator " + std::to_string(info.creator.pid) + (info.creator.alive ? " alive)" : " dead)");
  constexpr size_t kShown = 4;
  std::string s;
  for (size_t i = 0; i < peers.size() && i < kShown; ++i) s += (i ? ", " : "") + peer_text(peers[i]);
  if (peers.size() > kShown) s += ", +" + std::to_string(peers.size() - kShown) + " more";
  return s;
}

struct TopicTotals {
  uint64_t queued = 0, slots_in_use = 0, slots = 0;
};

// Slots of pools that were ever claimed: a never-used publisher block's pool is all free.
TopicTotals topic_totals(const inspect::TopicInfo& t) {
  TopicTotals x;
  for (const auto& s : t.subscribers) x.queued += s.queued;
  for (const auto& p : t.publishers) {
    x.slots += t.slot_count;
    x.slots_in_use += t.slot_count - std::min(p.free_slots, t.slot_count);
  }
  return x;
}

std::string occupancy_text(const SegmentInfo& info) {
  if (info.channel) {
    const auto& c = *info.channel;
    return fmt("%.1f%%", c.occupancy_percent) + " (" + human_bytes(c.occupancy_bytes) + " of " +
           human_bytes(c.ring_capacity) + ")";
  }
  const TopicTotals x = topic_totals(*info.topic);
  return std::to_string(x.queued) + " queued, " + std::to_string(x.slots_in_use) + "/" + std::to_string(x.slots) +
         " slots in use";
}

// ---- JSON pieces (schema in docs/CLI.md) -------------------------------------------------------

void json_process(JsonWriter& j, const inspect::ProcessInfo& p) {
  j.begin_object().field("pid", p.pid).field("start_time", p.start_time).field("alive", p.alive).end_object();
}

void json_peer_fields(JsonWriter& j, const PeerInfo& p) {
  j.field("role", inspect::to_string(p.role)).field("index", p.index).field("pid", p.process.pid);
  j.field("start_time", p.process.start_time).field("state", inspect::role_state_name(p.state));
  j.field("state_value", p.state).field("alive", p.process.alive).field("epoch", p.epoch);
  if (p.role == Role::subscriber) j.field("mode", inspect::subscriber_mode_name(p.mode));
}

void json_occupancy(JsonWriter& j, const SegmentInfo& info) {
  j.key("occupancy").begin_object();
  if (info.channel) {
    j.field("bytes", info.channel->occupancy_bytes).field("capacity", info.channel->ring_capacity);
    j.field("percent", info.channel->occupancy_percent);
  } else {
    const TopicTotals x = topic_totals(*info.topic);
    j.field("queued", x.queued).field("slots_in_use", x.slots_in_use).field("slots", x.slots);
  }
  j.end_object();
}

// Fields shared by an `ls` entry and a `stat` document.
void json_entry_fields(JsonWriter& j, const Probe& p) {
  j.field("name", p.name).field("status", inspect::to_string(p.health)).field("message", p.message);
  j.key("error");
  if (p.error == Errc::ok) j.null();
  else j.begin_object().field("code", errc_name(p.error)).field("message", p.message).end_object();
  j.field("file_size", p.file_size);
  if (!p.info) {
    j.key("kind").null().key("type").null().key("creator").null().key("peers").begin_array().end_array();
    j.key("occupancy").null();
    return;
  }
  const SegmentInfo& info = *p.info;
  j.field("kind", inspect::to_string(info.kind));
  j.key("type").begin_object().field("name", info.type_name).field("hash", hex64(info.type_hash)).end_object();
  j.key("creator");
  json_process(j, info.creator);
  j.key("peers").begin_array();
  for (const PeerInfo& peer : info.peers()) {
    j.begin_object();
    json_peer_fields(j, peer);
    j.end_object();
  }
  j.end_array();
  json_occupancy(j, info);
}

void json_endpoint(JsonWriter& j, const char* k, const PeerInfo& p, const inspect::ChannelEndpointCounters& c) {
  j.key(k).begin_object();
  json_peer_fields(j, p);
  j.field("position", c.position).field("frames", c.count).field("messages", c.messages).field("bytes", c.bytes);
  j.end_object();
}

void json_channel(JsonWriter& j, const inspect::ChannelInfo& c) {
  j.key("channel").begin_object();
  j.field("ring_capacity", c.ring_capacity).field("max_frame_payload", c.max_frame_payload).field("chunk_size", c.chunk_size);
  json_endpoint(j, "writer", c.writer, c.writer_counters);
  json_endpoint(j, "reader", c.reader, c.reader_counters);
  j.end_object();
}

void json_topic(JsonWriter& j, const inspect::TopicInfo& t) {
  j.key("topic").begin_object();
  j.field("slot_size", t.slot_size).field("slot_count", t.slot_count).field("max_publishers", t.max_publishers);
  j.field("max_subscribers", t.max_subscribers).field("queue_depth", t.queue_depth).field("max_held", t.max_held);
  j.field("history", t.history).field("members_gen", t.members_gen);
  j.field("distribution", t.work_queue ? "work_queue" : "fan_out").field("lost", t.lost);
  j.key("publishers").begin_array();
  for (const auto& p : t.publishers) {
    j.begin_object();
    json_peer_fields(j, p.peer);
    j.field("seq", p.seq).field("messages", p.messages).field("bytes", p.bytes).field("no_receiver", p.no_receiver);
    j.field("free_slots", p.free_slots).end_object();
  }
  j.end_array().key("subscribers").begin_array();
  for (const auto& s : t.subscribers) {
    j.begin_object();
    json_peer_fields(j, s.peer);
    j.field("received", s.received).field("bytes", s.bytes).field("dropped", s.dropped).field("queued", s.queued);
    j.field("held", s.held).end_object();
  }
  j.end_array().end_object();
}

std::optional<double> valid_or_null(const PeerRate& r, double v) { return r.valid ? std::optional<double>(v) : std::nullopt; }

void json_rates(JsonWriter& j, const Rates* rates) {
  j.key("rates");
  if (!rates) {
    j.null();
    return;
  }
  j.begin_object().field("interval_s", rates->seconds).key("peers").begin_array();
  for (const PeerRate& r : rates->peers) {
    j.begin_object().field("role", inspect::to_string(r.role)).field("index", r.index).field("valid", r.valid);
    if (r.role == Role::writer || r.role == Role::reader || r.role == Role::client || r.role == Role::server) j.field("frames_per_s", valid_or_null(r, r.frames));
    j.field("messages_per_s", valid_or_null(r, r.messages)).field("bytes_per_s", valid_or_null(r, r.bytes));
    if (r.role == Role::subscriber) j.field("dropped_per_s", valid_or_null(r, r.dropped));
    j.end_object();
  }
  j.end_array().end_object();
}

// ---- stat text -----------------------------------------------------------------------------------

// Rate cells appended to a peer row: "-" when there is no valid second sample for it.
void add_rate_cells(std::vector<std::string>& row, const Rates* rates, const PeerInfo& p, bool frames, bool dropped) {
  const PeerRate* r = rates ? rates->find(p.role, p.index) : nullptr;
  const auto cell = [&](double v) { return r && r->valid ? rate_text(v) : std::string("-"); };
  if (frames) row.push_back(cell(r ? r->frames : 0));
  row.push_back(cell(r ? r->messages : 0));
  row.push_back(cell(r ? r->bytes : 0));
  if (dropped) row.push_back(cell(r ? r->dropped : 0));
}

std::vector<std::string> peer_cells(const PeerInfo& p, std::string first) {
  return {std::move(first), p.process.pid ? std::to_string(p.process.pid) : "-", inspect::role_state_name(p.state),
          yes_no(p.process.alive), std::to_string(p.epoch)};
}

std::string channel_tables(const inspect::ChannelInfo& c, const Rates* rates) {
  std::vector<std::string> head = {"ROLE", "PID", "STATE", "ALIVE", "EPOCH", "POSITION", "FRAMES", "MESSAGES", "BYTES"};
  if (rates) head.insert(head.end(), {"FRAMES/S", "MSGS/S", "BYTES/S"});
  Table t(head);
  const auto add = [&](const PeerInfo& p, const inspect::ChannelEndpointCounters& k) {
    auto row = peer_cells(p, inspect::to_string(p.role));
    row.insert(row.end(), {std::to_string(k.position), std::to_string(k.count), std::to_string(k.messages),
                           std::to_string(k.bytes)});
    if (rates) add_rate_cells(row, rates, p, true, false);
    t.add(std::move(row));
  };
  add(c.writer, c.writer_counters);
  add(c.reader, c.reader_counters);
  return t.str();
}

std::string publisher_table(const inspect::TopicInfo& t, const Rates* rates) {
  std::vector<std::string> head = {"PUBLISHER", "PID", "STATE", "ALIVE", "EPOCH", "SEQ", "MESSAGES", "BYTES",
                                   "NO_RECEIVER", "FREE_SLOTS"};
  if (rates) head.insert(head.end(), {"MSGS/S", "BYTES/S"});
  Table tab(head);
  for (const auto& p : t.publishers) {
    auto row = peer_cells(p.peer, std::to_string(p.peer.index));
    row.insert(row.end(), {std::to_string(p.seq), std::to_string(p.messages), std::to_string(p.bytes),
                           std::to_string(p.no_receiver), std::to_string(p.free_slots) + "/" + std::to_string(t.slot_count)});
    if (rates) add_rate_cells(row, rates, p.peer, false, false);
    tab.add(std::move(row));
  }
  return tab.str();
}

std::string subscriber_table(const inspect::TopicInfo& t, const Rates* rates) {
  std::vector<std::string> head = {"SUBSCRIBER", "PID", "STATE", "ALIVE", "EPOCH", "MODE", "RECEIVED", "BYTES",
                                   "DROPPED", "QUEUED", "HELD"};
  if (rates) head.insert(head.end(), {"MSGS/S", "BYTES/S", "DROPPED/S"});
  Table tab(head);
  for (const auto& s : t.subscribers) {
    auto row = peer_cells(s.peer, std::to_string(s.peer.index));
    row.insert(row.end(), {inspect::subscriber_mode_name(s.peer.mode), std::to_string(s.received), std::to_string(s.bytes),
                           std::to_string(s.dropped), std::to_string(s.queued), std::to_string(s.held)});
    if (rates) add_rate_cells(row, rates, s.peer, false, true);
    tab.add(std::move(row));
  }
  return tab.str();
}

std::string geometry_text(const SegmentInfo& info) {
  if (info.channel) {
    const auto& c = *info.channel;
    return "ring " + human_bytes(c.ring_capacity) + ", max frame " + std::to_string(c.max_frame_payload) +
           " B, chunk " + std::to_string(c.chunk_size) + " B";
  }
  const auto& t = *info.topic;
  return "slot " + std::to_string(t.slot_size) + " B x " + std::to_string(t.slot_count) + " per publisher, " +
         std::to_string(t.max_publishers) + " publishers, " + std::to_string(t.max_subscribers) +
         " subscribers, queue depth " + std::to_string(t.queue_depth) + ", max held " + std::to_string(t.max_held) +
         ", history " + std::to_string(t.history) + ", members generation " + std::to_string(t.members_gen) +
         (t.work_queue ? ", work queue (push/pull), " + std::to_string(t.lost) + " lost with dead pullers" : "");
}

std::string summary_lines(const Probe& p) {
  const SegmentInfo& info = *p.info;
  Table t({"", ""});
  t.add({"name:", p.name});
  t.add({"kind:", inspect::to_string(info.kind)});
  t.add({"status:", std::string(inspect::to_string(p.health)) + " (" + p.message + ")"});
  t.add({"type:", info.type_name.empty() ? "untyped" : printable(info.type_name) + " (hash " + hex64(info.type_hash) + ")"});
  t.add({"created:", iso_time(info.created_unix_ns) + ", " + age_text(info.created_unix_ns) + ", by pid " +
                         std::to_string(info.creator.pid) + (info.creator.alive ? " (alive)" : " (dead)")});
  t.add({"size:", human_bytes(info.segment_size) + " (" + std::to_string(info.segment_size) + " bytes)"});
  t.add({"geometry:", geometry_text(info)});
  t.add({"occupancy:", occupancy_text(info)});
  std::string s = t.str();
  return s.substr(s.find('\n') + 1);  // drop the empty header line
}

}  // namespace

const PeerRate* Rates::find(Role role, uint32_t index) const {
  for (const PeerRate& r : peers)
    if (r.role == role && r.index == index) return &r;
  return nullptr;
}

namespace {

// Counters of one block at one sample; fields a role does not have stay 0.
struct Counters {
  uint64_t frames = 0, messages = 0, bytes = 0, dropped = 0;
};

// Deltas are trusted only for the same owner (pid and epoch) and counters that did not go back:
// a new owner of a topic subscriber block restarts its counters from zero.
PeerRate rate_between(const PeerInfo& a, const PeerInfo& b, const Counters& x, const Counters& y, double seconds) {
  PeerRate r;
  r.role = b.role;
  r.index = b.index;
  r.valid = seconds > 0 && a.process.pid == b.process.pid && a.epoch == b.epoch && y.frames >= x.frames &&
            y.messages >= x.messages && y.bytes >= x.bytes && y.dropped >= x.dropped;
  if (!r.valid) return r;
  const auto per_s = [&](uint64_t before, uint64_t after) { return static_cast<double>(after - before) / seconds; };
  r.frames = per_s(x.frames, y.frames);
  r.messages = per_s(x.messages, y.messages);
  r.bytes = per_s(x.bytes, y.bytes);
  r.dropped = per_s(x.dropped, y.dropped);
  return r;
}

Counters counters_of(const inspect::ChannelEndpointCounters& c) { return {c.count, c.messages, c.bytes, 0}; }
Counters counters_of(const inspect::PublisherInfo& p) { return {0, p.messages, p.bytes, 0}; }
Counters counters_of(const inspect::SubscriberInfo& s) { return {0, s.received, s.bytes, s.dropped}; }

// Pairs the blocks of two samples by index (blocks claimed between them have no rate yet).
template <class Block>
void block_rates(const std::vector<Block>& before, const std::vector<Block>& after, double seconds, Rates& rates) {
  for (const Block& b : after)
    for (const Block& a : before)
      if (a.peer.index == b.peer.index) rates.peers.push_back(rate_between(a.peer, b.peer, counters_of(a), counters_of(b), seconds));
}

}  // namespace

Rates compute_rates(const SegmentInfo& before, const SegmentInfo& after, double seconds) {
  Rates rates;
  rates.seconds = seconds;
  if (before.channel && after.channel) {
    const auto& a = *before.channel;
    const auto& b = *after.channel;
    rates.peers.push_back(rate_between(a.writer, b.writer, counters_of(a.writer_counters), counters_of(b.writer_counters), seconds));
    rates.peers.push_back(rate_between(a.reader, b.reader, counters_of(a.reader_counters), counters_of(b.reader_counters), seconds));
  }
  if (before.topic && after.topic) {
    block_rates(before.topic->publishers, after.topic->publishers, seconds, rates);
    block_rates(before.topic->subscribers, after.topic->subscribers, seconds, rates);
  }
  return rates;
}

std::string printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
      out += '?';
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

std::string ls_text(const std::vector<Probe>& rows) {
  Table t({"NAME", "KIND", "TYPE", "STATUS", "PEERS", "OCCUPANCY"});
  for (const Probe& p : rows) {
    if (!p.info) {
      // Not inspectable: the reason goes where the peers would be.
      t.add({printable(p.name), "-", "-", inspect::to_string(p.health), printable(p.message), "-"});
      continue;
    }
    const SegmentInfo& info = *p.info;
    t.add({p.name, inspect::to_string(info.kind), or_dash(printable(info.type_name)), inspect::to_string(p.health),
           peers_summary(info), occupancy_text(info)});
  }
  return t.str();
}

std::string ls_json(const std::vector<Probe>& rows) {
  JsonWriter j;
  j.begin_object().field("schema", "flatlane.ls/1").key("segments").begin_array();
  for (const Probe& p : rows) {
    j.begin_object();
    json_entry_fields(j, p);
    j.end_object();
  }
  j.end_array().end_object();
  return j.str() + "\n";
}

std::string stat_text(const Probe& p, const Rates* rates) {
  std::string s = summary_lines(p);
  const SegmentInfo& info = *p.info;
  if (rates) s += "rates:      over " + fmt("%.2f", rates->seconds) + " s\n";
  s += "\n";
  if (info.channel) {
    s += channel_tables(*info.channel, rates);
  } else {
    s += info.topic->publishers.empty() ? "no publisher has attached\n" : publisher_table(*info.topic, rates);
    s += "\n";
    s += info.topic->subscribers.empty() ? "no subscriber has attached\n" : subscriber_table(*info.topic, rates);
  }
  for (const std::string& w : info.warnings) s += "warning: " + w + "\n";
  return s;
}

std::string stat_json(const Probe& p, const Rates* rates) {
  JsonWriter j;
  j.begin_object().field("schema", "flatlane.stat/1");
  json_entry_fields(j, p);
  const SegmentInfo& info = *p.info;
  j.field("segment_size", info.segment_size).field("created_unix_ns", info.created_unix_ns);
  j.field("created", iso_time(info.created_unix_ns));
  j.key("warnings").begin_array();
  for (const std::string& w : info.warnings) j.value(w);
  j.end_array();
  if (info.channel) json_channel(j, *info.channel);
  else j.key("channel").null();
  if (info.topic) json_topic(j, *info.topic);
  else j.key("topic").null();
  json_rates(j, rates);
  j.end_object();
  return j.str() + "\n";
}

std::string gc_text(const std::vector<std::string>& removed, bool dry_run) {
  std::string s;
  for (const std::string& n : removed) s += (dry_run ? "would remove " : "removed ") + printable(n) + "\n";
  s += std::string(dry_run ? "gc: would remove " : "gc: removed ") + std::to_string(removed.size()) +
       (removed.size() == 1 ? " segment\n" : " segments\n");
  return s;
}

std::string gc_json(const std::vector<std::string>& removed, bool dry_run) {
  JsonWriter j;
  j.begin_object().field("schema", "flatlane.gc/1").field("dry_run", dry_run).key("removed").begin_array();
  for (const std::string& n : removed) j.value(n);
  j.end_array().end_object();
  return j.str() + "\n";
}

}  // namespace flatlane::cli
