#include "broker/streams/stream_config.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/base/absl_view.h"
#include "broker/base/number_text.h"
#include "broker/base/toml_text.h"
#include "broker/topic/topic.h"
#include "toml++/toml.h"

namespace sift::streams {
namespace {

constexpr std::string_view kReserved = "$sift.";
// Reply inboxes (docs/protocol.md §7): the stream manager never stores a
// topic under it, so a subject under it could store nothing.
constexpr std::string_view kInbox = "_INBOX.";

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// What fsync may be, for its errors.
constexpr char kFsyncChoices[] =
    "\"always\", \"never\" or \"<N>ms\" (1 <= N <= 60000)";

// The integer settings and their bounds, for the config file's reader and
// ValidateStreamSettings alike, so a value out of range is worded the same
// on either side of it and from either source.
struct IntegerSetting {
  std::string_view key;
  uint64_t StreamSettings::*field;
  uint64_t min;
  uint64_t max;                    // kNoMax: none
  bool zero_is_unlimited = false;  // 0 is allowed below min
};
constexpr uint64_t kNoMax = ~uint64_t{0};
constexpr IntegerSetting kIntegerSettings[] = {
    {"max_age_ms", &StreamSettings::max_age_ms, 1, uint64_t{1} << 53, true},
    {"max_bytes", &StreamSettings::max_bytes, 4096, kNoMax, true},
    {"max_msgs", &StreamSettings::max_msgs, 1, kNoMax, true},
    {"dedup_window_ms", &StreamSettings::dedup_window_ms, 0,
     7ull * 24 * 3600 * 1000},
    // 0 is refused rather than read as "unlimited" (as the retention limits
    // are) or "no ids": dedup_window_ms = 0 is the one way to turn it off.
    {"dedup_max_ids", &StreamSettings::dedup_max_ids, 1, kMaxDedupMaxIds},
    {"segment_max_bytes", &StreamSettings::segment_max_bytes, 4096,
     uint64_t{1} << 30},
};

bool InRange(const IntegerSetting& setting, uint64_t v) {
  return (v >= setting.min && v <= setting.max) ||
         (v == 0 && setting.zero_is_unlimited);
}

// "must be between 1 and 100000000 (got -1)", "must be 0 (unlimited) or at
// least 4096 (got 1000)".
std::string RangeProblem(const IntegerSetting& setting, std::string_view got) {
  const std::string range =
      setting.max != kNoMax
          ? absl::StrCat("between ", setting.min, " and ", setting.max)
          : absl::StrCat("at least ", setting.min);
  return absl::StrCat("must be ",
                      setting.zero_is_unlimited ? "0 (unlimited) or " : "",
                      range, " (got ", AV(got), ")");
}

// Reads `setting` from `table`, if there, into *s. Only a TOML integer is
// one (toml++ would also convert a whole float, 5.0 or 1e3); a problem is
// appended to *problems as "<source>:<line>: ...".
void ReadInteger(const toml::table& table, const IntegerSetting& setting,
                 StreamSettings* s, std::string_view source,
                 std::vector<std::string>* problems) {
  const toml::node* node = table.get(setting.key);
  if (node == nullptr) return;
  std::string problem;
  if (const toml::value<int64_t>* v = node->as_integer()) {
    if (v->get() >= 0 && InRange(setting, static_cast<uint64_t>(v->get()))) {
      s->*setting.field = static_cast<uint64_t>(v->get());
      return;
    }
    problem = RangeProblem(setting, absl::StrCat(v->get()));
  } else {
    problem =
        absl::StrCat("must be an integer (got ", TomlValueText(*node), ")");
  }
  problems->push_back(absl::StrCat(AV(source), ":", node->source().begin.line,
                                   ": stream setting \"", AV(setting.key),
                                   "\" ", problem));
}

}  // namespace

bool ValidStreamName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), NameChar);
}

