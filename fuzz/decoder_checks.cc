#include "fuzz/decoder_checks.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "broker/protocol/headers.h"
#include "proto/sift.pb.h"

namespace sift::fuzz {
namespace {

// ---------------------------------------------------------------------------
// Reporting.

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  constexpr size_t kMaxShown = 512;
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (i > 0) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  if (bytes.size() > kMaxShown) absl::StrAppend(&out, " ...");
  return out;
}

// Printable form of a decoded string field: C-escaped, quoted.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

[[noreturn]] void Fail(std::string_view what, std::string_view frame) {
  std::fprintf(stderr,
               "\n==sift-fuzz== CHECK FAILED: %.*s\n"
               "==sift-fuzz== frame (%zu bytes): %s\n",
               static_cast<int>(what.size()), what.data(), frame.size(),
               Hex(frame).c_str());
  std::fflush(stderr);
  std::abort();
}

// `what` is built only when the check fails.
#define SIFT_EXPECT(cond, frame, ...)                                  \
  do {                                                                 \
    if (!(cond)) ::sift::fuzz::Fail(absl::StrCat(__VA_ARGS__), frame); \
  } while (0)

// Ways the fast decoders are known to read a frame differently from
// protobuf. Each is a real disagreement (reported in docs/fuzzing.md); it
// fails the run unless named in SIFT_FUZZ_ALLOW, so the fuzzer can look past
// a known one for new ones. kOther is never tolerated.
enum Divergence {
  kLongVarint,     // a tag or length prefix longer than protobuf accepts
  kInvalidUtf8,    // a string protobuf (proto3) rejects as invalid UTF-8
  kMergedCommand,  // the command field twice: protobuf merges, fast keeps last
  kOther,
  kDivergenceKinds,
};

constexpr const char* kDivergenceNames[kDivergenceKinds] = {
    "long_varint", "invalid_utf8", "merged_command", "other"};

bool g_allowed[kDivergenceKinds] = {};
uint64_t g_tolerated[kDivergenceKinds] = {};

void PrintTolerated() {
  for (int k = 0; k < kDivergenceKinds; ++k) {
    if (g_allowed[k]) {
      std::fprintf(stderr, "==sift-fuzz== tolerated divergences %s: %llu\n",
                   kDivergenceNames[k],
                   static_cast<unsigned long long>(g_tolerated[k]));
    }
  }
}

void Diverge(Divergence kind, std::string_view what, std::string_view frame) {
  if (!g_allowed[kind]) {
    // Debian's abseil has its own string_view, which StrCat wants.
    Fail(absl::StrCat(
             absl::string_view(what.data(), what.size()),
             "\n==sift-fuzz== divergence kind: ", kDivergenceNames[kind],
             kind == kOther ? " (new: never tolerated)"
                            : absl::StrCat(" (tolerate with SIFT_FUZZ_ALLOW=",
                                           kDivergenceNames[kind], ")")),
         frame);
  }
  if (g_tolerated[kind]++ == 0) {
    std::fprintf(stderr,
                 "==sift-fuzz== tolerating %s (first of its kind): %.*s\n"
                 "==sift-fuzz== frame: %s\n",
                 kDivergenceNames[kind], static_cast<int>(what.size()),
                 what.data(), Hex(frame).c_str());
  }
}

// ---------------------------------------------------------------------------
// Helpers.

// An exact-size heap copy of some bytes: AddressSanitizer reports any read
// past its end, which it could not if the bytes sat inside a larger buffer
// (a batch entry inside its body, libFuzzer's input inside its own).
class ExactCopy {
 public:
  explicit ExactCopy(std::string_view bytes)
      : data_(new char[bytes.size()]), size_(bytes.size()) {
    if (size_ > 0) std::memcpy(data_.get(), bytes.data(), size_);
  }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  std::string_view view() const { return std::string_view(data(), size_); }

