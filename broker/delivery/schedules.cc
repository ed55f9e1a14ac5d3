#include "broker/delivery/schedules.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"
#include "broker/base/toml_text.h"
#include "toml++/toml.h"

namespace sift::delivery {
namespace {

// ---- Calendar (proleptic Gregorian, UTC) ----

constexpr int64_t kMsPerMinute = 60 * 1000;
constexpr int64_t kMinutesPerDay = 24 * 60;
// Days in 400 Gregorian years, a whole number of weeks: dates and weekdays
// repeat with this period.
constexpr int64_t kDaysPer400Years = 146097;

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

struct Date {
  int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};

// Days since 1970-01-01 -> date (Howard Hinnant's civil_from_days).
Date DateFromDays(int64_t z) {
  z += 719468;
  const int64_t era = FloorDiv(z, kDaysPer400Years);
  const int64_t doe = z - era * kDaysPer400Years;  // 0..146096
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // 0..365
  const int64_t mp = (5 * doy + 2) / 153;                       // 0..11
  Date d;
  d.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  d.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  d.year = yoe + era * 400 + (d.month <= 2 ? 1 : 0);
  return d;
}

// 0 = Sunday; 1970-01-01 was a Thursday.
int WeekdayFromDays(int64_t z) {
  const int64_t w = (z + 4) % 7;
  return static_cast<int>(w < 0 ? w + 7 : w);
}

bool IsLeap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeap(year) ? 29 : kDays[month - 1];
}

// The lowest set bit of `bits` at or above `from`, or 64.
int FirstBitFrom(uint64_t bits, int from) {
  const uint64_t rest = bits & (~uint64_t{0} << from);
  return rest == 0 ? 64 : __builtin_ctzll(rest);
}

bool DayMatches(const CronSpec& spec, const Date& date, int weekday) {
  const bool dom = (spec.days >> date.day) & 1;
  const bool dow = (spec.weekdays >> weekday) & 1;
  // Vixie cron: an OR only when both fields are restricted.
  return spec.days_star || spec.weekdays_star ? dom && dow : dom || dow;
}

// ---- Cron parsing ----

struct CronField {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // 3-letter names for lo.. (or null)
  int name_count;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR",
                                       "MAY", "JUN", "JUL", "AUG",
                                       "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kWeekdayNames[] = {"SUN", "MON", "TUE", "WED",
                                         "THU", "FRI", "SAT"};
constexpr CronField kFields[5] = {
    {"minute", 0, 59, nullptr, 0},           {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},     {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kWeekdayNames, 7},
};

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int ToInt(std::string_view digits) {
  int v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  return v;
}

// Parses one value of `field` (a number or, where the field has them, a
// name) into *out; on failure sets *problem.
// `item` is the list item holding `token`, for the message.
bool ParseValue(const CronField& field, std::string_view token,
                std::string_view item, int* out, std::string* problem) {
  const std::string what =
      token == item ? absl::StrCat("\"", AV(token), "\"")
                    : absl::StrCat("\"", AV(token), "\" in \"", AV(item), "\"");
  if (AllDigits(token)) {
    *out = ToInt(token);
    if (*out < field.lo || *out > field.hi) {
      *problem =
          absl::StrCat(what, " is out of range ", field.lo, "-", field.hi);
      return false;
    }
    return true;
  }
  for (int i = 0; i < field.name_count; ++i) {
    if (absl::EqualsIgnoreCase(AV(token), field.names[i])) {
      *out = field.lo + i;
      return true;
    }
  }
  *problem = field.names != nullptr
                 ? absl::StrCat(what, " is not a number (", field.lo, "-",
                                field.hi, ") or a name (", field.names[0], "-",
                                field.names[field.name_count - 1], ")")
                 : absl::StrCat(what, " is not a number (", field.lo, "-",
                                field.hi, ")");
  return false;
}

// Parses the list `text` of `field` into *bits (bit v for value v).
absl::Status ParseField(const CronField& field, std::string_view text,
                        uint64_t* bits) {
  auto fail = [&](const std::string& problem) {
    return absl::InvalidArgumentError(
        absl::StrCat(field.name, " field: ", problem));
  };
  *bits = 0;
  for (absl::string_view item_view : absl::StrSplit(AV(text), ',')) {
    const std::string_view item(item_view.data(), item_view.size());
    if (item.empty()) {
      return fail(absl::StrCat("\"", AV(text), "\" has an empty list item"));
    }
    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      if (!AllDigits(step_text) || ToInt(step_text) == 0) {
        return fail(absl::StrCat("\"", AV(item), "\" has step \"",
                                 AV(step_text),
                                 "\", which is not a whole number >= 1"));
      }
      step = ToInt(step_text);
      has_step = true;
    }
    int lo = field.lo;
    int hi = field.hi;
    std::string problem;
    if (range != "*") {
      const size_t dash = range.find('-');
      if (!ParseValue(field, range.substr(0, dash), item, &lo, &problem)) {
        return fail(problem);
      }
      if (dash != std::string_view::npos) {
        if (!ParseValue(field, range.substr(dash + 1), item, &hi, &problem)) {
          return fail(problem);
        }
        if (lo > hi) {
          return fail(absl::StrCat("\"", AV(item), "\" is a range from ", lo,
                                   " down to ", hi, " (write it low-high)"));
        }
      } else if (!has_step) {
        hi = lo;  // a single value; `a/n` runs from a to the field's end
      }
    }
    for (int v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
  }
  return absl::OkStatus();
}

std::string_view Shorthand(std::string_view text) {
  static constexpr std::pair<std::string_view, std::string_view> kShort[] = {
      {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
      {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  for (const auto& [name, expansion] : kShort) {
    if (absl::EqualsIgnoreCase(AV(text), AV(name))) return expansion;
  }
  return {};
}

// ---- [[schedules]] ----

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

constexpr std::string_view kReserved = "$sift.";
// Longest every_ms: 366 days (longer periods are a cron's business), which
// also keeps start + k * interval far from overflowing.
constexpr int64_t kMaxScheduleIntervalMs = int64_t{366} * 24 * 3600 * 1000;

absl::StatusOr<Schedule> FromTable(const toml::table& table,
                                   std::string_view source, uint32_t line,
                                   const ScheduleLimits& limits) {
  std::vector<std::string> problems;
  auto at = [&](const toml::node& node) {
    return absl::StrCat(AV(source), ":", node.source().begin.line, ": ");
  };
  for (auto&& [key, node] : table) {
    static constexpr std::string_view kKnown[] = {
        "name", "topic", "payload", "headers", "every_ms", "cron"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key.str()) ==
        std::end(kKnown)) {
      problems.push_back(absl::StrCat(
          AV(source), ":", key.source().begin.line,
          ": unknown schedule setting \"", AV(key.str()),
          "\" (known: name, topic, payload, headers, every_ms, cron)"));
    }
  }
  Schedule s;
  // What the schedule is called in messages, once its name is known.
  std::string who = "schedule";

  if (const toml::node* n = table.get("name")) {
    std::optional<std::string> name = n->value<std::string>();
    if (!name) {
      problems.push_back(at(*n) + "schedule \"name\" must be a string");
    } else if (name->empty() || name->size() > 64 ||
               !std::all_of(name->begin(), name->end(), NameChar)) {
      problems.push_back(at(*n) +
                         absl::StrCat("schedule name \"", *name,
                                      "\" must be 1 to 64 letters, digits, "
                                      "'_' or '-'"));
    } else {
      s.name = *name;
      who = absl::StrCat("schedule \"", s.name, "\"");
    }
  } else {
    problems.push_back(
        absl::StrCat(AV(source), ":", line, ": a schedule needs a \"name\""));
  }

  if (const toml::node* n = table.get("topic")) {
    std::optional<std::string> topic = n->value<std::string>();
    if (!topic) {
      problems.push_back(at(*n) + who + " \"topic\" must be a string");
    } else if (absl::Status st = topic::ValidateTopic(*topic, limits.topic);
               !st.ok()) {
      problems.push_back(
          at(*n) + absl::StrCat(who, " topic \"", *topic,
                                "\" is not a literal topic: ", st.message()));
    } else if (topic->compare(0, kReserved.size(), kReserved) == 0) {
      problems.push_back(at(*n) +
                         absl::StrCat(who, " topic \"", *topic,
                                      "\": topics under \"$sift.\" are the "
                                      "broker's"));
    } else {
      s.topic = *topic;
    }
  } else {
    problems.push_back(
        absl::StrCat(AV(source), ":", line, ": ", who, " needs a \"topic\""));
  }

  if (const toml::node* n = table.get("payload")) {
    std::optional<std::string> payload = n->value<std::string>();
    if (!payload) {
      problems.push_back(at(*n) + who + " \"payload\" must be a string");
    } else if (payload->size() > limits.max_payload_bytes) {
      problems.push_back(at(*n) +
                         absl::StrCat(who, " payload is ", payload->size(),
                                      " bytes, over max_payload_bytes (",
                                      limits.max_payload_bytes, ")"));
    } else {
      s.payload = *std::move(payload);
    }
  }

  if (const toml::node* n = table.get("headers")) {
    if (const toml::table* headers = n->as_table()) {
      // toml::table is ordered by key; keep the order of the file.
      std::vector<
          std::pair<toml::source_position, std::pair<std::string, std::string>>>
          in_file;
      uint64_t bytes = 0;
      for (auto&& [key, value] : *headers) {
        std::optional<std::string> v = value.value<std::string>();
        if (!protocol::IsHeaderKey(key.str())) {
          problems.push_back(absl::StrCat(AV(source), ":",
                                          key.source().begin.line, ": ", who,
                                          " header key \"", AV(key.str()),
                                          "\" must be 1 to 64 token characters "
                                          "(A-Z a-z 0-9 !#$%&'*+-.^_`|~)"));
        } else if (!v) {
          problems.push_back(at(value) + absl::StrCat(who, " header \"",
                                                      AV(key.str()),
                                                      "\" must be a string"));
        } else {
          bytes += key.str().size() + v->size();
          in_file.push_back(
              {key.source().begin, {std::string(key.str()), *std::move(v)}});
        }
      }
      std::sort(in_file.begin(), in_file.end(),
                [](const auto& a, const auto& b) {
                  return a.first.line != b.first.line
                             ? a.first.line < b.first.line
                             : a.first.column < b.first.column;
                });
      for (auto& [where, header] : in_file) {
        s.headers.push_back(std::move(header));
      }
      if (s.headers.size() > limits.headers.max_count) {
        problems.push_back(at(*n) + absl::StrCat(who, " has ", s.headers.size(),
                                                 " headers, over max_headers (",
                                                 limits.headers.max_count,
                                                 ")"));
      }
      if (bytes > limits.headers.max_bytes) {
        problems.push_back(at(*n) +
                           absl::StrCat(who, " headers take ", bytes,
                                        " bytes, over max_headers_bytes (",
                                        limits.headers.max_bytes, ")"));
      }
    } else {
      problems.push_back(at(*n) + who +
                         " \"headers\" must be a table of strings, e.g. "
                         "headers = { Content-Type = \"text/plain\" }");
    }
  }

  const toml::node* every = table.get("every_ms");
  const toml::node* cron = table.get("cron");
  if ((every == nullptr) == (cron == nullptr)) {
    problems.push_back(absl::StrCat(AV(source), ":", line, ": ", who,
                                    " needs exactly one of \"every_ms\" or "
                                    "\"cron\""));
  } else if (every != nullptr) {
    std::optional<int64_t> ms = every->value<int64_t>();
    if (!ms || *ms < kMinScheduleIntervalMs || *ms > kMaxScheduleIntervalMs) {
      problems.push_back(at(*every) +
                         absl::StrCat(who,
                                      " \"every_ms\" must be an "
                                      "integer from ",
                                      kMinScheduleIntervalMs, " to ",
                                      kMaxScheduleIntervalMs, " (366 days)"));
    } else {
      s.interval_ms = *ms;
    }
  } else {
    std::optional<std::string> text = cron->value<std::string>();
    absl::StatusOr<CronSpec> spec =
        text ? ParseCron(*text)
             : absl::InvalidArgumentError("\"cron\" must be a string");
    if (!spec.ok()) {
      problems.push_back(at(*cron) + who + " " +
                         std::string(spec.status().message()));
    } else {
      s.cron = *std::move(spec);
    }
  }

  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return s;
}

}  // namespace

absl::StatusOr<CronSpec> ParseCron(std::string_view text) {
  auto fail = [&](absl::string_view problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron \"", AV(text), "\": ", problem));
  };
  const absl::string_view stripped = absl::StripAsciiWhitespace(AV(text));
  std::string_view fields_text(stripped.data(), stripped.size());
  if (!fields_text.empty() && fields_text[0] == '@') {
    const std::string_view expansion = Shorthand(fields_text);
    if (expansion.empty()) {
      return fail(absl::StrCat(
          "unknown shorthand \"", AV(fields_text),
          "\" (known: @yearly, @annually, @monthly, @weekly, @daily, "
          "@midnight, @hourly)"));
    }
    fields_text = expansion;
  }
  const std::vector<absl::string_view> fields = absl::StrSplit(
      AV(fields_text), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5) {
    return fail(absl::StrCat(
        "needs 5 fields (minute hour day-of-month month day-of-week), got ",
        fields.size()));
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; ++i) {
    absl::Status st = ParseField(
        kFields[i], std::string_view(fields[i].data(), fields[i].size()),
        &bits[i]);
    if (!st.ok()) return fail(st.message());
  }
  CronSpec spec;
  spec.minutes = bits[0];
  spec.hours = static_cast<uint32_t>(bits[1]);
  spec.days = static_cast<uint32_t>(bits[2]);
  spec.months = static_cast<uint16_t>(bits[3]);
  // Day-of-week 7 is Sunday, like 0.
  spec.weekdays = static_cast<uint8_t>((bits[4] | (bits[4] >> 7)) & 0x7f);
  spec.days_star = fields[2][0] == '*';
  spec.weekdays_star = fields[4][0] == '*';
  spec.text = std::string(text);
  // A whole 400-year cycle holds every date and weekday combination there
  // is, so one search from any time tells whether the spec can ever fire.
  if (NextFireMs(spec, 0) == kCronNever) {
    return fail(
        "never fires: no date matches its day-of-month, month and "
        "day-of-week together");
  }
  return spec;
}

