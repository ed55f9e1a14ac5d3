// SiftdProcess runs the real `siftd` binary as a child process for
// integration tests: it picks a free loopback TCP port, starts siftd on it
// with extra flags, captures its stderr (the logfmt log) to a file under
// $TEST_TMPDIR, waits until the port accepts connections, and stops it with
// SIGTERM (SIGKILL after a bounded wait) when destroyed.
//
// The binary is found in the test's runfiles: give the cc_test
// `data = ["//broker:siftd"]`. $SIFTD_PATH overrides the location.
//
// Thread-safety: not thread-safe; use one SiftdProcess from one thread (the
// test's main thread). Every wait in here is bounded in time and iterations.
#ifndef SIFT_TESTS_SIFTD_PROCESS_H_
#define SIFT_TESTS_SIFTD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sift::test {

// Binds a TCP socket to 127.0.0.1:0, reads the port the kernel chose and
// closes the socket. Another process may take the port before it is used;
// for tests on one machine that race is rare and shows as a start failure.
absl::StatusOr<int> PickFreePort();

// The siftd binary: $SIFTD_PATH, else $TEST_SRCDIR/$TEST_WORKSPACE/broker/siftd
// (workspace "sift" if $TEST_WORKSPACE is unset).
absl::StatusOr<std::string> SiftdPath();

// A directory for test output files: $TEST_TMPDIR, else /tmp.
std::string TestTmpDir();

struct SiftdOptions {
  // Flags appended after --endpoints (e.g. "--max_payload_bytes=1024").
  std::vector<std::string> extra_flags;
  // TCP port on 127.0.0.1; 0 picks a free one.
  int port = 0;
  // How long Start()/Restart() wait for the port to accept connections.
  absl::Duration ready_timeout = absl::Seconds(10);
  // How long Stop() waits after SIGTERM before it sends SIGKILL.
  absl::Duration stop_timeout = absl::Seconds(10);
};

class SiftdProcess {
 public:
  // Starts siftd with --endpoints=tcp://127.0.0.1:<port> plus the extra flags
  // and waits until it accepts TCP connections. Fails (and kills the child)
  // if it exits early or is not ready within options.ready_timeout; the
  // error includes the tail of its log.
  static absl::StatusOr<std::unique_ptr<SiftdProcess>> Start(
      SiftdOptions options = {});

  SiftdProcess(const SiftdProcess&) = delete;
  SiftdProcess& operator=(const SiftdProcess&) = delete;
  ~SiftdProcess();  // Stop()s if still running.

  // Sends SIGTERM and waits up to options.stop_timeout for the process to
  // exit, then SIGKILLs it. Returns the raw wait status (see exit_code()).
  // OK if already stopped.
  absl::Status Stop();
  // Stop() then start again on the same port with the same flags.
  absl::Status Restart();

  // True while the child has not exited (checked with waitpid(WNOHANG)).
  bool IsRunning();
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  // "tcp://127.0.0.1:<port>".
  std::string endpoint() const;

  // How the most recent run that ended, ended: its exit code if it exited
  // normally, or -signal if a signal killed it. Kept across Restart(), so
  // after Restart() it describes the stopped run. nullopt if no run ended.
  std::optional<int> exit_code() const { return exit_code_; }
  // True if the last Stop() had to SIGKILL (siftd ignored SIGTERM).
  bool was_killed() const { return was_killed_; }

  // The file that receives siftd's stdout and stderr (all runs, appended).
  const std::string& log_path() const { return log_path_; }
  // The whole log so far.
  std::string ReadLog() const;
  // Polls the log until it contains `needle` or `timeout` passes.
  bool WaitForLog(std::string_view needle, absl::Duration timeout) const;
  // The last `max_bytes` of the log, for failure messages.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  SiftdProcess(SiftdOptions options, std::string binary, std::string log_path);
  absl::Status Spawn();
  absl::Status WaitReady();
  // Reaps the child if it exited; true if it did. Blocking waits use
  // WaitExit().
  bool Reap(bool block);
  bool WaitExit(absl::Duration timeout);

  // Constant after construction.
  const SiftdOptions options_;
  const std::string binary_;
  const std::string log_path_;
  int port_ = 0;

  pid_t pid_ = -1;  // -1 when no child is running.
  std::optional<int> exit_code_;
  bool was_killed_ = false;
  int runs_ = 0;
};

}  // namespace sift::test

#endif  // SIFT_TESTS_SIFTD_PROCESS_H_
