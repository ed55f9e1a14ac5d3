#include "broker/config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/un.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "broker/base/flag_text.h"
#include "broker/log/log.h"

namespace sift {
namespace config_internal {

// Defined in default_config.cc, which the genrule in BUILD writes from
// default_config.toml.
extern const char kDefaultConfigToml[];
extern const std::size_t kDefaultConfigTomlSize;

}  // namespace config_internal

namespace {

// This abseil build has its own absl::string_view, which does not convert
// from std::string_view; abseil calls get their arguments through this.
absl::string_view AV(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// What is wrong with one string value (a string setting, or one entry of a
// list setting), as a phrase to follow the value; "" if nothing is.
using StringCheck = std::string (*)(std::string_view value);

std::string CheckEndpoint(std::string_view endpoint);
std::string CheckLogLevel(std::string_view level);

// The field a setting lives in; its type is the setting's type.
using Member =
    std::variant<std::vector<std::string> Config::*, std::string Config::*,
                 uint32_t Config::*, uint64_t Config::*>;

// One setting: its TOML key and flag name, where it is stored, which values
// it accepts, and its one-line description for --help and --print-config.
struct Setting {
  std::string_view name;
  Member member;
  // Integers: the smallest and largest value. Lists: fewest and most entries.
  uint64_t min;
  uint64_t max;
  // Strings and list entries: extra checks; nullptr accepts any value.
  StringCheck check;
  std::string_view value_name;  // --help shows --name=VALUE_NAME.
  std::string_view description;
};

// Every setting, in the order of Config, --help and --print-config. This is
// the one place a setting is described to the code: TOML keys, flags, --help,
// ConfigToToml, ValidateConfig and operator== all read it. Keep it in step
// with default_config.toml (config_test checks) and docs/configuration.md.
constexpr Setting kSettings[] = {
    {"endpoints", &Config::endpoints, 1, 64, CheckEndpoint,
     "ENDPOINT[,ENDPOINT...]",
     "Endpoints to bind: tcp://HOST:PORT, ipc://PATH or inproc://NAME."},
    {"max_payload_bytes", &Config::max_payload_bytes, 1, uint64_t{1} << 30,
     nullptr, "N", "Largest payload of one message, in bytes."},
    {"max_topic_length", &Config::max_topic_length,
     kMinTopicLengthForInboxes, 65535, nullptr, "N",
     "Longest topic name or pattern, in bytes (at least 64, so reply "
     "topics \"_INBOX.<client id>.<token>\" fit)."},
    {"max_topic_tokens", &Config::max_topic_tokens, kMinTopicTokensForInboxes,
     64, nullptr, "N",
     "Most dot-separated tokens in a topic or pattern (at least 3, for reply "
     "topics)."},
    {"max_subscriptions_per_client", &Config::max_subscriptions_per_client, 1,
     10000000, nullptr, "N", "Most subscriptions one client may hold."},
    {"max_clients", &Config::max_clients, 1, 10000000, nullptr, "N",
     "Most clients (sessions, and tcp/ipc connections) at once."},
    {"max_subscriptions", &Config::max_subscriptions, 1, 1000000000, nullptr,
     "N", "Most subscriptions of all clients together."},
    {"max_pending_bytes_per_client", &Config::max_pending_bytes_per_client,
     65536, uint64_t{1} << 40, nullptr, "BYTES",
     "Bytes queued for one client beyond which its deliveries are dropped."},
    {"max_pending_bytes", &Config::max_pending_bytes, 65536, uint64_t{1} << 44,
     nullptr, "BYTES",
     "Bytes queued for all clients together beyond which deliveries are "
     "dropped."},
    {"max_batch_bytes", &Config::max_batch_bytes, 0, uint64_t{1} << 30,
     nullptr, "BYTES",
     "Largest BATCH body accepted from a client, in bytes (0 = no batches)."},
    {"max_headers", &Config::max_headers, 0, 1024, nullptr, "N",
     "Most headers on one message (0 = messages may carry none)."},
    {"max_headers_bytes", &Config::max_headers_bytes, 0, 1 << 20, nullptr,
     "BYTES",
     "Most key + value bytes of one message's headers, all together."},
    {"max_retained", &Config::max_retained, 0, 100000000, nullptr, "N",
     "Most topics with a retained value (0 = no retained messages)."},
    {"max_retained_bytes", &Config::max_retained_bytes, 0, uint64_t{1} << 40,
     nullptr, "BYTES", "Most bytes of retained values, all together."},
    {"max_delayed", &Config::max_delayed, 0, 100000000, nullptr, "N",
     "Most delayed publishes held at once (0 = no delayed publishes)."},
    {"max_delay_ms", &Config::max_delay_ms, 0, 4000000000u, nullptr, "MS",
     "Furthest ahead a publish may be delayed, in ms."},
    {"max_delayed_bytes", &Config::max_delayed_bytes, 0, uint64_t{1} << 40,
     nullptr, "BYTES", "Most bytes of delayed publishes, all together."},
    {"client_timeout_ms", &Config::client_timeout_ms, 0, 86400000, nullptr,
     "MS", "Drop clients silent for longer than this, in ms (0 = never)."},
    {"handshake_timeout_ms", &Config::handshake_timeout_ms, 100, 600000,
     nullptr, "MS",
     "Close connections that have not completed ZeroMQ's handshake within "
     "this, in ms."},
    {"send_hwm", &Config::send_hwm, 0, 2147483647, nullptr, "N",
     "ZeroMQ send high-water mark of the broker socket, in messages "
     "(0 = no limit)."},
    {"recv_hwm", &Config::recv_hwm, 0, 2147483647, nullptr, "N",
     "ZeroMQ receive high-water mark of the broker socket, in messages "
     "(0 = no limit)."},
    {"match_cache_size", &Config::match_cache_size, 0, 16777216, nullptr, "N",
     "Entries in the subject tree's match cache (0 disables it)."},
    {"stats_top_topics", &Config::stats_top_topics, 0, 100000, nullptr, "N",
     "Busiest topics listed in a STATS reply."},
    {"max_tracked_topics", &Config::max_tracked_topics, 0, 10000000, nullptr,
     "N",
     "Topics with their own counters; the rest are counted under "
     "\"(other topics)\"."},
    {"idle_spin_us", &Config::idle_spin_us, 0, 1000000, nullptr, "US",
     "Microseconds the routing thread busy-polls for input before it "
     "sleeps (0 = off; each wake-up saved costs CPU while idle)."},
    {"log_level", &Config::log_level, 0, 0, CheckLogLevel, "LEVEL",
     "Lowest level of log lines written: debug, info, warn or error."},
    {"data_dir", &Config::data_dir, 0, 0, nullptr, "DIR",
     "Directory of the durable streams (docs/delivery.md); empty = streams "
     "are off."},
};

constexpr bool SettingsTableIsConsistent() {
  for (size_t i = 0; i < std::size(kSettings); ++i) {
    const Setting& s = kSettings[i];
    if (s.min > s.max) return false;
    if (std::holds_alternative<uint32_t Config::*>(s.member) &&
        s.max > std::numeric_limits<uint32_t>::max()) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (kSettings[j].name == s.name) return false;
    }
  }
  return true;
}
static_assert(SettingsTableIsConsistent(),
              "kSettings: a name repeats, min > max, or max does not fit");

#if defined(__GLIBCXX__) && defined(__x86_64__)
// A reminder, not a layout requirement: a field added to Config needs a row
// in kSettings (operator== and everything else only see the table). Then
// update this size.
static_assert(sizeof(Config) == 216,
              "Config changed: update kSettings, then this size");
#endif

const Setting* FindSetting(std::string_view name) {
  for (const Setting& s : kSettings) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// `s` as a TOML basic string, which is also how messages quote values.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          absl::StrAppendFormat(&out, "\\u%04X", c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `name`, if it is close enough to be a typo.
std::optional<std::string_view> Suggest(
    std::string_view name, const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (std::string_view candidate : candidates) {
    const size_t distance = EditDistance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::vector<std::string_view> SettingNames() {
  std::vector<std::string_view> names;
  for (const Setting& s : kSettings) names.push_back(s.name);
  return names;
}

// Checks (one entry of) the endpoints setting.
std::string CheckEndpoint(std::string_view endpoint) {
  for (char c : endpoint) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return "must not contain spaces or control characters";
    }
  }
  constexpr std::string_view kTcp = "tcp://";
  constexpr std::string_view kIpc = "ipc://";
  constexpr std::string_view kInproc = "inproc://";
  if (endpoint.substr(0, kTcp.size()) == kTcp) {
    const std::string_view address = endpoint.substr(kTcp.size());
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return "must be tcp://HOST:PORT";
    }
    const std::string_view port = address.substr(colon + 1);
    if (port == "*") return "";
    uint32_t number = 0;
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        });
    if (!digits || !absl::SimpleAtoi(AV(port), &number) || number > 65535) {
      return "must end in a port from 0 to 65535, or * (tcp://HOST:PORT)";
    }
    return "";
  }
  if (endpoint.substr(0, kIpc.size()) == kIpc) {
    if (endpoint.size() == kIpc.size()) return "needs a path after ipc://";
    // sockaddr_un's sun_path, less its NUL (ZeroMQ: "File name too long").
    constexpr size_t kMaxIpcPathBytes = sizeof(sockaddr_un::sun_path) - 1;
    if (endpoint.size() - kIpc.size() > kMaxIpcPathBytes) {
      return absl::StrCat("has a path of ", endpoint.size() - kIpc.size(),
                          " bytes, over the ", kMaxIpcPathBytes,
                          " a Unix socket's path may have");
    }
    return "";
  }
  if (endpoint.substr(0, kInproc.size()) == kInproc) {
    if (endpoint.size() == kInproc.size())
      return "needs a name after inproc://";
    return "";
  }
  return "must start with tcp://, ipc:// or inproc://";
}

