#include "clients/cpp/stream_wire.h"

#include <algorithm>
#include <string>

namespace sift::internal {
namespace {

uint64_t ToMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  // A positive duration under 1 ms is not "unlimited"/"default": round up.
  return static_cast<uint64_t>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

}  // namespace

void ToWire(const StreamStart& start, wire::StreamStart* out) {
  out->set_stream(start.stream);
  out->set_consumer(start.consumer);
  out->set_deliver(static_cast<wire::DeliverPolicy>(start.deliver));
  if (start.deliver == DeliverPolicy::kFromSeq) {
    out->set_start_seq(start.start_seq);
  }
  if (start.deliver == DeliverPolicy::kFromTime) {
    out->set_start_time_ms(static_cast<uint64_t>(
        std::max<int64_t>(0, absl::ToUnixMillis(start.start_time))));
  }
}

StreamStart FromWire(const wire::StreamStart& start) {
  StreamStart out;
  out.stream = start.stream();
  out.consumer = start.consumer();
  switch (start.deliver()) {
    case wire::DELIVER_ALL:
      out.deliver = DeliverPolicy::kAll;
      break;
    case wire::DELIVER_FROM_SEQ:
      out.deliver = DeliverPolicy::kFromSeq;
      break;
    case wire::DELIVER_FROM_TIME:
      out.deliver = DeliverPolicy::kFromTime;
      break;
    default:
      out.deliver = DeliverPolicy::kNew;
      break;
  }
  out.start_seq = start.start_seq();
  out.start_time = absl::FromUnixMillis(
      static_cast<int64_t>(start.start_time_ms()));
  return out;
}

void ToWire(const StreamConfig& config, wire::StreamConfig* out) {
  out->set_name(config.name);
  for (const std::string& s : config.subjects) out->add_subjects(s);
  out->set_max_age_ms(ToMs(config.max_age));
  out->set_max_bytes(config.max_bytes);
  out->set_max_msgs(config.max_msgs);
  out->set_fsync(config.fsync);
  out->set_dedup_window_ms(ToMs(config.dedup_window));
  out->set_dedup_max_ids(config.dedup_max_ids);
  out->set_segment_max_bytes(config.segment_max_bytes);
}

StreamConfig FromWire(const wire::StreamConfig& config) {
  StreamConfig out;
  out.name = config.name();
  out.subjects.assign(config.subjects().begin(), config.subjects().end());
  out.max_age = absl::Milliseconds(config.max_age_ms());
  out.max_bytes = config.max_bytes();
  out.max_msgs = config.max_msgs();
  out.fsync = config.fsync();
  out.dedup_window = absl::Milliseconds(config.dedup_window_ms());
  out.dedup_max_ids = config.dedup_max_ids();
  out.segment_max_bytes = config.segment_max_bytes();
  return out;
}

StreamInfo FromWire(const wire::StreamInfo& info) {
  StreamInfo out;
  out.config = FromWire(info.config());
  out.first_seq = info.first_seq();
  out.last_seq = info.last_seq();
  out.durable_seq = info.durable_seq();
  out.messages = info.messages();
  out.bytes = info.bytes();
  out.appended = info.appended();
  out.fsyncs = info.fsyncs();
  out.dedup_ids_forgotten_early = info.dedup_ids_forgotten_early();
  out.from_config = info.from_config();
  out.consumers.reserve(info.consumers_size());
  for (const wire::ConsumerInfo& c : info.consumers()) {
    ConsumerInfo ci;
    ci.name = c.name();
    ci.ack_floor = c.ack_floor();
    ci.delivered_seq = c.delivered_seq();
    ci.in_flight = c.in_flight();
    ci.waiting = c.waiting();
    ci.attached = c.attached();
    out.consumers.push_back(std::move(ci));
  }
  return out;
}

wire::Header StreamRequestHeader(uint64_t request_id, wire::StreamOp op,
                                 std::string_view name,
                                 std::string_view consumer,
                                 const StreamConfig* config) {
  wire::Header h;
  h.set_request_id(request_id);
  wire::StreamRequest* req = h.mutable_stream();
  req->set_op(op);
  if (config != nullptr) ToWire(*config, req->mutable_config());
  req->mutable_config()->set_name(std::string(name));
  req->set_consumer(std::string(consumer));
  return h;
}

}  // namespace sift::internal
