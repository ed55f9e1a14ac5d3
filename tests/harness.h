// What the integration tests share beyond siftd_process.h: start siftd or
// connect a client with a test failure (not a crash) if that fails, and run
// a helper program (the `sift` command) as a child with its output in a
// file. For the test's main thread; every wait is bounded.
#ifndef SIFT_TESTS_HARNESS_H_
#define SIFT_TESTS_HARNESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "tests/siftd_process.h"

namespace sift::test {

// siftd with `flags` added, or null after an EXPECT failure.
std::unique_ptr<SiftdProcess> StartSiftd(std::vector<std::string> flags = {});

// A new empty directory under the test's tmp dir, named `prefix`-XXXXXX
// ("" after an EXPECT failure).
std::string NewTestDir(const std::string& prefix);

// siftd with streams enabled (--data_dir a new directory) and `flags`.
std::unique_ptr<SiftdProcess> StartSiftdWithStreams(
    std::vector<std::string> flags = {});

// The `sift` command in the test's runfiles.
std::string SiftCliPath();

// A client connected to `endpoint`, or null after an EXPECT failure.
std::unique_ptr<Client> Connect(const std::string& endpoint);

// Starts `argv` (argv[0] a path) with stdout and stderr to the file `out`;
// returns its pid, or -1 if it could not be started.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out);

// Waits up to `timeout` for `pid` to exit and returns its exit code; kills
// it (SIGKILL, by pid) and returns -1 if it does not exit in time.
int Reap(pid_t pid, absl::Duration timeout);

// The whole file at `path` ("" if it cannot be read).
std::string ReadFile(const std::string& path);

}  // namespace sift::test

#endif  // SIFT_TESTS_HARNESS_H_