int64_t NextFireMs(const CronSpec& spec, int64_t after_unix_ms) {
  // Far beyond any real clock; keeps the arithmetic below from overflowing.
  if (after_unix_ms > INT64_MAX / 4) return kCronNever;
  const int64_t first_minute = FloorDiv(after_unix_ms, kMsPerMinute) + 1;
  int64_t day = FloorDiv(first_minute, kMinutesPerDay);
  const int64_t minute_of_day = first_minute - day * kMinutesPerDay;
  int from_hour = static_cast<int>(minute_of_day / 60);
  int from_minute = static_cast<int>(minute_of_day % 60);
  // Date and weekday combinations repeat every kDaysPer400Years; looking one
  // day beyond covers the hours of the first day that were before the start.
  const int64_t last_day = day + kDaysPer400Years;
  while (day <= last_day) {
    const Date date = DateFromDays(day);
    if (((spec.months >> date.month) & 1) == 0) {
      day += DaysInMonth(date.year, date.month) - date.day + 1;
      from_hour = from_minute = 0;
      continue;
    }
    if (DayMatches(spec, date, WeekdayFromDays(day))) {
      for (int h = FirstBitFrom(spec.hours, from_hour); h < 24;
           h = FirstBitFrom(spec.hours, h + 1)) {
        const int m =
            FirstBitFrom(spec.minutes, h == from_hour ? from_minute : 0);
        if (m < 60) {
          return ((day * kMinutesPerDay) + h * 60 + m) * kMsPerMinute;
        }
      }
    }
    ++day;
    from_hour = from_minute = 0;
  }
  return kCronNever;
}