std::string CheckLogLevel(std::string_view level) {
  if (ParseLogLevel(level).ok()) return "";
  return "must be debug, info, warn or error";
}

// The checks of one setting's value; each returns a phrase that follows
// `setting "name"` or `flag --name`, or "" if the value is fine.
std::string RangeProblem(const Setting& s, std::string_view got) {
  return absl::StrCat("must be between ", s.min, " and ", s.max, " (got ",
                      AV(got), ")");
}

std::string CheckInteger(const Setting& s, uint64_t value) {
  if (value < s.min || value > s.max)
    return RangeProblem(s, absl::StrCat(value));
  return "";
}

std::string CheckString(const Setting& s, const std::string& value) {
  if (s.check == nullptr) return "";
  std::string problem = s.check(value);
  if (problem.empty()) return "";
  return absl::StrCat(problem, " (got ", Quote(value), ")");
}

std::string CheckEntry(const Setting& s, const std::string& entry) {
  if (s.check == nullptr) return "";
  std::string problem = s.check(entry);
  if (problem.empty()) return "";
  return absl::StrCat("entry ", Quote(entry), " ", problem);
}

std::string CheckList(const Setting& s, const std::vector<std::string>& list) {
  if (list.size() < s.min) {
    return absl::StrCat("must list at least ", s.min,
                        s.min == 1 ? " entry" : " entries");
  }
  if (list.size() > s.max) {
    return absl::StrCat("must list at most ", s.max, " entries (got ",
                        list.size(), ")");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    std::string problem = CheckEntry(s, list[i]);
    if (!problem.empty()) return problem;
    for (size_t j = 0; j < i; ++j) {
      if (list[j] == list[i]) {
        return absl::StrCat("lists ", Quote(list[i]), " twice");
      }
    }
  }
  return "";
}

