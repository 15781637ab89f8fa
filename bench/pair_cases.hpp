// The two-process harness of every Flatlane case (channels, typed messages, topics): the same
// ping-pong and the same throughput trial, so cases differ only in how they open their endpoints
// and move one message.
//
// A case supplies
//   parent_ends(names, f) / child_ends(names, f): open the endpoints and call f(out, in) (parent)
//       or f(in, out) (child); the parent creates what the child then opens
//   send(out, seq) -> flatlane::Errc                      one message of the case's size
//   take(in, seq, bad) -> flatlane::Errc                  receive one, check it (bad = wrong contents)
// For throughput, consumer_end(names, f) / producer_end(names, f) call f(in) / f(out).
#pragma once

#ifdef FLATLANE_BENCH_HAVE_RUNTIME

#include <algorithm>
#include <atomic>
#include <new>
#include <string>
#include <vector>

#include "bench.hpp"
#include "flatlane_common.hpp"
#include "measure.hpp"
#include "platform.hpp"

namespace flbench {

inline std::string errc_text(const char* what, flatlane::Errc e) {
  return std::string(what) + ": " + flatlane::to_string(e);
}

template <class ParentEnds, class ChildEnds, class Send, class Take>
Result ping_pong_case(const Plan& plan, std::size_t size, bool busy, ParentEnds&& parent_ends,
                      ChildEnds&& child_ends, Send&& send, Take&& take) {
  // busy_spin never yields, so with both processes on one CPU every round trip would cost a
  // scheduler time slice: skip instead of timing that.
  if (busy && !busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t iters = plan.latency_iters(size);
  const std::uint64_t warmup = plan.warmup_iters(iters);

  Result res;
  auto parent = [&]() -> std::string {
    return parent_ends(names, [&](auto& out, auto& in) -> std::string {
      // The parent has created both segments; only now may the child open them.
      std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
      spin_until_equal(sync->child_ready.value, 1u);
      bool bad = false;
      flatlane::Errc err = flatlane::Errc::ok;
      const bool ok = measure_round_trips(
          warmup, iters,
          [&](std::uint64_t seq) {
            err = send(out, seq);
            if (err == flatlane::Errc::ok) err = take(in, seq, bad);
            return err == flatlane::Errc::ok;
          },
          res.rtt_ns);
      if (!ok) return errc_text("ping-pong", err);
      if (bad) return "payload mismatch seen by parent";
      return {};
    });
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    return child_ends(names, [&](auto& in, auto& out) -> int {
      std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
      bool bad = false;
      for (std::uint64_t seq = 1; seq <= warmup + iters; ++seq) {
        if (take(in, seq, bad) != flatlane::Errc::ok) return 1;
        if (send(out, seq) != flatlane::Errc::ok) return 1;
      }
      return bad ? 2 : 0;
    });
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// A case measured against a reference inside the same two processes: the reference (say raw
// frames) and the case (say typed messages of the same size) take turns in blocks of round
// trips, in the order R C C R R C ..., so both see the same CPUs, the same neighbours and the
// same moment. On a shared 2-CPU VM the p50 of separate runs drifts by 2-4x; the ratio of
// alternating blocks does not. `parent_ends(ref_names, names, f)` calls
// f(ref_out, ref_in, out, in); `child_ends` calls f(ref_in, ref_out, in, out).
// The result holds the case's samples in rtt_ns, the reference's in ref_rtt_ns and one
// p50(case) / p50(reference) per pair of neighbouring blocks in block_ratio.
template <class ParentEnds, class ChildEnds, class RefSend, class RefTake, class Send, class Take>
Result paired_ping_pong_case(const Plan& plan, std::size_t size, std::string ref_label, ParentEnds&& parent_ends,
                             ChildEnds&& child_ends, RefSend&& ref_send, RefTake&& ref_take, Send&& send,
                             Take&& take) {
  if (!busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames ref_names, names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t iters = plan.latency_iters(size);
  constexpr std::uint64_t kPairs = 20;  // 40 blocks
  const std::uint64_t per_block = std::max<std::uint64_t>(iters / kPairs, 50);
  const std::uint64_t warmup = plan.warmup_iters(iters);
  const std::uint64_t block_warmup = std::min<std::uint64_t>(per_block / 10 + 10, 200);  // after each switch
  // Block b runs the reference when this is true: R C | C R | R C | ...
  auto ref_block = [](std::uint64_t b) { return ((b / 2) % 2 == 0) == (b % 2 == 0); };

  Result res;
  res.ref_label = std::move(ref_label);
  auto median = [](std::vector<std::uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : static_cast<double>(v[v.size() / 2]);
  };
  auto parent = [&]() -> std::string {
    return parent_ends(ref_names, names, [&](auto& ref_out, auto& ref_in, auto& out, auto& in) -> std::string {
      std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
      spin_until_equal(sync->child_ready.value, 1u);
      bool bad = false;
      flatlane::Errc err = flatlane::Errc::ok;
      std::uint64_t ref_seq = 1, seq = 1;
      auto ref_rt = [&](std::uint64_t) {
        err = ref_send(ref_out, ref_seq);
        if (err == flatlane::Errc::ok) err = ref_take(ref_in, ref_seq, bad);
        ++ref_seq;
        return err == flatlane::Errc::ok;
      };
      auto rt = [&](std::uint64_t) {
        err = send(out, seq);
        if (err == flatlane::Errc::ok) err = take(in, seq, bad);
        ++seq;
        return err == flatlane::Errc::ok;
      };
      std::vector<std::uint64_t> block;
      res.rtt_ns.reserve(per_block * kPairs);
      res.ref_rtt_ns.reserve(per_block * kPairs);
      double ref_p50 = 0, p50 = 0;
      for (std::uint64_t b = 0; b < 2 * kPairs; ++b) {
        const bool is_ref = ref_block(b);
        const std::uint64_t warm = b < 2 ? warmup : block_warmup;
        const bool ok = is_ref ? measure_round_trips(warm, per_block, ref_rt, block)
                               : measure_round_trips(warm, per_block, rt, block);
        if (!ok) return errc_text(is_ref ? "ping-pong (reference)" : "ping-pong", err);
        auto& all = is_ref ? res.ref_rtt_ns : res.rtt_ns;
        all.insert(all.end(), block.begin(), block.end());
        (is_ref ? ref_p50 : p50) = median(block);
        if (b % 2 == 1 && ref_p50 > 0) res.block_ratio.push_back(p50 / ref_p50);
      }
      if (bad) return "payload mismatch seen by parent";
      return {};
    });
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    return child_ends(ref_names, names, [&](auto& ref_in, auto& ref_out, auto& in, auto& out) -> int {
      std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
      bool bad = false;
      std::uint64_t ref_seq = 1, seq = 1;
      for (std::uint64_t b = 0; b < 2 * kPairs; ++b) {
        const std::uint64_t n = (b < 2 ? warmup : block_warmup) + per_block;
        for (std::uint64_t i = 0; i < n; ++i) {
          if (ref_block(b)) {
            if (ref_take(ref_in, ref_seq, bad) != flatlane::Errc::ok) return 1;
            if (ref_send(ref_out, ref_seq) != flatlane::Errc::ok) return 1;
            ++ref_seq;
          } else {
            if (take(in, seq, bad) != flatlane::Errc::ok) return 1;
            if (send(out, seq) != flatlane::Errc::ok) return 1;
            ++seq;
          }
        }
      }
      return bad ? 2 : 0;
    });
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

// One throughput trial: child = producer, parent = consumer, the bare ring's protocol (warm-up,
// then the parent takes t0 and says go).
template <class ConsumerEnd, class ProducerEnd, class Send, class Take>
Result stream_trial(const Plan& plan, std::size_t size, ConsumerEnd&& consumer_end, ProducerEnd&& producer_end,
                    Send&& send, Take&& take) {
  if (!busy_spin_possible()) return skipped_result(kNeedsTwoCpus);
  ChannelNames names;
  SharedRegion region(sizeof(PairSync));
  auto* sync = new (region.data()) PairSync;
  const std::uint64_t n = plan.tput_messages(size);
  const std::uint64_t warmup = plan.warmup_iters(n);

  Result res;
  auto parent = [&]() -> std::string {
    return consumer_end(names, [&](auto& in) -> std::string {
      std::atomic_ref<std::uint32_t>(sync->go.value).store(1, std::memory_order_release);
      bool bad = false;
      std::uint64_t seq = 1;
      for (; seq <= warmup; ++seq) {
        if (auto e = take(in, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
      }
      spin_until_equal(sync->child_ready.value, 1u);
      const std::uint64_t t0 = now_ns();
      std::atomic_ref<std::uint32_t>(sync->go.value).store(2, std::memory_order_release);
      for (; seq <= warmup + n; ++seq) {
        if (auto e = take(in, seq, bad); e != flatlane::Errc::ok) return errc_text("receive", e);
      }
      const std::uint64_t t1 = now_ns();
      if (bad) return "payload mismatch seen by consumer";
      res.messages = n;
      res.bytes = n * size;
      res.seconds = static_cast<double>(t1 - t0) * 1e-9;
      return {};
    });
  };
  auto child = [&]() -> int {
    prefault(region.data(), region.size());
    spin_until_equal(sync->go.value, 1u);
    return producer_end(names, [&](auto& out) -> int {
      std::uint64_t seq = 1;
      for (; seq <= warmup; ++seq) {
        if (send(out, seq) != flatlane::Errc::ok) return 1;
      }
      std::atomic_ref<std::uint32_t>(sync->child_ready.value).store(1, std::memory_order_release);
      spin_until_equal(sync->go.value, 2u);
      for (; seq <= warmup + n; ++seq) {
        if (send(out, seq) != flatlane::Errc::ok) return 1;
      }
      return 0;
    });
  };
  res.error = run_pair(parent, child, plan.watchdog_s);
  res.ok = res.error.empty();
  return res;
}

}  // namespace flbench

#endif
