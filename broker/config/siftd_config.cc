#include "broker/config/siftd_config.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift {

bool operator==(const SiftdConfig& a, const SiftdConfig& b) {
  return a.settings == b.settings && a.plugins == b.plugins &&
         a.streams == b.streams && a.schedules == b.schedules;
}

absl::StatusOr<SiftdConfig> ParseSiftdSections(const Config& settings,
                                               std::string_view text,
                                               std::string_view source_name) {
  SiftdConfig config;
  config.settings = settings;
  absl::StatusOr<plugin::PluginSettings> plugins =
      plugin::ParsePluginSettings(text, source_name);
  if (!plugins.ok()) return plugins.status();
  config.plugins = *std::move(plugins);

  absl::StatusOr<std::vector<streams::StreamSettings>> streams =
      streams::ParseStreamSections(text, source_name);
  if (!streams.ok()) return streams.status();
  if (!streams->empty() && settings.data_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        AV(source_name),
        ": [[streams]] needs data_dir: set data_dir (or --data_dir=DIR) to "
        "where siftd may keep them"));
  }
  config.streams = *std::move(streams);

  delivery::ScheduleLimits limits;
  limits.topic = {settings.max_topic_length, settings.max_topic_tokens};
  limits.headers = {settings.max_headers, settings.max_headers_bytes};
  limits.max_payload_bytes = settings.max_payload_bytes;
  absl::StatusOr<std::vector<delivery::Schedule>> schedules =
      delivery::ParseScheduleSections(text, source_name, limits);
  if (!schedules.ok()) return schedules.status();
  config.schedules = *std::move(schedules);
  return config;
}

absl::StatusOr<SiftdConfig> LoadSiftdConfig(const CommandLine& command_line) {
  if (command_line.config_path.empty()) {
    SiftdConfig config;
    config.settings = command_line.config;
    return config;
  }
  absl::StatusOr<std::string> text = ReadConfigFile(command_line.config_path);
  if (!text.ok()) return text.status();
  return ParseSiftdSections(command_line.config, *text,
                            command_line.config_path);
}

std::string SiftdConfigToToml(const SiftdConfig& config) {
  std::string out = ConfigToToml(config.settings);
  out +=
      "\n# Plugin sections ([[plugin_libraries]], [[routes]], "
      "[[message_types]],\n# [subscriptions]): docs/plugins.md.\n";
  if (config.plugins.libraries.empty() && config.plugins.routes.empty() &&
      config.plugins.message_types.empty()) {
    out += "# No plugin libraries, routes or message types.\n";
  }
  out += plugin::PluginSettingsToToml(config.plugins);
  out += "\n# Durable streams ([[streams]]): docs/delivery.md.\n";
  if (config.streams.empty()) out += "# No streams.\n";
  out += streams::StreamSectionsToToml(config.streams);
  out += "\n# Recurring schedules ([[schedules]]): docs/schedules.md.\n";
  if (config.schedules.empty()) out += "# No schedules.\n";
  out += delivery::ScheduleSectionsToToml(config.schedules);
  return out;
}

}  // namespace sift