std::string CheckSetting(const Setting& s, const Config& config) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = config.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return CheckList(s, value);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return CheckString(s, value);
        } else {
          return CheckInteger(s, value);
        }
      },
      s.member);
}

// How a value is written after --name= (lists comma-separated).
std::string FlagValue(const Setting& s, const Config& config) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = config.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return absl::StrJoin(value, ",");
        } else if constexpr (std::is_same_v<T, std::string>) {
          return value;
        } else {
          return absl::StrCat(value);
        }
      },
      s.member);
}

std::string TomlValue(const Setting& s, const Config& config) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = config.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out = "[";
          for (size_t i = 0; i < value.size(); ++i) {
            absl::StrAppend(&out, i == 0 ? "" : ", ", Quote(value[i]));
          }
          out += "]";
          return out;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return Quote(value);
        } else {
          return absl::StrCat(value);
        }
      },
      s.member);
}

// "a string", "an integer", ... for wrong-type messages.
std::string_view TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

uint32_t LineOf(const toml::node& node) { return node.source().begin.line; }

// Stores the TOML value `node` of setting `s` in *config. Returns the
// problem, or "" on success; *line is set to the line the problem is on.
std::string SetFromToml(const Setting& s, const toml::node& node,
                        Config* config, uint32_t* line) {
  *line = LineOf(node);
  return std::visit(
      [&](auto member) -> std::string {
        auto& field = config->*member;
        using T = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          const toml::array* array = node.as_array();
          if (array == nullptr) {
            return absl::StrCat("must be an array of strings, not ",
                                AV(TomlTypeName(node)));
          }
          std::vector<std::string> list;
          for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& entry = *array->get(i);
            const toml::value<std::string>* text = entry.as_string();
            if (text == nullptr) {
              *line = LineOf(entry);
              return absl::StrCat("entry ", i + 1, " must be a string, not ",
                                  AV(TomlTypeName(entry)));
            }
            std::string problem = CheckEntry(s, text->get());
            if (!problem.empty()) {
              *line = LineOf(entry);
              return problem;
            }
            list.push_back(text->get());
          }
          std::string problem = CheckList(s, list);
          if (!problem.empty()) return problem;
          field = std::move(list);
        } else if constexpr (std::is_same_v<T, std::string>) {
          const toml::value<std::string>* text = node.as_string();
          if (text == nullptr) {
            return absl::StrCat("must be a string, not ",
                                AV(TomlTypeName(node)));
          }
          std::string problem = CheckString(s, text->get());
          if (!problem.empty()) return problem;
          field = text->get();
        } else {
          const toml::value<int64_t>* number = node.as_integer();
          if (number == nullptr) {
            return absl::StrCat("must be an integer, not ",
                                AV(TomlTypeName(node)));
          }
          const int64_t value = number->get();
          if (value < 0) return RangeProblem(s, absl::StrCat(value));
          std::string problem = CheckInteger(s, static_cast<uint64_t>(value));
          if (!problem.empty()) return problem;
          field = static_cast<T>(value);
        }
        return "";
      },
      s.member);
}

