// C++ peer for the C# generated-endpoint tests (runtime/csharp/Flatlane.Typed.Tests/InteropTests.cs):
// the C++ runtime's topics, work queues and services used directly, messages read and built with
// flatc's C++ code for tests/cpp/schema/typed_test.fbs. The test compiles it (g++) on first use.
//
//   typed_peer MODE NAME COUNT TYPE HASH [TYPE2 HASH2]
//   typed_peer check-sink FILE      (a ks.Sink the C# test built: verify with identifier, check every field)
//   typed_peer check-bag FILE       (a uv.Bag with a vector of unions the C# test built: verify, check)
//   typed_peer write-bag FILE       (writes the same uv.Bag built by flatc's C++ code, for C# to check)
//
// Modes: sub-sample | pub-sample (fan-out topic of fltest.Sample), pull-blob | push-blob (work
// queue of fltest.Blob), serve-add | call-add (fltest.Calc.Add), serve-count | call-count
// (fltest.Calc.Count, streaming: request i asks for i % 7 replies... at least 1), serve-invert |
// call-invert (fltest.Inplace.invert, in-place duplex of fltest.Blob: the server inverts every
// byte of data and rewrites checksum where the message lies; blobs k = 1..COUNT, 4 in flight).
// Message k (the content both sides check): see the expect_* / build_* functions below.
// The peer opens what the C# side created (OpenMode::open). Output: "ready", then "done N", or
// "bad <why>" (exit 3), "error <errc> <what>" (exit 4).
#include <flatlane/flatlane.hpp>

#include "kitchen_sink_generated.h"
#include "union_vectors_generated.h"
#include "typed_test_generated.h"

#include <flatbuffers/flatbuffers.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>

using namespace flatlane;
using namespace std::chrono_literals;

namespace {

void say(const std::string& s) {
  const std::string line = s + "\n";
  (void)!::write(STDOUT_FILENO, line.data(), line.size());
}

[[noreturn]] void bad(const std::string& why) {
  say("bad " + why);
  std::exit(3);
}

template <class T>
T ok(Result<T> r, const char* what) {
  if (!r) {
    say(std::string("error ") + to_string(r.error()) + " " + what);
    std::exit(4);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

// The sizes both sides use: message k of a run carries size(k, max) elements, from 0 up to max.
size_t size_of(uint64_t k, size_t max) {
  static const size_t fixed[] = {0, 1, 2, 3, 7, 64, 1000};
  if (k < 7) return std::min(fixed[k], max);
  if (k == 7) return max;
  return (k * 2654435761u) % (max + 1);
}

template <class T>
const T* verified(std::span<const std::byte> d) {
  const auto* p = reinterpret_cast<const uint8_t*>(d.data());
  flatbuffers::Verifier::Options vo;
  vo.check_alignment = true;
  flatbuffers::Verifier v(p, d.size(), vo);
  if (!v.VerifyBuffer<T>(nullptr)) bad("verifier refused a " + std::to_string(d.size()) + "-byte message");
  return flatbuffers::GetRoot<T>(p);
}

std::string label_of(uint64_t k) { return "sample " + std::to_string(k) + " \xce\xb2"; }  // UTF-8 too

void expect_sample(const fltest::Sample* s, uint64_t k, size_t max_values) {
  if (s->id() != k) bad("sample id " + std::to_string(s->id()) + " expected " + std::to_string(k));
  if (!s->label() || s->label()->str() != label_of(k)) bad("sample label");
  if (!s->position() || s->position()->x() != double(k) || s->position()->z() != -1.5) bad("sample position");
  const size_t n = size_of(k, max_values);
  if (n == 0 ? (s->values() && s->values()->size() != 0) : (!s->values() || s->values()->size() != n))
    bad("sample values size for " + std::to_string(k));
  for (size_t i = 0; i < n; ++i)
    if (s->values()->Get(static_cast<flatbuffers::uoffset_t>(i)) != float(i) * 0.25f) bad("sample value");
}

flatbuffers::DetachedBuffer build_sample(uint64_t k, size_t max_values) {
  flatbuffers::FlatBufferBuilder b;
  auto label = b.CreateString(label_of(k));
  std::vector<float> vals(size_of(k, max_values));
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = float(i) * 0.25f;
  auto v = b.CreateVector(vals);
  fltest::Vec3 pos(double(k), 0.0, -1.5);
  b.Finish(fltest::CreateSample(b, k, label, &pos, v));
  return b.Release();
}

uint8_t blob_byte(uint64_t k, size_t i) { return static_cast<uint8_t>(k * 31 + i * 7 + (i >> 8)); }

void expect_blob(const fltest::Blob* b, size_t max_bytes, uint64_t& sum_ids) {
  const uint64_t k = b->id();
  sum_ids += k;
  const size_t n = size_of(k, max_bytes);
  const size_t got = b->data() ? b->data()->size() : 0;
  if (got != n) bad("blob " + std::to_string(k) + " size " + std::to_string(got) + " expected " + std::to_string(n));
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (b->data()->Get(static_cast<flatbuffers::uoffset_t>(i)) != blob_byte(k, i)) bad("blob byte");
    sum += blob_byte(k, i);
  }
  if (b->checksum() != sum) bad("blob checksum");
}

flatbuffers::DetachedBuffer build_blob(uint64_t k, size_t max_bytes) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint8_t> data(size_of(k, max_bytes));
  uint64_t sum = 0;
  for (size_t i = 0; i < data.size(); ++i) sum += data[i] = blob_byte(k, i);
  auto d = b.CreateVector(data);
  b.Finish(fltest::CreateBlob(b, k, d, sum));
  return b.Release();
}

std::span<const std::byte> bytes(const flatbuffers::DetachedBuffer& d) {
  return {reinterpret_cast<const std::byte*>(d.data()), d.size()};
}

uint32_t count_for(uint64_t k) { return static_cast<uint32_t>(k % 7 + 1); }

// The duplex servers' work: invert Blob.data and rewrite checksum, in place (a checksum that is not
// stored can only stay 0, which is right when the inverted sum is 0 too).
void invert_blob(fltest::Blob* b) {
  uint64_t sum = 0;
  if (b->data()) {
    auto* d = const_cast<uint8_t*>(b->data()->Data());
    for (size_t i = 0; i < b->data()->size(); ++i) sum += d[i] = static_cast<uint8_t>(~d[i]);
  }
  // flatc ran without --gen-mutable here: write through the table base (the one base of every table).
  auto* t = reinterpret_cast<flatbuffers::Table*>(b);
  if (!t->SetField<uint64_t>(fltest::Blob::VT_CHECKSUM, sum, 0) && sum != 0) bad("checksum not stored");
}

void expect_inverted_blob(const fltest::Blob* b, uint64_t k, size_t max_bytes) {
  if (b->id() != k) bad("reply id " + std::to_string(b->id()) + " expected " + std::to_string(k));
  const size_t n = size_of(k, max_bytes);
  const size_t got = b->data() ? b->data()->size() : 0;
  if (got != n) bad("reply " + std::to_string(k) + " size " + std::to_string(got));
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t x = b->data()->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (x != static_cast<uint8_t>(~blob_byte(k, i))) bad("reply " + std::to_string(k) + " byte " + std::to_string(i));
    sum += x;
  }
  if (b->checksum() != sum) bad("reply checksum");
}