namespace {

// ValidateStreamSettings's checks. `inbox_subjects_ok` lets subjects under
// "_INBOX." through, for a stream.toml siftd wrote before they were refused.
absl::Status Validate(const StreamSettings& s, bool inbox_subjects_ok) {
  if (s.name.empty() || s.name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream name must be 1 to 64 bytes (got ", s.name.size(),
                     ")"));
  }
  if (!ValidStreamName(s.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream name \"", s.name,
                     "\" may only hold letters, digits, '_' and '-'"));
  }
  if (s.subjects.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream \"", s.name, "\" needs at least one subject (topic pattern)"));
  }
  if (s.subjects.size() > 256) {
    return absl::InvalidArgumentError("a stream has at most 256 subjects");
  }
  const topic::Limits limits{65535, topic::kHardMaxTokens};
  for (const std::string& subject : s.subjects) {
    if (absl::Status st = topic::ValidatePattern(subject, limits); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream \"", s.name, "\" subject \"", subject,
          "\" is not a topic pattern: ", st.message()));
    }
    if (subject.substr(0, kReserved.size()) == kReserved) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream \"", s.name, "\" subject \"", subject,
          "\": topics under \"$sift.\" are the broker's"));
    }
    // Its first token is "_INBOX" and it has another, so every topic it
    // matches is an inbox. ">" and "*.x" match other topics too: valid.
    if (!inbox_subjects_ok && subject.substr(0, kInbox.size()) == kInbox) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream \"", s.name, "\" subject \"", subject,
          "\": topics under \"_INBOX.\" are reply inboxes, never stored"));
    }
  }
  for (const IntegerSetting& setting : kIntegerSettings) {
    const uint64_t v = s.*setting.field;
    if (!InRange(setting, v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream \"", s.name, "\" ", AV(setting.key), " ",
                       RangeProblem(setting, absl::StrCat(v))));
    }
  }
  if (s.max_bytes != 0 && s.max_bytes < s.segment_max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream \"", s.name, "\" max_bytes (", s.max_bytes,
        ") must be 0 (unlimited) or at least segment_max_bytes (",
        s.segment_max_bytes,
        "): files are removed a segment at a time (leave segment_max_bytes "
        "out and it is chosen from max_bytes)"));
  }
  return absl::OkStatus();
}

// `stored`: the table is a stream.toml siftd wrote (StreamSettingsFromToml),
// not the config file.
absl::StatusOr<StreamSettings> FromTable(const toml::table& table,
                                         std::string_view source, uint32_t line,
                                         bool stored) {
  std::vector<std::string> problems;
  StreamSettings s;
  for (auto&& [key, node] : table) {
    static constexpr std::string_view kKnown[] = {
        "name",     "subjects",        "max_age_ms",    "max_bytes",
        "max_msgs", "fsync",           "dedup_window_ms", "dedup_max_ids",
        "segment_max_bytes"};
    bool known = false;
    for (std::string_view k : kKnown) known = known || key.str() == k;
    if (!known) {
      problems.push_back(absl::StrCat(AV(source), ":", key.source().begin.line,
                                      ": unknown stream setting \"",
                                      AV(key.str()), "\""));
    }
  }
  if (auto name = table["name"].value<std::string>()) {
    s.name = *name;
  } else {
    problems.push_back(absl::StrCat(AV(source), ":", line,
                                    ": a stream needs a name (a string)"));
  }
  if (const toml::array* subjects = table["subjects"].as_array()) {
    for (const toml::node& n : *subjects) {
      if (auto v = n.value<std::string>()) {
        s.subjects.push_back(*v);
      } else {
        problems.push_back(absl::StrCat(AV(source), ":", n.source().begin.line,
                                        ": stream subjects must be strings"));
      }
    }
  } else if (table.contains("subjects")) {
    problems.push_back(absl::StrCat(AV(source), ":", line,
                                    ": stream \"subjects\" must be a list of "
                                    "topic patterns"));
  }
  for (const IntegerSetting& setting : kIntegerSettings) {
    ReadInteger(table, setting, &s, source, &problems);
  }
  if (!table.contains("segment_max_bytes")) {
    s.segment_max_bytes = DefaultSegmentBytes(s.max_bytes);
  }
  if (const toml::node* f = table.get("fsync")) {
    auto text = f->value<std::string>();
    absl::Status st =
        text ? ParseFsync(*text, &s)
             : absl::InvalidArgumentError(absl::StrCat(
                   "fsync must be a string: ", kFsyncChoices, " (got ",
                   TomlValueText(*f), ")"));
    if (!st.ok()) {
      problems.push_back(absl::StrCat(AV(source), ":", f->source().begin.line,
                                      ": ", st.message()));
    }
  }
  if (problems.empty()) {
    // A stream made before subjects under "_INBOX." were refused still
    // opens: it never stored those topics, and siftd must start.
    if (absl::Status st = Validate(s, /*inbox_subjects_ok=*/stored);
        !st.ok()) {
      problems.push_back(
          absl::StrCat(AV(source), ":", line, ": ", st.message()));
    }
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return s;
}

}  // namespace