// Stores the flag value `text` of setting `s` in *config. Returns the
// problem, or "" on success.
std::string SetFromFlag(const Setting& s, std::string_view text,
                        Config* config) {
  return std::visit(
      [&](auto member) -> std::string {
        auto& field = config->*member;
        using T = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::vector<std::string> list;
          for (absl::string_view piece : absl::StrSplit(AV(text), ',')) {
            piece = absl::StripAsciiWhitespace(piece);
            if (!piece.empty()) list.emplace_back(piece);
          }
          std::string problem = CheckList(s, list);
          if (!problem.empty()) return problem;
          field = std::move(list);
        } else if constexpr (std::is_same_v<T, std::string>) {
          std::string value(text);
          std::string problem = CheckString(s, value);
          if (!problem.empty()) return problem;
          field = std::move(value);
        } else {
          const absl::string_view digits = absl::StripAsciiWhitespace(AV(text));
          uint64_t value = 0;
          int64_t negative = 0;
          if (!absl::SimpleAtoi(digits, &value)) {
            if (absl::SimpleAtoi(digits, &negative)) {
              return RangeProblem(s, std::string(digits));
            }
            return absl::StrCat("must be an integer (got ", Quote(text), ")");
          }
          std::string problem = CheckInteger(s, value);
          if (!problem.empty()) return problem;
          field = static_cast<T>(value);
        }
        return "";
      },
      s.member);
}


