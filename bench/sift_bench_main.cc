// sift-bench: measures a sift broker against a plain ZeroMQ proxy baseline,
// ZeroMQ with no broker, nats-server and redis-server.
// See `sift-bench --help` and BENCHMARKS.md.
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "bench/memory.h"
#include "bench/nats_transport.h"
#include "bench/options.h"
#include "bench/proxy_transport.h"
#include "bench/redis_transport.h"
#include "bench/report.h"
#include "bench/run.h"
#include "bench/servers.h"
#include "bench/sift_transport.h"

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sift-bench: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sift::bench;
  // The same allocator setting for every process of both modes (this one,
  // the proxy-server subcommand below, and siftd, which sets it itself):
  // keep freed memory for reuse rather than trimming it and faulting fresh
  // pages in for every large ZeroMQ frame. See BENCHMARKS.md, "Notes".
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // Hidden subcommand: the baseline proxy process.
  if (argc > 1 && std::strcmp(argv[1], "proxy-server") == 0) {
    return ProxyServerMain(argc - 1, argv + 1);
  }
  signal(SIGPIPE, SIG_IGN);
  auto options = ParseOptions(argc, argv);
  if (!options.ok()) {
    if (absl::IsNotFound(options.status())) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "sift-bench: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  const Options& o = *options;

  if (o.memory_subs > 0) {
    auto result = o.mode == Mode::kSift ? RunSiftMemory(o) : RunProxyMemory(o);
    if (!result.ok()) return Fail(result.status());
    const std::string report = o.json ? JsonReport(*result)
                                      : TextReport(*result);
    std::fputs(report.c_str(), stdout);
    return 0;
  }

  std::unique_ptr<Transport> transport;
  switch (o.mode) {
    case Mode::kSift:
      transport = MakeSiftTransport(o);
      break;
    case Mode::kProxy:
    case Mode::kDirect:
      transport = MakeProxyTransport(o);
      break;
    case Mode::kNats:
      transport = MakeNatsTransport(o);
      break;
    case Mode::kRedis:
      transport = MakeRedisTransport(o);
      break;
  }
  auto result = RunMessages(o, transport.get());
  transport.reset();
  if (!result.ok()) return Fail(result.status());
  const std::string report = o.json ? JsonReport(*result)
                                    : TextReport(*result);
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);
  return result->complete ? 0 : 3;
}
