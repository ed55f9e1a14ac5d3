// siftd: the sift broker process. See `siftd --help` and docs/configuration.md.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <zmq.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/config/config.h"
#include "broker/config/siftd_config.h"
#include "broker/log/log.h"
#include "broker/plugin/plugin_set.h"
#include "broker/server/library_log.h"
#include "broker/server/server.h"

namespace {

sift::Server* g_server = nullptr;

void OnSignal(int) {
  if (g_server != nullptr) g_server->Shutdown();
}

// Raises the soft limit on open files to the hard limit (each client
// connection is one file descriptor) and logs what siftd can hold.
void RaiseFdLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  sift::Log(sift::LogLevel::kInfo, "file descriptor limit",
            {{"soft", static_cast<uint64_t>(limit.rlim_cur)},
             {"hard", static_cast<uint64_t>(limit.rlim_max)},
             {"was", static_cast<uint64_t>(before)}});
}

// Builds the plugin set of `settings`: route chains, plugin libraries,
// subscription rules.
absl::StatusOr<std::unique_ptr<sift::plugin::PluginSet>> BuildPlugins(
    const sift::plugin::PluginSettings& settings, const sift::Config& config) {
  std::vector<std::string> warnings;
  auto set = sift::plugin::PluginSet::Build(
      settings, sift::topic::Limits{config.max_topic_length,
                                    config.max_topic_tokens},
      &warnings);
  for (const std::string& w : warnings) {
    sift::Log(sift::LogLevel::kWarn, "plugin library not loaded",
              {{"error", w}});
  }
  if (set.ok()) {
    sift::Log(sift::LogLevel::kInfo, "plugins",
              {{"routes", static_cast<uint64_t>((*set)->route_count())},
               {"registered",
                static_cast<uint64_t>((*set)->registry().size())}});
  }
  return set;
}

// Reads the plugin sections of the config file at `path` again and builds
// them (SIGHUP, RELOAD).
absl::StatusOr<std::unique_ptr<sift::plugin::PluginSet>> ReloadPlugins(
    const std::string& path, const sift::Config& config) {
  absl::StatusOr<std::string> text = sift::ReadConfigFile(path);
  if (!text.ok()) return text.status();
  auto parsed = sift::plugin::ParsePluginSettings(*text, path);
  if (!parsed.ok()) return parsed.status();
  return BuildPlugins(*parsed, config);
}

}  // namespace

int main(int argc, char** argv) {
  // Whoever started siftd may send SIGTERM as soon as its port is open (a
  // supervisor, a test harness): from here on, hold SIGINT and SIGTERM back
  // until the handler can act on them (one that came meanwhile is delivered
  // on unblocking), so such a stop is a clean shutdown with exit code 0.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // SIGHUP (reload the plugin config) stays blocked in every thread; one
  // thread takes it with sigwait.
  sigset_t reload_signal;
  sigemptyset(&reload_signal);
  sigaddset(&reload_signal, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &reload_signal, nullptr);

  auto cli = sift::ParseCommandLine(argc, argv, sift::kSiftVersionNumber);
  if (!cli.ok()) {
    std::fprintf(stderr, "siftd: %s\n", std::string(cli.status().message()).c_str());
    return 2;
  }
  if (cli->action == sift::CommandLine::Action::kExit) {
    std::fputs(cli->output.c_str(), cli->exit_code == 0 ? stdout : stderr);
    return cli->exit_code;
  }
  // The config file's sections (plugins, [[streams]], [[schedules]]).
  auto loaded = sift::LoadSiftdConfig(*cli);
  if (!loaded.ok()) {
    std::fprintf(stderr, "siftd: %s\n",
                 std::string(loaded.status().message()).c_str());
    return 2;
  }
  if (cli->action == sift::CommandLine::Action::kPrintConfig) {
    std::fputs(sift::SiftdConfigToToml(*loaded).c_str(), stdout);
    return 0;
  }
  if (auto level = sift::ParseLogLevel(cli->config.log_level); level.ok()) {
    sift::SetLogLevel(*level);
  }
  sift::InstallLibraryLogHandlers();
  RaiseFdLimit();

  // Batches come and go in 64-128 KiB buffers. Keep freed memory for reuse
  // instead of returning it to the kernel (and faulting fresh pages in for
  // the next batch): measured in BENCHMARKS.md. RSS then stays at its peak.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);

  auto plugins = BuildPlugins(loaded->plugins, cli->config);
  if (!plugins.ok()) {
    std::fprintf(stderr, "siftd: %s\n",
                 std::string(plugins.status().message()).c_str());
    return 2;
  }
  void* context = zmq_ctx_new();
  auto server = sift::Server::Create(cli->config, context,
                                     *std::move(plugins),
                                     std::move(loaded->streams),
                                     std::move(loaded->schedules));
  if (!server.ok()) {
    sift::Log(sift::LogLevel::kError, "cannot start",
              {{"error", std::string(server.status().message())}});
    zmq_ctx_term(context);
    return 1;
  }
  g_server = server->get();
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);

  const std::string config_path = cli->config_path;
  const sift::Config config = cli->config;
  if (!config_path.empty()) {
    (*server)->SetReloader([config_path, config] {
      return ReloadPlugins(config_path, config);
    });
  }
  // SIGHUP: re-read the plugin sections; an invalid file is logged and the
  // old config stays.
  std::atomic<bool> stopping{false};
  sift::Server* const running = server->get();
  std::thread reloader([&] {
    for (;;) {
      int signal_number = 0;
      if (sigwait(&reload_signal, &signal_number) != 0) continue;
      if (stopping.load()) return;
      if (config_path.empty()) {
        sift::Log(sift::LogLevel::kWarn,
                  "SIGHUP ignored: siftd was started without --config", {});
        continue;
      }
      auto fresh = ReloadPlugins(config_path, config);
      if (!fresh.ok()) {
        sift::Log(sift::LogLevel::kWarn,
                  "reload refused; the old plugin config stays",
                  {{"error", std::string(fresh.status().message())}});
        continue;
      }
      running->Reload(*std::move(fresh));
    }
  });

  (*server)->Run();
  stopping.store(true);
  pthread_kill(reloader.native_handle(), SIGHUP);
  reloader.join();
  g_server = nullptr;
  server->reset();
  zmq_ctx_term(context);
  sift::Log(sift::LogLevel::kInfo, "stopped", {});
  return 0;
}
