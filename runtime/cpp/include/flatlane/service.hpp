// Request/reply services: one server, many clients, replies correlated by request id.
//
//   ServiceServer server("robot.control");
//   auto req = server.receive();                        // Request: zero-copy view of the request
//   server.reply(*req, answer_bytes);                   // to that client's reply ring
//
//   ServiceClient client("robot.control");
//   auto rep = client.call(request_bytes, 100ms);       // Reply: zero-copy view of the answer
//
// Built from the other two kinds (docs/PROTOCOL.md section 15): requests travel on a topic
// `<name>` whose publishers are the clients and whose one subscriber is the server (a full server
// queue makes clients wait, never drops a request); each client owns a one-to-one reply channel
// `<name>.reply.<client>.<epoch>` that the server writes. Every message starts with a 16-byte
// envelope {id, flags}. A server never waits for a client: a reply that does not fit the client's
// ring at once is dropped and counted. A dead server is reported to waiting clients as peer_dead
// within one liveness interval; a dead client's request slots return to the pool like any
// subscriber's or publisher's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flatlane/channel.hpp"
#include "flatlane/topic.hpp"

namespace flatlane {

namespace wire {
// Precedes every request and reply payload.
struct Envelope {
  uint64_t id;     // request id, chosen by the client (increasing per client)
  uint32_t flags;  // kEnvelopeMore on a reply: another reply to the same request follows
  uint32_t reserved;
};
static_assert(sizeof(Envelope) == 16);
inline constexpr uint32_t kEnvelopeMore = 1u << 0;
}  // namespace wire

struct ServiceOptions {
  OpenMode mode = OpenMode::create_or_open;
  uint32_t max_clients = 32;        // clients attached at once (at most 64)
  uint32_t max_request = 4096;      // bytes of request payload (at least; the slot is rounded to 64)
  uint32_t request_slots = 64;      // per client
  uint32_t queue_depth = 32;        // requests waiting per client before the client waits
  uint64_t reply_ring = 1u << 16;   // bytes of each client's reply ring
  TypeId request_type, reply_type;  // type identity of each direction (empty: untyped)
  WaitOptions wait;
  // Client: how long a request waits for a free slot or for room in the server's queue.
  std::chrono::nanoseconds send_timeout = std::chrono::seconds(1);
};

// A request as the server sees it; holds the request slot until destroyed.
class Request {
 public:
  std::span<const std::byte> data() const noexcept { return data_; }
  size_t size() const noexcept { return data_.size(); }
  uint64_t id() const noexcept { return id_; }
  uint32_t client() const noexcept { return sample_.publisher(); }

 private:
  friend class ServiceServer;
  Sample sample_;
  std::span<const std::byte> data_;
  uint64_t id_ = 0;
  uint32_t epoch_ = 0;
};

// A reply as the client sees it (zero-copy in the reply ring).
class Reply {
 public:
  std::span<const std::byte> data() const noexcept { return data_; }
  size_t size() const noexcept { return data_.size(); }
  uint64_t id() const noexcept { return id_; }
  bool more() const noexcept { return more_; }  // another reply to this request follows

 private:
  friend class ServiceClient;
  Frame frame_;
  std::span<const std::byte> data_;
  uint64_t id_ = 0;
  bool more_ = false;
};

struct ServerStats {
  uint64_t requests = 0;
  uint64_t replies = 0;
  uint64_t dropped_replies = 0;  // client gone, or its reply ring full
  uint32_t clients = 0;          // reply channels open now
};

class ServiceServer {
 public:
  ServiceServer(std::string_view name, const ServiceOptions& o = {});
  ~ServiceServer();
  ServiceServer(ServiceServer&&) = delete;

  Result<Request> receive(std::chrono::nanoseconds timeout = kInfinite);
  // Zero-copy reply: bytes of the client's reply ring after the envelope, then commit.
  Result<std::span<std::byte>> prepare_reply(const Request& r, size_t n);
  Result<void> commit_reply(size_t used, bool more = false);
  // Publishes the last `used` bytes of the prepared space (a FlatBuffer built back to front).
  Result<void> commit_reply_tail(size_t used, bool more = false);
  void abort_reply() noexcept;
  Result<void> reply(const Request& r, std::span<const std::byte> data, bool more = false);

  ServerStats stats() const noexcept;
  void close() noexcept;

 private:
  Writer* writer_for(uint32_t client, uint32_t epoch);
  void drop_writer(uint32_t client) noexcept;

  std::string name_;
  ServiceOptions opts_;
  TopicSubscriber requests_;
  struct ReplyWriter {
    uint32_t epoch = 0;
    std::unique_ptr<Writer> writer;
  };
  std::vector<ReplyWriter> writers_;  // by client (publisher) index
  Writer* pending_ = nullptr;          // between prepare_reply and commit_reply
  std::byte* pending_env_ = nullptr;   // the reply's envelope in the reservation
  size_t pending_n_ = 0;
  uint64_t pending_id_ = 0;
  ServerStats stats_;
};

class ServiceClient {
 public:
  ServiceClient(std::string_view name, const ServiceOptions& o = {});
  ~ServiceClient();
  ServiceClient(ServiceClient&&) = delete;

  // Zero-copy request: a slot after the envelope; then send_prepared returns the request id.
  Result<std::span<std::byte>> prepare(size_t n);
  Result<uint64_t> send_prepared(size_t used);
  // Sends the last `used` bytes of the prepared space (a FlatBuffer built back to front).
  Result<uint64_t> send_prepared_tail(size_t used);
  void abort_prepared() noexcept;  // give the prepared slot back unsent
  size_t max_request() const noexcept { return max_request_; }
  Result<uint64_t> send(std::span<const std::byte> data);
  // Next reply to request `id`; replies to other (timed-out) requests are skipped. Errors:
  // timeout, peer_dead (the server died), peer_closed (it left), closed.
  Result<Reply> receive(uint64_t id, std::chrono::nanoseconds timeout = kInfinite);
  // send + receive.
  Result<Reply> call(std::span<const std::byte> data, std::chrono::nanoseconds timeout = kInfinite);

  uint32_t index() const noexcept { return requests_.index(); }
  void close() noexcept;

 private:
  Errc server_gone() noexcept;

  TopicPublisher requests_;
  std::unique_ptr<Reader> replies_;
  std::string reply_name_;
  WaitOptions wait_;
  std::chrono::nanoseconds send_timeout_;
  std::byte* loan_env_ = nullptr;  // the request's envelope in the loaned slot
  size_t loan_n_ = 0;
  size_t max_request_ = 0;
  uint64_t next_id_ = 1;
  bool server_seen_ = false;
  // server_gone() looks at every subscriber's process (kill + /proc): at most once per liveness
  // interval, as a channel checks its peer, so that zero-timeout polls stay cheap.
  std::chrono::steady_clock::time_point next_gone_check_{};
};

}  // namespace flatlane