uint64_t DefaultSegmentBytes(uint64_t max_bytes) {
  constexpr uint64_t kDefault = 64 << 20;
  if (max_bytes == 0) return kDefault;
  return std::clamp<uint64_t>(max_bytes / 4, 4096, kDefault);
}

std::vector<std::string> SettingsDifferences(const StreamSettings& existing,
                                             const StreamSettings& requested) {
  std::vector<std::string> out;
  auto differ = [&out](std::string_view key, const auto& have,
                       const auto& want) {
    out.push_back(absl::StrCat(AV(key), " ", have, " (requested ", want, ")"));
  };
  auto list = [](const std::vector<std::string>& subjects) {
    return absl::StrCat(  // ["a.>", "b.*"]
        "[\"", absl::StrJoin(subjects, "\", \""), "\"]");
  };
  if (existing.name != requested.name) {
    differ("name", existing.name, requested.name);
  }
  // Subjects are a set: a topic matching any of them is captured, so
  // their order and repeats do not make another stream.
  auto as_set = [](std::vector<std::string> subjects) {
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()),
                   subjects.end());
    return subjects;
  };
  if (as_set(existing.subjects) != as_set(requested.subjects)) {
    differ("subjects", list(existing.subjects), list(requested.subjects));
  }
  // fsync_every_ms is part of fsync ("10ms"): it means nothing otherwise.
  if (FsyncText(existing) != FsyncText(requested)) {
    differ("fsync", FsyncText(existing), FsyncText(requested));
  }
  for (const IntegerSetting& setting : kIntegerSettings) {
    if (existing.*setting.field != requested.*setting.field) {
      differ(setting.key, existing.*setting.field, requested.*setting.field);
    }
  }
  return out;
}

bool StreamSettings::operator==(const StreamSettings& o) const {
  return SettingsDifferences(*this, o).empty();
}

absl::Status ParseFsync(std::string_view text, StreamSettings* settings) {
  if (text == "always" || text.empty()) {
    settings->fsync = store::FsyncPolicy::kAlways;
    return absl::OkStatus();
  }
  if (text == "never") {
    settings->fsync = store::FsyncPolicy::kNever;
    return absl::OkStatus();
  }
  uint64_t ms = 0;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms" &&
      ParseInteger(text.substr(0, text.size() - 2), &ms) && ms >= 1 &&
      ms <= 60000) {
    settings->fsync = store::FsyncPolicy::kEveryMs;
    settings->fsync_every_ms = ms;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("fsync \"", AV(text), "\" is not ", kFsyncChoices));
}

std::string FsyncText(const StreamSettings& s) {
  switch (s.fsync) {
    case store::FsyncPolicy::kAlways: return "always";
    case store::FsyncPolicy::kNever: return "never";
    case store::FsyncPolicy::kEveryMs: break;
  }
  return absl::StrCat(s.fsync_every_ms, "ms");
}

absl::Status ValidateStreamSettings(const StreamSettings& s) {
  return Validate(s, /*inbox_subjects_ok=*/false);
}

absl::StatusOr<std::vector<StreamSettings>> ParseStreamSections(
    std::string_view text, std::string_view source) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source), ":", where.line, ":", where.column,
                     ": syntax error: ", AV(error.description())));
  }
  std::vector<StreamSettings> out;
  const toml::node* node = table.get("streams");
  if (node == nullptr) return out;
  const toml::array* list = node->as_array();
  if (list == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source), ":", node->source().begin.line,
                     ": \"streams\" must be an array of tables ([[streams]])"));
  }
  std::vector<std::string> problems;
  for (const toml::node& entry : *list) {
    const toml::table* t = entry.as_table();
    if (t == nullptr) {
      problems.push_back(absl::StrCat(AV(source), ":",
                                      entry.source().begin.line,
                                      ": each [[streams]] entry is a table"));
      continue;
    }
    absl::StatusOr<StreamSettings> s =
        FromTable(*t, source, entry.source().begin.line, /*stored=*/false);
    if (!s.ok()) {
      problems.emplace_back(s.status().message());
      continue;
    }
    for (const StreamSettings& other : out) {
      if (other.name == s->name) {
        problems.push_back(absl::StrCat(AV(source), ":",
                                        entry.source().begin.line,
                                        ": stream \"", s->name,
                                        "\" is defined twice"));
        continue;
      }
      for (const std::string& x : s->subjects) {
        for (const std::string& y : other.subjects) {
          if (topic::PatternsOverlap(x, y)) {
            problems.push_back(absl::StrCat(
                AV(source), ":", entry.source().begin.line, ": stream \"",
                s->name, "\" subject \"", x, "\" overlaps stream \"",
                other.name, "\"'s \"", y,
                "\" (a topic is stored in one stream only)"));
          }
        }
      }
    }
    out.push_back(*std::move(s));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return out;
}

