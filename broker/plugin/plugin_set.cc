#include "broker/plugin/plugin_set.h"

#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"
#include "broker/base/quoted_text.h"
#include "broker/base/toml_text.h"
#include "broker/plugin/builtins.h"
#include "broker/plugin/dynamic_plugin.h"
#include "broker/plugin/header_filter.h"
#include "broker/plugin/lua_plugin.h"
#include "broker/plugin/payload_plugins.h"

namespace sift::plugin {
namespace {

// Collects problems as "<source>:<line>: <text>".
class Problems {
 public:
  explicit Problems(std::string_view source) : source_(source) {}
  void Add(const toml::node& at, std::string_view text) {
    Add(at.source().begin.line, text);
  }
  void Add(uint32_t line, std::string_view text) {
    absl::StrAppend(&all_, all_.empty() ? "" : "\n", AV(source_), ":", line,
                    ": ", AV(text));
  }
  absl::Status status() const {
    return all_.empty() ? absl::OkStatus()
                        : absl::InvalidArgumentError(all_);
  }

 private:
  std::string_view source_;
  std::string all_;
};

// A chain entry's value as plugin settings text.
bool ValueText(const toml::node& node, std::string* out) {
  if (const auto* s = node.as_string()) {
    *out = s->get();
  } else if (const auto* i = node.as_integer()) {
    *out = absl::StrCat(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    // Enough digits to read back the same double.
    *out = absl::StrFormat("%.17g", f->get());
  } else if (const auto* b = node.as_boolean()) {
    *out = b->get() ? "true" : "false";
  } else if (const auto* a = node.as_array()) {
    std::vector<std::string> parts;
    for (const toml::node& e : *a) {
      const auto* s = e.as_string();
      if (s == nullptr) return false;
      parts.push_back(s->get());
    }
    *out = absl::StrJoin(parts, ",");
  } else {
    return false;
  }
  return true;
}

bool StringList(const toml::node& node, std::vector<std::string>* out) {
  const auto* a = node.as_array();
  if (a == nullptr) return false;
  out->clear();
  for (const toml::node& e : *a) {
    const auto* s = e.as_string();
    if (s == nullptr) return false;
    out->push_back(s->get());
  }
  return true;
}

// One chain entry setting, with where it is in the file.
struct Setting {
  std::string name;
  const toml::node* value;
  uint32_t line;
  uint32_t column;
};

// The settings of `table`, nested tables flattened into dotted names.
void CollectSettings(const toml::table& table, const std::string& prefix,
                     std::vector<Setting>* out) {
  for (auto&& [key, value] : table) {
    const std::string name = prefix + std::string(key.str());
    if (const auto* nested = value.as_table()) {
      CollectSettings(*nested, name + ".", out);
      continue;
    }
    out->push_back({name, &value, key.source().begin.line,
                    key.source().begin.column});
  }
}

void ParseChain(const toml::node& node, std::string_view where,
                std::vector<StageSpec>* chain, Problems* problems) {
  const auto* entries = node.as_array();
  if (entries == nullptr) {
    problems->Add(node, absl::StrCat(AV(where),
                                     ": chain must be an array of tables "
                                     "([[routes.chain]])"));
    return;
  }
  for (const toml::node& e : *entries) {
    const auto* t = e.as_table();
    if (t == nullptr) {
      problems->Add(e, absl::StrCat(AV(where),
                                    ": each chain entry must be a table"));
      continue;
    }
    StageSpec spec;
    // toml++ keeps a table's keys sorted; settings keep the file's order
    // (header_set adds its headers in that order). A dotted key written
    // bare (set.tenant = "eu") is a nested table in TOML: it is one setting
    // named "set.tenant", as if quoted.
    std::vector<Setting> settings;
    CollectSettings(*t, "", &settings);
    std::stable_sort(settings.begin(), settings.end(),
                     [](const Setting& a, const Setting& b) {
                       return a.line != b.line ? a.line < b.line
                                               : a.column < b.column;
                     });
    bool twice = false;
    for (size_t i = 1; i < settings.size() && !twice; ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (settings[j].name == settings[i].name) {
          // Only a dotted key and the same name quoted can do this
          // (set.tenant and 'set.tenant'); one setting cannot have two
          // values, and --print-config could not write both back.
          problems->Add(*settings[i].value,
                        absl::StrCat(AV(where), ": setting \"",
                                     settings[i].name, "\" is given twice"));
          twice = true;
          break;
        }
      }
    }
    if (twice) continue;
    for (const Setting& setting : settings) {
      std::string text;
      if (!ValueText(*setting.value, &text)) {
        problems->Add(*setting.value,
                      absl::StrCat(AV(where), ": setting \"", setting.name,
                                   "\" must be a string, number, boolean or "
                                   "array of strings"));
        continue;
      }
      if (setting.name == "plugin") {
        spec.plugin = text;
      } else {
        spec.config.Add(setting.name, text);
      }
    }
    if (spec.plugin.empty()) {
      problems->Add(e, absl::StrCat(AV(where),
                                    ": chain entry needs plugin = \"NAME\""));
      continue;
    }
    chain->push_back(std::move(spec));
  }
}

// Loads the library at `path` from a private copy: dlopen() returns the
// library already loaded for a path, so a library rebuilt in place would
// keep its old code across a reload. The copy is unlinked once loaded (the
// mapping stays). Errors name `path`, not the copy.
absl::StatusOr<LoadedPlugin> LoadFreshCopy(const std::string& path) {
  const char* tmp = std::getenv("TMPDIR");
  std::string copy = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp",
                                  "/siftd-plugin-XXXXXX");
  const int out = mkstemp(copy.data());
  if (out < 0) return LoadDynamicPlugin(path);  // no temp dir: load in place
  bool copied = false;
  if (const int in = open(path.c_str(), O_RDONLY | O_CLOEXEC); in >= 0) {
    copied = true;
    char buffer[64 * 1024];
    for (;;) {
      const ssize_t n = read(in, buffer, sizeof(buffer));
      if (n == 0) break;
      if (n < 0 || write(out, buffer, static_cast<size_t>(n)) != n) {
        copied = false;
        break;
      }
    }
    close(in);
  }
  close(out);
  if (!copied) {
    unlink(copy.c_str());
    return LoadDynamicPlugin(path);  // its error names the path
  }
  absl::StatusOr<LoadedPlugin> loaded = LoadDynamicPlugin(copy);
  unlink(copy.c_str());
  if (!loaded.ok()) {
    std::string message(loaded.status().message());
    for (size_t at = message.find(copy); at != std::string::npos;
         at = message.find(copy, at + path.size())) {
      message.replace(at, copy.size(), path);
    }
    return absl::Status(loaded.status().code(), message);
  }
  loaded->path = path;
  return loaded;
}

// A factory under another name (a library that provides both a filter and
// a transform registers them as <name>_filter and <name>_transform).
template <typename Factory, typename Made>
class Renamed : public Factory {
 public:
  Renamed(std::unique_ptr<Factory> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<std::unique_ptr<Made>> Create(
      const PluginConfig& config) const override {
    return inner_->Create(config);
  }

 private:
  std::unique_ptr<Factory> inner_;
  std::string name_;
};

}  // namespace

absl::StatusOr<PluginSettings> ParsePluginSettings(
    std::string_view text, std::string_view source_name) {
  toml::table table;
  try {
    table = toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    const toml::source_position& where = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source_name), ":", where.line, ":", where.column,
                     ": syntax error: ", AV(error.description())));
  }
  PluginSettings settings;
  Problems problems(source_name);

  if (const toml::node* libs = table.get("plugin_libraries")) {
    const auto* array = libs->as_array();
    if (array == nullptr) {
      problems.Add(*libs, "plugin_libraries must be an array of tables "
                          "([[plugin_libraries]])");
    } else {
      for (const toml::node& e : *array) {
        const auto* t = e.as_table();
        if (t == nullptr) {
          problems.Add(e, "each [[plugin_libraries]] entry must be a table");
          continue;
        }
        LibrarySpec lib;
        for (auto&& [key, value] : *t) {
          if (key.str() == "path" && value.as_string() != nullptr) {
            lib.path = value.as_string()->get();
          } else if (key.str() == "required" &&
                     value.as_boolean() != nullptr) {
            lib.required = value.as_boolean()->get();
          } else {
            problems.Add(value,
                         absl::StrCat("[[plugin_libraries]]: unknown or "
                                      "mistyped key \"",
                                      AV(key.str()),
                                      "\" (path = \"FILE\", required = "
                                      "true|false)"));
          }
        }
        if (lib.path.empty()) {
          problems.Add(e, "[[plugin_libraries]] entry needs path = \"FILE\"");
          continue;
        }
        settings.libraries.push_back(std::move(lib));
      }
    }
  }

  if (const toml::node* routes = table.get("routes")) {
    const auto* array = routes->as_array();
    if (array == nullptr) {
      problems.Add(*routes, "routes must be an array of tables ([[routes]])");
    } else {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& e = *array->get(i);
        const auto* t = e.as_table();
        if (t == nullptr) {
          problems.Add(e, "each [[routes]] entry must be a table");
          continue;
        }
        RouteSpec route;
        const std::string where = absl::StrCat("route ", i + 1);
        for (auto&& [key, value] : *t) {
          if (key.str() == "pattern" && value.as_string() != nullptr) {
            route.pattern = value.as_string()->get();
          } else if (key.str() == "chain") {
            ParseChain(value, where, &route.chain, &problems);
          } else {
            problems.Add(value, absl::StrCat(where, ": unknown or mistyped "
                                                    "key \"",
                                             AV(key.str()),
                                             "\" (pattern = \"P\", "
                                             "[[routes.chain]])"));
          }
        }
        if (route.pattern.empty()) {
          problems.Add(e, absl::StrCat(where, " needs pattern = \"P\""));
        } else if (absl::Status s =
                       topic::ValidatePattern(route.pattern, topic::Limits{});
                   !s.ok()) {
          problems.Add(e, absl::StrCat(where, ": ", s.message()));
        }
        settings.routes.push_back(std::move(route));
      }
    }
  }

  if (const toml::node* types = table.get("message_types")) {
    const auto* array = types->as_array();
    if (array == nullptr) {
      problems.Add(*types, "message_types must be an array of tables "
                           "([[message_types]])");
    } else {
      for (const toml::node& e : *array) {
        const auto* t = e.as_table();
        if (t == nullptr) {
          problems.Add(e, "each [[message_types]] entry must be a table");
          continue;
        }
        MessageTypeSpec spec;
        for (auto&& [key, value] : *t) {
          const auto* text = value.as_string();
          if (text != nullptr && key.str() == "pattern") {
            spec.pattern = text->get();
          } else if (text != nullptr && key.str() == "type") {
            spec.type = text->get();
          } else if (text != nullptr && key.str() == "descriptor_set") {
            spec.descriptor_set = text->get();
          } else {
            problems.Add(value, absl::StrCat(
                                    "[[message_types]]: unknown or mistyped "
                                    "key \"",
                                    AV(key.str()),
                                    "\" (pattern, type, descriptor_set: "
                                    "strings)"));
          }
        }
        if (spec.pattern.empty() || spec.type.empty() ||
            spec.descriptor_set.empty()) {
          problems.Add(e, "[[message_types]] entry needs pattern, type and "
                          "descriptor_set");
          continue;
        }
        if (absl::Status s =
                topic::ValidatePattern(spec.pattern, topic::Limits{});
            !s.ok()) {
          problems.Add(e, absl::StrCat("[[message_types]]: ", s.message()));
          continue;
        }
        settings.message_types.push_back(std::move(spec));
      }
    }
  }

  if (const toml::node* subs = table.get("subscriptions")) {
    const auto* t = subs->as_table();
    if (t == nullptr) {
      problems.Add(*subs, "subscriptions must be a table ([subscriptions])");
    } else {
      for (auto&& [key, value] : *t) {
        if (key.str() == "plugins" &&
            StringList(value, &settings.subscription_plugins)) {
          continue;
        }
        if (key.str() == "descriptor_sets" &&
            StringList(value, &settings.subscription_descriptor_sets)) {
          continue;
        }
        problems.Add(value,
                     absl::StrCat("[subscriptions]: unknown or mistyped key "
                                  "\"",
                                  AV(key.str()),
                                  "\" (plugins = [...], descriptor_sets = "
                                  "[...], arrays of strings)"));
      }
    }
  }
  if (absl::Status s = problems.status(); !s.ok()) return s;
  return settings;
}

