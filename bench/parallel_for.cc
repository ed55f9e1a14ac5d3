#include "bench/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sift::bench {

absl::Status ParallelFor(int n, int threads,
                         const std::function<absl::Status(int)>& fn) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first_error;  // guarded by mu
  std::atomic<bool> failed{false};
  auto work = [&] {
    while (!failed.load()) {
      const int i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status s = fn(i);
      if (!s.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = s;
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> pool;
  const int t = std::max(1, std::min(threads, n));
  for (int i = 0; i < t; ++i) pool.emplace_back(work);
  for (std::thread& th : pool) th.join();
  return first_error;
}

}  // namespace sift::bench
