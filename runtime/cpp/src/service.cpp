// Request/reply on top of a topic (requests) and one-to-one channels (replies): service.hpp.
#include "flatlane/service.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>

namespace flatlane {

using std::chrono::nanoseconds;

namespace {

constexpr size_t kEnvelope = sizeof(wire::Envelope);

TopicOptions request_topic(const ServiceOptions& o) {
  TopicOptions t;
  t.mode = o.mode;
  t.topic.slot_size = o.max_request + static_cast<uint32_t>(kEnvelope);
  t.topic.slot_count = o.request_slots;
  t.topic.max_publishers = o.max_clients;
  t.topic.max_subscribers = 1;  // the server
  t.topic.queue_depth = o.queue_depth;
  t.topic.type = o.request_type;
  t.wait = o.wait;
  // Requests are never dropped: a full server queue makes the client wait (send_timeout).
  t.subscriber_mode = SubscriberMode::block_publisher;
  t.block_timeout = o.send_timeout;
  return t;
}

std::string reply_channel(std::string_view service, uint32_t client, uint32_t epoch) {
  return std::string(service) + ".reply." + std::to_string(client) + "." + std::to_string(epoch);
}

ChannelOptions reply_options(const ServiceOptions& o, OpenMode mode) {
  ChannelOptions c;
  c.mode = mode;
  c.segment.ring_capacity = o.reply_ring;
  c.segment.type = o.reply_type;
  c.wait = o.wait;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

ServiceServer::ServiceServer(std::string_view name, const ServiceOptions& o)
    : name_(name), opts_(o), requests_(name, request_topic(o)) {
  writers_.resize(o.max_clients);
}

ServiceServer::~ServiceServer() { close(); }

Result<Request> ServiceServer::receive(nanoseconds timeout) {
  for (;;) {
    auto s = requests_.receive(timeout);
    if (!s) return s.error();
    if (s->size() < kEnvelope) continue;  // not a request: drop it (a buggy client)
    wire::Envelope env;
    std::memcpy(&env, s->ptr(), kEnvelope);
    Request r;
    r.id_ = env.id;
    r.epoch_ = s->publisher_epoch();
    r.data_ = s->data().subspan(kEnvelope);
    r.sample_ = std::move(*s);
    ++stats_.requests;
    return r;
  }
}

Writer* ServiceServer::writer_for(uint32_t client, uint32_t epoch) {
  if (client >= writers_.size()) return nullptr;
  auto& w = writers_[client];
  if (w.writer && w.epoch == epoch) return w.writer.get();
  w.writer.reset();  // an earlier client of that block: its channel is gone or going
  try {
    w.writer = std::make_unique<Writer>(reply_channel(name_, client, epoch), reply_options(opts_, OpenMode::open));
    w.epoch = epoch;
  } catch (const Error&) {
    return nullptr;  // the client left before we could answer
  }
  return w.writer.get();
}

void ServiceServer::drop_writer(uint32_t client) noexcept {
  if (client < writers_.size()) writers_[client].writer.reset();
}

Result<std::span<std::byte>> ServiceServer::prepare_reply(const Request& r, size_t n) {
  abort_reply();
  Writer* w = writer_for(r.client(), r.epoch_);
  if (w == nullptr) {
    ++stats_.dropped_replies;
    return Errc::peer_closed;
  }
  if (n + kEnvelope > w->max_frame_payload()) return Errc::message_too_large;
  // Never wait for a client: a stalled or dead one must not stall the server.
  auto span = w->reserve(n + kEnvelope, nanoseconds{0});
  if (!span) {
    ++stats_.dropped_replies;
    if (span.error() == Errc::peer_dead || span.error() == Errc::peer_closed) drop_writer(r.client());
    return span.error();
  }
  pending_ = w;
  pending_env_ = span->data();
  pending_n_ = n;
  pending_id_ = r.id();
  const wire::Envelope env{r.id(), 0, 0};
  std::memcpy(pending_env_, &env, kEnvelope);
  return span->subspan(kEnvelope);
}

Result<void> ServiceServer::commit_reply(size_t used, bool more) {
  if (pending_ == nullptr) return Errc::invalid_argument;
  Writer* w = std::exchange(pending_, nullptr);
  const uint32_t flags = more ? wire::kEnvelopeMore : 0;
  std::memcpy(pending_env_ + offsetof(wire::Envelope, flags), &flags, sizeof flags);
  w->commit(std::min(used, pending_n_) + kEnvelope);
  ++stats_.replies;
  return {};
}

Result<void> ServiceServer::commit_reply_tail(size_t used, bool more) {
  if (pending_ == nullptr) return Errc::invalid_argument;
  Writer* w = std::exchange(pending_, nullptr);
  used = std::min(used, pending_n_);
  // The envelope goes right in front of the payload, which ends where the reservation ends.
  const wire::Envelope env{pending_id_, more ? wire::kEnvelopeMore : 0u, 0};
  std::memcpy(pending_env_ + kEnvelope + pending_n_ - used - kEnvelope, &env, kEnvelope);
  w->commit_tail(used + kEnvelope);
  ++stats_.replies;
  return {};
}

void ServiceServer::abort_reply() noexcept {
  if (pending_) std::exchange(pending_, nullptr)->abort();
}

Result<void> ServiceServer::reply(const Request& r, std::span<const std::byte> data, bool more) {
  auto span = prepare_reply(r, data.size());
  if (!span) return span.error();
  if (!data.empty()) std::memcpy(span->data(), data.data(), data.size());
  return commit_reply(data.size(), more);
}

ServerStats ServiceServer::stats() const noexcept {
  ServerStats s = stats_;
  s.clients = static_cast<uint32_t>(std::count_if(writers_.begin(), writers_.end(), [](const ReplyWriter& w) {
    return w.writer != nullptr;
  }));
  return s;
}

void ServiceServer::close() noexcept {
  abort_reply();
  requests_.close();
  for (auto& w : writers_) w.writer.reset();
}

// ---------------------------------------------------------------------------------------------
// Client

ServiceClient::ServiceClient(std::string_view name, const ServiceOptions& o)
    : requests_(name, request_topic(o)),
      wait_(o.wait),
      send_timeout_(o.send_timeout),
      max_request_(requests_.max_message() - kEnvelope) {
  // The reply channel exists before the first request, so the server can always open it.
  reply_name_ = reply_channel(name, requests_.index(), requests_.epoch());
  replies_ = std::make_unique<Reader>(reply_name_, reply_options(o, OpenMode::create));
}

ServiceClient::~ServiceClient() { close(); }

Result<std::span<std::byte>> ServiceClient::prepare(size_t n) {
  if (requests_.subscriber_count() == 0) return server_seen_ ? Errc::peer_closed : Errc::not_found;
  server_seen_ = true;
  auto slot = requests_.loan(n + kEnvelope, send_timeout_);
  if (!slot) return slot.error();
  loan_env_ = slot->data();
  loan_n_ = n;
  return slot->subspan(kEnvelope);
}

Result<uint64_t> ServiceClient::send_prepared(size_t used) {
  if (loan_env_ == nullptr) return Errc::invalid_argument;
  const wire::Envelope env{next_id_, 0, 0};
  std::memcpy(std::exchange(loan_env_, nullptr), &env, kEnvelope);
  auto r = requests_.publish(std::min(used, loan_n_) + kEnvelope);
  if (!r) return r.error();
  return next_id_++;
}

Result<uint64_t> ServiceClient::send_prepared_tail(size_t used) {
  if (loan_env_ == nullptr) return Errc::invalid_argument;
  used = std::min(used, loan_n_);
  const wire::Envelope env{next_id_, 0, 0};
  std::memcpy(std::exchange(loan_env_, nullptr) + loan_n_ - used, &env, kEnvelope);
  auto r = requests_.publish_tail(used + kEnvelope);
  if (!r) return r.error();
  return next_id_++;
}

void ServiceClient::abort_prepared() noexcept {
  if (std::exchange(loan_env_, nullptr) != nullptr) requests_.discard();
}

Result<uint64_t> ServiceClient::send(std::span<const std::byte> data) {
  auto span = prepare(data.size());
  if (!span) return span.error();
  if (!data.empty()) std::memcpy(span->data(), data.data(), data.size());
  return send_prepared(data.size());
}

Errc ServiceClient::server_gone() noexcept {
  if (requests_.live_subscribers() > 0) {
    server_seen_ = true;
    return Errc::ok;
  }
  if (!server_seen_) return Errc::ok;
  return requests_.subscriber_count() > 0 ? Errc::peer_dead : Errc::peer_closed;
}

Result<Reply> ServiceClient::receive(uint64_t id, nanoseconds timeout) {
  const bool forever = timeout.count() < 0;
  const auto deadline = forever ? Clock::time_point::max() : Clock::now() + timeout;
  for (;;) {
    // Wait in slices: a server that died before it ever answered us has no writer on our ring,
    // so the ring cannot report it; the request topic can. A zero timeout still polls once.
    const auto now = Clock::now();
    const nanoseconds left = forever ? wait_.liveness_interval
                                     : std::clamp<nanoseconds>(deadline - now, nanoseconds{0}, wait_.liveness_interval);
    auto f = replies_->read(left);
    if (!f) {
      if (f.error() != Errc::timeout) return f.error();
      const auto after = Clock::now();
      if (after >= next_gone_check_) {
        next_gone_check_ = after + wait_.liveness_interval;
        if (Errc e = server_gone(); e != Errc::ok) return e;
      }
      if (!forever && after >= deadline) return Errc::timeout;
      continue;
    }
    if (f->size() < kEnvelope) return Errc::corrupt;
    wire::Envelope env;
    std::memcpy(&env, f->ptr(), kEnvelope);
    if (env.id != id) continue;  // a late reply to a request we gave up on
    Reply r;
    r.id_ = env.id;
    r.more_ = (env.flags & wire::kEnvelopeMore) != 0;
    r.data_ = f->data().subspan(kEnvelope);
    r.frame_ = std::move(*f);
    return r;
  }
}

Result<Reply> ServiceClient::call(std::span<const std::byte> data, nanoseconds timeout) {
  auto id = send(data);
  if (!id) return id.error();
  return receive(*id, timeout);
}

void ServiceClient::close() noexcept {
  requests_.close();
  if (replies_) replies_->close();
  // The reply channel's name is ours alone (index and epoch): nobody else will ever open it,
  // even if the server never did (a channel reader normally keeps the name for a late writer).
  if (!reply_name_.empty()) Segment::unlink(reply_name_);
  reply_name_.clear();
}

}  // namespace flatlane
