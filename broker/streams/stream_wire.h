// Conversions between the wire's stream messages (proto/sift.proto:
// StreamConfig, StreamInfo, StreamStart) and broker/streams' types, so the
// server hands STREAM, FETCH and stream SUBs over without knowing their
// fields. Pure functions: any thread.
#ifndef SIFT_BROKER_STREAMS_STREAM_WIRE_H_
#define SIFT_BROKER_STREAMS_STREAM_WIRE_H_

#include "absl/status/status.h"
#include "broker/streams/stream_config.h"
#include "broker/streams/stream_manager.h"
#include "proto/sift.pb.h"

namespace sift::streams {

// STREAM_ADD's settings; unset dedup_window_ms, dedup_max_ids and
// segment_max_bytes keep their defaults. INVALID_STREAM (a WireError) for a
// bad fsync text; the rest is checked by StreamManager::Add.
absl::Status SettingsFromWire(const wire::StreamConfig& w,
                              StreamSettings* out);

void FillStreamInfo(const StreamView& view, wire::StreamInfo* out);

StartSpec StartSpecFromWire(const wire::StreamStart& w);

}  // namespace sift::streams

#endif  // SIFT_BROKER_STREAMS_STREAM_WIRE_H_