// The values MessageTests.BuildSink writes.
int check_sink(const char* path) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) bad("cannot open " + std::string(path));
  std::vector<uint8_t> buf(1 << 16);
  buf.resize(std::fread(buf.data(), 1, buf.size(), f));
  std::fclose(f);
  flatbuffers::Verifier::Options vo;
  vo.check_alignment = true;
  flatbuffers::Verifier v(buf.data(), buf.size(), vo);
  if (!ks::VerifySinkBuffer(v)) bad("verifier refused the sink");
  if (!ks::SinkBufferHasIdentifier(buf.data())) bad("identifier");
  const ks::Sink* k = ks::GetSink(buf.data());
  auto check = [](bool ok, const char* what) { if (!ok) bad(what); };
  check(!k->b() && k->i8() == -100 && k->u8() == 1 && k->i16() == -300 && k->u16() == 60000, "small scalars");
  check(k->i32() == -7 && k->u32() == 4000000000u && k->i64() == INT64_MIN && k->u64() == 5, "scalars");
  check(k->f32() == -2.5f && k->f64() == 1e300 && k->opt().has_value() && *k->opt() == 0, "floats/optional");
  check(k->s()->str() == "required" && k->leaf()->text()->str() == "leaf" && k->leaf()->n() == 7, "string/table");
  check(k->leaves()->size() == 3 && k->leaves()->Get(2)->text()->str() == "l2" && k->leaves()->Get(1)->n() == 1, "table vector");
  check(k->aligned()->z() == 3.0f && (reinterpret_cast<uintptr_t>(k->aligned()) - reinterpret_cast<uintptr_t>(buf.data())) % 16 == 0, "aligned struct");
  check(k->arrays()->size() == 2 && k->arrays()->Get(1)->values()->Get(2) == 30 && k->arrays()->Get(0)->tail() == -1 &&
        k->arrays()->Get(0)->flags() == ks::inner::Flags_C, "struct arrays");
  check(k->flags() == ks::inner::Flags_B && k->signed_() == ks::inner::Signed_Zero, "enums");
  check(k->signeds()->size() == 2 && k->signeds()->Get(0) == ks::inner::Signed_Pos, "enum vector");
  check(k->choice_type() == ks::Choice_Other && k->choice_as_Other()->n() == -5, "union");
  check(k->strings()->size() == 2 && k->strings()->Get(1)->str() == "\xce\xb2\xce\xb3", "string vector");
  check(k->nested_nested_root()->n() == 11 && k->nested_nested_root()->text()->str() == "inner" && k->big() == 0.0, "nested/big");
  say("done sink");
  return 0;
}