std::string StreamSettingsToToml(const StreamSettings& s) {
  toml::array subjects;
  for (const std::string& subject : s.subjects) subjects.push_back(subject);
  toml::table t{
      {"name", s.name},
      {"subjects", std::move(subjects)},
      {"max_age_ms", static_cast<int64_t>(s.max_age_ms)},
      {"max_bytes", static_cast<int64_t>(s.max_bytes)},
      {"max_msgs", static_cast<int64_t>(s.max_msgs)},
      {"fsync", FsyncText(s)},
      {"dedup_window_ms", static_cast<int64_t>(s.dedup_window_ms)},
      {"dedup_max_ids", static_cast<int64_t>(s.dedup_max_ids)},
      {"segment_max_bytes", static_cast<int64_t>(s.segment_max_bytes)},
  };
  std::ostringstream out;
  out << "# A sift stream's settings, written by siftd (docs/delivery.md).\n"
      << t << "\n";
  return out.str();
}

std::string StreamSectionsToToml(const std::vector<StreamSettings>& streams) {
  std::string out;
  auto line = [&out](std::string text) {
    out += text;
    out += "\n";
  };
  for (const StreamSettings& s : streams) {
    out += "\n[[streams]]\n";
    line(TomlKeyValue("name", s.name));
    line(TomlKeyValue("subjects", TomlStrings(s.subjects)));
    line(TomlKeyValue("max_age_ms", static_cast<int64_t>(s.max_age_ms)));
    line(TomlKeyValue("max_bytes", static_cast<int64_t>(s.max_bytes)));
    line(TomlKeyValue("max_msgs", static_cast<int64_t>(s.max_msgs)));
    line(TomlKeyValue("fsync", FsyncText(s)));
    line(TomlKeyValue("dedup_window_ms",
                      static_cast<int64_t>(s.dedup_window_ms)));
    line(TomlKeyValue("dedup_max_ids", static_cast<int64_t>(s.dedup_max_ids)));
    line(TomlKeyValue("segment_max_bytes",
                      static_cast<int64_t>(s.segment_max_bytes)));
  }
  return out;
}

absl::StatusOr<StreamSettings> StreamSettingsFromToml(
    std::string_view text, std::string_view source) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    return absl::DataLossError(
        absl::StrCat(AV(source), ":", error.source().begin.line,
                     ": syntax error: ", AV(error.description())));
  }
  return FromTable(table, source, 1, /*stored=*/true);
}

store::StreamLogOptions LogOptionsFor(const StreamSettings& s,
                                      std::string dir) {
  store::StreamLogOptions o;
  o.dir = std::move(dir);
  o.segment_max_bytes = s.segment_max_bytes;
  o.index_interval_bytes = std::min<uint64_t>(4096, s.segment_max_bytes / 4);
  o.max_age_ms = static_cast<int64_t>(s.max_age_ms);
  o.max_bytes = s.max_bytes;
  o.max_msgs = s.max_msgs;
  o.fsync_policy = s.fsync;
  o.fsync_every_ms = static_cast<int64_t>(s.fsync_every_ms);
  o.dedup_window_ms = static_cast<int64_t>(s.dedup_window_ms);
  o.dedup_max_ids = static_cast<size_t>(s.dedup_max_ids);
  // Records waiting for the writer: a burst of small publishes is bounded
  // by bytes (64 MiB) before it is by count.
  o.max_queued_records = 1 << 20;
  return o;
}

}  // namespace sift::streams
