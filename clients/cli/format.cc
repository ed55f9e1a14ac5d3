#include "clients/cli/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "broker/base/quoted_text.h"

namespace sift::cli {
namespace {

// Length of the well-formed, printable UTF-8 sequence (2 to 4 bytes) at the
// start of `s`, or 0 if there is none: bad lead or continuation bytes,
// overlong forms, surrogates, code points past U+10FFFF and the C1 control
// characters U+0080..U+009F all give 0, and are then escaped byte by byte.
size_t PrintableUtf8Length(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t len;
  uint32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    cp = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10FFFF) return 0;  // overlong, range
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;              // surrogate
  if (cp < 0xA0) return 0;                                 // C1 control
  return len;
}

// Escape, and OneLine (`backslash` false: a backslash stays as it is).
std::string EscapeBytes(std::string_view bytes, bool backslash) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\') {
      out += backslash ? "\\\\" : "\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (size_t len = PrintableUtf8Length(bytes.substr(i)); len > 0) {
      out.append(bytes.data() + i, len);
      i += len;
      continue;
    } else {
      absl::StrAppendFormat(&out, "\\x%02X", c);  // as the broker writes
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string Escape(std::string_view bytes) {
  return EscapeBytes(bytes, /*backslash=*/true);
}

std::string NameInError(std::string_view bytes) {
  if (bytes.empty()) return "\"\"";  // not "cannot add stream : ..."
  return absl::StrCat(Escape(bytes.substr(0, ShownBytes(bytes))),
                      CutNote(bytes));
}

std::string OneLine(std::string_view text) {
  return EscapeBytes(text, /*backslash=*/false);
}

std::string ExpandSequence(std::string_view message, int64_t n) {
  return absl::StrReplaceAll(std::string(message), {{"{n}", absl::StrCat(n)}});
}

std::string Messages(int64_t n) {
  return absl::StrCat(n, n == 1 ? " message" : " messages");
}

std::string FormatStats(const wire::StatsReply& stats) {
  std::string out;
  const auto row = [&out](std::string_view label, std::string_view value) {
    absl::StrAppendFormat(&out, "%-15s %s\n", std::string(label),
                          std::string(value));
  };
  absl::Duration uptime = absl::Milliseconds(stats.uptime_ms());
  if (uptime >= absl::Seconds(1))
    uptime = absl::Trunc(uptime, absl::Seconds(1));

  row("server", stats.server_version().empty()
                    ? "(unknown)"
                    : Escape(stats.server_version()));
  row("uptime", absl::FormatDuration(uptime));
  row("clients", absl::StrCat(stats.clients()));
  row("connections", absl::StrFormat("%d open, %d refused", stats.connections(),
                                     stats.connections_refused()));
  row("subscriptions", absl::StrCat(stats.subscriptions()));
  row("messages", absl::StrFormat("in %d, out %d", stats.messages_in(),
                                  stats.messages_out()));
  row("bytes",
      absl::StrFormat("in %d, out %d", stats.bytes_in(), stats.bytes_out()));
  row("errors sent", absl::StrCat(stats.errors_sent()));
  row("pending bytes", absl::StrCat(stats.pending_bytes()));
  row("streams", absl::StrCat(stats.streams()));

  uint64_t dropped = 0;
  size_t reason_width = 0;
  for (const wire::DropCount& drop : stats.drops()) {
    dropped += drop.count();
    reason_width = std::max(reason_width, Escape(drop.reason()).size());
  }
  row("drops", absl::StrCat(dropped));
  for (const wire::DropCount& drop : stats.drops()) {
    absl::StrAppendFormat(&out, "  %-*s  %d\n", static_cast<int>(reason_width),
                          Escape(drop.reason()), drop.count());
  }

  if (!stats.slow_clients().empty()) {
    row("slow clients", absl::StrCat(stats.slow_clients().size()));
    size_t id_width = 6;  // "CLIENT"
    for (const wire::ClientDrops& c : stats.slow_clients()) {
      id_width = std::max(id_width, Escape(c.client_id()).size());
    }
    absl::StrAppendFormat(&out, "  %-*s  %12s  %14s\n",
                          static_cast<int>(id_width), "CLIENT", "DROPPED",
                          "PENDING BYTES");
    for (const wire::ClientDrops& c : stats.slow_clients()) {
      absl::StrAppendFormat(&out, "  %-*s  %12d  %14d\n",
                            static_cast<int>(id_width), Escape(c.client_id()),
                            c.dropped(), c.pending_bytes());
    }
  }

  if (stats.retained() > 0 || stats.delayed() > 0) {
    row("held", absl::StrFormat("%d retained values (%d bytes), %d delayed "
                                "messages (%d bytes)",
                                stats.retained(), stats.retained_bytes(),
                                stats.delayed(), stats.delayed_bytes()));
  }
  if (stats.deliveries().consumers() > 0 ||
      stats.deliveries().delivered() > 0) {
    const wire::DeliveryCounts& d = stats.deliveries();
    row("acked delivery",
        absl::StrFormat("%d consumers, %d in flight, %d queued, %d delayed; "
                        "%d delivered (%d redelivered), %d acks, %d nacks, "
                        "%d expired, %d dead-lettered",
                        d.consumers(), d.in_flight(), d.queued(), d.delayed(),
                        d.delivered(), d.redeliveries(), d.acks(), d.nacks(),
                        d.expired(), d.dead_letters()));
  }

  if (!stats.plugins().empty()) {
    row("plugins", absl::StrCat(stats.plugins().size(), " rows"));
    size_t name_width = 6;   // "PLUGIN"
    size_t chain_width = 5;  // "CHAIN"
    for (const wire::PluginCount& p : stats.plugins()) {
      name_width = std::max(name_width, Escape(p.plugin()).size());
      chain_width = std::max(chain_width, Escape(p.chain()).size());
    }
    absl::StrAppendFormat(&out, "  %-*s  %-*s  %10s  %10s  %10s  %8s  %10s\n",
                          static_cast<int>(name_width), "PLUGIN",
                          static_cast<int>(chain_width), "CHAIN", "CALLS",
                          "PASSES", "DROPS", "ERRORS", "AVG NS");
    for (const wire::PluginCount& p : stats.plugins()) {
      absl::StrAppendFormat(
          &out, "  %-*s  %-*s  %10d  %10d  %10d  %8d  %10d\n",
          static_cast<int>(name_width), Escape(p.plugin()),
          static_cast<int>(chain_width), Escape(p.chain()), p.calls(),
          p.passes(), p.drops(), p.errors(),
          p.calls() == 0 ? 0 : p.time_ns() / p.calls());
    }
  }

  if (stats.topics().empty()) {
    row("topics", absl::StrCat(stats.topics_tracked(), " tracked"));
    return out;
  }
  // Rows such as "(other topics)" and "(inbox topics)" sum many topics and are not
  // counted in topics_tracked.
  row("topics", absl::StrFormat("%d rows, busiest first; %d topics tracked",
                                stats.topics().size(), stats.topics_tracked()));
  size_t topic_width = 5;  // "TOPIC"
  for (const wire::TopicCount& topic : stats.topics()) {
    topic_width = std::max(topic_width, Escape(topic.topic()).size());
  }
  absl::StrAppendFormat(&out, "  %-*s  %12s  %12s\n",
                        static_cast<int>(topic_width), "TOPIC", "IN", "OUT");
  for (const wire::TopicCount& topic : stats.topics()) {
    absl::StrAppendFormat(&out, "  %-*s  %12d  %12d\n",
                          static_cast<int>(topic_width), Escape(topic.topic()),
                          topic.messages_in(), topic.messages_out());
  }
  return out;
}

std::string MessageLine(std::string_view topic, uint64_t stream_seq,
                        std::string_view payload) {
  if (stream_seq == 0) {
    return absl::StrCat("[", Escape(topic), "] ", Escape(payload));
  }
  return absl::StrCat("[", Escape(topic), " #", stream_seq, "] ",
                      Escape(payload));
}

std::string StreamSeqsNote(const std::vector<PublishAck>& acks) {
  uint64_t low = 0, high = 0, duplicates = 0;
  absl::flat_hash_set<uint64_t> seqs;
  for (const PublishAck& ack : acks) {
    if (ack.stream_seq == 0) continue;
    if (low == 0 || ack.stream_seq < low) low = ack.stream_seq;
    high = std::max(high, ack.stream_seq);
    duplicates += ack.duplicate ? 1 : 0;
    seqs.insert(ack.stream_seq);
  }
  if (low == 0) return "";
  // low..high only when it holds no other seqs (another publisher's, say).
  std::string note =
      low == high ? absl::StrCat(" (stream seq ", low)
      : seqs.size() == high - low + 1
          ? absl::StrCat(" (stream seqs ", low, "..", high)
          : absl::StrCat(" (", seqs.size(), " stream seqs from ", low, " to ",
                         high, ", not contiguous");
  if (duplicates > 0) {
    absl::StrAppend(&note, ", ", duplicates,
                    duplicates == 1 ? " duplicate" : " duplicates");
  }
  return note + ")";
}

namespace {

std::string Limit(uint64_t n) {
  return n == 0 ? "unlimited" : absl::StrCat(n);
}

std::string DurationLimit(absl::Duration d, const char* zero) {
  return d == absl::ZeroDuration() ? zero : absl::FormatDuration(d);
}

std::string Subjects(const StreamConfig& config) {
  std::string out;
  for (const std::string& s : config.subjects) {
    if (!out.empty()) out += ", ";
    out += Escape(s);
  }
  return out;
}

}  // namespace

std::string FormatStreamInfo(const StreamInfo& info) {
  std::string out;
  const auto row = [&out](std::string_view label, std::string_view value) {
    absl::StrAppendFormat(&out, "%-15s %s\n", std::string(label),
                          std::string(value));
  };
  const StreamConfig& c = info.config;
  row("stream", Escape(c.name));
  row("subjects", Subjects(c));
  if (info.messages > 0) {
    row("messages", absl::StrFormat("%d (seq %d..%d)", info.messages,
                                    info.first_seq, info.last_seq));
  } else {
    row("messages", "0");
  }
  row("last seq", absl::StrFormat("%d written, %d durable", info.last_seq,
                                  info.durable_seq));
  row("bytes", absl::StrCat(info.bytes));
  row("since start", absl::StrFormat(
                         "%d appended, %d fsyncs%s", info.appended,
                         info.fsyncs,
                         info.fsyncs > 0
                             ? absl::StrFormat(" (%.1f records per fsync)",
                                               static_cast<double>(
                                                   info.appended) /
                                                   info.fsyncs)
                             : ""));
  row("max age", DurationLimit(c.max_age, "unlimited"));
  row("max bytes", Limit(c.max_bytes));
  row("max msgs", Limit(c.max_msgs));
  row("fsync", c.fsync.empty() ? "(broker default)" : Escape(c.fsync));
  row("dedup window", DurationLimit(c.dedup_window, "(broker default)"));
  row("dedup max ids", c.dedup_max_ids == 0 ? "(broker default)"
                                            : absl::StrCat(c.dedup_max_ids));
  // Ids the cap pushed out while still inside the window: dedup could
  // have failed for them (docs/delivery.md §3).
  row("ids forgotten",
      info.dedup_ids_forgotten_early == 0
          ? std::string("0 inside the dedup window since start")
          : absl::StrCat(info.dedup_ids_forgotten_early,
                         " inside the dedup window since start: a republish "
                         "of them is stored again; raise dedup max ids"));
  row("segment bytes", c.segment_max_bytes == 0
                           ? "(broker default)"
                           : absl::StrCat(c.segment_max_bytes));
  row("defined in", info.from_config ? "siftd's config file"
                                     : "the protocol (sift stream add)");
  row("consumers", absl::StrCat(info.consumers.size()));
  if (info.consumers.empty()) return out;
  size_t name_width = 4;  // "NAME"
  for (const ConsumerInfo& ci : info.consumers) {
    name_width = std::max(name_width, Escape(ci.name).size());
  }
  absl::StrAppendFormat(&out, "  %-*s  %12s  %12s  %9s  %7s  %s\n",
                        static_cast<int>(name_width), "NAME", "ACKED TO",
                        "DELIVERED TO", "IN FLIGHT", "WAITING", "ATTACHED");
  for (const ConsumerInfo& ci : info.consumers) {
    absl::StrAppendFormat(&out, "  %-*s  %12d  %12d  %9d  %7d  %s\n",
                          static_cast<int>(name_width), Escape(ci.name),
                          ci.ack_floor, ci.delivered_seq, ci.in_flight,
                          ci.waiting, ci.attached ? "yes" : "no");
  }
  return out;
}

std::string FormatStreamList(const std::vector<StreamInfo>& streams) {
  if (streams.empty()) return "no streams\n";
  size_t name_width = 4;  // "NAME"
  for (const StreamInfo& s : streams) {
    name_width = std::max(name_width, Escape(s.config.name).size());
  }
  std::string out = absl::StrFormat(
      "%-*s  %10s  %12s  %10s  %10s  %9s  %s\n", static_cast<int>(name_width),
      "NAME", "MESSAGES", "BYTES", "FIRST SEQ", "LAST SEQ", "CONSUMERS",
      "SUBJECTS");
  for (const StreamInfo& s : streams) {
    absl::StrAppendFormat(
        &out, "%-*s  %10d  %12d  %10d  %10d  %9d  %s\n",
        static_cast<int>(name_width), Escape(s.config.name), s.messages,
        s.bytes, s.first_seq, s.last_seq, s.consumers.size(),
        Subjects(s.config));
  }
  return out;
}

absl::StatusOr<std::string> StatsToJson(const wire::StatsReply& stats) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status =
      google::protobuf::util::MessageToJsonString(stats, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print stats as JSON: ", status.ToString()));
  }
  return json;
}

}  // namespace sift::cli