// The uv.Bag both sides build and check (MessageTests.BuildBag): id 42, items Text "a", Num -9,
// Pt (1.5, -2.5), Text "b"; tail left at its default.
std::vector<uint8_t> read_file(const char* path) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) bad("cannot open " + std::string(path));
  std::vector<uint8_t> buf(1 << 16);
  buf.resize(std::fread(buf.data(), 1, buf.size(), f));
  std::fclose(f);
  return buf;
}

int check_bag(const char* path) {
  std::vector<uint8_t> buf = read_file(path);
  flatbuffers::Verifier::Options vo;
  vo.check_alignment = true;
  flatbuffers::Verifier v(buf.data(), buf.size(), vo);
  if (!uv::VerifyBagBuffer(v)) bad("verifier refused the bag");
  if (!uv::BagBufferHasIdentifier(buf.data())) bad("identifier");
  const uv::Bag* b = uv::GetBag(buf.data());
  auto check = [](bool ok, const char* what) { if (!ok) bad(what); };
  check(b->id() == 42 && b->tail() == 7, "scalars");
  check(b->items_type()->size() == 4 && b->items()->size() == 4, "sizes");
  check(b->items_type()->Get(0) == uv::Item_Text && b->items()->GetAs<uv::Text>(0)->s()->str() == "a", "item 0");
  check(b->items_type()->Get(1) == uv::Item_Num && b->items()->GetAs<uv::Num>(1)->n() == -9, "item 1");
  check(b->items_type()->Get(2) == uv::Item_Pt && b->items()->GetAs<uv::Pt>(2)->x() == 1.5f &&
        b->items()->GetAs<uv::Pt>(2)->y() == -2.5f, "item 2");
  check(b->items_type()->Get(3) == uv::Item_Text && b->items()->GetAs<uv::Text>(3)->s()->str() == "b", "item 3");
  say("done bag");
  return 0;
}

