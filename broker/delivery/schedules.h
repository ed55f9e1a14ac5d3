// Recurring schedules from siftd's config ([[schedules]], docs/schedules.md):
// a message (topic, payload, headers) the broker publishes itself, every N ms
// or at the minutes a cron expression names. Three parts:
//   - CronSpec, ParseCron, NextFireMs: 5-field cron expressions (Vixie cron's
//     syntax and day rule), evaluated in UTC;
//   - ParseScheduleSections: the [[schedules]] tables of the config file;
//   - ScheduleTimer: which schedules are due at a given time.
//
// Time is ms since the Unix epoch (UTC) as the caller reads it from the wall
// clock; nothing here reads a clock. Cron is minute-granular and in UTC only:
// there are no time zones and so no daylight-saving gaps or repeats.
//
// Thread-safety: the free functions are pure and thread-safe. ScheduleTimer
// is not thread-safe; it is owned by the routing thread (siftd's loop), which
// publishes what TakeDue hands back.
#ifndef SIFT_BROKER_DELIVERY_SCHEDULES_H_
#define SIFT_BROKER_DELIVERY_SCHEDULES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/protocol/headers.h"
#include "broker/topic/topic.h"

namespace sift::delivery {

// A parsed cron expression: the set of values of each field, as bits.
// Field order and ranges as in crontab(5):
//   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 (or JAN-DEC),
//   day-of-week 0-7 (0 and 7 are Sunday; or SUN-SAT).
// Day rule (Vixie cron): when both day-of-month and day-of-week are
// restricted (their text does not start with '*'), a day matches if EITHER
// matches; otherwise it must match both (an unrestricted field matches every
// day, so in effect only the restricted one counts).
struct CronSpec {
  uint64_t minutes = 0;    // bit m: minute m
  uint32_t hours = 0;      // bit h: hour h
  uint32_t days = 0;       // bit d: day of month d (bit 0 unused)
  uint16_t months = 0;     // bit m: month m (bit 0 unused)
  uint8_t weekdays = 0;    // bit w: day of week w, 0 = Sunday (7 folded into 0)
  bool days_star = false;  // day-of-month field starts with '*'
  bool weekdays_star = false;  // day-of-week field starts with '*'
  std::string text;            // the expression as written, for logs