bool operator==(const PluginSettings& a, const PluginSettings& b) {
  auto same_chain = [](const std::vector<StageSpec>& x,
                       const std::vector<StageSpec>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].plugin != y[i].plugin ||
          x[i].config.entries() != y[i].config.entries()) {
        return false;
      }
    }
    return true;
  };
  if (a.libraries.size() != b.libraries.size() ||
      a.routes.size() != b.routes.size() ||
      a.message_types.size() != b.message_types.size()) {
    return false;
  }
  for (size_t i = 0; i < a.libraries.size(); ++i) {
    if (a.libraries[i].path != b.libraries[i].path ||
        a.libraries[i].required != b.libraries[i].required) {
      return false;
    }
  }
  for (size_t i = 0; i < a.routes.size(); ++i) {
    if (a.routes[i].pattern != b.routes[i].pattern ||
        !same_chain(a.routes[i].chain, b.routes[i].chain)) {
      return false;
    }
  }
  for (size_t i = 0; i < a.message_types.size(); ++i) {
    const MessageTypeSpec& x = a.message_types[i];
    const MessageTypeSpec& y = b.message_types[i];
    if (x.pattern != y.pattern || x.type != y.type ||
        x.descriptor_set != y.descriptor_set) {
      return false;
    }
  }
  return a.subscription_plugins == b.subscription_plugins &&
         a.subscription_descriptor_sets == b.subscription_descriptor_sets;
}

