// The skeleton of a message run, shared by sift and the proxy baseline:
// prepare the transport, start one thread per publisher on a common signal,
// watch the subscribers' receivers until they have everything (or the drain
// or whole-run timeout passes), sample CPU and memory, and summarize.
//
// Thread-safety: RunMessages() is called from one thread; it starts and joins
// its publisher threads.
#ifndef SIFT_BENCH_RUN_H_
#define SIFT_BENCH_RUN_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/receiver.h"
#include "bench/workload.h"

namespace sift::bench {

// What differs between sift and the baseline.
class Transport {
 public:
  virtual ~Transport() = default;

  // Starts or finds the server, connects subscriber i (feeding
  // receivers[i]), the noise subscriptions and the publishers, and returns
  // once a message published now reaches every subscriber.
  virtual absl::Status Prepare(const std::vector<Receiver*>& receivers) = 0;
  // Sends one message from publisher `p`; never drops it: on backpressure
  // it waits and retries, adding one to *retries per refusal. Called only on
  // publisher p's thread.
  virtual absl::Status Send(int p, std::string_view payload,
                            uint64_t* retries) = 0;
  // --confirm_window: starts one confirmed publish from publisher `p` and
  // returns at once. An error means nothing was sent and `done` is never
  // called (ResourceExhausted: the client holds too many, try later); OK
  // means `done` runs exactly once, on a thread of the transport's, with
  // the broker's answer (ResourceExhausted: refused for now, send it
  // again). Called on publisher p's thread, and from the `done` callbacks
  // of its earlier calls (the next message takes an answered one's place).
  virtual absl::Status SendConfirmedAsync(
      int p, uint64_t seq, std::string_view payload,
      std::function<void(absl::Status)> done) {
    return absl::UnimplementedError("confirmed publishes");
  }
  // --replay: called once the publishers are done; starts feeding the
  // receivers given to Prepare() (which, in a replay run, only keeps them)
  // from the stream's first record.
  virtual absl::Status StartReplay() {
    return absl::UnimplementedError("--replay");
  }
  // Publisher p will not send for a while (a paced run before it sleeps, and
  // after its last message): a transport that buffers writes sends what it
  // holds. Called only on publisher p's thread.
  virtual absl::Status Flush(int p) { return absl::OkStatus(); }
  // At the end, while still connected: the server's own counters (deltas
  // over the run), if it has any.
  virtual void CollectServerCounters(std::map<std::string, uint64_t>* out) {}
  // At the end, while still connected: the stream's state and the disk
  // probe (--stream), into result->stream and result->disk; notes too.
  virtual void CollectDurability(RunResult* result) {}
  // Stops the subscribers and disconnects everything; afterwards the
  // receivers are no longer touched.
  virtual void Disconnect() = 0;
  // Stops a spawned server; its exit code (0 if sift-bench did not start it).
  virtual int StopServer() = 0;

  virtual pid_t server_pid() const = 0;
  virtual std::string server_description() const = 0;
  virtual bool spawned() const = 0;
  // Remarks for the report (e.g. how the baseline maps a queue group).
  virtual std::vector<std::string> notes() const { return {}; }
};

// Runs the workload in `options` over `transport`.
absl::StatusOr<RunResult> RunMessages(const Options& options,
                                      Transport* transport);

}  // namespace sift::bench

#endif  // SIFT_BENCH_RUN_H_
