// ChildProcess runs a program (siftd, or sift-bench's own proxy-server) as a
// child of sift-bench: fork/exec, its stdout and stderr appended to a log
// file, and stopped by its pid (SIGTERM, then SIGKILL after a bounded wait).
// The child gets SIGTERM if sift-bench dies first (PR_SET_PDEATHSIG).
//
// Thread-safety: not thread-safe; use from one thread.
#ifndef SIFT_BENCH_CHILD_PROCESS_H_
#define SIFT_BENCH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sift::bench {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the given arguments. The log goes to a new
  // file under $TEST_TMPDIR or $TMPDIR (else /tmp), removed by the destructor
  // unless WaitForLogLine failed (its error names the file).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // Stop()s if still running.

  // Waits until a line of the log contains `needle` and returns that line.
  // Fails early if the child exits; the error quotes the log's tail.
  absl::StatusOr<std::string> WaitForLogLine(std::string_view needle,
                                             absl::Duration timeout);

  // SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code, or
  // -signal if a signal ended it. Idempotent.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(10));

  bool IsRunning();
  pid_t pid() const { return pid_; }
  // The last `bytes` bytes of the log.
  std::string LogTail(size_t bytes = 2000) const;

 private:
  ChildProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  bool exited_ = false;
  int exit_code_ = 0;
  bool keep_log_ = false;
};

// The absolute path of the running executable (/proc/self/exe).
absl::StatusOr<std::string> SelfExecutable();

}  // namespace sift::bench

#endif  // SIFT_BENCH_CHILD_PROCESS_H_