// The flags that are not settings, as --help shows them.
struct GeneralFlag {
  std::string_view name;  // As matched, with '_' for '-'.
  std::string_view shown;
  std::string_view description;
};
constexpr GeneralFlag kGeneralFlags[] = {
    {"config", "--config=FILE",
     "Read settings from the TOML file FILE (applied before the flags)."},
    {"print_config", "--print-config",
     "Print the effective configuration as TOML (the settings, and the "
     "file's plugin sections, [[streams]] and [[schedules]]) and exit; the "
     "output works as a --config file."},
    {"version", "--version", "Print the version and exit."},
    {"help", "--help", "Print this help and exit."},
};

std::string Usage(std::string_view program) {
  const Config defaults;
  std::string out = absl::StrCat(
      "Usage: ", AV(program), " [--config=FILE] [--SETTING=VALUE ...]\n\n",
      "Runs the sift pub/sub broker. Settings come from the built-in "
      "defaults,\n"
      "then the TOML file given by --config, then the flags below; a later\n"
      "source wins. Every setting is also a key of the TOML file (see\n"
      "--print-config and docs/configuration.md). Flags take --name=VALUE or\n"
      "--name VALUE.\n\n"
      "The file may also hold plugin sections ([[routes]], [[plugin_libraries]],\n"
      "[[message_types]], [subscriptions]; see docs/plugins.md), [[streams]]\n"
      "(docs/delivery.md) and [[schedules]] (docs/schedules.md). SIGHUP, or\n"
      "`sift reload`, makes siftd re-read the plugin sections without dropping\n"
      "clients; an invalid file is logged and the old plugin config stays.\n"
      "Other settings and sections need a restart.\n\n"
      "Flags:\n");
  for (const GeneralFlag& flag : kGeneralFlags) {
    absl::StrAppend(&out, "  ", AV(flag.shown), "\n      ",
                    AV(flag.description), "\n");
  }
  out += "\nSettings:\n";
  for (const Setting& s : kSettings) {
    absl::StrAppend(&out, "  --", AV(s.name), "=", AV(s.value_name), " (");
    if (std::holds_alternative<uint32_t Config::*>(s.member) ||
        std::holds_alternative<uint64_t Config::*>(s.member)) {
      absl::StrAppend(&out, s.min, " to ", s.max, "; ");
    }
    absl::StrAppend(&out, "default ", FlagValue(s, defaults), ")\n      ",
                    AV(s.description), "\n");
  }
  return out;
}

std::string BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path
                                                     : path.substr(slash + 1));
}

}  // namespace

// Reads a whole file; errors name it.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  constexpr size_t kMaxBytes = size_t{16} << 20;
  const std::string what =
      absl::StrCat("cannot read config file ", Quote(path));
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, what);
  std::string text;
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return absl::ErrnoToStatus(error, what);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxBytes) {
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": larger than ", kMaxBytes, " bytes"));
    }
  }
  close(fd);
  return text;
}

bool operator==(const Config& a, const Config& b) {
  for (const Setting& s : kSettings) {
    const bool equal = std::visit(
        [&](auto member) { return a.*member == b.*member; }, s.member);
    if (!equal) return false;
  }
  return true;
}

