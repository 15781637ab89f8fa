// In-place duplex round trips beside a two-ring copying duplex, same work on both:
//
//   duplex/inplace  one duplex ring: the client writes the request in a frame, the server checks
//                   it and writes its answer over it, in place, and the client checks the answer
//                   in the same frame (PROTOCOL.md section 16)
//   duplex/2ring    two one-to-one rings (a request ring and a response ring, ZeroBuffer's
//                   duplex): the server checks the request in its frame and writes its answer
//                   into a new frame of the response ring
//
// Both write every 8-byte word of the request and of the answer and read every word of both, so
// the difference is where the answer goes: back into the lines the server just read, or into a
// second ring (twice the memory, a second set of lines through the caches). busy_spin on both
// ends; the rings hold 4 messages (ring_capacity_for). zmq/reqrep in zmq_cases.cpp is the
// ZeroMQ equivalent at the same sizes.
#include "bench.hpp"

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

#include <flatlane/flatlane.hpp>

#include "flatlane_common.hpp"
#include "measure.hpp"
#include "pair_cases.hpp"
#include "platform.hpp"

namespace flbench {
namespace {

// The answer's payload word: distinct from the request's, so a server that answers without
// writing is caught.
constexpr std::uint64_t answer_word(std::uint64_t seq) { return seq | (1ull << 62); }

flatlane::DuplexOptions duplex_options(std::size_t size, flatlane::OpenMode mode) {
  flatlane::DuplexOptions o;
  o.mode = mode;
  o.segment.ring_capacity = ring_capacity_for(size);
  o.wait.strategy = flatlane::WaitStrategy::busy_spin;
  return o;
}

flatlane::ChannelOptions channel_options(std::size_t size, flatlane::OpenMode mode) {
  flatlane::ChannelOptions o;
  o.mode = mode;
  o.segment.ring_capacity = ring_capacity_for(size);
  o.wait.strategy = flatlane::WaitStrategy::busy_spin;
  return o;
}

// The server end keeps the request it received until it answers it.
struct InPlaceServerEnd {
  flatlane::DuplexServer server;
  flatlane::DuplexRequest pending;
};

Result inplace_latency(const Plan& plan, std::size_t size) {
  using flatlane::Errc;
  using flatlane::OpenMode;
  return ping_pong_case(
      plan, size, true,
      [&](const ChannelNames& n, auto&& f) {
        flatlane::DuplexClient c(n.fwd(), duplex_options(size, OpenMode::create));
        return f(c, c);
      },
      [&](const ChannelNames& n, auto&& f) {
        InPlaceServerEnd s{flatlane::DuplexServer(n.fwd(), duplex_options(size, OpenMode::open)), {}};
        return f(s, s);
      },
      [&](auto& end, std::uint64_t seq) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, flatlane::DuplexClient>) {
          auto span = end.reserve(size);
          if (!span) return span.error();
          fill_payload(span->data(), size, seq);
          end.commit(size);
        } else {
          fill_payload(end.pending.data().data(), size, answer_word(seq));  // the answer, in place
          if (auto r = end.server.respond(end.pending); !r) return r.error();
        }
        return Errc::ok;
      },
      [&](auto& end, std::uint64_t seq, bool& bad) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, flatlane::DuplexClient>) {
          auto rep = end.receive();
          if (!rep) return rep.error();
          if (rep->size() != size || !payload_ok(rep->data().data(), size, answer_word(seq))) bad = true;
        } else {
          auto req = end.server.receive();
          if (!req) return req.error();
          if (req->data().size() != size || !payload_ok(req->data().data(), size, seq)) bad = true;
          end.pending = std::move(*req);
        }
        return Errc::ok;
      });
}

struct ClientRings {
  flatlane::Writer requests;
  flatlane::Reader responses;
};
struct ServerRings {
  flatlane::Reader requests;
  flatlane::Writer responses;
  flatlane::Frame pending;  // the request, held until the answer is written
};

Result two_ring_latency(const Plan& plan, std::size_t size) {
  using flatlane::Errc;
  using flatlane::OpenMode;
  return ping_pong_case(
      plan, size, true,
      [&](const ChannelNames& n, auto&& f) {
        ClientRings c{flatlane::Writer(n.fwd(), channel_options(size, OpenMode::create)),
                      flatlane::Reader(n.back(), channel_options(size, OpenMode::create))};
        return f(c, c);
      },
      [&](const ChannelNames& n, auto&& f) {
        ServerRings s{flatlane::Reader(n.fwd(), channel_options(size, OpenMode::open)),
                      flatlane::Writer(n.back(), channel_options(size, OpenMode::open)), {}};
        return f(s, s);
      },
      [&](auto& end, std::uint64_t seq) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, ClientRings>) {
          auto span = end.requests.reserve(size);
          if (!span) return span.error();
          fill_payload(span->data(), size, seq);
          end.requests.commit(size);
        } else {
          auto span = end.responses.reserve(size);  // the answer, in the second ring
          if (!span) return span.error();
          fill_payload(span->data(), size, answer_word(seq));
          end.responses.commit(size);
          end.pending.release();
        }
        return Errc::ok;
      },
      [&](auto& end, std::uint64_t seq, bool& bad) -> Errc {
        if constexpr (std::is_same_v<std::decay_t<decltype(end)>, ClientRings>) {
          auto f = end.responses.read();
          if (!f) return f.error();
          if (f->size() != size || !payload_ok(f->ptr(), size, answer_word(seq))) bad = true;
        } else {
          auto f = end.requests.read();
          if (!f) return f.error();
          if (f->size() != size || !payload_ok(f->ptr(), size, seq)) bad = true;
          end.pending = std::move(*f);
        }
        return Errc::ok;
      });
}

}  // namespace

void add_duplex_cases(std::vector<Case>& out) {
  for (std::size_t size : kDuplexSizes) {
    out.push_back({"duplex/inplace", "duplex in place", size, "busy", Kind::Latency, true,
                   [size](const Plan& p) { return inplace_latency(p, size); }});
    out.push_back({"duplex/2ring", "duplex 2 rings (copy)", size, "busy", Kind::Latency, true,
                   [size](const Plan& p) { return two_ring_latency(p, size); }});
  }
}

}  // namespace flbench

#else

namespace flbench {
void add_duplex_cases(std::vector<Case>&) {}
}  // namespace flbench

#endif