absl::StatusOr<std::vector<Schedule>> ParseScheduleSections(
    std::string_view toml_text, std::string_view source_name,
    const ScheduleLimits& limits) {
  toml::table table;
  try {
    table = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source_name), ":", where.line, ":", where.column,
                     ": syntax error: ", AV(error.description())));
  }
  std::vector<Schedule> out;
  const toml::node* node = table.get("schedules");
  if (node == nullptr) return out;
  const toml::array* list = node->as_array();
  if (list == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        AV(source_name), ":", node->source().begin.line,
        ": \"schedules\" must be an array of tables ([[schedules]])"));
  }
  std::vector<std::string> problems;
  for (const toml::node& entry : *list) {
    const toml::table* t = entry.as_table();
    if (t == nullptr) {
      problems.push_back(absl::StrCat(AV(source_name), ":",
                                      entry.source().begin.line,
                                      ": each [[schedules]] entry is a table"));
      continue;
    }
    absl::StatusOr<Schedule> s =
        FromTable(*t, source_name, entry.source().begin.line, limits);
    if (!s.ok()) {
      problems.emplace_back(s.status().message());
      continue;
    }
    const bool twice =
        std::any_of(out.begin(), out.end(),
                    [&](const Schedule& o) { return o.name == s->name; });
    if (twice) {
      problems.push_back(
          absl::StrCat(AV(source_name), ":", entry.source().begin.line,
                       ": schedule \"", s->name, "\" is defined twice"));
      continue;
    }
    out.push_back(*std::move(s));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return out;
}