std::string_view DefaultConfigToml() {
  return std::string_view(config_internal::kDefaultConfigToml,
                          config_internal::kDefaultConfigTomlSize);
}

namespace {

// Rules between settings, checked once every source has been applied.
absl::Status CheckSettingRules(const Config& config) {
  if (config.max_pending_bytes < config.max_pending_bytes_per_client) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"max_pending_bytes\" (", config.max_pending_bytes,
        ") must be at least \"max_pending_bytes_per_client\" (",
        config.max_pending_bytes_per_client, ")"));
  }
  return absl::OkStatus();
}

// ParseConfigToml without the rules between settings (the command line
// checks those after the flags, which may settle them).
absl::StatusOr<Config> ParseTomlSettings(std::string_view text,
                                         std::string_view source_name,
                                         Config base);

}  // namespace

absl::StatusOr<Config> ParseConfigToml(std::string_view text,
                                       std::string_view source_name,
                                       Config base) {
  absl::StatusOr<Config> parsed = ParseTomlSettings(text, source_name, base);
  if (!parsed.ok()) return parsed;
  if (absl::Status rules = CheckSettingRules(*parsed); !rules.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source_name), ": ", rules.message()));
  }
  return parsed;
}

namespace {

absl::StatusOr<Config> ParseTomlSettings(std::string_view text,
                                         std::string_view source_name,
                                         Config base) {
  toml::table table;
  try {
    table = toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source_name), ":", where.line, ":", where.column,
                     ": syntax error: ", AV(error.description())));
  }

  // toml::table iterates in key order; problems are reported in file order.
  std::vector<std::pair<uint32_t, std::string>> problems;
  const std::vector<std::string_view> names = SettingNames();
  for (auto&& [key, node] : table) {
    // The plugin sections are read by broker/plugin (ParsePluginSettings).
    if (key.str() == "plugin_libraries" || key.str() == "routes" ||
        key.str() == "subscriptions" || key.str() == "message_types" ||
        key.str() == "streams" || key.str() == "schedules") {
      continue;
    }
    const Setting* s = FindSetting(key.str());
    if (s == nullptr) {
      std::string message = absl::StrCat("unknown setting ", Quote(key.str()));
      if (std::optional<std::string_view> guess = Suggest(key.str(), names)) {
        absl::StrAppend(&message, " (did you mean ", Quote(*guess), "?)");
      }
      problems.emplace_back(key.source().begin.line, std::move(message));
      continue;
    }
    uint32_t line = 0;
    std::string problem = SetFromToml(*s, node, &base, &line);
    if (!problem.empty()) {
      problems.emplace_back(
          line, absl::StrCat("setting ", Quote(s->name), " ", problem));
    }
  }
  if (!problems.empty()) {
    std::stable_sort(
        problems.begin(), problems.end(),
        [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string message;
    for (const auto& [line, problem] : problems) {
      absl::StrAppend(&message, message.empty() ? "" : "\n", AV(source_name),
                      ":", line, ": ", problem);
    }
    return absl::InvalidArgumentError(message);
  }
  for (const Setting& s : kSettings) {
    std::string problem = CheckSetting(s, base);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          AV(source_name), ": setting ", Quote(s.name), " ", problem));
    }
  }
  return base;
}

}  // namespace

absl::Status ValidateConfig(const Config& config) {
  for (const Setting& s : kSettings) {
    std::string problem = CheckSetting(s, config);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting ", Quote(s.name), " ", problem));
    }
  }
  return CheckSettingRules(config);
}