// Written a line at a time: a chain entry's settings keep their order
// (header_set adds headers in it), which a toml::table would sort.
std::string PluginSettingsToToml(const PluginSettings& settings) {
  std::string out;
  auto line = [&out](std::string text) {
    out += text;
    out += "\n";
  };
  for (const LibrarySpec& lib : settings.libraries) {
    out += "\n[[plugin_libraries]]\n";
    line(TomlKeyValue("path", lib.path));
    line(TomlKeyValue("required", lib.required));
  }
  for (const RouteSpec& route : settings.routes) {
    out += "\n[[routes]]\n";
    line(TomlKeyValue("pattern", route.pattern));
    for (const StageSpec& stage : route.chain) {
      out += "\n[[routes.chain]]\n";
      line(TomlKeyValue("plugin", stage.plugin));
      // Plugins read every setting as text: a number or boolean in the
      // file comes back as the same text, quoted.
      for (const auto& [key, value] : stage.config.entries()) {
        line(TomlKeyValue(key, value));
      }
    }
  }
  for (const MessageTypeSpec& type : settings.message_types) {
    out += "\n[[message_types]]\n";
    line(TomlKeyValue("pattern", type.pattern));
    line(TomlKeyValue("type", type.type));
    line(TomlKeyValue("descriptor_set", type.descriptor_set));
  }
  out += "\n[subscriptions]\n";
  line(TomlKeyValue("plugins", TomlStrings(settings.subscription_plugins)));
  line(TomlKeyValue("descriptor_sets",
                    TomlStrings(settings.subscription_descriptor_sets)));
  return out;
}

