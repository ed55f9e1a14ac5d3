// Output formatting for the `sift` command: payloads as safe one-line text,
// sequence numbers in published messages, and the broker's stats.
//
// Thread-safety: free functions, no shared state.
#ifndef SIFT_CLIENTS_CLI_FORMAT_H_
#define SIFT_CLIENTS_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proto/sift.pb.h"

namespace sift::cli {

// `bytes` as one printable line: printable ASCII and well-formed UTF-8 (other
// than control characters) pass through; backslash becomes "\\", newline,
// carriage return and tab become "\n", "\r", "\t", and every other byte
// "\xHH" (lowercase hex).
std::string Escape(std::string_view bytes);

// `message` with every "{n}" replaced by the decimal `n`.
std::string ExpandSequence(std::string_view message, int64_t n);

// "1 message" / "3 messages".
std::string Messages(int64_t n);

// A readable multi-line report of a STATS_REPLY: server, traffic counters,
// drops by reason, busiest topics. Ends with a newline.
std::string FormatStats(const wire::StatsReply& stats);

// The STATS_REPLY as one line of JSON (protobuf's JSON mapping, keeping the
// .proto field names and printing zero counters), without a newline.
absl::StatusOr<std::string> StatsToJson(const wire::StatsReply& stats);

}  // namespace sift::cli

#endif  // SIFT_CLIENTS_CLI_FORMAT_H_
