// Conversions between the client's stream structs (streams.h) and their wire
// messages (proto/sift.proto). Private to //clients/cpp:client.
//
// Thread-safety: free functions, no shared state.
#ifndef SIFT_CLIENTS_CPP_STREAM_WIRE_H_
#define SIFT_CLIENTS_CPP_STREAM_WIRE_H_

#include <cstdint>
#include <string_view>

#include "clients/cpp/streams.h"
#include "proto/sift.pb.h"

namespace sift::internal {

void ToWire(const StreamStart& start, wire::StreamStart* out);
void ToWire(const StreamConfig& config, wire::StreamConfig* out);
StreamStart FromWire(const wire::StreamStart& start);
StreamConfig FromWire(const wire::StreamConfig& config);
StreamInfo FromWire(const wire::StreamInfo& info);

// A STREAM request: op on stream `name` (and durable consumer `consumer`,
// for CONSUMER_DELETE). `config` is used for STREAM_ADD only.
wire::Header StreamRequestHeader(uint64_t request_id, wire::StreamOp op,
                                 std::string_view name,
                                 std::string_view consumer = {},
                                 const StreamConfig* config = nullptr);

}  // namespace sift::internal

#endif  // SIFT_CLIENTS_CPP_STREAM_WIRE_H_