  // Whether `part` lies inside these bytes. An empty part points nowhere
  // (a default view) or anywhere up to the end.
  bool Holds(std::string_view part) const {
    if (part.empty() && part.data() == nullptr) return true;
    const auto begin = reinterpret_cast<uintptr_t>(data());
    const auto p = reinterpret_cast<uintptr_t>(part.data());
    return p >= begin && p + part.size() <= begin + size_;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// Strict UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), as protobuf checks proto3 strings.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// The wire layout of a frame, walked the lenient way the fast decoders walk
// it (varints of up to 10 bytes), to name a divergence.
struct Shape {
  int longest_tag = 0;     // bytes of the longest field tag
  int longest_length = 0;  // bytes of the longest length prefix
  int command_fields = 0;  // top-level occurrences of the command's field
};

bool ReadVarint(const char*& p, const char* end, uint64_t* v, int* bytes) {
  uint64_t result = 0;
  for (int shift = 0, n = 1; shift < 64 && p < end; shift += 7, ++n) {
    const auto byte = static_cast<unsigned char>(*p++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      *bytes = n;
      return true;
    }
  }
  return false;
}

void WalkShape(const char* p, const char* end, int command_field, bool top,
               Shape* shape) {
  while (p < end) {
    uint64_t key, v;
    int n;
    if (!ReadVarint(p, end, &key, &n)) return;
    shape->longest_tag = std::max(shape->longest_tag, n);
    const uint64_t field = key >> 3;
    switch (key & 7) {
      case 0:
        if (!ReadVarint(p, end, &v, &n)) return;
        break;
      case 2:
        if (!ReadVarint(p, end, &v, &n) || v > static_cast<uint64_t>(end - p)) {
          return;
        }
        shape->longest_length = std::max(shape->longest_length, n);
        if (top && field == static_cast<uint64_t>(command_field)) {
          ++shape->command_fields;
          WalkShape(p, p + v, command_field, false, shape);
        }
        p += v;
        break;
      default:
        return;
    }
  }
}

// Names why a fast decoder's reading of `frame` (strings `topic` and
// `reply_to` of command field `command_field`) differs from protobuf's.
Divergence Classify(std::string_view frame, int command_field, bool full_ok,
                    std::string_view topic, std::string_view reply_to) {
  Shape shape;
  WalkShape(frame.data(), frame.data() + frame.size(), command_field, true,
            &shape);
  // protobuf reads tags and length prefixes as 32-bit varints (5 bytes).
  if (!full_ok && (shape.longest_tag > 5 || shape.longest_length > 5)) {
    return kLongVarint;
  }
  // Only the last occurrence is read by the fast decoders; protobuf merges
  // all of them (and rejects the frame if an earlier one is malformed).
  if (shape.command_fields > 1) return kMergedCommand;
  if (!full_ok && (!IsUtf8(topic) || !IsUtf8(reply_to))) return kInvalidUtf8;
  return kOther;
}

std::string Describe(const protocol::PubView& v) {
  return absl::StrCat(
      "PUB{request_id=", v.request_id, " topic=", Quote(v.topic),
      " reply_to=", Quote(v.reply_to), " confirm=", v.confirm,
      " headers=", Hex(v.headers), "}");
}

std::string Describe(const protocol::DeliverView& v) {
  return absl::StrCat("DELIVER{sid=", v.sid, " topic=", Quote(v.topic),
                      " reply_to=", Quote(v.reply_to),
                      " headers=", Hex(v.headers), "}");
}

// What the full decoder made of a frame, for messages.
std::string DescribeFull(bool ok, const wire::Header& h) {
  if (!ok) return "rejects it (BAD_FRAME)";
  std::string scratch;
  if (h.has_pub()) return "reads " + Describe(protocol::PubViewOf(h, &scratch));
  if (h.has_deliver()) {
    return "reads " +
           Describe(protocol::DeliverViewOf(h.deliver(), &scratch));
  }
  return absl::StrCat("reads ", protocol::CommandName(h));
}

// Header bytes the broker accepts (every entry well formed, every key a
// token; the count and size limits aside).
bool HeadersDecode(std::string_view bytes) {
  protocol::HeaderLimits unlimited;
  unlimited.max_count = UINT32_MAX;
  unlimited.max_bytes = UINT64_MAX;
  return protocol::ValidateHeaders(bytes, unlimited).ok();
}

// Header bytes read as pairs: the same pairs in the same order. Two lists
// the broker refuses alike (INVALID_HEADER) are the same to it: protobuf
// and the raw bytes may spell a keyless entry differently (`22 00` read
// and written again is `22 02 0a 00`).
bool SameHeaders(std::string_view a, std::string_view b) {
  const bool ok_a = HeadersDecode(a);
  const bool ok_b = HeadersDecode(b);
  if (!ok_a || !ok_b) return ok_a == ok_b;
  std::vector<std::pair<std::string_view, std::string_view>> pa, pb;
  protocol::DecodeHeaders(a, &pa);
  protocol::DecodeHeaders(b, &pb);
  return pa == pb;
}

// Fills a proto's headers from header bytes that decode.
template <typename Message>
void SetHeaders(std::string_view bytes, Message* m) {
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  protocol::DecodeHeaders(bytes, &pairs);
  for (const auto& [k, v] : pairs) {
    wire::HeaderField* h = m->add_headers();
    h->set_key(std::string(k));
    h->set_value(std::string(v));
  }
}

bool Same(const protocol::PubView& a, const protocol::PubView& b) {
  return a.request_id == b.request_id && a.topic == b.topic &&
         a.reply_to == b.reply_to && a.confirm == b.confirm &&
         SameHeaders(a.headers, b.headers);
}

bool Same(const protocol::DeliverView& a, const protocol::DeliverView& b) {
  return a.sid == b.sid && a.topic == b.topic && a.reply_to == b.reply_to &&
         a.delivery_id == b.delivery_id && a.attempt == b.attempt &&
         a.retained == b.retained &&
         SameHeaders(a.headers, b.headers);
}


std::string Describe(const protocol::OkView& v) {
  return absl::StrCat("OK{request_id=", v.request_id,
                      " stream_seq=", v.stream_seq,
                      " duplicate=", v.duplicate,
                      " delivered=", v.delivered, "}");
}

bool Same(const protocol::OkView& a, const protocol::OkView& b) {
  return a.request_id == b.request_id && a.stream_seq == b.stream_seq &&
         a.duplicate == b.duplicate && a.delivered == b.delivered;
}

bool Parse(std::string_view bytes, wire::Header* out) {
  return bytes.size() <= static_cast<size_t>(INT_MAX) &&
         out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// ---------------------------------------------------------------------------
// Encoders against decoders.

// EncodePub writes what protobuf writes for the same PUB, in PubSize bytes,
// and both decoders read it back as `pub`.
void RoundTripPub(const protocol::PubView& pub, std::string_view frame) {
  const size_t size = protocol::PubSize(pub.request_id, pub.topic,
                                        pub.reply_to, pub.confirm, pub.headers);
  std::string encoded(size, '\0');
  const size_t written =
      protocol::EncodePub(pub.request_id, pub.topic, pub.reply_to, pub.confirm,
                          pub.headers, encoded.data());
  SIFT_EXPECT(written == size, frame, "EncodePub wrote ", written,
              " bytes, PubSize said ", size, " for ", Describe(pub));

  wire::Header canonical;
  if (pub.request_id != 0) canonical.set_request_id(pub.request_id);
  canonical.mutable_pub()->set_topic(std::string(pub.topic));
  canonical.mutable_pub()->set_reply_to(std::string(pub.reply_to));
  canonical.mutable_pub()->set_confirm(pub.confirm);
  SetHeaders(pub.headers, canonical.mutable_pub());
  SIFT_EXPECT(!HeadersDecode(pub.headers) ||
                  canonical.SerializeAsString() == encoded, frame, "EncodePub of ",
              Describe(pub), " wrote ", Hex(encoded), ", protobuf writes ",
              Hex(canonical.SerializeAsString()));

  const ExactCopy copy(encoded);
  protocol::PubView back;
  SIFT_EXPECT(protocol::DecodePubFast(copy.data(), copy.size(), &back) &&
                  Same(back, pub),
              frame, "DecodePubFast does not read back EncodePub's ",
              Describe(pub), " (", Hex(encoded), ")");
  if (IsUtf8(pub.topic) && IsUtf8(pub.reply_to) && HeadersDecode(pub.headers)) {
    wire::Header full;
    std::string scratch;
    SIFT_EXPECT(Parse(copy.view(), &full) && full.has_pub() &&
                    Same(protocol::PubViewOf(full, &scratch), pub),
                frame, "protobuf does not read back EncodePub's ",
                Describe(pub));
  }
}

// The same for EncodeDeliver.
void RoundTripDeliver(const protocol::DeliverView& d, std::string_view frame) {
  const size_t size = protocol::DeliverSize(d.sid, d.topic, d.reply_to,
                                            d.headers, d.delivery_id,
                                            d.attempt, d.retained);
  std::string encoded(size, '\0');
  const size_t written =
      protocol::EncodeDeliver(d.sid, d.topic, d.reply_to, d.headers,
                              d.delivery_id, d.attempt, d.retained,
                              encoded.data());
  SIFT_EXPECT(written == size, frame, "EncodeDeliver wrote ", written,
              " bytes, DeliverSize said ", size, " for ", Describe(d));

  wire::Header canonical;
  canonical.mutable_deliver()->set_sid(d.sid);
  canonical.mutable_deliver()->set_topic(std::string(d.topic));
  canonical.mutable_deliver()->set_reply_to(std::string(d.reply_to));
  SetHeaders(d.headers, canonical.mutable_deliver());
  canonical.mutable_deliver()->set_delivery_id(d.delivery_id);
  canonical.mutable_deliver()->set_attempt(d.attempt);
  canonical.mutable_deliver()->set_retained(d.retained);
  SIFT_EXPECT(!HeadersDecode(d.headers) ||
                  canonical.SerializeAsString() == encoded, frame,
              "EncodeDeliver of ", Describe(d), " wrote ", Hex(encoded),
              ", protobuf writes ", Hex(canonical.SerializeAsString()));

  const ExactCopy copy(encoded);
  protocol::DeliverView back;
  SIFT_EXPECT(protocol::DecodeDeliverFast(copy.data(), copy.size(), &back) &&
                  Same(back, d),
              frame, "DecodeDeliverFast does not read back EncodeDeliver's ",
              Describe(d));
  if (IsUtf8(d.topic) && IsUtf8(d.reply_to) && HeadersDecode(d.headers)) {
    wire::Header full;
    std::string scratch;
    SIFT_EXPECT(Parse(copy.view(), &full) && full.has_deliver() &&
                    Same(protocol::DeliverViewOf(full.deliver(), &scratch), d),
                frame, "protobuf does not read back EncodeDeliver's ",
                Describe(d));
  }
}

}  // namespace

void Init() {
  // Invalid UTF-8 makes protobuf log an error per parse; the checks say
  // what matters.
  google::protobuf::SetLogHandler(nullptr);
  if (const char* allow = std::getenv("SIFT_FUZZ_ALLOW")) {
    for (absl::string_view name : absl::StrSplit(allow, ',')) {
      if (name.empty()) continue;
      bool known = false;
      for (int k = 0; k < kOther; ++k) {
        if (name == kDivergenceNames[k]) {
          g_allowed[k] = true;
          known = true;
        }
      }
      if (!known) {
        std::fprintf(stderr,
                     "SIFT_FUZZ_ALLOW: unknown divergence \"%.*s\" (known: "
                     "long_varint, invalid_utf8, merged_command)\n",
                     static_cast<int>(name.size()), name.data());
        std::exit(2);
      }
    }
    std::atexit(PrintTolerated);
  }
}

void CheckHeader(std::string_view frame_in) {
  const ExactCopy frame(frame_in);
  const std::string_view bytes = frame.view();

  // The reference: a plain protobuf parse, no arena.
  wire::Header ref;
  const bool ref_ok = Parse(bytes, &ref);

  // HeaderDecoder, reused across inputs like the broker's.
  static auto* const decoder = new protocol::HeaderDecoder;
  {
    auto decoded = decoder->Decode(frame.data(), frame.size());
    SIFT_EXPECT(decoded.ok() == ref_ok, bytes, "HeaderDecoder ",
                decoded.ok() ? "accepts" : "rejects", " a frame protobuf ",
                ref_ok ? "accepts" : "rejects");
    if (decoded.ok()) {
      SIFT_EXPECT((*decoded)->SerializeAsString() == ref.SerializeAsString(),
                  bytes, "HeaderDecoder read other content than protobuf");
    } else {
      SIFT_EXPECT(protocol::WireCodeOf(decoded.status()) == wire::BAD_FRAME,
                  bytes, "HeaderDecoder's rejection carries wire code ",
                  protocol::WireCodeOf(decoded.status()), ", not BAD_FRAME");
    }
  }

  if (ref_ok) {
    const char* name = protocol::CommandName(ref);
    SIFT_EXPECT(name != nullptr, bytes, "CommandName returned null");
    SIFT_EXPECT((ref.command_case() == wire::Header::COMMAND_NOT_SET) ==
                    (std::strcmp(name, "UNKNOWN") == 0),
                bytes, "CommandName says ", name, " for command case ",
                ref.command_case());
    // Re-encoding what was decoded is stable (unknown fields included).
    const std::string once = protocol::EncodeHeader(ref);
    wire::Header again;
    SIFT_EXPECT(Parse(once, &again) && protocol::EncodeHeader(again) == once,
                bytes,
                "EncodeHeader of the decoded header does not "
                "round-trip: ",
                Hex(once));
  }

  protocol::PubView pub;
  if (protocol::DecodePubFast(frame.data(), frame.size(), &pub)) {
    SIFT_EXPECT(frame.Holds(pub.topic) && frame.Holds(pub.reply_to), bytes,
                "DecodePubFast's views point outside the frame");
    std::string scratch;
    // Header entries are checked by the router (ValidateHeaders), not by
    // the fast decoder, and more strictly than protobuf reads them (an
    // entry with an unknown field, or its key twice, is INVALID_HEADER;
    // protobuf would skip or merge). Whatever fails that check the broker
    // refuses, however protobuf reads it: not a divergence.
    const bool refused_by_router = !HeadersDecode(pub.headers);
    if (!refused_by_router &&
        (!ref_ok || !ref.has_pub() ||
         !Same(pub, protocol::PubViewOf(ref, &scratch)))) {
      Diverge(Classify(bytes, wire::Header::kPubFieldNumber, ref_ok, pub.topic,
                       pub.reply_to),
              absl::StrCat("DecodePubFast reads ", Describe(pub),
                           ", the full decoder ", DescribeFull(ref_ok, ref)),
              bytes);
    }
    RoundTripPub(pub, bytes);
  }
  if (ref_ok && ref.has_pub()) {
    std::string scratch;
    RoundTripPub(protocol::PubViewOf(ref, &scratch), bytes);
  }

  protocol::DeliverView deliver;
  if (protocol::DecodeDeliverFast(frame.data(), frame.size(), &deliver)) {
    SIFT_EXPECT(frame.Holds(deliver.topic) && frame.Holds(deliver.reply_to),
                bytes, "DecodeDeliverFast's views point outside the frame");
    std::string scratch;
    // Header entries the broker would never send (see PUB above): the C++
    // client drops them whole, however protobuf reads them.
    const bool bad_headers = !HeadersDecode(deliver.headers);
    if (!bad_headers &&
        (!ref_ok || !ref.has_deliver() ||
         !Same(deliver, protocol::DeliverViewOf(ref.deliver(), &scratch)))) {
      Diverge(Classify(bytes, wire::Header::kDeliverFieldNumber, ref_ok,
                       deliver.topic, deliver.reply_to),
              absl::StrCat("DecodeDeliverFast reads ", Describe(deliver),
                           ", the full decoder ", DescribeFull(ref_ok, ref)),
              bytes);
    }
    RoundTripDeliver(deliver, bytes);
  }
  if (ref_ok && ref.has_deliver()) {
    std::string scratch;
    RoundTripDeliver(protocol::DeliverViewOf(ref.deliver(), &scratch), bytes);
  }

  protocol::OkView ok;
  if (protocol::DecodeOkFast(frame.data(), frame.size(), &ok)) {
    protocol::OkView full;
    if (ref_ok && ref.has_ok()) {
      full = {ref.request_id(), ref.ok().stream_seq(), ref.ok().duplicate(),
              ref.ok().delivered()};
    }
    if (!ref_ok || !ref.has_ok() || !Same(ok, full)) {
      Diverge(Classify(bytes, wire::Header::kOkFieldNumber, ref_ok, {}, {}),
              absl::StrCat("DecodeOkFast reads ", Describe(ok),
                           ", the full decoder ", DescribeFull(ref_ok, ref)),
              bytes);
    }
    // AppendOk writes what protobuf writes for it, and reads back.
    std::string body;
    protocol::BatchWriter(&body).AppendOk(ok);
    protocol::BatchReader reader(body.data(), body.size());
    std::string_view header, payload;
    protocol::OkView back;
    SIFT_EXPECT(reader.Next(&header, &payload) &&
                    protocol::DecodeOkFast(header.data(), header.size(),
                                           &back) &&
                    Same(back, ok),
                bytes, "DecodeOkFast does not read back AppendOk's ",
                Describe(ok));
    wire::Header canonical;
    if (ok.request_id != 0) canonical.set_request_id(ok.request_id);
    canonical.mutable_ok()->set_stream_seq(ok.stream_seq);
    canonical.mutable_ok()->set_duplicate(ok.duplicate);
    canonical.mutable_ok()->set_delivered(ok.delivered);
    SIFT_EXPECT(header == canonical.SerializeAsString(), bytes, "AppendOk of ",
                Describe(ok), " wrote ", Hex(header), ", protobuf writes ",
                Hex(canonical.SerializeAsString()));
  }

  protocol::AckView ack;
  std::vector<uint64_t> walked;  // the ids DecodeAckFast read as it checked
  if (protocol::DecodeAckFast(frame.data(), frame.size(), &ack, &walked)) {
    SIFT_EXPECT(frame.Holds(ack.packed_ids), bytes,
                "DecodeAckFast's view points outside the frame");
    std::vector<uint64_t> ids;
    std::string_view packed = ack.packed_ids;
    uint64_t id;
    while (protocol::NextPackedId(&packed, &id)) ids.push_back(id);
    SIFT_EXPECT(packed.empty(), bytes,
                "NextPackedId stopped before the end of ids DecodeAckFast "
                "accepted");
    SIFT_EXPECT(walked == ids, bytes,
                "DecodeAckFast's ids differ from NextPackedId's");
    const bool same =
        ref_ok && ref.has_ack() && ref.request_id() == ack.request_id &&
        std::equal(ids.begin(), ids.end(), ref.ack().delivery_ids().begin(),
                   ref.ack().delivery_ids().end());
    if (!same) {
      Diverge(Classify(bytes, wire::Header::kAckFieldNumber, ref_ok, {}, {}),
              absl::StrCat("DecodeAckFast reads request_id ", ack.request_id,
                           " and ", ids.size(), " ids, the full decoder ",
                           DescribeFull(ref_ok, ref)),
              bytes);
    }
    if (!ids.empty()) {
      std::string encoded;
      protocol::EncodeAck(ids.data(), ids.size(), &encoded);
      wire::Header canonical;
      for (uint64_t i : ids) canonical.mutable_ack()->add_delivery_ids(i);
      SIFT_EXPECT(encoded == canonical.SerializeAsString(), bytes,
                  "EncodeAck of ", ids.size(), " ids wrote ", Hex(encoded),
                  ", protobuf writes ", Hex(canonical.SerializeAsString()));
    }
  }
}

void CheckBatchBody(std::string_view body_in) {
  const ExactCopy body(body_in);
  const std::string_view bytes = body.view();
  const auto at = [&](const char* p) {
    return static_cast<size_t>(p - body.data());
  };

  struct Entry {
    std::string_view header;
    std::string_view payload;
  };
  std::vector<Entry> entries;
  protocol::BatchReader reader(body.data(), body.size());
  const char* next = body.data();  // where the next entry must start
  std::string_view header, payload;
  // Every entry takes at least two bytes (its two length prefixes), so the
  // loop is bounded even if the reader is not.
  while (reader.Next(&header, &payload)) {
    SIFT_EXPECT(entries.size() < body.size() / 2 + 1, bytes,
                "BatchReader returned more entries than the body can hold");
    SIFT_EXPECT(body.Holds(header) && body.Holds(payload), bytes,
                "BatchReader entry ", entries.size() + 1,
                " points outside the body");
    SIFT_EXPECT(
        header.data() > next && payload.data() > header.data() + header.size(),
        bytes, "BatchReader entry ", entries.size() + 1,
        " is out of order (header at ", at(header.data()), ", payload at ",
        at(payload.data()), ", expected after ", at(next), ")");
    next = payload.data() + payload.size();
    entries.push_back({header, payload});
  }
  SIFT_EXPECT(!reader.Next(&header, &payload), bytes,
              "BatchReader returned an entry after it had ended");
  if (reader.error()) {
    SIFT_EXPECT(next < body.data() + body.size(), bytes,
                "BatchReader reports an error after reading the whole body");
  } else {
    SIFT_EXPECT(next == body.data() + body.size(), bytes,
                "BatchReader ended at byte ", at(next), " of ", body.size(),
                " without an error");
  }

  protocol::BatchReader counter(body.data(), body.size());
  const uint64_t skipped = counter.SkipRest();
  SIFT_EXPECT(skipped == entries.size() && counter.error() == reader.error(),
              bytes, "SkipRest counts ", skipped, " entries (error ",
              counter.error(), "), Next walks ", entries.size(), " (error ",
              reader.error(), ")");

  for (const Entry& e : entries) CheckHeader(e.header);

  // BatchWriter rebuilds the entries the fast decoders read, and the rebuilt
  // body reads back the same. (The views die with each entry's copy, so the
  // fields are kept as strings.)
  struct Kept {
    bool is_pub;
    uint64_t id;  // request_id of a PUB, sid of a DELIVER
    std::string topic, reply_to;
    bool confirm;
    std::string_view payload;  // into `body`
  };
  std::vector<Kept> kept;
  std::string rebuilt;
  protocol::BatchWriter writer(&rebuilt);
  for (const Entry& e : entries) {
    const ExactCopy h(e.header);
    protocol::PubView pub;
    protocol::DeliverView deliver;
    if (protocol::DecodePubFast(h.data(), h.size(), &pub)) {
      writer.AppendPub(pub.request_id, pub.topic, pub.reply_to, pub.confirm,
                       pub.headers, e.payload);
      kept.push_back({true, pub.request_id, std::string(pub.topic),
                      std::string(pub.reply_to), pub.confirm, e.payload});
    } else if (protocol::DecodeDeliverFast(h.data(), h.size(), &deliver)) {
      writer.AppendDeliver(deliver.sid, deliver.topic, deliver.reply_to,
                           deliver.headers, e.payload, deliver.delivery_id,
                           deliver.attempt, deliver.retained);
      kept.push_back({false, deliver.sid, std::string(deliver.topic),
                      std::string(deliver.reply_to), false, e.payload});
    }
  }
  const ExactCopy again(rebuilt);
  protocol::BatchReader back(again.data(), again.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    const Kept& k = kept[i];
    SIFT_EXPECT(back.Next(&header, &payload), bytes,
                "the body BatchWriter rebuilt ends at entry ", i + 1, " of ",
                kept.size(), ": ", Hex(rebuilt));
    const ExactCopy h(header);
    bool same = payload == k.payload;
    if (k.is_pub) {
      protocol::PubView pub;
      same = same && protocol::DecodePubFast(h.data(), h.size(), &pub) &&
             pub.request_id == k.id && pub.topic == k.topic &&
             pub.reply_to == k.reply_to && pub.confirm == k.confirm;
    } else {
      protocol::DeliverView deliver;
      same = same &&
             protocol::DecodeDeliverFast(h.data(), h.size(), &deliver) &&
             deliver.sid == k.id && deliver.topic == k.topic &&
             deliver.reply_to == k.reply_to;
    }
    SIFT_EXPECT(same, bytes, "entry ", i + 1,
                " of the body BatchWriter rebuilt reads back differently: ",
                Hex(rebuilt));
  }
  SIFT_EXPECT(!back.Next(&header, &payload) && !back.error(), bytes,
              "the body BatchWriter rebuilt has more than its ", kept.size(),
              " entries, or an error: ", Hex(rebuilt));
}

void CheckBatchHeader(uint32_t count) {
  char out[16];
  const size_t size = protocol::BatchHeaderSize(count);
  SIFT_EXPECT(size <= sizeof(out), std::string_view(), "BatchHeaderSize(",
              count, ") = ", size);
  const size_t written = protocol::EncodeBatchHeader(count, out);
  const std::string_view encoded(out, written);
  SIFT_EXPECT(written == size, encoded, "EncodeBatchHeader(", count, ") wrote ",
              written, " bytes, BatchHeaderSize said ", size);
  wire::Header canonical;
  canonical.mutable_batch()->set_count(count);
  SIFT_EXPECT(canonical.SerializeAsString() == encoded, encoded,
              "EncodeBatchHeader(", count, ") differs from protobuf's ",
              Hex(canonical.SerializeAsString()));
  SIFT_EXPECT(protocol::IsBatchHeader(encoded), encoded,
              "IsBatchHeader says no to EncodeBatchHeader(", count, ")");
}

}  // namespace sift::fuzz