absl::StatusOr<std::unique_ptr<PluginSet>> PluginSet::Build(
    const PluginSettings& settings, const topic::Limits& topic_limits,
    std::vector<std::string>* warnings) {
  std::unique_ptr<PluginSet> set(new PluginSet());
  set->settings_ = settings;
  Registry& r = set->registry_;
  if (absl::Status s = AddBuiltins(&r, topic_limits); !s.ok()) return s;
  for (absl::Status s :
       {r.Add(MakeHeaderFilterFactory()), r.Add(MakePayloadFilterFactory()),
        r.Add(MakeProtoToJsonFactory()), r.Add(MakeJsonToProtoFactory()),
        r.Add(MakeRedactFactory()), r.Add(MakeLuaFilterFactory()),
        r.Add(MakeLuaTransformFactory())}) {
    if (!s.ok()) return s;
  }
  for (const LibrarySpec& lib : settings.libraries) {
    absl::StatusOr<LoadedPlugin> loaded = LoadFreshCopy(lib.path);
    absl::Status s = loaded.status();
    if (s.ok() && loaded->filter_factory != nullptr &&
        loaded->transform_factory != nullptr) {
      s = r.Add(std::make_unique<Renamed<FilterFactory, Filter>>(
          std::move(loaded->filter_factory), loaded->name + "_filter"));
      if (s.ok()) {
        s = r.Add(std::make_unique<Renamed<TransformFactory, Transform>>(
            std::move(loaded->transform_factory),
            loaded->name + "_transform"));
      }
    } else if (s.ok() && loaded->filter_factory != nullptr) {
      s = r.Add(std::move(loaded->filter_factory));
    } else if (s.ok() && loaded->transform_factory != nullptr) {
      s = r.Add(std::move(loaded->transform_factory));
    }
    if (!s.ok()) {
      std::string message =
          absl::StrCat("plugin library ", lib.path, ": ", s.message());
      if (lib.required) return absl::Status(s.code(), message);
      if (warnings != nullptr) {
        warnings->push_back(
            absl::StrCat(message, " (required = false: starting without it)"));
      }
    }
  }
  for (const std::string& name : settings.subscription_plugins) {
    if (absl::StatusOr<Registry::Entry> known = r.Find(name); !known.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[subscriptions] plugins: ", known.status().message()));
    }
  }
  for (size_t i = 0; i < settings.routes.size(); ++i) {
    const RouteSpec& spec = settings.routes[i];
    const std::string where =
        absl::StrCat("route ", i + 1, " (", spec.pattern, ")");
    std::vector<StageSpec> stages = spec.chain;
    set->FillMessageTypes(spec.pattern, &stages);
    auto chain = Chain::Build(
        r, stages, where,
        [&](std::string_view plugin, size_t position) {
          auto counters = std::make_shared<StageCounters>();
          set->route_rows_.push_back(
              {std::string(plugin),
               absl::StrCat("route ", spec.pattern, " #", position + 1),
               {}});
          set->route_counters_.push_back(counters);
          return counters;
        });
    if (!chain.ok()) return chain.status();
    set->routes_.push_back({spec.pattern, *std::move(chain)});
  }
  return set;
}