bool operator==(const Schedule& a, const Schedule& b) {
  return a.name == b.name && a.topic == b.topic && a.payload == b.payload &&
         a.headers == b.headers && a.interval_ms == b.interval_ms &&
         (a.interval_ms != 0 || a.cron == b.cron);
}

// Written a line at a time: headers keep their order, which a toml::table
// would sort.
std::string ScheduleSectionsToToml(const std::vector<Schedule>& schedules) {
  std::string out;
  auto line = [&out](std::string text) {
    out += text;
    out += "\n";
  };
  for (const Schedule& s : schedules) {
    out += "\n[[schedules]]\n";
    line(TomlKeyValue("name", s.name));
    line(TomlKeyValue("topic", s.topic));
    line(TomlKeyValue("payload", s.payload));
    if (s.interval_ms > 0) {
      line(TomlKeyValue("every_ms", s.interval_ms));
    } else {
      line(TomlKeyValue("cron", s.cron.text));
    }
    if (!s.headers.empty()) {
      out += "[schedules.headers]\n";
      for (const auto& [key, value] : s.headers) {
        line(TomlKeyValue(key, value));
      }
    }
  }
  return out;
}

// ---- ScheduleTimer ----

ScheduleTimer::ScheduleTimer(std::vector<Schedule> schedules,
                             int64_t now_unix_ms)
    : schedules_(std::move(schedules)),
      start_(now_unix_ms),
      last_now_(now_unix_ms) {
  next_.reserve(schedules_.size());
  for (size_t i = 0; i < schedules_.size(); ++i) {
    next_.push_back(NextAfter(i, now_unix_ms));
  }
  due_.reserve(schedules_.size());
  ComputeNextDue();
}

