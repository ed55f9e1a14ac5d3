// SiftdConfig is everything siftd is configured with: the settings (Config,
// config.h: defaults, the --config file's top-level keys, flags) and the
// sections of the --config file that other modules read: the plugin
// sections (broker/plugin/plugin_set.h), [[streams]]
// (broker/streams/stream_config.h) and [[schedules]]
// (broker/delivery/schedules.h). siftd loads it once at start; for
// --print-config it prints it with SiftdConfigToToml, whose output, given
// back with --config, loads as the same SiftdConfig.
//
// Free functions of their arguments (LoadSiftdConfig reads the file):
// thread-safe.
#ifndef SIFT_BROKER_CONFIG_SIFTD_CONFIG_H_
#define SIFT_BROKER_CONFIG_SIFTD_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/config/config.h"
#include "broker/delivery/schedules.h"
#include "broker/plugin/plugin_set.h"
#include "broker/streams/stream_config.h"

namespace sift {

struct SiftdConfig {
  Config settings;
  plugin::PluginSettings plugins;  // the defaults without a file
  std::vector<streams::StreamSettings> streams;
  std::vector<delivery::Schedule> schedules;
};

// Compares every part.
bool operator==(const SiftdConfig& a, const SiftdConfig& b);
inline bool operator!=(const SiftdConfig& a, const SiftdConfig& b) {
  return !(a == b);
}

// `settings` with the sections of the config file `text`, read from
// `source_name`: its plugin sections, [[streams]] and [[schedules]] (whose
// messages are held to `settings`' topic, header and payload limits), as
// siftd reads them at start. The top-level keys are not read again: they
// are in `settings` already (ParseCommandLine). Errors are InvalidArgument
// naming `source_name` and the line, as the sections' parsers give them;
// [[streams]] without a data_dir in `settings` is one too. The first
// section in error (plugins, streams, schedules) is the one reported.
absl::StatusOr<SiftdConfig> ParseSiftdSections(const Config& settings,
                                               std::string_view text,
                                               std::string_view source_name);

// command_line.config with the sections of command_line.config_path (none
// without one: the default plugin settings, no streams, no schedules).
// Errors: ReadConfigFile's, and ParseSiftdSections'.
absl::StatusOr<SiftdConfig> LoadSiftdConfig(const CommandLine& command_line);

// `config` as one TOML file: ConfigToToml's settings, then the plugin
// sections (PluginSettingsToToml), [[streams]] and [[schedules]], each
// introduced by a comment (that says "none" when a list is empty).
// LoadSiftdConfig of a --config file holding it gives `config` back.
std::string SiftdConfigToToml(const SiftdConfig& config);

}  // namespace sift

#endif  // SIFT_BROKER_CONFIG_SIFTD_CONFIG_H_
