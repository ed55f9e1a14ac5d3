// Heap bytes per subscription in the routing core (Router + SubjectTree),
// without sockets: the part of broker RSS that subscriptions cost directly.
//   bazel run //bench:router_memory -- [SUBSCRIPTIONS] [CLIENTS]
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "broker/router/router.h"

// Bytes in use from malloc, including large blocks it maps separately.
static size_t HeapBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

int main(int argc, char** argv) {
  const long subs = argc > 1 ? std::atol(argv[1]) : 1000000;
  const long clients = argc > 2 ? std::atol(argv[2]) : 1000;
  sift::RouterLimits limits;
  limits.max_subscriptions_per_client = 10000000;
  const size_t before = HeapBytes();
  {
    sift::Router router(limits);
    std::vector<sift::Router::ClientHandle> handles;
    for (long c = 0; c < clients; ++c) handles.push_back(router.AddClient("m"));
    const size_t with_clients = HeapBytes();
    for (long i = 0; i < subs; ++i) {
      const std::string pattern = "mem." + std::to_string(i) + ".*";
      absl::Status s = router.Subscribe(handles[i % clients], i + 1, pattern, "");
      if (!s.ok()) {
        std::fprintf(stderr, "subscribe: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    const size_t after = HeapBytes();
    std::printf("%ld subscriptions over %ld clients (\"mem.<i>.*\"): "
                "%.1f heap bytes per subscription\n",
                subs, clients,
                static_cast<double>(after - with_clients) / subs);
  }
  std::printf("heap after teardown: %+ld bytes\n",
              static_cast<long>(HeapBytes()) - static_cast<long>(before));
  return 0;
}