int64_t ScheduleTimer::NextAfter(size_t i, int64_t t) const {
  const Schedule& s = schedules_[i];
  if (s.interval_ms > 0) {
    return start_ + (FloorDiv(t - start_, s.interval_ms) + 1) * s.interval_ms;
  }
  const int64_t next = NextFireMs(s.cron, t);
  return next == kCronNever ? INT64_MAX : next;
}

void ScheduleTimer::ComputeNextDue() {
  next_due_ = INT64_MAX;
  for (int64_t t : next_) next_due_ = std::min(next_due_, t);
}

void ScheduleTimer::TakeDue(int64_t now_unix_ms,
                            std::vector<const Schedule*>* out) {
  if (now_unix_ms < last_now_) {  // the wall clock stepped back
    const bool far = last_now_ - now_unix_ms > kCronClockStepBackMs;
    for (size_t i = 0; i < schedules_.size(); ++i) {
      const int64_t interval = schedules_[i].interval_ms;
      if (interval > 0 ? next_[i] > now_unix_ms + interval : far) {
        next_[i] = NextAfter(i, now_unix_ms);
      }
    }
    ComputeNextDue();
  }
  last_now_ = now_unix_ms;
  if (now_unix_ms < next_due_) return;

  due_.clear();
  for (size_t i = 0; i < schedules_.size(); ++i) {
    if (next_[i] <= now_unix_ms) due_.push_back(i);
  }
  std::stable_sort(due_.begin(), due_.end(),
                   [&](size_t a, size_t b) { return next_[a] < next_[b]; });
  for (size_t i : due_) {
    out->push_back(&schedules_[i]);
    ++fired_;
    // A tick after the one due and not after now was missed.
    if (NextAfter(i, next_[i]) <= now_unix_ms) ++collapsed_;
    next_[i] = NextAfter(i, now_unix_ms);
  }
  ComputeNextDue();
}

}  // namespace sift::delivery
