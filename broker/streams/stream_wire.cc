#include "broker/streams/stream_wire.h"

#include <algorithm>
#include <string>

#include "broker/protocol/codec.h"

namespace sift::streams {

absl::Status SettingsFromWire(const wire::StreamConfig& w,
                              StreamSettings* out) {
  out->name = w.name();
  out->subjects.assign(w.subjects().begin(), w.subjects().end());
  out->max_age_ms = w.max_age_ms();
  out->max_bytes = w.max_bytes();
  out->max_msgs = w.max_msgs();
  if (w.dedup_window_ms() != 0) out->dedup_window_ms = w.dedup_window_ms();
  if (w.dedup_max_ids() != 0) out->dedup_max_ids = w.dedup_max_ids();
  out->segment_max_bytes = w.segment_max_bytes() != 0
                               ? w.segment_max_bytes()
                               : DefaultSegmentBytes(w.max_bytes());
  absl::Status s = ParseFsync(w.fsync(), out);
  if (!s.ok()) return protocol::WireError(wire::INVALID_STREAM, s.message());
  return absl::OkStatus();
}

void FillStreamInfo(const StreamView& v, wire::StreamInfo* out) {
  wire::StreamConfig* c = out->mutable_config();
  c->set_name(v.settings.name);
  for (const std::string& subject : v.settings.subjects) {
    c->add_subjects(subject);
  }
  c->set_max_age_ms(v.settings.max_age_ms);
  c->set_max_bytes(v.settings.max_bytes);
  c->set_max_msgs(v.settings.max_msgs);
  c->set_fsync(FsyncText(v.settings));
  c->set_dedup_window_ms(v.settings.dedup_window_ms);
  c->set_dedup_max_ids(v.settings.dedup_max_ids);
  c->set_segment_max_bytes(v.settings.segment_max_bytes);
  out->set_first_seq(v.first_seq);
  out->set_last_seq(v.last_seq);
  out->set_durable_seq(v.durable_seq);
  out->set_messages(v.messages);
  out->set_bytes(v.bytes);
  out->set_appended(v.appended);
  out->set_fsyncs(v.fsyncs);
  out->set_dedup_ids_forgotten_early(v.dedup_ids_forgotten_early);
  out->set_from_config(v.from_config);
  for (const ConsumerView& cv : v.consumers) {
    wire::ConsumerInfo* ci = out->add_consumers();
    ci->set_name(cv.name);
    ci->set_ack_floor(cv.ack_floor);
    ci->set_delivered_seq(cv.delivered_seq);
    ci->set_in_flight(cv.in_flight);
    ci->set_waiting(cv.waiting);
    ci->set_attached(cv.attached);
  }
}

StartSpec StartSpecFromWire(const wire::StreamStart& w) {
  StartSpec spec;
  spec.stream = w.stream();
  spec.consumer = w.consumer();
  spec.policy = static_cast<DeliverPolicy>(w.deliver());
  spec.start_seq = w.start_seq();
  spec.start_time_ms = static_cast<int64_t>(
      std::min<uint64_t>(w.start_time_ms(), uint64_t{1} << 62));
  return spec;
}

}  // namespace sift::streams