std::string ConfigToToml(const Config& config) {
  std::string out =
      "# siftd configuration. Every setting is explained in\n"
      "# docs/configuration.md.\n";
  for (const Setting& s : kSettings) {
    absl::StrAppend(&out, "\n# ", AV(s.description), "\n", AV(s.name), " = ",
                    TomlValue(s, config), "\n");
  }
  return out;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, char** argv,
                                             std::string_view version_string) {
  std::string program = "siftd";
  if (argc > 0 && argv[0] != nullptr && argv[0][0] != '\0') {
    program = BaseName(argv[0]);
  }

  // Pass 1: classify the arguments. Settings are applied after the --config
  // file, wherever it appears; --help and --version win over any error.
  bool help = false;
  bool version = false;
  bool print_config = false;
  std::optional<std::string> config_path;
  std::vector<std::pair<const Setting*, std::string>> assignments;
  std::string first_error;
  auto fail = [&first_error](std::string message) {
    if (first_error.empty()) first_error = std::move(message);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 < argc) {
        fail(absl::StrCat("unexpected argument ", Quote(argv[i + 1]),
                          " (siftd takes only flags; see --help)"));
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      fail(absl::StrCat("unexpected argument ", Quote(arg),
                        " (siftd takes only flags; see --help)"));
      continue;
    }
    std::string_view spelled = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> value;
    if (const size_t eq = spelled.find('='); eq != std::string_view::npos) {
      value = spelled.substr(eq + 1);
      spelled = spelled.substr(0, eq);
    }
    std::string name(spelled);
    std::replace(name.begin(), name.end(), '-', '_');
    const std::string shown = absl::StrCat("--", AV(spelled));

    if (name == "help" || name == "h" || name == "version" ||
        name == "print_config") {
      if (value.has_value()) {
        fail(absl::StrCat("flag ", shown, " takes no value"));
      } else if (name == "version") {
        version = true;
      } else if (name == "print_config") {
        print_config = true;
      } else {
        help = true;
      }
      continue;
    }
    const Setting* setting = FindSetting(name);
    if (setting == nullptr && name != "config") {
      std::vector<std::string_view> candidates = SettingNames();
      for (const GeneralFlag& flag : kGeneralFlags) {
        candidates.push_back(flag.name);
      }
      std::string message = absl::StrCat("unknown flag ", shown);
      if (std::optional<std::string_view> guess = Suggest(name, candidates)) {
        std::string flag(*guess);
        if (flag == "print_config") flag = "print-config";
        absl::StrAppend(&message, " (did you mean --", flag, "?)");
      }
      fail(std::move(message));
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= argc) {
        fail(absl::StrCat("flag ", shown, " needs a value"));
        continue;
      }
      // `--config --log_level=debug` left the path out.
      if (std::string why = FlagInValuesPlace(shown, argv[i + 1]);
          !why.empty()) {
        fail(absl::StrCat("flag ", shown, " needs a value", why));
        continue;
      }
      value = argv[++i];
    }
    if (setting == nullptr) {
      config_path = std::string(*value);
    } else {
      assignments.emplace_back(setting, std::string(*value));
    }
  }

  CommandLine result;
  if (help) {
    result.action = CommandLine::Action::kExit;
    result.output = Usage(program);
    return result;
  }
  if (version) {
    result.action = CommandLine::Action::kExit;
    result.output = absl::StrCat("siftd ", AV(version_string), "\n");
    return result;
  }
  if (!first_error.empty()) return absl::InvalidArgumentError(first_error);

  // Pass 2: defaults < file < flags.
  if (config_path.has_value()) {
    result.config_path = *config_path;
    absl::StatusOr<std::string> text = ReadConfigFile(*config_path);
    if (!text.ok()) return text.status();
    absl::StatusOr<Config> parsed =
        ParseTomlSettings(*text, *config_path, result.config);
    if (!parsed.ok()) return parsed.status();
    result.config = *std::move(parsed);
  }
  for (const auto& [setting, value] : assignments) {
    std::string problem = SetFromFlag(*setting, value, &result.config);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", AV(setting->name), " ", problem));
    }
  }
  absl::Status valid = ValidateConfig(result.config);
  if (!valid.ok()) return valid;

  if (print_config) result.action = CommandLine::Action::kPrintConfig;
  return result;
}

}  // namespace sift
