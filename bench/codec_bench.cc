// Benchmarks for the header codec (broker/protocol/codec.h): decoding a PUB
// header (the broker's per-message parse), the hand-written encoders of the
// hot commands (EncodePub on the client, EncodeDeliver on the broker) and, as
// the reference they must beat, protobuf's own SerializeToString/Parse.
// Run before changing the codec:
//
//   bazel run //bench:codec_bench -- --benchmark_min_time=0.2

#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "proto/sift.pb.h"

namespace sift::protocol {
namespace {

constexpr char kTopic[] = "orders.eu.created";
constexpr char kReplyTo[] = "_INBOX.c17.42";

// The wire bytes of a PUB header as a client sends it.
std::string PubBytes(bool with_reply_to) {
  const std::string_view reply_to = with_reply_to ? kReplyTo : "";
  std::string bytes(PubSize(0, kTopic, reply_to, false), '\0');
  EncodePub(0, kTopic, reply_to, false, {}, bytes.data());
  return bytes;
}

void BM_HeaderDecoderDecodePub(benchmark::State& state) {
  const std::string bytes = PubBytes(state.range(0) != 0);
  HeaderDecoder decoder;
  for (auto _ : state) {
    auto header = decoder.Decode(bytes.data(), bytes.size());
    benchmark::DoNotOptimize(header);
    if (!header.ok()) state.SkipWithError("decode failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes.size());
}
BENCHMARK(BM_HeaderDecoderDecodePub)->ArgName("reply_to")->Arg(0)->Arg(1);

// The wire bytes of an OK to a confirmed publish to a stream.
std::string OkBytes() {
  wire::Header ok;
  ok.set_request_id(123456);
  ok.mutable_ok()->set_stream_seq(987654);
  return ok.SerializeAsString();
}

// That OK read by HeaderDecoder (protobuf, arena).
void BM_HeaderDecoderDecodeOk(benchmark::State& state) {
  const std::string bytes = OkBytes();
  HeaderDecoder decoder;
  for (auto _ : state) {
    auto header = decoder.Decode(bytes.data(), bytes.size());
    benchmark::DoNotOptimize(header);
    if (!header.ok()) state.SkipWithError("decode failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HeaderDecoderDecodeOk);

// The same OK read by DecodeOkFast, as the C++ client does.
void BM_DecodeOkFast(benchmark::State& state) {
  const std::string bytes = OkBytes();
  for (auto _ : state) {
    OkView view;
    const bool decoded = DecodeOkFast(bytes.data(), bytes.size(), &view);
    benchmark::DoNotOptimize(view);
    if (!decoded) state.SkipWithError("decode failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOkFast);

// Reference: protobuf parsing into one reused Header (no arena).
void BM_ProtobufParsePub(benchmark::State& state) {
  const std::string bytes = PubBytes(state.range(0) != 0);
  wire::Header header;
  for (auto _ : state) {
    const bool ok = header.ParseFromArray(bytes.data(),
                                          static_cast<int>(bytes.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProtobufParsePub)->ArgName("reply_to")->Arg(0)->Arg(1);

void BM_EncodePub(benchmark::State& state) {
  char out[512];
  for (auto _ : state) {
    const size_t size = PubSize(0, kTopic, {}, false);
    benchmark::DoNotOptimize(size);
    const size_t n = EncodePub(0, kTopic, {}, false, {}, out);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePub);

// Reference: the same PUB header through protobuf into a reused string.
void BM_ProtobufSerializePub(benchmark::State& state) {
  wire::Header header;
  header.mutable_pub()->set_topic(kTopic);
  std::string out;
  for (auto _ : state) {
    header.SerializeToString(&out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProtobufSerializePub);

void BM_EncodeDeliver(benchmark::State& state) {
  char out[512];
  uint64_t sid = 1;
  for (auto _ : state) {
    const size_t size = DeliverSize(sid, kTopic, {});
    benchmark::DoNotOptimize(size);
    const size_t n = EncodeDeliver(sid, kTopic, {}, {}, out);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
    sid = sid * 3 + 1;  // vary the varint length a little
    if (sid > (uint64_t{1} << 40)) sid = 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeDeliver);

// Reference: the same DELIVER header through protobuf into a reused string.
void BM_ProtobufSerializeDeliver(benchmark::State& state) {
  wire::Header header;
  header.mutable_deliver()->set_topic(kTopic);
  uint64_t sid = 1;
  std::string out;
  for (auto _ : state) {
    header.mutable_deliver()->set_sid(sid);
    header.SerializeToString(&out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    sid = sid * 3 + 1;
    if (sid > (uint64_t{1} << 40)) sid = 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProtobufSerializeDeliver);

}  // namespace
}  // namespace sift::protocol
