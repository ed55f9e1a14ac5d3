// siftd: the sift broker process. See `siftd --help` and docs/configuration.md.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <zmq.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "broker/config/config.h"
#include "broker/log/log.h"
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

  auto cli = sift::ParseCommandLine(argc, argv, sift::kSiftVersionNumber);
  if (!cli.ok()) {
    std::fprintf(stderr, "siftd: %s\n", std::string(cli.status().message()).c_str());
    return 2;
  }
  if (cli->action == sift::CommandLine::Action::kExit) {
    std::fputs(cli->output.c_str(), cli->exit_code == 0 ? stdout : stderr);
    return cli->exit_code;
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

  void* context = zmq_ctx_new();
  auto server = sift::Server::Create(cli->config, context);
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

  (*server)->Run();
  g_server = nullptr;
  server->reset();
  zmq_ctx_term(context);
  sift::Log(sift::LogLevel::kInfo, "stopped", {});
  return 0;
}
