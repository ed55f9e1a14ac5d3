// Output formatting for the `sift` command: payloads as safe one-line text,
// sequence numbers in published messages, and the broker's stats.
//
// Thread-safety: free functions, no shared state.
#ifndef SIFT_CLIENTS_CLI_FORMAT_H_
#define SIFT_CLIENTS_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cpp/streams.h"
#include "proto/sift.pb.h"

namespace sift::cli {

// `bytes` as one printable line: printable ASCII and well-formed UTF-8 (other
// than control characters) pass through; backslash becomes "\\", newline,
// carriage return and tab become "\n", "\r", "\t", and every other byte
// "\xHH" (uppercase hex, as the broker writes it).
std::string Escape(std::string_view bytes);
// A name the user gave, for an error message: Escape of the bytes the
// broker would show of it (sift::ShownBytes, broker/base/quoted_text.h:
// at most 80, cut at a UTF-8 character's start), then "... (N bytes)" if
// it was longer, as the broker and the Python client bound what they echo.
// An empty name is shown as "" (two double quotes).
std::string NameInError(std::string_view bytes);

// Text from elsewhere (a broker's or the client library's reason) for one
// line of sift's output: as Escape, but a backslash stays as it is, since
// such text often holds escapes already (`invalid topic "a\x01b"`), which
// Escape would double. Names sift shows itself go through Escape.
std::string OneLine(std::string_view text);

// `message` with every "{n}" replaced by the decimal `n`.
std::string ExpandSequence(std::string_view message, int64_t n);

// "1 message" / "3 messages".
std::string Messages(int64_t n);

// One received message as sub and fetch print it: "[TOPIC] PAYLOAD", or
// "[TOPIC #SEQ] PAYLOAD" for a message from a stream (stream_seq > 0);
// topic and payload escaped.
std::string MessageLine(std::string_view topic, uint64_t stream_seq,
                        std::string_view payload);

// What confirmed publishes were told by streams, for pub's summary line:
// "" if no stream stored them, else " (stream seq 7)", " (stream seqs
// 7..9)" (lowest..highest), with ", 1 duplicate" / ", N duplicates" added
// when some were duplicates of earlier message ids.
std::string StreamSeqsNote(const std::vector<PublishAck>& acks);

// A stream as `sift stream info` prints it: settings, counts, durable
// consumers. Ends with a newline.
std::string FormatStreamInfo(const StreamInfo& info);

// Streams as `sift stream ls` prints them: a header and one row each, or
// "no streams". Ends with a newline.
std::string FormatStreamList(const std::vector<StreamInfo>& streams);

// A readable multi-line report of a STATS_REPLY: server, traffic counters,
// drops by reason, busiest topics. Ends with a newline.
std::string FormatStats(const wire::StatsReply& stats);

// The STATS_REPLY as one line of JSON (protobuf's JSON mapping, keeping the
// .proto field names and printing zero counters), without a newline.
absl::StatusOr<std::string> StatsToJson(const wire::StatsReply& stats);

}  // namespace sift::cli

#endif  // SIFT_CLIENTS_CLI_FORMAT_H_
