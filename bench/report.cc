#include "bench/report.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sift::bench {
namespace {

std::string MiB(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

// Builds one JSON object, members in insertion order.
class JsonObject {
 public:
  JsonObject& Raw(const std::string& key, const std::string& json) {
    if (!body_.empty()) body_ += ", ";
    body_ += JsonString(key) + ": " + json;
    return *this;
  }
  JsonObject& Str(const std::string& key, const std::string& v) {
    return Raw(key, JsonString(v));
  }
  JsonObject& Num(const std::string& key, double v) {
    return Raw(key, JsonNumber(v));
  }
  JsonObject& Int(const std::string& key, uint64_t v) {
    return Raw(key, absl::StrCat(v));
  }
  JsonObject& SignedInt(const std::string& key, int64_t v) {
    return Raw(key, absl::StrCat(v));
  }
  JsonObject& Bool(const std::string& key, bool v) {
    return Raw(key, v ? "true" : "false");
  }
  std::string Done() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out + "]";
}

// The notes as a JSON array of strings, and as the text report's lines.
std::string NotesJson(const std::vector<std::string>& notes) {
  std::vector<std::string> items;
  for (const std::string& n : notes) items.push_back(JsonString(n));
  return JsonArray(items);
}

void AppendNotes(const std::vector<std::string>& notes, std::string* out) {
  for (const std::string& note : notes) {
    absl::StrAppend(out, "  note: ", note, "\n");
  }
}

std::string LatencyJson(const LatencySummary& l) {
  return JsonObject()
      .Int("count", l.count)
      .Num("p50", l.p50_us)
      .Num("p90", l.p90_us)
      .Num("p99", l.p99_us)
      .Num("p999", l.p999_us)
      .Num("max", l.max_us)
      .Num("mean", l.mean_us)
      .Done();
}

std::string WorkloadJson(const Options& o) {
  return JsonObject()
      .Int("size", o.size)
      .Int("count", o.count)
      .Int("pubs", static_cast<uint64_t>(o.pubs))
      .Int("subs", static_cast<uint64_t>(o.subs))
      .Int("pub_clients", static_cast<uint64_t>(
                              o.pub_clients > 0 ? o.pub_clients : o.pubs))
      .Str("topic", o.topic)
      .Str("pattern", o.SubscriberPattern())
      .Str("queue", o.queue)
      .Num("rate", o.rate)
      .Int("noise", static_cast<uint64_t>(o.noise))
      .Str("receive", o.use_next ? "next" : "callback")
      .Str("stream", o.stream_fsync)
      .Int("confirm_window", static_cast<uint64_t>(o.confirm_window))
      .Str("ack", o.ack_explicit ? "explicit" : "none")
      .Int("max_in_flight", o.max_in_flight)
      .Str("replay", ReplayName(o.replay))
      .Int("fetch_batch", o.fetch_batch)
      .Num("timeout_s", o.timeout_s)
      .Num("drain_s", o.drain_s)
      .Done();
}

std::string StreamJson(const StreamResult& s) {
  return JsonObject()
      .Bool("known", s.known)
      .Str("name", s.name)
      .Str("fsync", s.fsync)
      .Int("messages", s.messages)
      .Int("last_seq", s.last_seq)
      .Int("durable_seq", s.durable_seq)
      .Int("bytes", s.bytes)
      .Int("appended", s.appended)
      .Int("fsyncs", s.fsyncs)
      .Done();
}

std::string DiskJson(const DiskProbeResult& d) {
  return JsonObject()
      .Bool("measured", d.measured)
      .Str("dir", d.dir)
      .Int("bytes", d.bytes)
      .Int("fsyncs", d.fsyncs)
      .Num("seconds", d.seconds)
      .Num("fsyncs_per_s", d.fsyncs_per_s)
      .Num("p50_us", d.p50_us)
      .Num("p99_us", d.p99_us)
      .Done();
}

std::string LatencyText(const LatencySummary& l) {
  return absl::StrFormat(
      "p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us "
      "(mean %.1f us)",
      l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us);
}

}  // namespace

std::string Thousands(double v) {
  std::string digits = absl::StrCat(static_cast<uint64_t>(std::llround(v)));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string TextReport(const RunResult& r) {
  const Options& o = r.options;
  std::string out = absl::StrFormat(
      "sift-bench: %s, %d pub -> %d sub%s%s, %s B x %s per pub, topic %s",
      ModeName(o.mode), o.pubs, o.subs,
      o.queue_group() ? absl::StrCat(" (queue group ", o.queue, ")") : "",
      o.noise > 0 ? absl::StrCat(", noise ", o.noise) : "",
      Thousands(static_cast<double>(o.size)), Thousands(o.count), o.topic);
  if (o.pub_clients > 0 && o.pub_clients < o.pubs) {
    absl::StrAppend(&out, ", ", o.pub_clients, " publishing Client",
                    o.pub_clients == 1 ? "" : "s");
  }
  if (o.rate > 0) absl::StrAppend(&out, ", rate ", Thousands(o.rate), "/s");
  if (o.stream()) absl::StrAppend(&out, ", stream fsync ", o.stream_fsync);
  if (o.confirm_window > 0) {
    absl::StrAppend(&out, ", confirmed (window ", o.confirm_window,
                    " per pub)");
  }
  if (o.ack_explicit) absl::StrAppend(&out, ", explicit acks");
  if (o.replay != Replay::kNone) {
    absl::StrAppend(&out, ", replay ", ReplayName(o.replay));
  }
  absl::StrAppend(&out, "\n  server      ", r.server,
                  r.spawned ? " (spawned)" : "", "\n");
  absl::StrAppend(&out, absl::StrFormat("  setup       %.3f s before the "
                                        "first message (server, clients, "
                                        "subscriptions)\n",
                                        r.setup_seconds));
  absl::StrAppend(
      &out,
      absl::StrFormat("  delivered   %.4f (%s / %s; duplicates %s, out of "
                      "order %s, invalid %s)%s\n",
                      r.delivered, Thousands(r.received),
                      Thousands(r.expected), Thousands(r.duplicates),
                      Thousands(r.out_of_order), Thousands(r.invalid),
                      r.timed_out ? " TIMED OUT" : ""));
  absl::StrAppend(
      &out, absl::StrFormat(
                "  throughput  %s msgs/s, %.2f MB/s (all subscribers, "
                "first to last message: %.3f s)\n",
                Thousands(r.msgs_per_s), r.mb_per_s, r.seconds));
  absl::StrAppend(
      &out, absl::StrFormat("  per sub     mean %s msgs/s, min %s msgs/s\n",
                            Thousands(r.per_sub_msgs_per_s_mean),
                            Thousands(r.per_sub_msgs_per_s_min)));
  absl::StrAppend(
      &out,
      absl::StrFormat("  publish     %s sent, %s msgs/s, %s backpressure "
                      "retries\n",
                      Thousands(r.sent), Thousands(r.publish_msgs_per_s),
                      Thousands(r.publish_retries)));
  absl::StrAppend(&out, "  latency     ", LatencyText(r.latency), "\n");
  if (o.confirm_window > 0) {
    absl::StrAppend(&out, "  confirm     ", LatencyText(r.confirm_latency),
                    "\n");
  }
  if (o.replay != Replay::kNone) {
    absl::StrAppend(&out, absl::StrFormat("  fill        %.3f s before the "
                                          "replay\n",
                                          r.replay_fill_seconds));
  }
  if (r.stream.known) {
    absl::StrAppend(
        &out, absl::StrFormat("  stream      %s (fsync %s): %s messages, "
                              "last seq %s, durable seq %s, %s; %s appended "
                              "in %s fsyncs\n",
                              r.stream.name, r.stream.fsync,
                              Thousands(r.stream.messages),
                              Thousands(r.stream.last_seq),
                              Thousands(r.stream.durable_seq),
                              MiB(r.stream.bytes),
                              Thousands(r.stream.appended),
                              Thousands(r.stream.fsyncs)));
  }
  if (r.disk.measured) {
    absl::StrAppend(
        &out, absl::StrFormat("  disk        %s fsyncs/s (append %d B + "
                              "fdatasync, %.1f s: p50 %.1f us, p99 %.1f "
                              "us) in %s\n",
                              Thousands(r.disk.fsyncs_per_s),
                              static_cast<int>(r.disk.bytes), r.disk.seconds,
                              r.disk.p50_us, r.disk.p99_us, r.disk.dir));
  }
  if (r.server_usage.known) {
    absl::StrAppend(
        &out, absl::StrFormat(
                  "  server cpu  pid %d: %.2f CPU s, RSS %s (peak %s)\n",
                  r.server_usage.pid, r.server_usage.cpu_seconds,
                  MiB(r.server_usage.rss_bytes),
                  MiB(r.server_usage.peak_rss_bytes)));
  }
  absl::StrAppend(&out,
                  absl::StrFormat("  bench cpu   %.2f CPU s\n",
                                  r.bench_cpu_seconds));
  if (!r.server_counters.empty()) {
    absl::StrAppend(&out, "  broker      ");
    bool first = true;
    for (const auto& [name, value] : r.server_counters) {
      if (!first) absl::StrAppend(&out, ", ");
      first = false;
      absl::StrAppend(&out, name, " ", Thousands(value));
    }
    absl::StrAppend(&out, "\n");
  }
  if (r.subscribers.size() > 1) {
    for (const SubscriberResult& s : r.subscribers) {
      absl::StrAppend(
          &out,
          absl::StrFormat("  sub %-7d %s msgs, %s msgs/s, %.2f MB/s, p50 "
                          "%.1f us, p99 %.1f us, max %.1f us\n",
                          s.id, Thousands(s.received), Thousands(s.msgs_per_s),
                          s.mb_per_s, s.latency.p50_us, s.latency.p99_us,
                          s.latency.max_us));
    }
  }
  if (r.publishers.size() > 1) {
    for (const PublisherResult& p : r.publishers) {
      absl::StrAppend(&out,
                      absl::StrFormat("  pub %-7d %s sent, %s msgs/s, %s "
                                      "retries\n",
                                      p.id, Thousands(p.sent),
                                      Thousands(p.msgs_per_s),
                                      Thousands(p.retries)));
    }
  }
  AppendNotes(r.notes, &out);
  return out;
}

std::string JsonReport(const RunResult& r) {
  std::vector<std::string> subs, pubs;
  for (const SubscriberResult& s : r.subscribers) {
    subs.push_back(JsonObject()
                       .Int("id", static_cast<uint64_t>(s.id))
                       .Int("expected", s.expected)
                       .Int("received", s.received)
                       .Int("duplicates", s.duplicates)
                       .Int("out_of_order", s.out_of_order)
                       .Int("invalid", s.invalid)
                       .Num("seconds", s.seconds)
                       .Num("msgs_per_s", s.msgs_per_s)
                       .Num("mb_per_s", s.mb_per_s)
                       .Raw("latency_us", LatencyJson(s.latency))
                       .Done());
  }
  for (const PublisherResult& p : r.publishers) {
    pubs.push_back(JsonObject()
                       .Int("id", static_cast<uint64_t>(p.id))
                       .Int("sent", p.sent)
                       .Int("retries", p.retries)
                       .Num("seconds", p.seconds)
                       .Num("msgs_per_s", p.msgs_per_s)
                       .Str("error", p.error)
                       .Done());
  }
  JsonObject counters;
  for (const auto& [name, value] : r.server_counters) counters.Int(name, value);
  JsonObject server;
  server.Str("endpoint", r.server)
      .Bool("spawned", r.spawned)
      .Bool("usage_known", r.server_usage.known)
      .SignedInt("pid", r.server_usage.pid)
      .Num("cpu_s", r.server_usage.cpu_seconds)
      .Int("rss_bytes", r.server_usage.rss_bytes)
      .Int("peak_rss_bytes", r.server_usage.peak_rss_bytes)
      .Int("rss_ready_bytes", r.server_usage.rss_ready_bytes)
      .SignedInt("exit_code", r.server_exit_code)
      .Raw("counters", counters.Done());
  return JsonObject()
             .Str("kind", "messages")
             .Str("mode", ModeName(r.options.mode))
             .Raw("workload", WorkloadJson(r.options))
             .Int("expected", r.expected)
             .Int("sent", r.sent)
             .Int("publish_retries", r.publish_retries)
             .Int("received", r.received)
             .Int("duplicates", r.duplicates)
             .Int("out_of_order", r.out_of_order)
             .Int("invalid", r.invalid)
             .Num("delivered", r.delivered)
             .Bool("complete", r.complete)
             .Bool("timed_out", r.timed_out)
             .Num("seconds", r.seconds)
             .Num("msgs_per_s", r.msgs_per_s)
             .Num("mb_per_s", r.mb_per_s)
             .Num("per_sub_msgs_per_s_mean", r.per_sub_msgs_per_s_mean)
             .Num("per_sub_msgs_per_s_min", r.per_sub_msgs_per_s_min)
             .Num("publish_msgs_per_s", r.publish_msgs_per_s)
             .Raw("latency_us", LatencyJson(r.latency))
             .Raw("confirm_latency_us", LatencyJson(r.confirm_latency))
             .Num("replay_fill_s", r.replay_fill_seconds)
             .Num("setup_s", r.setup_seconds)
             .Raw("stream", StreamJson(r.stream))
             .Raw("disk", DiskJson(r.disk))
             .Raw("server", server.Done())
             .Num("bench_cpu_s", r.bench_cpu_seconds)
             .Raw("publishers", JsonArray(pubs))
             .Raw("subscribers", JsonArray(subs))
             .Raw("notes", NotesJson(r.notes))
             .Done() +
         "\n";
}

std::string TextReport(const MemoryResult& r) {
  std::string out = absl::StrFormat(
      "sift-bench: %s memory, %s subscriptions over %s clients\n"
      "  server      %s\n"
      "  rss         empty %s, with clients %s, with subscriptions %s\n"
      "  per sub     %.1f bytes beyond the empty server (%.1f beyond the "
      "connected clients)\n"
      "  setup       %.2f s (%s subscriptions/s), server %.2f CPU s\n",
      ModeName(r.options.mode), Thousands(r.subscriptions),
      Thousands(r.clients), r.server, MiB(r.rss_empty_bytes),
      MiB(r.rss_clients_bytes), MiB(r.rss_subs_bytes), r.bytes_per_sub,
      r.bytes_per_sub_excl_clients, r.setup_seconds, Thousands(r.subs_per_s),
      r.server_cpu_seconds);
  AppendNotes(r.notes, &out);
  return out;
}

std::string JsonReport(const MemoryResult& r) {
  return JsonObject()
             .Str("kind", "memory")
             .Str("mode", ModeName(r.options.mode))
             .Str("server", r.server)
             .Int("subscriptions", r.subscriptions)
             .Int("clients", static_cast<uint64_t>(r.clients))
             .Int("rss_empty_bytes", r.rss_empty_bytes)
             .Int("rss_clients_bytes", r.rss_clients_bytes)
             .Int("rss_subs_bytes", r.rss_subs_bytes)
             .Num("bytes_per_sub", r.bytes_per_sub)
             .Num("bytes_per_sub_excl_clients", r.bytes_per_sub_excl_clients)
             .Num("setup_s", r.setup_seconds)
             .Num("subs_per_s", r.subs_per_s)
             .Num("server_cpu_s", r.server_cpu_seconds)
             .SignedInt("server_exit_code", r.server_exit_code)
             .Raw("notes", NotesJson(r.notes))
             .Done() +
         "\n";
}

}  // namespace sift::bench