int write_bag(const char* path) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<uint8_t> types{uv::Item_Text, uv::Item_Num, uv::Item_Pt, uv::Item_Text};
  uv::Pt pt(1.5f, -2.5f);
  std::vector<flatbuffers::Offset<void>> items{
      uv::CreateText(fbb, fbb.CreateString("a")).Union(), uv::CreateNum(fbb, -9).Union(),
      fbb.CreateStruct(pt).Union(), uv::CreateText(fbb, fbb.CreateString("b")).Union()};
  auto t = fbb.CreateVector(types);
  auto i = fbb.CreateVector(items);
  uv::FinishBagBuffer(fbb, uv::CreateBag(fbb, 42, t, i));
  std::FILE* f = std::fopen(path, "wb");
  if (!f || std::fwrite(fbb.GetBufferPointer(), 1, fbb.GetSize(), f) != fbb.GetSize()) bad("cannot write " + std::string(path));
  std::fclose(f);
  say("done write");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::alarm(60);
  if (argc == 3 && std::string(argv[1]) == "check-sink") return check_sink(argv[2]);
  if (argc == 3 && std::string(argv[1]) == "check-bag") return check_bag(argv[2]);
  if (argc == 3 && std::string(argv[1]) == "write-bag") return write_bag(argv[2]);
  if (argc < 6) return 2;
  const std::string mode = argv[1], name = argv[2];
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  const TypeId t1{argv[4], std::strtoull(argv[5], nullptr, 16)};
  const TypeId t2 = argc > 7 ? TypeId{argv[6], std::strtoull(argv[7], nullptr, 16)} : TypeId{};
  const size_t max = argc > 8 ? std::strtoull(argv[8], nullptr, 10) : 1000;
  try {
    if (mode == "sub-sample" || mode == "pull-blob") {
      TopicOptions o;
      o.mode = OpenMode::open;
      o.topic.type = t1;
      o.subscriber_mode = SubscriberMode::block_publisher;
      TopicSubscriber sub(name, o);
      say("ready");
      uint64_t sum_ids = 0;
      for (uint64_t k = 0; k < count; ++k) {
        auto s = ok(sub.receive(20s), "receive");
        if (mode == "sub-sample") expect_sample(verified<fltest::Sample>(s.data()), k, max);
        else expect_blob(verified<fltest::Blob>(s.data()), max, sum_ids);
      }
      say("done " + std::to_string(count) + " " + std::to_string(sum_ids));
    } else if (mode == "pub-sample" || mode == "push-blob") {
      TopicOptions o;
      o.mode = OpenMode::open;
      o.topic.type = t1;
      TopicPublisher pub(name, o);
      say("ready");
      // Wait for the C# side's subscriber (fan-out drops nothing it is not attached for).
      for (int i = 0; i < 2000 && pub.subscriber_count() == 0; ++i) ::usleep(1000);
      for (uint64_t k = 0; k < count; ++k) {
        auto d = mode == "pub-sample" ? build_sample(k, max) : build_blob(k, max);
        ok(pub.send(bytes(d), 10s), "send");
      }
      say("done " + std::to_string(count));
    } else if (mode == "serve-add" || mode == "serve-count") {
      ServiceOptions o;
      o.mode = OpenMode::open;
      o.request_type = t1;
      o.reply_type = t2;
      ServiceServer srv(name, o);
      say("ready");
      for (uint64_t k = 0; k < count; ++k) {
        auto r = ok(srv.receive(20s), "receive");
        flatbuffers::FlatBufferBuilder b;
        if (mode == "serve-add") {
          const auto* q = verified<fltest::AddRequest>(r.data());
          b.Finish(fltest::CreateAddReply(b, q->a() + q->b()));
          ok(srv.reply(r, bytes(b.Release())), "reply");
        } else {
          const auto* q = verified<fltest::CountRequest>(r.data());
          for (uint32_t n = 1; n <= q->to(); ++n) {
            flatbuffers::FlatBufferBuilder c;
            c.Finish(fltest::CreateCountReply(c, n));
            ok(srv.reply(r, bytes(c.Release()), n < q->to()), "reply");
          }
        }
      }
      say("done " + std::to_string(count));
    } else if (mode == "call-add" || mode == "call-count") {
      ServiceOptions o;
      o.mode = OpenMode::open;
      o.request_type = t1;
      o.reply_type = t2;
      ServiceClient cli(name, o);
      say("ready");
      for (uint64_t k = 0; k < count; ++k) {
        flatbuffers::FlatBufferBuilder b;
        if (mode == "call-add") {
          b.Finish(fltest::CreateAddRequest(b, static_cast<int64_t>(k), -7));
          auto rep = ok(cli.call(bytes(b.Release()), 10s), "call");
          if (verified<fltest::AddReply>(rep.data())->sum() != static_cast<int64_t>(k) - 7) bad("sum");
        } else {
          b.Finish(fltest::CreateCountRequest(b, count_for(k)));
          const uint64_t id = ok(cli.send(bytes(b.Release())), "send");
          for (uint32_t n = 1;; ++n) {
            auto rep = ok(cli.receive(id, 10s), "receive");
            if (verified<fltest::CountReply>(rep.data())->n() != n) bad("count reply");
            if (!rep.more()) {
              if (n != count_for(k)) bad("count stream ended at " + std::to_string(n));
              break;
            }
          }
        }
      }
      say("done " + std::to_string(count));
    } else if (mode == "serve-invert") {
      DuplexOptions o;
      o.mode = OpenMode::open;
      o.segment.type = t1;
      DuplexServer srv(name, o);
      say("ready");
      for (uint64_t k = 0; k < count; ++k) {
        auto r = ok(srv.receive(20s), "receive");
        verified<fltest::Blob>(r.data());
        invert_blob(flatbuffers::GetMutableRoot<fltest::Blob>(r.data().data()));
        ok(srv.respond(r), "respond");
      }
      say("done " + std::to_string(count));
    } else if (mode == "call-invert") {
      DuplexOptions o;
      o.mode = OpenMode::open;
      o.segment.type = t1;
      DuplexClient cli(name, o);
      say("ready");
      uint64_t sent = 0, got = 0;
      while (got < count) {
        while (sent < count && sent - got < 4) {
          ++sent;
          ok(cli.send(bytes(build_blob(sent, max)), 0, 10s), "send");
        }
        auto rep = ok(cli.receive(20s), "receive");
        ++got;
        if (rep.rejected()) bad("rejected " + std::to_string(rep.seq()));
        expect_inverted_blob(verified<fltest::Blob>(rep.data()), got, max);
      }
      say("done " + std::to_string(count));
    } else {
      return 2;
    }
  } catch (const Error& e) {
    say(std::string("error ") + to_string(e.code()) + " " + e.what());
    return 4;
  }
  return 0;
}