void PluginSet::InheritCounters(const PluginSet& old) {
  subscription_counters_ = old.subscription_counters_;
  for (size_t i = 0; i < route_rows_.size(); ++i) {
    for (size_t j = 0; j < old.route_rows_.size(); ++j) {
      if (old.route_rows_[j].chain == route_rows_[i].chain &&
          old.route_rows_[j].plugin == route_rows_[i].plugin) {
        *route_counters_[i] = *old.route_counters_[j];
        break;
      }
    }
  }
}

Chain* PluginSet::RouteFor(std::string_view topic) {
  for (Route& route : routes_) {
    if (topic::PatternMatches(route.pattern, topic)) return route.chain.get();
  }
  return nullptr;
}

std::shared_ptr<StageCounters> PluginSet::SubscriptionCounters(
    std::string_view plugin) const {
  for (auto& [name, counters] : subscription_counters_) {
    if (name == plugin) return counters;
  }
  subscription_counters_.emplace_back(std::string(plugin),
                                      std::make_shared<StageCounters>());
  return subscription_counters_.back().second;
}

namespace {

// True if every topic `inner` matches is matched by `outer` (both valid
// patterns).
bool Covers(std::string_view outer, std::string_view inner) {
  std::vector<absl::string_view> o = absl::StrSplit(AV(outer), '.');
  std::vector<absl::string_view> in = absl::StrSplit(AV(inner), '.');
  for (size_t i = 0; i < o.size(); ++i) {
    if (o[i] == ">") return i < in.size();
    if (i >= in.size()) return false;
    if (in[i] == ">") return false;
    if (o[i] == "*") continue;
    if (in[i] == "*" || in[i] != o[i]) return false;
  }
  return o.size() == in.size();
}

bool NeedsType(const StageSpec& spec) {
  if (spec.config.Find("type") != nullptr) return false;
  if (spec.plugin == "proto_to_json" || spec.plugin == "json_to_proto") {
    return true;
  }
  if (spec.plugin == "payload_filter" || spec.plugin == "redact") {
    const std::string* format = spec.config.Find("format");
    return format != nullptr && *format == "protobuf";
  }
  return false;
}

}  // namespace

