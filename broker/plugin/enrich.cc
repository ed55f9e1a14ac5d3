#include "broker/plugin/enrich.h"

#include <charconv>
#include <cstdint>
#include <iterator>
#include <list>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/header_key.h"

namespace sift::plugin {
namespace {

constexpr int64_t kMaxMaxTopics = 10'000'000;
constexpr char kRfc3339Millis[] = "%Y-%m-%dT%H:%M:%E3SZ";
constexpr int kRfc3339Length = 24;  // "2023-11-14T22:13:20.123Z"

// Writes 2 (or 3, 4) decimal digits of `v` at `p`.
void Digits(char* p, int64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v /= 10) {
    p[i] = static_cast<char>('0' + v % 10);
  }
}

// Formats `t` as kRfc3339Millis does, into `out` (kRfc3339Length bytes), for
// years 0000 to 9999; returns false for other years. absl::FormatTime takes
// about 0.7 us, most of enrich's cost with time_format = rfc3339; this takes
// a few ns. Days to civil date is Howard Hinnant's civil_from_days
// (proleptic Gregorian, eras of 400 years).
bool FormatRfc3339Millis(absl::Time t, char* out) {
  const int64_t ms = absl::ToUnixMillis(t);
  int64_t days = ms / 86'400'000;
  int64_t ms_of_day = ms % 86'400'000;
  if (ms_of_day < 0) {  // floor, not truncation, before 1970
    ms_of_day += 86'400'000;
    --days;
  }
  const int64_t z = days + 719468;  // days since 0000-03-01
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;  // [0, 146096]
  const int64_t yoe =
      (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                       // [0, 11]
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;             // [1, 31]
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;              // [1, 12]
  const int64_t year = yoe + era * 400 + (month <= 2);
  if (year < 0 || year > 9999) return false;
  Digits(out, year, 4);
  out[4] = '-';
  Digits(out + 5, month, 2);
  out[7] = '-';
  Digits(out + 8, day, 2);
  out[10] = 'T';
  Digits(out + 11, ms_of_day / 3'600'000, 2);
  out[13] = ':';
  Digits(out + 14, ms_of_day / 60'000 % 60, 2);
  out[16] = ':';
  Digits(out + 17, ms_of_day / 1000 % 60, 2);
  out[19] = '.';
  Digits(out + 20, ms_of_day % 1000, 3);
  out[23] = 'Z';
  return true;
}

// Per-topic counters, the least recently used evicted when full. After
// warm-up (max_topics topics seen) a new topic reuses the evicted topic's
// node and string, so it allocates only when its name is longer.
class TopicSequences {
 public:
  explicit TopicSequences(size_t max_topics) : max_topics_(max_topics) {}

  // Counts one message of `topic` and returns its number (1 for the first).
  uint64_t Next(std::string_view topic) {
    auto it = index_.find(AV(topic));
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return ++it->second->seq;
    }
    if (lru_.size() >= max_topics_) {
      auto oldest = std::prev(lru_.end());
      index_.erase(AV(oldest->topic));
      oldest->topic.assign(topic.data(), topic.size());
      oldest->seq = 0;
      lru_.splice(lru_.begin(), lru_, oldest);
    } else {
      lru_.push_front(Node{std::string(topic), 0});
    }
    index_.emplace(AV(lru_.front().topic), lru_.begin());
    return ++lru_.front().seq;
  }

 private:
  struct Node {
    std::string topic;
    uint64_t seq;
  };

  const size_t max_topics_;
  // Most recently used first. A list so that nodes (and the strings the
  // index's keys view) stay put when they move.
  std::list<Node> lru_;
  absl::flat_hash_map<absl::string_view, std::list<Node>::iterator> index_;
};

struct EnrichOptions {
  bool received_at = true;
  std::string received_at_header = "sift-received-at";
  bool rfc3339 = false;
  bool seq = true;
  std::string seq_header = "sift-seq";
  int64_t max_topics = 100000;
};

class Enrich : public Transform {
 public:
  explicit Enrich(EnrichOptions options)
      : options_(std::move(options)),
        sequences_(static_cast<size_t>(options_.max_topics)) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    if (options_.received_at) {
      if (!options_.rfc3339) {
        message.SetHeader(options_.received_at_header,
                          Decimal(absl::ToUnixMillis(context.now)));
      } else if (FormatRfc3339Millis(context.now, buffer_)) {
        message.SetHeader(options_.received_at_header,
                          std::string_view(buffer_, kRfc3339Length));
      } else {  // a year outside 0000-9999
        message.SetHeader(
            options_.received_at_header,
            absl::FormatTime(kRfc3339Millis, context.now, absl::UTCTimeZone()));
      }
    }
    if (options_.seq) {
      message.SetHeader(options_.seq_header,
                        Decimal(sequences_.Next(message.topic())));
    }
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  // `v` in decimal, in buffer_ (valid until buffer_ is next written).
  template <typename T>
  std::string_view Decimal(T v) {
    auto [end, ec] = std::to_chars(buffer_, buffer_ + sizeof(buffer_), v);
    (void)ec;  // 24 bytes hold any 64-bit integer (20 digits and a sign)
    return std::string_view(buffer_, end - buffer_);
  }

  const EnrichOptions options_;  // constant after construction
  TopicSequences sequences_;
  char buffer_[kRfc3339Length];  // formatted header values
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transform>> EnrichFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s =
          config.CheckOnly({"received_at", "received_at_header", "time_format",
                            "seq", "seq_header", "max_topics"});
      !s.ok()) {
    return s;
  }
  EnrichOptions o;
  absl::StatusOr<bool> received_at = config.GetBool("received_at", true);
  if (!received_at.ok()) return received_at.status();
  o.received_at = *received_at;
  o.received_at_header =
      config.GetString("received_at_header", o.received_at_header);
  if (absl::Status s =
          ValidateHeaderKey(o.received_at_header, "received_at_header");
      !s.ok()) {
    return s;
  }
  const std::string format = config.GetString("time_format", "unix_ms");
  if (format == "rfc3339") {
    o.rfc3339 = true;
  } else if (format != "unix_ms") {
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"time_format\": \"", format, "\" is not unix_ms or rfc3339"));
  }

  absl::StatusOr<bool> seq = config.GetBool("seq", true);
  if (!seq.ok()) return seq.status();
  o.seq = *seq;
  o.seq_header = config.GetString("seq_header", o.seq_header);
  if (absl::Status s = ValidateHeaderKey(o.seq_header, "seq_header"); !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> max_topics = config.GetInt("max_topics", 100000);
  if (!max_topics.ok()) return max_topics.status();
  if (*max_topics < 1 || *max_topics > kMaxMaxTopics) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"max_topics\": ", *max_topics,
                     " is out of range (1 to ", kMaxMaxTopics, ")"));
  }
  o.max_topics = *max_topics;

  if (!o.received_at && !o.seq) {
    return absl::InvalidArgumentError(
        "settings \"received_at\" and \"seq\" are both false: enrich would "
        "add nothing");
  }
  if (o.received_at && o.seq && o.received_at_header == o.seq_header) {
    return absl::InvalidArgumentError(
        absl::StrCat("settings \"received_at_header\" and \"seq_header\" "
                     "name the same header \"",
                     o.seq_header, "\""));
  }
  return std::make_unique<Enrich>(std::move(o));
}

}  // namespace sift::plugin