  bool operator==(const CronSpec& o) const {
    return minutes == o.minutes && hours == o.hours && days == o.days &&
           months == o.months && weekdays == o.weekdays &&
           days_star == o.days_star && weekdays_star == o.weekdays_star;
  }
};

// Parses a cron expression: 5 fields separated by spaces or tabs, each a
// comma-separated list of items; an item is `*`, a value `a`, a range `a-b`
// (a <= b), each optionally with a step `/n` (n >= 1); `a/n` means `a-max/n`.
// Month and day-of-week values may be names (JAN-DEC, SUN-SAT, any case).
// The shorthands @yearly (@annually), @monthly, @weekly, @daily (@midnight)
// and @hourly are accepted.
// Errors: InvalidArgument naming the field and the bad token (e.g.
//   cron "61 * * * *": minute field: "61" is out of range 0-59),
// and for an expression that matches no minute in any year (0 0 30 2 *).
absl::StatusOr<CronSpec> ParseCron(std::string_view text);

// The first whole minute (as unix ms) strictly after `after_unix_ms` that
// `spec` matches, in UTC. The search walks day by day (skipping months that
// do not match) for at most one 400-year Gregorian cycle, after which the
// calendar repeats; so it returns kCronNever only for a spec that never fires
// (which ParseCron refuses) or for `after_unix_ms` > INT64_MAX / 4 (70 million
// years on). A daily spec costs well under a microsecond; one that never fires
// at most about 1 ms.
inline constexpr int64_t kCronNever = -1;
int64_t NextFireMs(const CronSpec& spec, int64_t after_unix_ms);

// One [[schedules]] entry of the config.
struct Schedule {
  std::string name;     // unique among the schedules; [A-Za-z0-9_-]{1,64}
  std::string topic;    // a literal topic, not under "$sift."
  std::string payload;  // may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // in file order
  int64_t interval_ms = 0;  // every_ms; 0 for a cron schedule
  CronSpec cron;            // meaningful when interval_ms == 0
};

// Compares every field; a cron schedule's by its CronSpec (the fields'
// values, not the text).
bool operator==(const Schedule& a, const Schedule& b);
inline bool operator!=(const Schedule& a, const Schedule& b) {
  return !(a == b);
}

// Shortest every_ms accepted.
inline constexpr int64_t kMinScheduleIntervalMs = 100;

// Bounds a schedule's message must respect: those siftd applies to a PUB
// (pass the config's max_topic_*, max_headers*, max_payload_bytes).
struct ScheduleLimits {
  topic::Limits topic;
  protocol::HeaderLimits headers;
  uint64_t max_payload_bytes = 1 << 20;
};

// Reads the [[schedules]] tables of siftd's TOML config (other keys are
// ignored: broker/config reads them). Keys of a table: name, topic, payload
// (default ""), headers (an inline table of string values; keys are header
// keys, protocol/headers.h), and exactly one of every_ms (>= 100) or cron.
// Errors: InvalidArgument listing every problem, one per line, each as
// "<source_name>:<line>: ..." naming the key (unknown keys are refused, and
// so is a name used twice).
absl::StatusOr<std::vector<Schedule>> ParseScheduleSections(
    std::string_view toml_text, std::string_view source_name,
    const ScheduleLimits& limits = ScheduleLimits());

// `schedules` as [[schedules]] tables (a cron schedule with its expression
// as written; headers in order, as a [schedules.headers] table). For siftd
// --print-config: ParseScheduleSections of the result gives `schedules`
// back. The tables go after a file's top-level keys.
std::string ScheduleSectionsToToml(const std::vector<Schedule>& schedules);

// ScheduleTimer says which schedules are due. An interval schedule fires at
// start + k * interval_ms (start = the time given to the constructor, so the
// first tick is one interval after it); a cron schedule fires at each minute
// its spec matches.
//
// Missed ticks are skipped, not replayed: when TakeDue is called late (the
// loop was busy, the process was stopped, the clock jumped ahead), a schedule
// whose due time has passed fires once, and its next due time is its first
// tick after `now` (an interval keeps its phase). collapsed() counts such
// fires.
//
// If the wall clock steps back, an interval schedule whose next tick lies
// more than one interval ahead is brought back to its first tick after
// `now`, keeping its phase. A cron schedule keeps its next minute (no minute
// fires twice) unless the clock stepped back by more than
// kCronClockStepBackMs, when it recomputes from `now` (the old clock was
// wrong; follow the new one).
class ScheduleTimer {
 public:
  static constexpr int64_t kCronClockStepBackMs = 3600 * 1000;

  // REQUIRES: every schedule is valid (as ParseScheduleSections returns).
  ScheduleTimer(std::vector<Schedule> schedules, int64_t now_unix_ms);
  ScheduleTimer(const ScheduleTimer&) = delete;
  ScheduleTimer& operator=(const ScheduleTimer&) = delete;

  // When the next schedule is due (unix ms), or INT64_MAX when none is.
  int64_t NextDue() const { return next_due_; }

  // Appends to *out each schedule due at `now_unix_ms` (due time <= now),
  // earliest due first, ties in config order, each at most once per call;
  // then moves each to its next due time. The pointers stay valid for the
  // timer's life.
  void TakeDue(int64_t now_unix_ms, std::vector<const Schedule*>* out);

  const std::vector<Schedule>& schedules() const { return schedules_; }
  // When schedules()[i] is next due (unix ms; INT64_MAX for none).
  int64_t next_due(size_t i) const { return next_[i]; }

  // Fires handed out, and fires that stood for more than one due tick.
  uint64_t fired() const { return fired_; }
  uint64_t collapsed() const { return collapsed_; }

 private:
  // The first tick of schedules_[i] strictly after `t`.
  int64_t NextAfter(size_t i, int64_t t) const;
  void ComputeNextDue();

  const std::vector<Schedule> schedules_;
  const int64_t start_;  // the phase of interval schedules
  // By schedule index: when it is next due; INT64_MAX if it never is.
  std::vector<int64_t> next_;
  int64_t next_due_ = INT64_MAX;
  int64_t last_now_;
  uint64_t fired_ = 0;
  uint64_t collapsed_ = 0;
  std::vector<size_t> due_;  // scratch for TakeDue, reused
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_SCHEDULES_H_