void PluginSet::FillMessageTypes(std::string_view pattern,
                                 std::vector<StageSpec>* stages) const {
  if (pattern.empty() || settings_.message_types.empty()) return;
  const MessageTypeSpec* found = nullptr;
  for (const MessageTypeSpec& t : settings_.message_types) {
    if (Covers(t.pattern, pattern)) {
      found = &t;
      break;
    }
  }
  if (found == nullptr) return;
  for (StageSpec& spec : *stages) {
    if (!NeedsType(spec)) continue;
    spec.config.Add("type", found->type);
    if (spec.config.Find("descriptor_set") == nullptr) {
      spec.config.Add("descriptor_set", found->descriptor_set);
    }
  }
}

absl::StatusOr<std::unique_ptr<Chain>> PluginSet::SubscriptionChain(
    std::string_view pattern, std::string_view filter,
    const std::vector<StageSpec>& stages) const {
  // As in the config: one setting cannot have two values (the plugin would
  // see only one of them, silently).
  for (size_t n = 0; n < stages.size(); ++n) {
    const auto& entries = stages[n].config.entries();
    for (size_t i = 1; i < entries.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (entries[j].first != entries[i].first) continue;
        return absl::InvalidArgumentError(absl::StrCat(
            "plugin ", n + 1, " (", Quoted(stages[n].plugin), "): setting ",
            Quoted(entries[i].first), " is given twice"));
      }
    }
  }
  std::vector<StageSpec> all;
  if (!filter.empty()) {
    // The expression's own error, with its position, is what the
    // subscriber needs.
    if (auto parsed = MakeHeaderFilter(filter); !parsed.ok()) {
      return parsed.status();
    }
    StageSpec spec;
    spec.plugin = "header_filter";
    spec.config.Add("expr", std::string(filter));
    all.push_back(std::move(spec));
  }
  all.insert(all.end(), stages.begin(), stages.end());
  const auto& allowed = settings_.subscription_plugins;
  for (const StageSpec& spec : all) {
    // An unknown name is the subscriber's mistake (INVALID_PLUGIN), whatever
    // the allow-list says.
    if (absl::StatusOr<Registry::Entry> known = registry_.Find(spec.plugin);
        !known.ok()) {
      return absl::InvalidArgumentError(known.status().message());
    }
    if (std::find(allowed.begin(), allowed.end(), spec.plugin) ==
        allowed.end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "plugin \"", spec.plugin,
          "\" is not allowed in subscriptions (siftd's [subscriptions] "
          "plugins: ",
          absl::StrJoin(allowed, ", "), ")"));
    }
    if (const std::string* sets = spec.config.Find("descriptor_set")) {
      const auto& ok_sets = settings_.subscription_descriptor_sets;
      for (absl::string_view path : absl::StrSplit(*sets, ',')) {
        path = absl::StripAsciiWhitespace(path);
        if (std::find(ok_sets.begin(), ok_sets.end(), path) == ok_sets.end()) {
          return absl::PermissionDeniedError(absl::StrCat(
              "descriptor set \"", path,
              "\" is not listed in siftd's [subscriptions] descriptor_sets"));
        }
      }
    }
  }
  // The operator's [[message_types]] apply after the checks above: their
  // descriptor sets need not be listed for subscribers.
  FillMessageTypes(pattern, &all);
  auto chain = Chain::Build(
      registry_, all, "subscription",
      [this](std::string_view plugin, size_t) {
        return SubscriptionCounters(plugin);
      });
  return chain;
}

std::vector<PluginStatsRow> PluginSet::Stats() const {
  std::vector<PluginStatsRow> rows = route_rows_;
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].counters = *route_counters_[i];
  }
  for (const auto& [name, counters] : subscription_counters_) {
    rows.push_back({name, "subscriptions", *counters});
  }
  return rows;
}

}  // namespace sift::plugin
